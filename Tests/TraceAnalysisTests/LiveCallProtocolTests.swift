// `hang` on live multi-node recordings of the call protocols beyond gen:call: a
// gen_server:multi_call stuck on one server (with infinity, and with a timeout through its
// middleman), an erpc call that never returns (followed from its spawn on the callee's node, and
// seen only in samples when it began before the recording), and a sampled caller that monitors
// several processes (its callee read from its stack). Truth comes from demo_hang on each node: the
// pids it made, as each node prints them, and its own clock.
import CaptureStore
import Foundation
import Testing
import TestSupport
import TraceAnalysis
import TraceModel

enum LiveCluster {
    struct Recording {
        var directory: URL
        var capture: String
        var nodeNames: [String]
        var truths: [[String: String]]
        var report: [String: Any]
        var offsets: [String: Int64]
        var suspects: [[String: Any]] { report["suspects"] as? [[String: Any]] ?? [] }
        var endNs: Int64 { (report["end_ns"] as? NSNumber)?.int64Value ?? 0 }
        var verdict: String { report["verdict"] as? String ?? "" }

        /// Seconds from node `i`'s clock reading `key` to the capture's end.
        func secondsToEnd(_ i: Int, _ key: String) -> Double? {
            truths[i][key].flatMap { Int64($0) }.map { Double(endNs - ($0 + (offsets[nodeNames[i]] ?? 0))) / 1e9 }
        }

        func suspect(_ pid: String?, node i: Int) -> [String: Any]? {
            suspects.first { LiveHang.pid($0) == pid && ($0["node"] as? String) == nodeNames[i] }
        }

        /// The erpc callee's pid, as it wrote it into node 1's `.callee` truth file.
        func calleePid() -> String? {
            let text = (try? String(contentsOf: directory.appendingPathComponent("truth-1.txt.callee"), encoding: .utf8)) ?? ""
            guard let local = LiveHang.parseTruth(text)["callee"], local.hasPrefix("<0.") else { return nil }
            return "<\(nodeNames[1])." + local.dropFirst(3)
        }

        /// A pid node `i` wrote as `<0.X.Y>`, as a capture of several nodes prints it (`<node.X.Y>`).
        func pid(_ i: Int, _ key: String) -> String? {
            guard let local = truths[i][key], local.hasPrefix("<0.") else { return nil }
            return "<\(nodeNames[i])." + local.dropFirst(3)
        }
    }

    /// Starts one node per entry of `options(names, truthFiles)` (its demo_hang:start options), records
    /// them all with `beamtrace record` for `seconds` (starting `already` seconds after the nodes when
    /// given: the scenario then starts at once), stops them and returns `hang --json`.
    static func record(_ scenario: String, nodes count: Int, seconds: Int = 2, already: Double? = nil,
                       options: ([String], [String]) -> [String]) throws -> Recording {
        let code = try LiveHang.codeDirectory.get()
        let cli = try #require(BuiltProducts.executable("beamtrace"), "the beamtrace executable was not built")
        let directory = try Erlang.temporaryDirectory("bt-live-cluster")
        let cookie = Erlang.randomName("c")
        let names = (0..<count).map { _ in Erlang.randomName() }
        let nodeNames = names.map { "\($0)@\(Erlang.shortHostName)" }
        let truthFiles = names.indices.map { directory.appendingPathComponent("truth-\($0).txt").path }
        let nodeOptions = options(nodeNames, truthFiles).map { already == nil ? $0 : "[now | \($0)]" }
        let started = Mutex<[Int: Result<ErlangNode, Error>]>([:])
        DispatchQueue.concurrentPerform(iterations: count) { i in
            let result = Result {
                try ErlangNode(name: names[i], cookie: cookie, codePaths: [code],
                               setup: "demo_hang:start(\(scenario), \"\(truthFiles[i])\", \(nodeOptions[i]))")
            }
            started.withLock { $0[i] = result }
        }
        let results = started.withLock { $0 }
        let nodes = names.indices.compactMap { try? results[$0]?.get() }
        defer { for node in nodes { node.stop() } }
        try #require(nodes.count == count, "not every node started: \(results.values)")
        if let already { Thread.sleep(forTimeInterval: already) }
        let capture = directory.appendingPathComponent("capture.btrace").path
        let recorded = try Shell.runCapturing(cli, ["record"] + nodes.flatMap { ["--node", $0.nodeName] }
                                              + ["--cookie", cookie, "demo_hang", "--events", "calls,send,receive,procs",
                                                 "--sample", "100ms", "--duration", "\(seconds)s", "-o", capture,
                                                 "--quiet"], timeout: 90)
        #expect(recorded.status == 0, "record: \(recorded.stderr)")
        let truths = truthFiles.map { LiveHang.parseTruth((try? String(contentsOfFile: $0, encoding: .utf8)) ?? "") }
        let json = try Shell.run(cli, ["hang", "--json", capture])
        let report = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] ?? [:]
        let meta = try CaptureReader(opening: capture).meta
        let offsets = Dictionary(meta.nodes.map { ($0.name, $0.clockOffsetNs ?? 0) }, uniquingKeysWith: { a, _ in a })
        return Recording(directory: directory, capture: capture, nodeNames: nodeNames, truths: truths, report: report,
                         offsets: offsets)
    }

    /// Writes `events` (re-sorted by time, ties in their order) as a capture with `reader`'s
    /// dictionaries and meta.
    static func write(_ events: [(event: TraceEvent, payload: [UInt8])], to path: String, like reader: CaptureReader) throws {
        let sorted = events.enumerated().sorted { ($0.element.event.time, $0.offset) < ($1.element.event.time, $1.offset) }
        let writer = try CaptureWriter(creating: path, meta: reader.meta)
        var batch = EventBatch()
        for (_, item) in sorted {
            batch.append(item.event, payload: item.payload)
            if batch.count >= 4096 {
                try writer.append(batch, dictionaries: reader.dictionaries)
                batch.removeAll()
            }
        }
        if batch.count > 0 { try writer.append(batch, dictionaries: reader.dictionaries) }
        try writer.close(stopReason: "test")
    }
}

@Suite("hang on live multi_call, erpc and sampled callers", .serialized)
struct LiveCallProtocolTests {
    /// Node 0 calls, node 1 answers, node 2's server never does.
    static func multiCallOptions(_ names: [String], _ files: [String]) -> [String] {
        ["[{mc, caller}, {peers, ['\(names[1])', '\(names[2])']}]", "[{mc, answer}]", "[{mc, stuck}]"]
    }

    @Test("a multi_call stuck on one server: the server is the root; each caller names it, its node and pid")
    func stuckMultiCall() throws {
        let run = try LiveCluster.record("multi_call", nodes: 3, options: Self.multiCallOptions)
        defer { try? FileManager.default.removeItem(at: run.directory) }
        let stuckServer = try #require(run.pid(2, "mc")), answering = try #require(run.pid(1, "mc"))
        let callerInf = try #require(run.pid(0, "caller_inf")), callerMM = try #require(run.pid(0, "caller_mm"))
        let middleman = try #require(run.pid(0, "middleman"))
        // The root: the server that does not answer, on its node, inside its handle_call.
        let top = try #require(run.suspects.first, "\(run.verdict)")
        #expect(LiveHang.reason(top) == "not_answering", "\(run.verdict)")
        #expect(LiveHang.pid(top) == stuckServer && top["node"] as? String == run.nodeNames[2], "\(top)")
        let doing = (LiveHang.evidence(top)["doing"] as? [String] ?? []).joined(separator: "; ")
        #expect(doing.contains("demo_hang:handle_call/3"), "\(doing)")
        // The infinity caller: stuck in multi_call, waiting for that one server (1 of 2 answered).
        let inf = try #require(run.suspect(callerInf, node: 0), "\(run.verdict)")
        #expect(LiveHang.reason(inf) == "stuck_call")
        let evidence = LiveHang.evidence(inf)
        #expect(evidence["call"] as? String == "multi_call")
        #expect(evidence["asked"] as? Int == 2)
        let unanswered = evidence["unanswered"] as? [[String: Any]] ?? []
        #expect(unanswered.count == 1, "\(unanswered)")
        #expect(unanswered.first?["node"] as? String == run.nodeNames[2])
        #expect(unanswered.first?["pid"] as? String == stuckServer)
        #expect(unanswered.first?["server"] as? String == "{mc,'\(run.nodeNames[2])'}")
        #expect(((unanswered.first?["doing"] as? [String]) ?? []).contains { $0.contains("handle_call") })
        #expect(evidence["request"] as? String == "{ask,1}")
        let waited = try #require(evidence["waiting_s"] as? Double)
        let expected = try #require(run.secondsToEnd(0, "t_call"))
        #expect(abs(waited - expected) < 0.15, "measured \(waited) s, workload \(expected) s")
        #expect((inf["summary"] as? String ?? "").contains("1 of 2 servers answered"), "\(inf)")
        // The caller with a timeout waits on its middleman, which waits on the server.
        let mm = try #require(run.suspect(callerMM, node: 0), "\(run.verdict)")
        #expect(LiveHang.evidence(mm)["call"] as? String == "multi_call_middleman")
        let chains = run.report["chains"] as? [[String]] ?? []
        #expect(chains.contains { $0.count == 3 && $0[1].hasPrefix(middleman) && $0[2].hasPrefix(stuckServer) }
                || (LiveHang.evidence(mm)["chain"] as? [String] ?? []).count == 3, "\(chains) \(mm)")
        // The answering server is no suspect; the finished multi_call and its answers are counted.
        #expect(run.suspect(answering, node: 1) == nil, "\(run.verdict)")
        let endings = run.report["multi_call_endings"] as? [String: Int] ?? [:]
        let done = try #require(run.truths[0]["done_replies"].flatMap { Int($0) })
        #expect(done == 1)
        // The finished one's reply and node 1's replies to both stuck ones (global may add more).
        #expect((endings["reply"] ?? 0) >= done + 2, "\(endings)")
        #expect(run.verdict.contains(stuckServer) && run.verdict.contains("has not answered"), "\(run.verdict)")
    }

    @Test("erpc: a call that never returns is reported with its callee, node and request; a finished one is not")
    func stuckErpc() throws {
        let run = try LiveCluster.record("erpc", nodes: 2) { names, files in
            ["[{peer, '\(names[1])'}, {peer_truth, \"\(files[1]).callee\"}]", "[]"]
        }
        defer { try? FileManager.default.removeItem(at: run.directory) }
        let caller = try #require(run.pid(0, "caller")), callee = try #require(run.calleePid())
        #expect(run.truths[0]["finished"] == run.nodeNames[1])
        let stuck = try #require(run.suspect(caller, node: 0), "\(run.verdict)")
        #expect(LiveHang.reason(stuck) == "stuck_call")
        let evidence = LiveHang.evidence(stuck)
        #expect(evidence["call"] as? String == "erpc")
        #expect(evidence["waiting_for"] as? String == callee)
        #expect(evidence["callee_node"] as? String == run.nodeNames[1])
        #expect(evidence["request"] as? String == "demo_hang:block(\"\(run.directory.path)/truth-1.txt.callee\")",
                "\(evidence)")
        let waited = try #require(evidence["waiting_s"] as? Double)
        let expected = try #require(run.secondsToEnd(0, "t_call"))
        #expect(abs(waited - expected) < 0.15, "measured \(waited) s, workload \(expected) s")
        // The callee is the root: what it does now, from the trace and the samples on its node.
        let root = try #require(run.suspect(callee, node: 1), "\(run.verdict)")
        #expect(LiveHang.reason(root) == "not_answering")
        let doing = (LiveHang.evidence(root)["doing"] as? [String] ?? []).joined(separator: "; ")
        #expect(doing.contains("demo_hang:block/1"), "\(doing)")
        // The finished call (and the rpc:calls of wait_for) ended with their reply.
        let endings = run.report["erpc_endings"] as? [String: Int] ?? [:]
        #expect((endings["reply"] ?? 0) >= 1, "\(endings)")
        #expect(run.suspects.count == 2, "\(run.suspects.map { LiveHang.reason($0) + " " + LiveHang.pid($0) })")
    }

    @Test("erpc whose caller's last call is stamped after the spawn it caused (another node's clock): still stuck, with its request")
    func erpcAcrossSkewedClocks() throws {
        let run = try LiveCluster.record("erpc", nodes: 2) { names, files in
            ["[{peer, '\(names[1])'}, {peer_truth, \"\(files[1]).callee\"}]", "[]"]
        }
        defer { try? FileManager.default.removeItem(at: run.directory) }
        let callee = try #require(run.calleePid())
        // The recording as two nodes whose offset is a few milliseconds off (on a loaded machine the
        // round trips that measure it take that long, and no message went between these nodes): the
        // callee's node stamped just before the caller's last traced call, which came before erpc:call.
        let reader = try CaptureReader(opening: run.capture)
        let d = reader.dictionaries
        var events: [(event: TraceEvent, payload: [UInt8])] = []
        try reader.forEach { event, payload in
            events.append((event, Array(payload)))
            return true
        }
        let spawned = try #require(events.first { $0.event.kind == .spawned && d.processText($0.event.pid) == callee }?.event)
        // The caller's last traced call before the spawn. On a loaded machine the recording's own
        // offset can already stamp the spawn before every call of the caller: then its first call,
        // which came before erpc:call too (its later ones can be inside it). The shift below puts the
        // spawn just before that call either way.
        let callerCalls = events.filter { $0.event.pid == spawned.peer && $0.event.kind == .call }.map(\.event)
        let lastCall = try #require(callerCalls.last { $0.time < spawned.time } ?? callerCalls.first)
        let shift = spawned.time - lastCall.time + 1_000_000
        let calleeNode = spawned.node
        for i in events.indices where events[i].event.node == calleeNode { events[i].event.time -= shift }
        let skewed = run.directory.appendingPathComponent("skewed.btrace").path
        try LiveCluster.write(events, to: skewed, like: reader)
        let json = try Shell.run(try #require(BuiltProducts.executable("beamtrace")), ["hang", "--json", skewed])
        let report = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] ?? [:]
        let suspects = report["suspects"] as? [[String: Any]] ?? []
        let caller = try #require(run.pid(0, "caller"))
        let stuck = try #require(suspects.first { LiveHang.pid($0) == caller }, "\(report["verdict"] ?? "")")
        let evidence = LiveHang.evidence(stuck)
        #expect(evidence["call"] as? String == "erpc")
        #expect(evidence["waiting_for"] as? String == callee)
        #expect(evidence["seen_in_samples"] as? Bool != true, "\(evidence)")
        #expect(evidence["request"] as? String == "demo_hang:block(\"\(run.directory.path)/truth-1.txt.callee\")",
                "\(evidence)")
        // Waiting since its spawn (moved `shift` earlier), not since the first sample.
        let waited = try #require(evidence["waiting_s"] as? Double)
        let expected = try #require(run.secondsToEnd(0, "t_call"))
        #expect(abs(waited - expected) < 0.15, "measured \(waited) s, workload \(expected) s")
        // The call is not counted as ended by the caller's activity.
        let endings = report["erpc_endings"] as? [String: Int] ?? [:]
        #expect(endings["active"] == nil, "\(endings)")
    }

    @Test("erpc under way before the recording: seen in samples, with the callee's pid, node and what it does")
    func sampledErpc() throws {
        let run = try LiveCluster.record("erpc", nodes: 2, already: 0.8) { names, files in
            ["[{peer, '\(names[1])'}, {peer_truth, \"\(files[1]).callee\"}]", "[]"]
        }
        defer { try? FileManager.default.removeItem(at: run.directory) }
        let caller = try #require(run.pid(0, "caller")), callee = try #require(run.calleePid())
        let stuck = try #require(run.suspect(caller, node: 0), "\(run.verdict)")
        let evidence = LiveHang.evidence(stuck)
        #expect(evidence["call"] as? String == "erpc")
        #expect(evidence["seen_in_samples"] as? Bool == true)
        #expect(evidence["waiting_for"] as? String == callee)
        #expect(evidence["callee_node"] as? String == run.nodeNames[1])
        let doing = (evidence["callee_doing"] as? [String] ?? []).joined(separator: "; ")
        #expect(doing.contains("blocked in a receive in demo_hang:block/1"), "\(doing)")
        let summary = stuck["summary"] as? String ?? ""
        #expect(summary.contains("at least") && summary.contains("first seen in a sample"), "\(summary)")
        // At least the capture, at most since the call began (the workload's clock).
        let waited = try #require(evidence["waiting_s"] as? Double)
        #expect(waited > 1.5 && waited <= (run.secondsToEnd(0, "t_call") ?? 0), "\(waited)")
    }

    @Test("a sampled caller monitoring several processes: its callee read from its stack, the chain to the server")
    func sampledCallerWithSeveralMonitors() throws {
        let run = try LiveHang.record("monitors", already: 0.7)
        defer { try? FileManager.default.removeItem(at: run.directory) }
        let client = try #require(run.truth["client"]), backend = try #require(run.truth["backend"])
        let top = try #require(run.suspects.first, "\(run.verdict)")
        #expect(LiveHang.reason(top) == "not_answering" && LiveHang.pid(top) == backend, "\(run.verdict)")
        let stuck = try #require(run.suspects.first { LiveHang.pid($0) == client }, "\(run.verdict)")
        #expect(LiveHang.evidence(stuck)["waiting_for"] as? String == backend)
        #expect(LiveHang.evidence(stuck)["seen_in_samples"] as? Bool == true)
        let chains = run.report["chains"] as? [[String]] ?? []
        #expect(chains.contains([client, "backend (\(backend))"]) || chains.contains([client, backend]), "\(chains)")
    }
}

@Suite("hang on a sampled caller whose stack does not name its callee", .serialized)
struct LiveAmbiguousCallerTests {
    @Test("a call through {via, global, Name} with several monitors: the candidates, and the one that is stuck")
    func viaCallWithSeveralMonitors() throws {
        let run = try LiveHang.record("monitors_via", already: 0.7)
        defer { try? FileManager.default.removeItem(at: run.directory) }
        let client = try #require(run.truth["client"]), backend = try #require(run.truth["backend"])
        let watched = (run.truth["watched"] ?? "").trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
            .split(separator: ",").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\" ")) }
        #expect(watched.count == 2)
        let stuck = try #require(run.suspects.first { LiveHang.pid($0) == client }, "\(run.verdict)")
        let evidence = LiveHang.evidence(stuck)
        // Its stack names none of the three it monitors: all three are candidates.
        let candidates = (evidence["candidates"] as? [String] ?? []).joined(separator: " ")
        #expect(([backend] + watched).allSatisfy { candidates.contains($0) }, "\(candidates)")
        #expect(evidence["waiting_for"] as? String != backend, "\(evidence)")
        // The one of them inside its handle_call is the callee the chain follows; the idle ones are not.
        #expect(evidence["callee_inferred"] as? String == backend, "\(evidence)")
        let top = try #require(run.suspects.first)
        #expect(LiveHang.reason(top) == "not_answering" && LiveHang.pid(top) == backend, "\(run.verdict)")
        #expect(!run.suspects.contains { watched.contains(LiveHang.pid($0)) }, "\(run.verdict)")
        #expect((stuck["summary"] as? String ?? "").contains("inferred"), "\(stuck)")
    }
}
