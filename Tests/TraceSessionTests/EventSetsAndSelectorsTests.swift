// Against real nodes: the `running` and `gc` event sets, and process selection by `new`,
// `existing` and a pid (with what that pid spawns, by set_on_spawn).
import BeamTerm
import CaptureStore
import Foundation
import Testing
import TestSupport
import TraceModel
import TraceSession

extension TracedNode {
    /// `erlang:trace_info(Pid, tracer)`: `{tracer, Tracer}`, `{tracer, []}` when untraced.
    func tracer(of pid: Term) async throws -> Term {
        try await rpc("erlang", "trace_info", [pid, .atom("tracer")])
    }

    func isTraced(_ pid: Term) async throws -> Bool {
        if case .tuple(let t) = try await tracer(of: pid), t.count == 2, case .pid = t[1] { return true }
        return false
    }

    /// Waits until `pid` has a tracer (for selections that leave `new` untouched).
    func waitUntilTraced(pid: Term, timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await isTraced(pid) { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestFailure("\(pid.erlangText()) on \(name) did not get traced")
    }
}

extension ReadCapture {
    /// The capture's id for a pid term; fails the test when the capture never saw it.
    func id(of pid: Term, sourceLocation: SourceLocation = #_sourceLocation) throws -> ProcessID {
        try #require(dictionaries.processID(for: pid), "\(pid.erlangText()) not in the capture",
                     sourceLocation: sourceLocation)
    }

    func events(_ kinds: Set<EventKind>, of process: ProcessID) -> [RecordedEvent] {
        events.filter { kinds.contains($0.event.kind) && $0.event.pid == process }
    }

    /// How many calls of `function` each process made.
    func callsByProcess(_ function: String) -> [ProcessID: Int] {
        var result: [ProcessID: Int] = [:]
        for e in events where e.event.kind == .call && dictionaries.functionText(e.event.mfa) == function {
            result[e.event.pid, default: 0] += 1
        }
        return result
    }
}

/// `<0.X.Y>` for a pid term, as `--procs` takes it.
func pidText(_ term: Term) throws -> String {
    guard case .pid(let pid) = term else { throw TestFailure("not a pid: \(term.erlangText())") }
    return "<0.\(pid.id).\(pid.serial)>"
}

@Suite struct EventSetTests {
    /// `--events running,gc` without patterns: a process that allocates and sleeps shows up with its
    /// in/out scheduling events and with paired GC start/end events.
    @Test func runningAndGarbageCollection() async throws {
        let node = try await TracedNode.start()
        defer { Task { await node.stop() } }
        let output = try temporaryCapturePath()
        var options = try recordingOptions([node], patterns: [], output: output)
        options.spec.events = try EventSet(parsing: "running,gc")
        options.limits.maxEvents = nil
        let rounds = 30
        let (summary, churner) = try await record(options, nodes: [node]) { () async throws -> Term in
            let pid = try await node.rpc("btwl", "churn", [.integer(Int64(rounds))])
            try await Task.sleep(for: .milliseconds(200))
            return pid
        }
        #expect(summary.stopReason == "test done")
        #expect(summary.drops == 0)
        try await expectClean(node)

        let capture = try ReadCapture(output)
        let churnerID = try capture.id(of: churner)
        // Each sleep schedules the process out and back in.
        let ins = capture.events([.in], of: churnerID).count
        let outs = capture.events([.out], of: churnerID).count
        #expect(ins >= rounds, "in events: \(ins)")
        #expect(outs >= rounds, "out events: \(outs)")
        #expect(abs(ins - outs) <= 1, "in \(ins), out \(outs)")
        // Each round allocates a 20,000-element list: collections, each one started and ended.
        let starts = capture.events([.gcMinorStart, .gcMajorStart], of: churnerID).count
        let ends = capture.events([.gcMinorEnd, .gcMajorEnd], of: churnerID).count
        #expect(starts >= rounds, "gc starts: \(starts)")
        #expect(starts == ends, "gc starts \(starts), ends \(ends)")
        // No calls were asked for.
        #expect(capture.count(.call) == 0)
    }
}

@Suite struct ProcessSelectorTests {
    /// `--procs new`: a process spawned during the session is traced, one from before is not.
    @Test func newTracesOnlyProcessesSpawnedDuringTheSession() async throws {
        let node = try await TracedNode.start()
        defer { Task { await node.stop() } }
        let old = try await node.rpc("btwl", "worker")
        let output = try temporaryCapturePath()
        var options = try recordingOptions([node], patterns: ["btwl:f/1"], output: output)
        options.spec.processes = [try ProcessSelector(parsing: "new")]
        let (summary, young) = try await record(options, nodes: [node]) { () async throws -> Term in
            let young = try await node.rpc("btwl", "worker")
            _ = try await node.rpc("btwl", "work", [old, .integer(100)])
            _ = try await node.rpc("btwl", "work", [young, .integer(200)])
            #expect(try await node.isTraced(young))
            #expect(try await !node.isTraced(old))
            return young
        }
        #expect(summary.stopReason == "test done")
        try await expectClean(node)
        let capture = try ReadCapture(output)
        let youngID = try capture.id(of: young)
        #expect(capture.callsByProcess("btwl:f/1") == [youngID: 200])
        #expect(capture.count(.returnFrom, function: "btwl:f/1") == 200)
    }

    /// `--procs existing`: the process from before the session is traced, one spawned during it is not.
    @Test func existingTracesOnlyProcessesFromBeforeTheSession() async throws {
        let node = try await TracedNode.start()
        defer { Task { await node.stop() } }
        let old = try await node.rpc("btwl", "worker")
        let output = try temporaryCapturePath()
        var options = try recordingOptions([node], patterns: ["btwl:f/1"], output: output)
        options.spec.processes = [try ProcessSelector(parsing: "existing")]
        let session = TraceSession(options: options)
        let running = Task { try await session.run() }
        let young: Term
        do {
            try await node.waitUntilTraced(pid: old)
            young = try await node.rpc("btwl", "worker")
            _ = try await node.rpc("btwl", "work", [old, .integer(100)])
            _ = try await node.rpc("btwl", "work", [young, .integer(200)])
            #expect(try await !node.isTraced(young))
            // Nothing is set for new processes.
            let newFlags = try await node.rpc("erlang", "trace_info", [.atom("new"), .atom("flags")])
            #expect(newFlags.erlangText() == "{flags,[]}")
        } catch {
            session.requestStop("test failed")
            _ = try? await running.value
            throw error
        }
        session.requestStop("test done")
        let summary = try await running.value
        #expect(summary.stopReason == "test done")
        try await expectClean(node)
        let capture = try ReadCapture(output)
        let oldID = try capture.id(of: old)
        #expect(capture.callsByProcess("btwl:f/1") == [oldID: 100])
        #expect(capture.count(.returnFrom, function: "btwl:f/1") == 100)
    }

    /// `beamtrace record --procs <0.X.Y>`: that process and the child it spawns (set_on_spawn) are
    /// traced; another process from before and one spawned during the session are not.
    @Test func pidTracesThatProcessAndWhatItSpawns() async throws {
        let node = try await TracedNode.start()
        defer { Task { await node.stop() } }
        let chosen = try await node.rpc("btwl", "worker")
        let other = try await node.rpc("btwl", "worker")
        let output = try temporaryCapturePath()
        let recorder = try RecorderProcess(["record", "--node", node.name, "--cookie", node.node.cookie, "btwl:f/1",
                                            "-o", output, "--quiet", "--duration", "60s", "--max-rate", "none",
                                            "--procs", try pidText(chosen)])
        try await node.waitUntilTraced(pid: chosen)
        let young = try await node.rpc("btwl", "worker")
        _ = try await node.rpc("btwl", "work", [chosen, .integer(100)])
        let child = try await node.rpc("btwl", "work_child", [chosen, .integer(50)])
        _ = try await node.rpc("btwl", "work", [other, .integer(70)])
        _ = try await node.rpc("btwl", "work", [young, .integer(30)])
        #expect(try await !node.isTraced(other))
        #expect(try await !node.isTraced(young))
        try await Task.sleep(for: .milliseconds(200))
        recorder.signal(SIGINT)
        let status = await recorder.wait(timeout: .seconds(30))
        #expect(status == 130, "\(recorder.output)")
        #expect(!recorder.output.contains(node.node.cookie))
        try await expectClean(node)
        let capture = try ReadCapture(output)
        let chosenID = try capture.id(of: chosen)
        let childID = try capture.id(of: child)
        #expect(capture.callsByProcess("btwl:f/1") == [chosenID: 100, childID: 50])
        #expect(capture.count(.returnFrom, function: "btwl:f/1") == 150)
    }
}
