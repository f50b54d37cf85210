// Every analysis command on an empty capture and on a window with no events answers (exit 0, no
// trap); timeline's text is the JSON's span tree; latency groups a live workload's exceptions by
// reason exactly as the workload counted them.
import Foundation
import Testing
import TestSupport

@Suite("empty windows, timeline text, exception reasons", .serialized)
struct WindowAndTextTests {
    func cli() throws -> String {
        try #require(BuiltProducts.executable("beamtrace"), "the beamtrace executable was not built")
    }

    var shipped: String { LiveHang.root.appendingPathComponent("traces/mailbox-overload.btrace").path }

    @Test("hang, queues, latency, timeline, state, diff and export answer on an empty capture and an empty window")
    func emptyWindows() throws {
        let cli = try cli()
        let directory = try Erlang.temporaryDirectory("bt-empty")
        defer { try? FileManager.default.removeItem(at: directory) }
        let empty = directory.appendingPathComponent("empty.btrace").path
        try Shell.run(cli, ["synth", "-o", empty, "--events", "0"])
        for (capture, window) in [(empty, [String]()), (shipped, ["--from", "+10s", "--to", "+11s"]),
                                  (empty, ["--from", "+1s"])] {
            for command in ["hang", "queues", "latency", "timeline"] {
                let text = try Shell.runCapturing(cli, [command, capture] + window)
                #expect(text.status == 0, "\(command) \(window): \(text.stderr)")
                #expect(text.stdout.contains("no events in this window"), "\(command): \(text.stdout)")
                let json = try Shell.runCapturing(cli, [command, "--json", capture] + window)
                #expect(json.status == 0, "\(command) --json: \(json.stderr)")
                #expect((try? JSONSerialization.jsonObject(with: json.stdoutData)) is [String: Any],
                        "\(command) --json prints a JSON object: \(json.stdout)")
            }
            let export = try Shell.runCapturing(cli, ["export", capture, "--format", "chrome", "-o",
                                                      directory.appendingPathComponent("out.json").path] + window)
            #expect(export.status == 0, "export: \(export.stderr)")
        }
        let hang = try JSONSerialization.jsonObject(with: Data(try Shell.run(cli, ["hang", "--json", empty]).utf8))
            as? [String: Any]
        #expect((hang?["suspects"] as? [Any])?.isEmpty == true)
        #expect(hang?["capture_seconds"] as? Double == 0)
        let state = try Shell.runCapturing(cli, ["state", empty, "--at", "+1s"])
        #expect(state.status == 0, "\(state.stderr)")
        #expect(state.stdout.contains("no events in this window"))
        let diff = try Shell.runCapturing(cli, ["diff", empty, shipped])
        #expect(diff.status == 0, "\(diff.stderr)")
        #expect(diff.stdout.contains("no events in this window"))
    }

    /// (tree depth, function, started-before note) per line of `timeline` text for one process.
    func textLines(_ text: String) -> [(Int, String, String?)] {
        text.split(separator: "\n").dropFirst().compactMap { line in
            let spaces = line.prefix { $0 == " " }.count
            guard spaces >= 2, let mfa = line.split(separator: " ").first else { return nil }
            let note = line.contains("[started before the capture]") ? "capture"
                : line.contains("[started before --from]") ? "from" : nil
            return (spaces / 2 - 1, String(mfa), note)
        }
    }

    /// The same from the JSON: a depth-first walk of the parent links, children in start order.
    func jsonLines(_ json: String) throws -> [(Int, String, Bool)] {
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        let spans = object?["spans"] as? [[String: Any]] ?? []
        let ids = Set(spans.compactMap { $0["id"] as? Int })
        func key(_ s: [String: Any]) -> (Int64, Int) { ((s["start_ns"] as? NSNumber)?.int64Value ?? 0, s["id"] as? Int ?? 0) }
        var out: [(Int, String, Bool)] = []
        func walk(_ span: [String: Any], _ depth: Int) {
            out.append((depth, span["mfa"] as? String ?? "", span["start_known"] as? Bool ?? true))
            let id = span["id"] as? Int ?? -2
            for child in spans.filter({ $0["parent"] as? Int == id }).sorted(by: { key($0) < key($1) }) {
                walk(child, depth + 1)
            }
        }
        for root in spans.filter({ !ids.contains($0["parent"] as? Int ?? -1) }).sorted(by: { key($0) < key($1) }) {
            walk(root, 0)
        }
        return out
    }

    @Test("timeline text follows the JSON's span tree; 'started before the capture' only without --from")
    func timelineTree() throws {
        let cli = try cli()
        for pid in ["<0.85.0>", "<0.86.0>"] {
            for window in [[String](), ["--from", "+1s"]] {
                let arguments = [shipped, "--pid", pid, "--limit", "60"] + window
                let text = textLines(try Shell.run(cli, ["timeline"] + arguments))
                let json = try jsonLines(try Shell.run(cli, ["timeline", "--json"] + arguments))
                #expect(text.count == json.count, "\(pid) \(window)")
                #expect(text.map(\.0) == json.map(\.0), "tree depths differ for \(pid) \(window)")
                #expect(text.map(\.1) == json.map(\.1))
                // Unknown starts say where the replay began: the capture, or --from.
                let expected = json.map { $0.2 ? nil : (window.isEmpty ? "capture" : "from") }
                #expect(text.map(\.2) == expected, "\(pid) \(window)")
            }
        }
        // The sink was busy when the recording started, and inside a call at +1 s.
        let sink = textLines(try Shell.run(cli, ["timeline", shipped, "--pid", "<0.85.0>", "--from", "+1s", "--limit", "3"]))
        #expect(sink.first?.2 == "from")
        #expect(sink.allSatisfy { $0.2 != "capture" })
        let nested = try jsonLines(try Shell.run(cli, ["timeline", "--json", shipped, "--pid", "<0.86.0>", "--limit", "60"]))
        #expect(nested.contains { $0.0 == 1 }, "kv's handle_call spans have store/2 children")
    }

    @Test("latency groups a live workload's exceptions by reason, with the workload's own counts")
    func exceptionReasons() throws {
        let run = try LiveHang.record("exceptions")
        defer { try? FileManager.default.removeItem(at: run.directory) }
        let cli = try cli()
        let json = try JSONSerialization.jsonObject(with: Data(try Shell.run(cli, ["latency", "--json", run.capture]).utf8))
            as? [String: Any]
        let rows = json?["functions"] as? [[String: Any]] ?? []
        let txn = try #require(rows.first { $0["mfa"] as? String == "demo_hang:txn/1" })
        let reasons = Dictionary(uniqueKeysWithValues: (txn["exception_reasons"] as? [[String: Any]] ?? []).compactMap {
            r -> (String, Int)? in
            guard let reason = r["reason"] as? String, let count = r["count"] as? Int else { return nil }
            return (reason, count)
        })
        #expect(reasons["exit {aborted,{cyclic,…}}"].map(String.init) == run.truth["cyclic"], "\(reasons)")
        #expect(reasons["error badarg"].map(String.init) == run.truth["badarg"], "\(reasons)")
        #expect(txn["exceptions"] as? Int == reasons.values.reduce(0, +))
        let text = try Shell.run(cli, ["latency", run.capture])
        #expect(text.contains("exit {aborted,{cyclic,…}}  x\(run.truth["cyclic"] ?? "?")"), "\(text)")
    }
}
