// `diff` on real before/after captures, and the analysis commands' JSON and exit codes.
import CaptureStore
import Foundation
import Testing
import TestSupport
import TraceAnalysis

@Suite("diff and the analysis commands")
struct DiffAndCommandTests {
    func beamtrace() throws -> String {
        try #require(BuiltProducts.executable("beamtrace"), "the beamtrace executable was not built")
    }

    @Test("a 2x slowdown of one function is exactly the significant regression; unchanged runs are not flagged")
    func diff() throws {
        let before = try Workload.run("diff(DIR, 200, 1.0)")
        let again = try Workload.run("diff(DIR, 200, 1.0)")
        let slower = try Workload.run("diff(DIR, 200, 2.0)")
        defer { for run in [before, again, slower] { try? FileManager.default.removeItem(at: run.directory) } }
        let b = try CaptureAnalysis.run(CaptureReader(opening: before.capture))
        let s = try CaptureAnalysis.run(CaptureReader(opening: slower.capture))
        let a = try CaptureAnalysis.run(CaptureReader(opening: again.capture))

        // The median as the gate: on a loaded machine (tests run in parallel with other erl nodes)
        // p90 and p99 of 200 calls are scheduling hiccups.
        let regression = CaptureDiff.compare(before: b, after: s, percentile: 50, regressionThresholdPct: 20)
        #expect(regression.regressions == ["bt_workload:slow/1"],
                "\(regression.functions.map { "\($0.mfa) p50 \($0.before?.p50Micros ?? 0)->\($0.after?.p50Micros ?? 0) p99 \($0.before?.p99Micros ?? 0)->\($0.after?.p99Micros ?? 0) effect \($0.effect ?? 0)" })")
        let slow = try #require(regression.functions.first { $0.mfa == "bt_workload:slow/1" })
        #expect(slow.significant)
        #expect((slow.p50ChangePct ?? 0) > 60 && (slow.p50ChangePct ?? 0) < 120)
        #expect((slow.pValue ?? 1) < 1e-6)
        #expect(regression.functions.first { $0.mfa == "bt_workload:fast/1" }?.significant == false)

        let unchanged = CaptureDiff.compare(before: b, after: a, percentile: 50, regressionThresholdPct: 20)
        #expect(unchanged.regressions.isEmpty)
        #expect(unchanged.functions.allSatisfy { !$0.significant })

        let cli = try beamtrace()
        let failing = try Shell.runCapturing(cli, ["diff", before.capture, slower.capture, "--fail-on-regression", "20", "--percentile", "50"])
        #expect(failing.status != 0)
        #expect(failing.stderr.contains("bt_workload:slow/1"))
        let passing = try Shell.runCapturing(cli, ["diff", before.capture, again.capture, "--fail-on-regression", "20", "--percentile", "50"])
        #expect(passing.status == 0)
        let json = try Shell.run(cli, ["diff", "--json", "--percentile", "50", before.capture, slower.capture])
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        #expect(object?["regressions"] as? [String] == ["bt_workload:slow/1"])
        let functions = object?["functions"] as? [[String: Any]] ?? []
        #expect(functions.first?.keys.contains("p99_change_pct") == true)
        #expect(functions.first?.keys.contains("p_value") == true)
    }

    @Test("hang, latency, queues and timeline print the documented JSON and readable text")
    func commands() throws {
        let run = try Workload.run("deadlock(DIR)")
        defer { try? FileManager.default.removeItem(at: run.directory) }
        let cli = try beamtrace()
        let pids = Workload.pids(run.truth)

        let hang = try JSONSerialization.jsonObject(with: Data(try Shell.run(cli, ["hang", "--json", run.capture]).utf8)) as? [String: Any]
        #expect((hang?["verdict"] as? String)?.contains("deadlock") == true)
        let suspects = hang?["suspects"] as? [[String: Any]] ?? []
        #expect(Set(suspects.prefix(2).compactMap { $0["pid"] as? String }) == Set([pids["a"], pids["b"]].compactMap { $0 }))
        #expect(suspects.first?["reason"] as? String == "deadlock")
        #expect(suspects.first?["evidence"] is [String: Any])
        let text = try Shell.run(cli, ["hang", run.capture])
        #expect(text.hasPrefix("Verdict: "))

        let latency = try JSONSerialization.jsonObject(with: Data(try Shell.run(cli, ["latency", "--json", run.capture]).utf8)) as? [String: Any]
        let rows = latency?["functions"] as? [[String: Any]] ?? []
        let handleCall = rows.first { $0["mfa"] as? String == "bt_workload:handle_call/3" }
        for key in ["calls", "returned", "exceptions", "min_us", "mean_us", "p50_us", "p90_us", "p99_us", "p999_us", "max_us", "self_p50_us"] {
            #expect(handleCall?[key] != nil, "\(key)")
        }
        // Two set_peer calls returned; the two ping calls are stuck.
        #expect(handleCall?["returned"] as? Int == 2)
        #expect(handleCall?["calls"] as? Int == 4)

        let timeline = try Shell.run(cli, ["timeline", run.capture, "--pid", pids["a"] ?? ""])
        #expect(timeline.contains("bt_workload:handle_call/3"))
        #expect(timeline.contains("[unfinished]"))

        let state = try JSONSerialization.jsonObject(with: Data(try Shell.run(cli, ["state", "--json", "--at", "+10s", run.capture]).utf8)) as? [String: Any]
        let processes = state?["processes"] as? [[String: Any]] ?? []
        let inside = processes.filter { process in
            (process["stack"] as? [[String: Any]] ?? []).contains { $0["mfa"] as? String == "bt_workload:handle_call/3" }
        }
        #expect(Set(inside.compactMap { $0["pid"] as? String }) == Set([pids["a"], pids["b"]].compactMap { $0 }))

        let missing = try Shell.runCapturing(cli, ["hang", run.directory.appendingPathComponent("nope").path])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("cannot open capture"))
    }

    @Test("the README's main command prints what the README shows, on the shipped capture")
    func readmeMainCommand() throws {
        let cli = try beamtrace()
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let capture = root.appendingPathComponent("traces/mailbox-overload.btrace").path
        let output = try Shell.run(cli, ["hang", capture])
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let verdict = try #require(output.split(separator: "\n").first.map(String.init))
        #expect(verdict.contains("the mailbox of sink"))
        #expect(readme.contains(verdict), "README shows a different verdict than `beamtrace hang` prints")
        let hang = try JSONSerialization.jsonObject(with: Data(try Shell.run(cli, ["hang", "--json", capture]).utf8)) as? [String: Any]
        let top = (hang?["suspects"] as? [[String: Any]])?.first
        #expect(top?["name"] as? String == "sink")
        #expect(top?["reason"] as? String == "queue_growth")
        try? FileManager.default.removeItem(atPath: capture + "/analysis-checkpoints.json")
    }

    @Test("a corrupt block in the middle: hang still answers from the rest and says what it skipped")
    func corruptBlock() throws {
        let cli = try beamtrace()
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let directory = try Erlang.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let capture = directory.appendingPathComponent("damaged.btrace")
        try FileManager.default.copyItem(at: root.appendingPathComponent("traces/mailbox-overload.btrace"), to: capture)
        let reader = try CaptureReader(opening: capture.path)
        let victim = try #require(reader.blocks.dropFirst(reader.blocks.count / 2).first)
        let segment = try #require(try FileManager.default.contentsOfDirectory(atPath: capture.path)
            .first { $0.hasSuffix(".btseg") })
        let url = capture.appendingPathComponent(segment)
        var bytes = try [UInt8](Data(contentsOf: url))
        bytes[Int(victim.offset) + Int(victim.recordLength) / 2] ^= 0x5A
        try Data(bytes).write(to: url)

        let result = try Shell.runCapturing(cli, ["hang", capture.path])
        #expect(result.status == 0)
        #expect(result.stdout.contains("the mailbox of sink"))
        #expect(result.stderr.contains("warning:"))
        #expect(result.stderr.contains("\(victim.offset)"), "stderr: \(result.stderr)")
        let events = try CaptureReader(opening: capture.path).events().count
        #expect(events < reader.blocks.reduce(0) { $0 + Int($1.count) })
    }
}
