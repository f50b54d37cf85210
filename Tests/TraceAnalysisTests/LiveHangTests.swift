// `hang` on live recordings: each kind of hang and each class of healthy waiting that used to look
// like one, reproduced by traces/demo/demo_hang.erl on a real node, recorded from outside with
// `beamtrace record` while it happens, and checked against the workload's own truth (the pids it
// made, its own clock readings, how many calls it saw time out or lose their callee).
import CaptureStore
import Foundation
import Testing
import TestSupport
import TraceAnalysis

enum LiveHang {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// demo_hang compiled once per test process.
    static let codeDirectory: Result<String, Error> = Result {
        let directory = try Erlang.temporaryDirectory("bt-demo-hang")
        let source = try String(contentsOf: root.appendingPathComponent("traces/demo/demo_hang.erl"), encoding: .utf8)
        try Erlang.compile(module: "demo_hang", source: source, in: directory)
        return directory.path
    }

    struct Recording {
        var directory: URL
        var capture: String
        var truth: [String: String]
        var report: [String: Any]
        /// The node's clock offset to the session clock (ns), from the capture's meta.
        var offset: Int64
        var suspects: [[String: Any]] { report["suspects"] as? [[String: Any]] ?? [] }
        var endNs: Int64 { (report["end_ns"] as? NSNumber)?.int64Value ?? 0 }
        var verdict: String { report["verdict"] as? String ?? "" }
        var endings: [String: Int] { report["call_endings"] as? [String: Int] ?? [:] }

        /// Seconds from a workload clock reading (node monotonic ns) to the capture's end.
        func secondsToEnd(_ key: String) -> Double? {
            truth[key].flatMap { Int64($0) }.map { Double(endNs - ($0 + offset)) / 1e9 }
        }
    }

    /// Starts a node running `scenario` (it waits until the node is traced), records it for
    /// `seconds` with `beamtrace record`, stops the node and returns `hang --json` of the capture.
    /// With `already` the scenario starts at once and recording begins `already` seconds later:
    /// the hang is under way before the session.
    static func record(_ scenario: String, seconds: Int = 2, already: Double? = nil,
                       extra: [String] = []) throws -> Recording {
        let code = try codeDirectory.get()
        let cli = try #require(BuiltProducts.executable("beamtrace"), "the beamtrace executable was not built")
        let directory = try Erlang.temporaryDirectory("bt-live-hang")
        let truthFile = directory.appendingPathComponent("truth.txt").path
        let options = already == nil ? "[]" : "[now]"
        let node = try ErlangNode(codePaths: [code], setup: "demo_hang:start(\(scenario), \"\(truthFile)\", \(options))")
        defer { node.stop() }
        if let already { Thread.sleep(forTimeInterval: already) }
        let capture = directory.appendingPathComponent("capture.btrace").path
        let recorded = try Shell.runCapturing(cli, ["record", "--node", node.nodeName, "--cookie", node.cookie, "demo_hang",
                                                    "--events", "calls,send,receive,procs", "--sample", "100ms",
                                                    "--duration", "\(seconds)s", "-o", capture, "--quiet"] + extra,
                                            timeout: 60)
        #expect(recorded.status == 0, "record: \(recorded.stderr)")
        let truth = parseTruth((try? String(contentsOfFile: truthFile, encoding: .utf8)) ?? "")
        #expect(!truth.isEmpty, "the workload wrote no truth: \(node.output)")
        let json = try Shell.run(cli, ["hang", "--json", capture])
        let report = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] ?? [:]
        let offset = try CaptureReader(opening: capture).meta.nodes.first?.clockOffsetNs ?? 0
        return Recording(directory: directory, capture: capture, truth: truth, report: report, offset: offset)
    }

    /// `{key, "<0.1.0>"}.`, `{key, 123}.` and `{key, ["<0.1.0>", ...]}.` lines.
    static func parseTruth(_ text: String) -> [String: String] {
        var result: [String: String] = [:]
        for line in text.split(separator: "\n") {
            var body = line.trimmingCharacters(in: .whitespaces)
            guard body.hasPrefix("{"), body.hasSuffix("}.") else { continue }
            body = String(body.dropFirst().dropLast(2))
            guard let comma = body.firstIndex(of: ",") else { continue }
            let key = String(body[..<comma])
            let value = body[body.index(after: comma)...].trimmingCharacters(in: CharacterSet(charactersIn: "\" "))
            result[key] = value
        }
        return result
    }

    static func pid(_ s: [String: Any]) -> String { s["pid"] as? String ?? "" }
    static func reason(_ s: [String: Any]) -> String { s["reason"] as? String ?? "" }
    static func evidence(_ s: [String: Any]) -> [String: Any] { s["evidence"] as? [String: Any] ?? [:] }
}

@Suite("hang on live recordings", .serialized)
struct LiveHangTests {
    @Test("a call stuck on a stuck server: the server is the root, with the chain of waiting callers")
    func stuckCall() throws {
        let run = try LiveHang.record("stuck_call")
        defer { try? FileManager.default.removeItem(at: run.directory) }
        let backend = try #require(run.truth["backend"]), front = try #require(run.truth["front"])
        let clientA = try #require(run.truth["client_a"]), clientB = try #require(run.truth["client_b"])
        let top = try #require(run.suspects.first)
        #expect(LiveHang.reason(top) == "not_answering")
        #expect(LiveHang.pid(top) == backend)
        let chains = run.report["chains"] as? [[String]] ?? []
        #expect(chains.contains([clientA, front, backend]), "\(chains)")
        let stuck = Set(run.suspects.filter { LiveHang.reason($0) == "stuck_call" }.map(LiveHang.pid))
        #expect(stuck == [front, clientA, clientB])
        // Aged to the end of the capture, not to the last traced event: the workload's own clock.
        let expected = try #require(run.secondsToEnd("t_call"))
        let measured = try #require(LiveHang.evidence(top)["not_answered_s"] as? Double)
        #expect(abs(measured - expected) < 0.1, "measured \(measured) s, workload \(expected) s")
        #expect(expected > 1.0)
        #expect(LiveHang.evidence(top)["request"] as? String == "{fetch,42}")
        #expect(run.verdict.contains(backend) && run.verdict.contains("has not answered"), "\(run.verdict)")
        // The healthy kv next to it is no suspect.
        #expect(!run.suspects.contains { LiveHang.pid($0) == run.truth["kv"] })
    }

    @Test("a deadlock of three gen_servers: the cycle with all three pids, ranked first")
    func deadlockOfThree() throws {
        let run = try LiveHang.record("deadlock")
        defer { try? FileManager.default.removeItem(at: run.directory) }
        let ring = try ["ring_a", "ring_b", "ring_c"].map { try #require(run.truth[$0]) }
        let deadlocks = run.report["deadlocks"] as? [[String]] ?? []
        #expect(deadlocks.count == 1)
        #expect(deadlocks.first == ring, "\(deadlocks)")
        #expect(Set(run.suspects.prefix(3).map(LiveHang.pid)) == Set(ring))
        #expect(run.suspects.prefix(3).allSatisfy { LiveHang.reason($0) == "deadlock" })
        let client = try #require(run.suspects.first { LiveHang.pid($0) == run.truth["client"] })
        #expect(LiveHang.reason(client) == "stuck_call")
        let waited = try #require(LiveHang.evidence(run.suspects[0])["waiting_s"] as? Double)
        let expected = try #require(run.secondsToEnd("t_call"))
        #expect(abs(waited - expected) < 0.1, "measured \(waited) s, workload \(expected) s")
        #expect(run.verdict.contains("deadlock"))
    }

    @Test("a queue frozen while its owner is blocked in a receive: its length and what the owner waits in")
    func frozenQueue() throws {
        let run = try LiveHang.record("frozen_queue")
        defer { try? FileManager.default.removeItem(at: run.directory) }
        let top = try #require(run.suspects.first)
        #expect(LiveHang.reason(top) == "frozen_queue")
        #expect(LiveHang.pid(top) == run.truth["frozen"])
        #expect((LiveHang.evidence(top)["frozen_len"] as? Int).map(String.init) == run.truth["frozen_len"])
        // Frozen since the workload's last cast: seen from the first sample after it.
        let frozen = try #require(LiveHang.evidence(top)["frozen_s"] as? Double)
        let expected = try #require(run.secondsToEnd("t_frozen"))
        #expect(frozen <= expected + 0.01 && frozen >= expected - 0.35, "frozen \(frozen) s, workload \(expected) s")
        let owner = (LiveHang.evidence(top)["owner"] as? [String] ?? []).joined(separator: "; ")
        #expect(owner.contains("blocked in a receive in demo_hang:handle_cast/2"), "\(owner)")
        #expect(run.suspects.count == 1, "\(run.suspects.map(LiveHang.reason))")
    }

    @Test("a receive that matches none of a growing queue: selective_receive, not an overload")
    func selectiveReceive() throws {
        let run = try LiveHang.record("selective_receive")
        defer { try? FileManager.default.removeItem(at: run.directory) }
        let top = try #require(run.suspects.first)
        #expect(LiveHang.reason(top) == "selective_receive")
        #expect(LiveHang.pid(top) == run.truth["picky"])
        #expect(LiveHang.evidence(top)["waiting_in"] as? String == "demo_hang:picky/0")
        #expect((LiveHang.evidence(top)["end_len"] as? Int ?? 0) > 50)
        let senders = LiveHang.evidence(top)["top_senders"] as? [String] ?? []
        #expect(senders.first?.contains(run.truth["producer"] ?? "?") == true, "\(senders)")
    }

    @Test("a hang under way before the recording: the samples show the callers in gen:do_call and their callees")
    func hangBeforeTheSession() throws {
        let run = try LiveHang.record("stuck_call", already: 0.7)
        defer { try? FileManager.default.removeItem(at: run.directory) }
        let backend = try #require(run.truth["backend"]), front = try #require(run.truth["front"])
        let clientA = try #require(run.truth["client_a"]), clientB = try #require(run.truth["client_b"])
        let top = try #require(run.suspects.first)
        #expect(LiveHang.reason(top) == "not_answering", "\(run.verdict)")
        #expect(LiveHang.pid(top) == backend)
        #expect(LiveHang.evidence(top)["seen_in_samples"] as? Bool == true)
        // Both clients wait on front as long (since the first sample): either chain is the longest.
        let chains = run.report["chains"] as? [[String]] ?? []
        #expect(chains.contains([clientA, front, backend]) || chains.contains([clientB, front, backend]), "\(chains)")
        let stuck = Set(run.suspects.filter { LiveHang.reason($0) == "stuck_call" }.map(LiveHang.pid))
        #expect(stuck == [front, clientA, clientB])
        // The wait is at least the whole capture: it began before it.
        let measured = try #require(LiveHang.evidence(top)["not_answered_s"] as? Double)
        #expect(measured > 1.5 && measured <= (run.secondsToEnd("t_call") ?? 0), "\(measured)")
        #expect(run.verdict.contains("has not answered a call for at least"), "\(run.verdict)")

        let deadlock = try LiveHang.record("deadlock", already: 0.7)
        defer { try? FileManager.default.removeItem(at: deadlock.directory) }
        let ring = try ["ring_a", "ring_b", "ring_c"].map { try #require(deadlock.truth[$0]) }
        // The same cycle, whichever member it is printed from (all waited since the first sample).
        let cycles = deadlock.report["deadlocks"] as? [[String]] ?? []
        #expect(cycles.count == 1, "\(deadlock.verdict)")
        let rotations = (0..<3).map { Array(ring[$0...] + ring[..<$0]) }
        #expect(cycles.first.map { rotations.contains($0) } == true, "\(cycles)")
    }

    @Test("a queue that grows: the overloaded server with its producers as top senders")
    func queueGrowth() throws {
        let run = try LiveHang.record("overload")
        defer { try? FileManager.default.removeItem(at: run.directory) }
        let top = try #require(run.suspects.first)
        #expect(LiveHang.reason(top) == "queue_growth", "\(run.verdict)")
        #expect(LiveHang.pid(top) == run.truth["sink"])
        let producers = Set((run.truth["producers"] ?? "").trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
            .split(separator: ",").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\" ")) })
        #expect(producers.count == 4)
        let senders = LiveHang.evidence(top)["top_senders"] as? [String] ?? []
        #expect(senders.prefix(4).allSatisfy { sender in producers.contains { sender.contains($0) } }, "\(senders)")
        #expect((LiveHang.evidence(top)["slope_per_s"] as? Double ?? 0) > 50)
    }

    @Test("system_monitor alerts near the end: large_heap of the process the workload grew")
    func monitorAlerts() throws {
        let run = try LiveHang.record("big_heap", extra: ["--large-heap", "1000000"])
        defer { try? FileManager.default.removeItem(at: run.directory) }
        let monitor = try #require(run.suspects.first { LiveHang.reason($0) == "monitor" }, "\(run.verdict)")
        #expect(LiveHang.pid(monitor) == run.truth["big"])
        #expect((LiveHang.evidence(monitor)["kinds"] as? [String] ?? []).contains("large_heap"))
        // The heap grew near the end: within the last second of the capture, by the workload's clock.
        let age = try #require(run.secondsToEnd("t_grow"))
        #expect(age < 1.0 && age > 0, "grew \(age) s before the end")
        #expect(run.suspects.count == 1, "\(run.suspects.map(LiveHang.reason))")
    }

    @Test("calls that timed out (catch gen_server:call(S, R, 50)) are not stuck; the caller idles afterwards")
    func timedOutCalls() throws {
        let run = try LiveHang.record("timeout")
        defer { try? FileManager.default.removeItem(at: run.directory) }
        #expect(run.suspects.isEmpty, "\(run.verdict)")
        let timeouts = try #require(run.truth["timeouts"].flatMap { Int($0) })
        #expect(timeouts == 4)
        #expect(run.endings["timeout"] == timeouts, "\(run.endings)")
        #expect(run.verdict.contains("nothing looks hung"))
    }

    @Test("calls whose callee died end with the monitor's 'DOWN', not as stuck")
    func calleeDied() throws {
        let run = try LiveHang.record("callee_died")
        defer { try? FileManager.default.removeItem(at: run.directory) }
        #expect(run.suspects.isEmpty, "\(run.verdict)")
        let downs = try #require(run.truth["downs"].flatMap { Int($0) })
        #expect(downs == 4)
        #expect(run.endings["down"] == downs, "\(run.endings)")
    }

    @Test("workers blocked in receive by design are no suspects")
    func workersInReceive() throws {
        let run = try LiveHang.record("workers")
        defer { try? FileManager.default.removeItem(at: run.directory) }
        #expect(run.suspects.isEmpty, "\(run.verdict)")
        // The workers were traced: they received their jobs.
        let workers = (run.truth["workers"] ?? "").trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
            .split(separator: ",").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\" ")) }
        #expect(workers.count == 4)
        let reader = try CaptureReader(opening: run.capture)
        let received = Set(try reader.events(matching: EventQuery(kinds: [.receive]))
            .map { reader.dictionaries.processText($0.event.pid) })
        #expect(workers.allSatisfy(received.contains))
    }

    @Test("OTP's machinery at work (supervisor with a slow child, application start/stop, timers, logger, pg) is no suspect")
    func otpMachinery() throws {
        let run = try LiveHang.record("otp")
        defer { try? FileManager.default.removeItem(at: run.directory) }
        #expect(run.suspects.isEmpty, "\(run.verdict)")
        #expect((run.endings["reply"] ?? 0) > 10)
    }

    @Test("the healthy system of the hang scenarios: no suspect, and its timeouts and 'DOWN's are counted")
    func healthy() throws {
        let run = try LiveHang.record("healthy")
        defer { try? FileManager.default.removeItem(at: run.directory) }
        #expect(run.suspects.isEmpty, "\(run.verdict)")
        #expect(run.endings["timeout"].map(String.init) == run.truth["timeouts"], "\(run.endings)")
        #expect(run.endings["down"].map(String.init) == run.truth["downs"], "\(run.endings)")
    }
}
