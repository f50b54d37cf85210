// Damage delivered live, over the real distribution connection: a batch crafted on the traced node
// and sent to the recorder's pid (found through the agent's monitor of it) goes through the same
// ingest loop as the agent's batches. Without --strict the bad message is counted and skipped and
// every good event is kept; with --strict the session stops cleanly at it (exit 1), keeps every good
// event before it, and leaves no tracing on the node.
import BeamTerm
import CaptureStore
import Foundation
import Testing
import TestSupport
import TraceModel

@Suite(.serialized) struct LiveDamageTests {
    func arguments(_ node: TracedNode, _ output: String, _ extra: [String]) -> [String] {
        ["record", "--node", node.name, "--cookie", node.node.cookie, "btwl:f/1", "-o", output, "--quiet",
         "--duration", "60s", "--max-rate", "none"] + extra
    }

    /// The recorder's pid as the node knows it: the agent's controller monitors it.
    func recorderPid(_ node: TracedNode) async throws -> (agent: Term, recorder: Term) {
        let agent = try await node.rpc("erlang", "whereis", [.atom("beamtrace_agent")])
        guard case .pid = agent else { throw TestFailure("no agent on \(node.name): \(agent.erlangText())") }
        let monitors = try await node.rpc("erlang", "process_info", [agent, .atom("monitors")])
        guard case .tuple(let t) = monitors, t.count == 2 else { throw TestFailure("monitors: \(monitors.erlangText())") }
        for entry in t[1].listElements ?? [] {
            if case .tuple(let m) = entry, m.count == 2, case .pid(let pid) = m[1], pid.node.name != node.name {
                return (agent, m[1])
            }
        }
        throw TestFailure("the agent monitors no remote process: \(monitors.erlangText())")
    }

    /// Sends `{beamtrace_batch, none, 0, Binary}` from the node to the recorder, as the agent's tracer does.
    func send(_ binary: Term, to recorder: Term, from node: TracedNode) async throws {
        let sent = try await node.rpc("erlang", "send", [recorder, .tuple([.atom("beamtrace_batch"), .atom("none"),
                                                                           .integer(0), binary])])
        #expect(!sent.erlangText().hasPrefix("{badrpc"), "\(sent.erlangText())")
    }

    /// A call trace message of `pid` to btprobe:`name`/1 at node time `time`.
    func probe(_ pid: Term, _ name: String, _ time: Int64) -> Term {
        .tuple([.atom("trace_ts"), pid, .atom("call"), .tuple([.atom("btprobe"), .atom(name), .list([.integer(1)])]),
                .integer(time)])
    }

    func nodeTime(_ node: TracedNode) async throws -> Int64 {
        let reply = try await node.rpc("erlang", "monotonic_time", [.atom("nanosecond")])
        guard case .integer(let t) = reply else { throw TestFailure("no monotonic time: \(reply.erlangText())") }
        return t
    }

    /// `term_to_binary(Term)` on the node.
    func externalTerm(_ term: Term, on node: TracedNode) async throws -> [UInt8] {
        guard case .binary(let bytes) = try await node.rpc("erlang", "term_to_binary", [term]) else {
            throw TestFailure("term_to_binary failed")
        }
        return bytes
    }

    func count(_ capture: ReadCapture, _ function: String) -> Int { capture.count(.call, function: function) }

    /// A recording of `btwl:f/1` on a fresh node after 1,000 traced calls, with what damage needs: the
    /// agent's pid, the recorder's pid and the node's time. The caller stops the node.
    struct Session {
        let node: TracedNode, output: String, recorder: RecorderProcess, agent: Term, pid: Term, time: Int64
    }

    func startSession(_ extra: [String]) async throws -> Session {
        let node = try await TracedNode.start()
        do {
            let output = try temporaryCapturePath()
            let recorder = try RecorderProcess(arguments(node, output, extra))
            try await node.waitUntilTracing()
            _ = try await node.rpc("btwl", "calls", [.integer(1000)])
            try await Task.sleep(for: .seconds(1))
            let (agent, pid) = try await recorderPid(node)
            return Session(node: node, output: output, recorder: recorder, agent: agent, pid: pid,
                           time: try await nodeTime(node))
        } catch {
            await node.stop()
            throw error
        }
    }

    /// One message that is no trace message between two good ones (oldest first, as the agent sends).
    func batchWithABadMessage(_ s: Session) async throws -> [UInt8] {
        let bad = Term.tuple([.atom("trace_ts"), s.agent, .atom("no_such_tag"), .atom("x"), .integer(s.time + 1)])
        return try await externalTerm(.list([probe(s.agent, "before", s.time), bad, probe(s.agent, "later", s.time + 2)]),
                                      on: s.node)
    }

    @Test func badBatchesAreCountedAndSkippedAndEveryGoodEventIsKept() async throws {
        let session = try await startSession(["--json"])
        let (node, output, recorder, agent, pid, t) =
            (session.node, session.output, session.recorder, session.agent, session.pid, session.time)
        defer { Task { await node.stop() } }
        try await send(.binary(try await batchWithABadMessage(session)), to: pid, from: node)
        // A batch cut short: the oldest element is readable, the newest is lost with the damage.
        let whole = try await externalTerm(.list([probe(agent, "oldest", t + 3), probe(agent, "newest", t + 3)]), on: node)
        try await send(.binary(Array(whole.dropLast(6))), to: pid, from: node)
        _ = try await node.rpc("btwl", "calls", [.integer(500)])
        try await Task.sleep(for: .seconds(1))
        recorder.signal(SIGINT)
        let status = await recorder.wait(timeout: .seconds(30))
        #expect(status == 130, "\(recorder.output)")
        try await expectClean(node)

        let capture = try ReadCapture(output)
        #expect(count(capture, "btwl:f/1") == 1500)
        #expect(count(capture, "btprobe:before/1") == 1)
        #expect(count(capture, "btprobe:later/1") == 1)
        #expect(count(capture, "btprobe:oldest/1") == 1)
        #expect(count(capture, "btprobe:newest/1") == 0)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(recorder.standardOutput.utf8)) as? [String: Any],
                                "\(recorder.output)")
        #expect(json["messages_skipped"] as? Int == 1, "\(recorder.output)")
        let skipped = (json["skipped"] as? [[String: Any]]) ?? []
        #expect(skipped.count == 2, "\(recorder.output)")
        #expect(skipped.allSatisfy { $0["node"] as? String == node.name && ($0["offset"] as? Int ?? 0) > 0 })
        #expect((skipped.first?["why"] as? String)?.contains("no_such_tag") == true, "\(skipped)")
        #expect((skipped.last?["why"] as? String)?.contains("not a proper list") == true, "\(skipped)")
        #expect(json["failure"] is NSNull, "\(recorder.output)")
    }

    @Test func strictStopsCleanlyAtTheFirstBadMessageKeepingEverythingBefore() async throws {
        let session = try await startSession(["--strict"])
        let (node, output, recorder) = (session.node, session.output, session.recorder)
        defer { Task { await node.stop() } }
        try await send(.binary(try await batchWithABadMessage(session)), to: session.pid, from: node)
        // Traced after the bad batch: not taken.
        _ = try await node.rpc("btwl", "calls", [.integer(500)])
        let status = await recorder.wait(timeout: .seconds(40))
        #expect(status == 1, "\(recorder.output)")
        #expect(recorder.output.contains("--strict"), "\(recorder.output)")
        #expect(recorder.output.contains("no_such_tag"), "\(recorder.output)")
        #expect(recorder.output.contains("holds the"), "says what was kept: \(recorder.output)")
        #expect(recorder.output.contains("no tracing was left"), "\(recorder.output)")
        try await expectClean(node)

        let capture = try ReadCapture(output)
        #expect(count(capture, "btwl:f/1") == 1000)
        #expect(count(capture, "btprobe:before/1") == 1)
        #expect(count(capture, "btprobe:later/1") == 0)
        #expect(capture.reader.meta.stopReason?.contains("--strict") == true, "\(capture.reader.meta.stopReason ?? "-")")
        #expect(capture.reader.problems.isEmpty, "\(capture.reader.problems)")
    }
}
