// Ranks candidate names by how close they are to what someone typed, so an error for an unknown
// node, process or function can list what the capture has, closest first.

public enum Closest {
    /// `candidates` ordered closest to `text` first (a shared prefix or substring counts most, then
    /// edit distance), at most `limit` of them.
    public static func ranked(_ candidates: some Sequence<String>, to text: String, limit: Int = 10) -> [String] {
        let needle = Array(text.lowercased().utf8)
        var scored: [(Int, String)] = []
        var seen = Set<String>()
        for candidate in candidates where seen.insert(candidate).inserted {
            let hay = Array(candidate.lowercased().utf8)
            var score = distance(needle, hay)
            if candidate.lowercased().contains(text.lowercased()) || text.lowercased().contains(candidate.lowercased()) {
                score -= 1000
            }
            scored.append((score, candidate))
        }
        scored.sort { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
        return scored.prefix(limit).map(\.1)
    }

    /// "a, b, c (and N more)" of the closest, for an error message.
    public static func listing(_ candidates: some Sequence<String>, to text: String, limit: Int = 8) -> String {
        let all = Array(Set(candidates))
        guard !all.isEmpty else { return "none" }
        let shown = ranked(all, to: text, limit: limit)
        let more = all.count - shown.count
        return shown.joined(separator: ", ") + (more > 0 ? " (and \(more) more)" : "")
    }

    /// Levenshtein distance over bytes (names are short).
    static func distance(_ a: [UInt8], _ b: [UInt8]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}
