// `beamtrace info` lists the same way on every run: kinds and functions most first, equal counts by
// name, in text and in --json, whatever hash seed the process got (each run of the tool is a new one).
import Foundation
import Testing
import TestSupport

@Suite struct InfoOrderTests {
    static let traces = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("traces")

    /// The `name count` rows under `header:` up to the next header.
    static func rows(_ text: String, under header: String) -> [(name: String, count: Int)] {
        var inside = false
        var rows: [(name: String, count: Int)] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasSuffix(":") && !line.hasPrefix(" ") { inside = line == "\(header):"; continue }
            guard inside, line.hasPrefix("  ") else { continue }
            let parts = line.split(separator: " ")
            if parts.count == 2, let count = Int(parts[1]) { rows.append((String(parts[0]), count)) }
        }
        return rows
    }

    // Recorded live (traces/README.md): spawn and spawned come in equal numbers, and so do some
    // kinds and functions of each capture.
    @Test(arguments: ["frozen-queue.btrace", "slow-call-after.btrace", "healthy.btrace"])
    func tiesAreListedByName(_ name: String) throws {
        let capture = Self.traces.appendingPathComponent(name).path
        let first = try CLI.run(["info", capture])
        let firstJSON = try CLI.run(["info", capture, "--json"])
        var ties = 0
        for header in ["by kind", "by function"] {
            let rows = Self.rows(first, under: header)
            #expect(rows.count >= 2, "\(header) in \(first)")
            for (a, b) in zip(rows, rows.dropFirst()) {
                #expect(a.count > b.count || (a.count == b.count && a.name < b.name),
                        "\(name) \(header): \(a.name) \(a.count) before \(b.name) \(b.count)")
                if a.count == b.count { ties += 1 }
            }
        }
        #expect(ties >= 1, "no equal counts in \(name): the test shows nothing")
        // New processes, new hash seeds: the same bytes each time.
        for _ in 0..<4 {
            #expect(try CLI.run(["info", capture]) == first)
            #expect(try CLI.run(["info", capture, "--json"]) == firstJSON)
        }
        // What the text lists, the JSON counts.
        guard let object = try JSONSerialization.jsonObject(with: Data(firstJSON.utf8)) as? [String: Any],
              let kinds = object["kinds"] as? [String: Int] else {
            Issue.record("info --json has no kinds: \(firstJSON)")
            return
        }
        #expect(Dictionary(uniqueKeysWithValues: Self.rows(first, under: "by kind").map { ($0.name, $0.count) }) == kinds)
    }
}
