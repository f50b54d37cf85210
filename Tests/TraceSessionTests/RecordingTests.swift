// Recording real nodes in-process through `TraceSession`: exact call counts, latencies against the
// workload's own clock, queue growth from samples, guards compiled on the node, two nodes at once,
// a node dying mid-session, a trace storm under a rate limit, and clean nodes after every one.
import BeamDistribution
import BeamTerm
import CaptureStore
import Foundation
import Testing
import TestSupport
import TraceModel
import TraceSession

@Suite struct RecordingTests {
    @Test func exactCallsLatenciesAndQueueGrowthThenClean() async throws {
        let node = try await TracedNode.start()
        defer { Task { await node.stop() } }
        let output = try temporaryCapturePath()
        var options = try recordingOptions([node], patterns: ["btwl:f/1", "btwl:handle_call/3",
                                                              "btwl:g(A) when A > 10 -> return"],
                                           output: output)
        options.limits.maxEvents = nil
        let n = 5000
        let sleeps: [Int64] = [20, 5, 40, 10, 30]
        let (summary, (measured, consumer)) = try await record(options, nodes: [node]) { () async throws -> ([Int64], Term) in
            _ = try await node.rpc("btwl", "calls", [.integer(Int64(n))])
            _ = try await node.rpc("btwl", "guarded", [.integer(20)])
            let times = try await node.rpc("btwl", "slow", [.list(sleeps.map { .integer($0) })])
            let consumer = try await node.rpc("btwl", "flood", [.integer(400), .integer(1), .integer(4)])
            try await Task.sleep(for: .milliseconds(300))
            return ((times.listElements ?? []).compactMap { term -> Int64? in
                if case .integer(let v) = term { return v }
                if case .bigInteger(let b) = term { return b.int64Value }
                return nil
            }, consumer)
        }
        #expect(summary.stopReason == "test done")
        #expect(summary.drops == 0)
        #expect(summary.nodes.first?.cleanedUp == true)
        try await expectClean(node)

        let capture = try ReadCapture(output)
        #expect(capture.count(.call, function: "btwl:f/1") == n)
        #expect(capture.count(.returnFrom, function: "btwl:f/1") == n)
        // The guard (A > 10) was compiled on the node: exactly g(11)..g(20).
        #expect(capture.count(.call, function: "btwl:g/1") == 10)
        #expect(capture.count(.returnFrom, function: "btwl:g/1") == 10)

        // Latencies: each handle_call span lies within what the caller measured, and above the sleep.
        let handle = capture.events.filter { capture.dictionaries.functionText($0.event.mfa) == "btwl:handle_call/3" }
        var spans: [Int64] = []
        var open: Int64?
        for e in handle {
            if e.event.kind == .call { open = e.event.time }
            if e.event.kind == .returnFrom, let start = open { spans.append(e.event.time - start); open = nil }
        }
        #expect(spans.count == sleeps.count)
        #expect(measured.count == sleeps.count)
        for (i, span) in spans.enumerated() where i < measured.count {
            #expect(span >= sleeps[i] * 1_000_000, "span \(span) ns for a \(sleeps[i]) ms sleep")
            #expect(span <= measured[i], "span \(span) ns longer than the caller's own \(measured[i]) ns")
        }

        // Samples go into the trace batches at their time (CaptureSink holds them back): every payload
        // still reads back whole, samples as their info maps, f/1's returns as X + 1 of its calls.
        let samples = capture.events.filter { $0.event.kind == .sample }
        #expect(samples.count > 2)
        #expect(samples.allSatisfy { if case .map? = Payload.terms($0.payload, flags: $0.event.flags)?.first { true } else { false } })
        let returns = capture.events.filter {
            $0.event.kind == .returnFrom && capture.dictionaries.functionText($0.event.mfa) == "btwl:f/1"
        }.compactMap { event -> Int64? in
            if case .integer(let v)? = Payload.terms(event.payload, flags: event.event.flags)?.first { return v }
            return nil
        }
        #expect(Set(returns) == Set((1...Int64(n)).map { $0 + 1 }), "\(returns.count) return values read back")

        // The flooded consumer's queue grows in the samples.
        let consumerID = capture.dictionaries.processID(for: consumer)
        let queue = capture.events.filter { $0.event.kind == .sample && $0.event.pid == consumerID && consumerID != nil }
            .map(\.event.value)
        let peak = queue.max() ?? 0
        #expect(peak > 100, "queue samples: \(queue)")
        if let peakIndex = queue.firstIndex(of: peak) {
            let rising = queue[..<peakIndex]
            #expect(rising.count >= 3)
            // Growth, not a strict staircase: on a loaded machine the consumer may catch up a little
            // between two samples.
            let steps = Array(zip(rising, rising.dropFirst()))
            let up = steps.filter { $0.0 <= $0.1 }.count
            #expect(Double(up) >= Double(steps.count) * 2 / 3, "queue samples: \(queue)")
            #expect((rising.first ?? 0) < peak, "queue samples: \(queue)")
        }

        // Session facts: node, OTP release, clock offset, start and stop markers, permissions.
        #expect(capture.reader.meta.nodes.first?.name == node.name)
        #expect(capture.reader.meta.nodes.first?.otpRelease == "25" || capture.reader.meta.nodes.first?.otpRelease != nil)
        #expect(capture.reader.meta.nodes.first?.clockOffsetNs != nil)
        #expect(capture.reader.meta.stopReason == "test done")
        #expect(capture.markers(code: 1).count == 1)
        #expect(capture.markers(code: 2).count == 1)
        let files = try FileManager.default.contentsOfDirectory(atPath: output)
        for file in files {
            let attributes = try FileManager.default.attributesOfItem(atPath: output + "/" + file)
            #expect((attributes[.posixPermissions] as? Int) == 0o600, "\(file)")
        }
    }

    @Test func twoNodesOneCaptureAndOneNodeDying() async throws {
        let cookie = Erlang.randomName("c")
        async let a = TracedNode.start(cookie: cookie)
        async let b = TracedNode.start(cookie: cookie)
        let (nodeA, nodeB) = try await (a, b)
        defer { Task { await nodeA.stop(); await nodeB.stop() } }
        let output = try temporaryCapturePath()
        let options = try recordingOptions([nodeA, nodeB], patterns: ["btwl:f/1"], output: output)
        let (summary, _) = try await record(options, nodes: [nodeA, nodeB]) { () async throws -> Int in
            _ = try await nodeA.rpc("btwl", "calls", [.integer(300)])
            _ = try await nodeB.rpc("btwl", "calls", [.integer(200)])
            try await Task.sleep(for: .milliseconds(200))
            nodeB.node.kill9()
            try await Task.sleep(for: .milliseconds(500))
            // A continues after B is gone.
            _ = try await nodeA.rpc("btwl", "calls", [.integer(100)])
            try await Task.sleep(for: .milliseconds(300))
            return 0
        }
        #expect(summary.stopReason == "test done")
        let summaryA = summary.nodes.first { $0.name == nodeA.name }
        let summaryB = summary.nodes.first { $0.name == nodeB.name }
        #expect(summaryA?.cleanedUp == true)
        #expect(summaryB?.endReason.contains("connection lost") == true)
        try await expectClean(nodeA)

        let capture = try ReadCapture(output)
        #expect(capture.count(.call, function: "btwl:f/1", node: nodeA.name) == 400)
        #expect(capture.count(.call, function: "btwl:f/1", node: nodeB.name) == 200)
        #expect(capture.reader.meta.nodes.count == 2)
        #expect(capture.reader.meta.nodes.allSatisfy { $0.clockOffsetNs != nil })
        // One clock: every event lies between the start and stop markers, in time order.
        let start = capture.events.first { $0.event.kind == .marker && $0.event.value == 1 }?.event.time ?? .max
        let stop = capture.events.last { $0.event.kind == .marker && $0.event.value == 2 }?.event.time ?? .min
        let calls = capture.events.filter { $0.event.kind == .call }
        let outside = calls.filter { !($0.event.time > start && $0.event.time < stop) }
        let firstCall = calls.map(\.event.time).min() ?? 0, lastCall = calls.map(\.event.time).max() ?? 0
        #expect(outside.isEmpty, """
            \(outside.count) call(s) outside the session: first \(outside.first.map { e in
                "\(capture.dictionaries.nodeName(e.event.node)) at \(e.event.time)" } ?? "-"); \
            start marker \(start) (first call \(firstCall - start) ns after it), stop marker \(stop) \
            (last call \(stop - lastCall) ns before it); offsets \(capture.reader.meta.nodes.map {
                "\($0.name) \($0.clockOffsetNs ?? 0)" }); session \(capture.reader.meta.session ?? "")
            """)
        #expect(zip(capture.events, capture.events.dropFirst()).allSatisfy { $0.0.event.time <= $0.1.event.time })
        // The node-down note is there.
        #expect(capture.markers(code: 0).contains { $0.erlangText().contains("node_down") })
    }

    /// Processes calling all along on two nodes: the first events come as soon as a node's agent sets
    /// its flags, before the other node's agent has answered, and the last while the agents switch off
    /// after the stop was decided. The start marker still precedes, and the stop marker follows, every
    /// event (the old start marker, stamped when the last agent answered, came after the first calls;
    /// the stop marker, stamped when the stop was decided, before the last ones).
    @Test func sessionMarkersBracketEveryEventOfBusyNodes() async throws {
        let cookie = Erlang.randomName("c")
        async let a = TracedNode.start(cookie: cookie)
        async let b = TracedNode.start(cookie: cookie)
        let (nodeA, nodeB) = try await (a, b)
        defer { Task { await nodeA.stop(); await nodeB.stop() } }
        var spinners: [(TracedNode, Term)] = []
        for node in [nodeA, nodeB] {
            for _ in 0..<8 { spinners.append((node, try await node.rpc("btwl", "spin", [.integer(1)]))) }
        }
        let output = try temporaryCapturePath()
        let options = try recordingOptions([nodeA, nodeB], patterns: ["btwl:f/1"], output: output)
        let (summary, _) = try await record(options, nodes: [nodeA, nodeB]) { () async throws -> Int in
            try await Task.sleep(for: .milliseconds(400))
            return 0
        }
        for (node, spinner) in spinners {
            if case .pid(let pid) = spinner { try node.control.send(to: .pid(pid), message: .atom("stop")) }
        }
        #expect(summary.stopReason == "test done")
        try await expectClean(nodeA)
        try await expectClean(nodeB)

        let capture = try ReadCapture(output)
        let starts = capture.events.filter { $0.event.kind == .marker && $0.event.value == 1 }.map(\.event.time)
        let stops = capture.events.filter { $0.event.kind == .marker && $0.event.value == 2 }.map(\.event.time)
        #expect(starts.count == 1 && stops.count == 1)
        let start = starts.first ?? .max, stop = stops.first ?? .min
        let others = capture.events.filter { !($0.event.kind == .marker && ($0.event.value == 1 || $0.event.value == 2)) }
        let calls = others.filter { $0.event.kind == .call }
        for node in [nodeA, nodeB] {
            #expect(calls.contains { capture.dictionaries.nodeName($0.event.node) == node.name }, "no call from \(node.name)")
        }
        let before = others.filter { $0.event.time <= start }, after = others.filter { $0.event.time >= stop }
        #expect(before.isEmpty, """
            \(before.count) event(s) at or before the start marker, the first \(before.first.map { start - $0.event.time } ?? 0) ns \
            before it (\(before.first.map { "\($0.event.kind) on \(capture.dictionaries.nodeName($0.event.node))" } ?? ""))
            """)
        #expect(after.isEmpty, """
            \(after.count) event(s) at or after the stop marker, the last \(after.last.map { $0.event.time - stop } ?? 0) ns \
            after it (\(after.last.map { "\($0.event.kind) on \(capture.dictionaries.nodeName($0.event.node))" } ?? ""))
            """)
    }

    @Test func stormUnderRateLimitDropsExactlyAndStaysBounded() async throws {
        let node = try await TracedNode.start()
        defer { Task { await node.stop() } }
        let output = try temporaryCapturePath()
        var options = try recordingOptions([node], patterns: ["btwl:f/1"], output: output)
        options.limits.maxRate = 20_000
        options.limits.maxEvents = nil
        let baseline = try await node.rpc("erlang", "memory", [.atom("total")]).intValueForTest ?? 0
        let (summary, (calls, peak)) = try await record(options, nodes: [node]) { () async throws -> (Int64, Int64) in
            let done = Flag()
            let poller = Task { () -> Int64 in
                var peak: Int64 = 0
                while !done.isSet {
                    try? await Task.sleep(for: .milliseconds(50))
                    let memory = (try? await node.rpc("erlang", "memory", [.atom("total")]))?.intValueForTest ?? 0
                    peak = max(peak, memory)
                }
                return peak
            }
            let calls = try await node.rpc("btwl", "storm", [.integer(4), .integer(100_000)]).intValueForTest ?? 0
            done.set()
            let peak = await poller.value
            try await Task.sleep(for: .milliseconds(300))
            return (calls, peak)
        }
        #expect(calls == 400_000)
        #expect(summary.stopReason == "test done")
        let capture = try ReadCapture(output)
        let traced = Int64(capture.count(.call) + capture.count(.returnFrom))
        // Every call and every return is either in the capture or counted as dropped.
        #expect(traced + capture.dropped == 2 * calls, "traced \(traced) dropped \(capture.dropped)")
        #expect(capture.dropped > 0)
        #expect(summary.nodes.first?.dropsByReason.isEmpty == false)
        // The node's memory stayed bounded (the agent dropped instead of queueing).
        #expect(peak - baseline < 200 << 20, "memory grew by \(peak - baseline) bytes")
        try await expectClean(node)
    }

    @Test func errorsAreClearAndLeaveNothing() async throws {
        let node = try await TracedNode.start()
        defer { Task { await node.stop() } }
        let output = try temporaryCapturePath()

        // A pattern that matches no function.
        let options = try recordingOptions([node], patterns: ["btwl:nosuch/1"], output: output)
        await #expect {
            _ = try await TraceSession(options: options).run()
        } throws: { error in
            "\(error)".contains("matches no function")
        }
        #expect(!FileManager.default.fileExists(atPath: output))
        try await expectClean(node)

        // A module that does not exist.
        let noModule = try recordingOptions([node], patterns: ["nosuchmodule:f/1"], output: output)
        await #expect {
            _ = try await TraceSession(options: noModule).run()
        } throws: { error in
            "\(error)".contains("not available on the node")
        }
        try await expectClean(node)

        // A guard that does not compile on the node.
        let badGuard = try recordingOptions([node], patterns: ["btwl:f(A) when A >>> 1"], output: output)
        await #expect(throws: SessionError.self) { _ = try await TraceSession(options: badGuard).run() }
        try await expectClean(node)

        // A wrong cookie.
        var wrongCookie = try recordingOptions([node], patterns: ["btwl:f/1"], output: output)
        wrongCookie.cookie = Cookie("not-the-cookie")
        await #expect {
            _ = try await TraceSession(options: wrongCookie).run()
        } throws: { error in
            "\(error)".lowercased().contains("cookie")
        }

        // An unknown node.
        let unknown = try recordingOptions([node], patterns: ["btwl:f/1"], output: output)
        var unknownNode = unknown
        unknownNode.nodes = ["nosuchnode\(Int.random(in: 0..<1_000_000))@\(Erlang.shortHostName)"]
        await #expect(throws: SessionError.self) { _ = try await TraceSession(options: unknownNode).run() }
        try await expectClean(node)
    }
}

extension Term {
    var intValueForTest: Int64? {
        switch self {
        case .integer(let v): return v
        case .bigInteger(let b): return b.int64Value
        default: return nil
        }
    }
}

extension TraceDictionaries {
    /// The dictionary id of a pid term.
    func processID(for term: Term) -> ProcessID? {
        guard case .pid(let pid) = term, let node = nodeID(named: pid.node.name) else { return nil }
        return processID(.pid(node: node, id: pid.id, serial: pid.serial, creation: pid.creation))
    }
}

final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}

@Suite struct UntilQueueTests {
    @Test func stopsAfterAQueueExceedsTheThreshold() async throws {
        let node = try await TracedNode.start()
        defer { Task { await node.stop() } }
        let output = try temporaryCapturePath()
        var options = try recordingOptions([node], patterns: ["btwl:f/1"], output: output)
        options.limits.untilQueue = 50
        options.limits.after = .milliseconds(300)
        options.limits.ringBytes = 64 << 20
        let session = TraceSession(options: options)
        let running = Task { try await session.run() }
        try await node.waitUntilTracing()
        _ = try await node.rpc("btwl", "flood", [.integer(300), .integer(1), .integer(5)])
        // No stop request: the session ends by itself.
        let summary = try await running.value
        #expect(summary.stopReason.contains("until-queue"), "\(summary.stopReason)")
        try await expectClean(node)
        let capture = try ReadCapture(output)
        #expect(capture.markers(code: 0).contains { $0.erlangText().contains("until_queue") })
        #expect(capture.events.contains { $0.event.kind == .sample && $0.event.value > 50 })
    }
}

@Suite struct ProcessSelectionTests {
    /// Only the named process is traced (with sends and receives); system_monitor events arrive and the
    /// previous system_monitor owner is restored afterwards.
    @Test func registeredNameMessagesAndSystemMonitor() async throws {
        let node = try await TracedNode.start()
        defer { Task { await node.stop() } }
        _ = try await node.rpc("btwl", "named_start")
        let owner = try await node.rpc("erlang", "spawn", [.atom("timer"), .atom("sleep"), .list([.atom("infinity")])])
        let previous = Term.list([.tuple([.atom("long_gc"), .integer(5000)])])
        _ = try await node.rpc("erlang", "system_monitor", [owner, previous])
        let output = try temporaryCapturePath()
        var options = try recordingOptions([node], patterns: ["btwl:f/1"], output: output)
        options.spec.processes = [.name("btwl_named")]
        options.spec.events = [.calls, .send, .receive, .procs]
        options.spec.strictTimestamps = true
        options.largeHeapWords = 200_000
        let session = TraceSession(options: options)
        let running = Task { try await session.run() }
        try await node.waitUntilTraced(name: "btwl_named")
        _ = try await node.rpc("btwl", "named_go", [.integer(300)])
        _ = try await node.rpc("btwl", "calls", [.integer(200)])  // the rpc worker: not traced
        _ = try await node.rpc("btwl", "big_heap", [.integer(400_000)])
        try await Task.sleep(for: .milliseconds(300))
        session.requestStop("test done")
        let summary = try await running.value
        #expect(summary.nodes.first?.cleanedUp == true)
        let restored = try await node.rpc("erlang", "system_monitor")
        #expect(restored.erlangText() == Term.tuple([owner, previous]).erlangText())
        _ = try await node.rpc("erlang", "system_monitor", [.atom("undefined")])
        try await expectClean(node)

        let capture = try ReadCapture(output)
        #expect(capture.count(.call, function: "btwl:f/1") == 300)
        #expect(capture.count(.send) >= 1)
        #expect(capture.count(.receive) >= 1)
        let monitors = capture.events.filter { $0.event.kind == .monitor }
        let largeHeap = monitors.first { Payload.terms($0.payload, flags: $0.event.flags)?.first?.erlangText()
            .hasPrefix("{large_heap") == true }
        #expect(largeHeap != nil, "monitor events: \(monitors.count)")
        #expect((largeHeap?.event.value ?? 0) > 0)
        // strict_monotonic_timestamp: the one process's events come in strictly increasing time.
        let named = capture.events.filter { $0.event.kind == .call || $0.event.kind == .returnFrom }
        #expect(zip(named, named.dropFirst()).allSatisfy { $0.0.event.time < $0.1.event.time })
        // Every call came from the one named process.
        #expect(Set(capture.events.filter { $0.event.kind == .call }.map(\.event.pid)).count == 1)
    }
}

@Suite struct OverloadTests {
    /// Past the hard bound on the tracer's mailbox the agent switches tracing off and the session
    /// stops with that reason; the node is left clean.
    @Test func hardQueueBoundStopsTheSession() async throws {
        let node = try await TracedNode.start()
        defer { Task { await node.stop() } }
        let output = try temporaryCapturePath()
        var options = try recordingOptions([node], patterns: ["btwl:f/1"], output: output)
        options.limits.maxEvents = nil
        // A storm of four processes against one tracer overruns a 100-message mailbox at once.
        options.limits.softQueue = 100
        options.limits.hardQueue = 100
        let session = TraceSession(options: options)
        let running = Task { try await session.run() }
        try await node.waitUntilTracing()
        _ = try await node.rpc("btwl", "storm", [.integer(4), .integer(200_000)])
        let summary = try await running.value
        #expect(summary.stopReason.contains("overload"), "\(summary.stopReason)")
        #expect(summary.nodes.first?.cleanedUp == true)
        try await expectClean(node)
        let capture = try ReadCapture(output)
        #expect(capture.reader.meta.stopReason?.contains("overload") == true)
        #expect(capture.markers(code: 3).contains { $0.erlangText().contains("overload") })
    }
}

@Suite struct ConnectionLossTests {
    /// The node cuts the connection to the recorder (as a network cut would): the agent switches
    /// everything off and unloads itself; the session ends because its only node left.
    @Test func agentCleansUpWhenTheConnectionIsCut() async throws {
        let node = try await TracedNode.start()
        defer { Task { await node.stop() } }
        let output = try temporaryCapturePath()
        var options = try recordingOptions([node], patterns: ["btwl:f/1"], output: output)
        let recorderName = Erlang.randomName("btrec")
        options.localName = recorderName
        let session = TraceSession(options: options)
        let running = Task { try await session.run() }
        try await node.waitUntilTracing()
        _ = try await node.rpc("btwl", "calls", [.integer(100)])
        let spinner = try await node.rpc("btwl", "spin", [.integer(1)])
        try await Task.sleep(for: .milliseconds(300))
        let cut = try await node.rpc("erlang", "disconnect_node", [.atom("\(recorderName)@\(Erlang.shortHostName)")])
        #expect(cut.erlangText() == "true")
        let summary = try await running.value
        #expect(summary.stopReason == "every node left the session")
        #expect(summary.nodes.first?.endReason.contains("connection lost") == true)
        try await expectClean(node, waiting: true)
        if case .pid(let pid) = spinner { try node.control.send(to: .pid(pid), message: .atom("stop")) }
        let capture = try ReadCapture(output)
        #expect(capture.count(.call, function: "btwl:f/1") >= 100)
    }
}
