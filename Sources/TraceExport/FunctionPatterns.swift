// `--exclude` and `--mfa` patterns for exports: whatever `FunctionMatcher` takes (`mod:fun/arity`,
// `Mod.fun/arity`, `Mod`), or a printed name with `*` matching any run of characters (`lists:*`, `*:handle_*`).
import TraceModel

public struct FunctionPatterns: Sendable {
    public let patterns: [String]
    /// Per pattern: the one function matcher of every command (`mod:fun/arity`, `Mod.fun/arity`, `Mod`...), or
    /// nil for a `*` pattern, which is matched against the printed name.
    private let matchers: [FunctionMatcher?]

    public init(_ patterns: [String]) {
        self.patterns = patterns
        matchers = patterns.map { $0.contains("*") ? nil : try? FunctionMatcher(parsing: $0) }
    }

    public var isEmpty: Bool { patterns.isEmpty }

    /// True when `mfa` (a function as the capture prints it) matches one of the patterns.
    public func matches(_ mfa: String) -> Bool {
        patterns.indices.contains { matches(at: $0, printed: mfa) }
    }

    /// By FunctionID: which functions of the dictionaries match.
    public func table(_ dictionaries: TraceDictionaries) -> [Bool] {
        (0..<dictionaries.functions.count).map { id in
            id != 0 && patterns.indices.contains { matches(at: $0, id: FunctionID(id), dictionaries) }
        }
    }

    /// The patterns that match none of the capture's functions (a filter that would silently select nothing).
    public func unmatched(_ dictionaries: TraceDictionaries) -> [String] {
        patterns.indices.filter { index in
            !(1..<max(dictionaries.functions.count, 1)).contains { matches(at: index, id: FunctionID($0), dictionaries) }
        }.map { patterns[$0] }
    }

    private func matches(at index: Int, id: FunctionID, _ d: TraceDictionaries) -> Bool {
        if let matcher = matchers[index] { return matcher.matches(d.functions[Int(id)], in: d) }
        return matches(at: index, printed: d.functionText(id))
    }

    private func matches(at index: Int, printed mfa: String) -> Bool {
        if let matcher = matchers[index] { return matcher.matches(printed: mfa) }
        let pattern = patterns[index]
        if pattern.contains("*") { return Self.glob(Array(pattern.utf8), Array(mfa.utf8)) }
        return mfa == pattern || mfa.hasPrefix(pattern + ":") || mfa.hasPrefix(pattern + "/")
    }

    static func glob(_ pattern: [UInt8], _ text: [UInt8]) -> Bool {
        var p = 0, t = 0, star = -1, mark = 0
        while t < text.count {
            if p < pattern.count, pattern[p] == UInt8(ascii: "*") {
                star = p
                mark = t
                p += 1
            } else if p < pattern.count, pattern[p] == text[t] {
                p += 1
                t += 1
            } else if star >= 0 {
                p = star + 1
                mark += 1
                t = mark
            } else {
                return false
            }
        }
        while p < pattern.count, pattern[p] == UInt8(ascii: "*") { p += 1 }
        return p == pattern.count
    }
}
