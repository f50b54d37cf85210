// The clock refinement rewrites a multi-node capture with corrected times: it reads every event and
// writes it again, so whatever it reads is what the capture keeps. Every payload byte must survive
// (a misread there is frozen into the capture for good), times move by their node's correction only
// (receives moved after their send excepted), and the session's markers still bracket every event.
// With clocks that drift (no constant offset orders every message), no receive is left before its
// send: a receive moved after its send moves its process's later sends too, and their receives follow.
import BeamTerm
import CaptureStore
import Foundation
import Testing
import TestSupport
import TraceModel
@testable import TraceSession

@Suite struct ClockRefinementTests {
    @Test func rewriteKeepsEveryPayloadAndTheMarkersBracketTheEvents() throws {
        let dir = try Erlang.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("cap").path
        // Two nodes whose clocks are 3 ms apart: the calls one way are received "before" they were sent.
        var generator = SyntheticClusterEvents(seed: 77, nodes: 2, processesPerNode: 40)
        let batches = generator.batches(events: 6_000)
        var written: [Int64: RecordedEvent] = [:]
        var first = Int64.max, last = Int64.min
        for batch in batches {
            for i in 0..<batch.count {
                written[batch[i].value] = RecordedEvent(event: batch[i], payload: Array(batch.payload(i)))
                first = min(first, batch[i].time)
                last = max(last, batch[i].time)
            }
        }
        let names = [0, 1].map { generator.dictionaries.nodeName(NodeID($0 + 1)) }
        var meta = CaptureMeta()
        meta.nodes = names.map { CaptureMeta.NodeInfo(name: $0, otpRelease: "25", clockOffsetNs: 0) }
        let writer = try CaptureWriter(creating: path, meta: meta)
        var markers = EventBatch()
        markers.append(TraceEvent(time: first - 1, kind: .marker, value: 1), payload: [100, 0, 5] + Array("start".utf8))
        markers.append(TraceEvent(time: last + 1, kind: .marker, value: 2), payload: [100, 0, 4] + Array("stop".utf8))
        try writer.append(markers, dictionaries: generator.dictionaries)
        for batch in batches { try writer.append(batch, dictionaries: generator.dictionaries) }
        try writer.close(stopReason: "test")

        let refinement = try #require(try ClockRefinement.refine(capture: path))
        #expect(refinement.pairs > 100)
        #expect(refinement.violationsBefore > 0, "nothing to refine: the capture was not rewritten")
        // Clocks milliseconds apart with random steps (far more than a real session's): moving receives
        // after their sends, and their processes' later events with them, orders every pair that can be
        // ordered. The generator's message ids repeat, so some bytes match across unrelated calls, and a
        // few such pairs form cycles no times can order: only those can be left, and they are counted.
        let cyclic = try #require(refinement.cyclicReceives)
        #expect(refinement.violationsAfter <= cyclic, "\(refinement)")
        #expect(cyclic < (refinement.pairs + (refinement.sameNodePairs ?? 0)) / 50, "\(refinement)")
        let corrections = refinement.nodes.map(\.correctionNs)
        #expect(corrections.contains { $0 != 0 })

        let reader = try CaptureReader(opening: path)
        #expect(reader.problems.isEmpty)
        var start: Int64?, stop: Int64?
        var times: [Int64] = []
        var mismatches: [String] = []
        try reader.forEach { event, payload in
            if event.kind == .marker && event.node == 0 {
                if event.value == 1 { start = event.time }
                if event.value == 2 { stop = event.time }
                return true
            }
            times.append(event.time)
            guard let original = written.removeValue(forKey: event.value) else {
                mismatches.append("event \(event.value) read twice or never written")
                return true
            }
            var expected = original.event
            expected.time = event.time
            if event != expected { mismatches.append("event \(event.value): \(event), written \(original.event)") }
            if !payload.elementsEqual(original.payload) {
                mismatches.append("event \(event.value) (\(event.kind)): payload \(Array(payload)), written \(original.payload)")
            }
            // Moved by its node's correction, or later (a receive moved after its send, and its process's
            // later events with it).
            let moved = original.event.time + corrections[Int(event.node) - 1]
            if event.time < moved { mismatches.append("event \(event.value) moved back by \(moved - event.time) ns") }
            return true
        }
        #expect(written.isEmpty, "\(written.count) events lost in the rewrite")
        #expect(mismatches.isEmpty, "\(mismatches.count) mismatches, first: \(mismatches.prefix(3))")
        let startTime = try #require(start), stopTime = try #require(stop)
        #expect(times.allSatisfy { $0 > startTime && $0 < stopTime },
                "start \(startTime), stop \(stopTime), events \(times.min() ?? 0) ... \(times.max() ?? 0)")
    }
    /// A server called from another node and by a neighbour on its own node. The remote caller's
    /// sends are stamped late (as OTP 25 stamps a send after the message left, on a busy node), so no
    /// offset orders both ways and the server's receives move after their sends, pushing its later
    /// events. Its replies to the neighbour move with them, and the neighbour's receives, which bound no
    /// offset (one node, one clock), must follow: before they were kept, a few of them were left stamped
    /// before their send (1 of 340 pongs in a live 6-node run, 3 of 288 replays of real 6-node captures
    /// with late-stamped sends).
    @Test func aReplyWithinOneNodeFollowsItsServersMovedReceive() throws {
        let dir = try Erlang.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("cap").path
        var dictionaries = TraceDictionaries()
        let names = ["server@a", "caller@b"]
        let nodeA = dictionaries.intern(node: names[0]), nodeB = dictionaries.intern(node: names[1])
        let server = dictionaries.intern(process: .pid(node: nodeA, id: 90, serial: 0, creation: 1))
        let neighbour = dictionaries.intern(process: .pid(node: nodeA, id: 91, serial: 0, creation: 1))
        let remote = dictionaries.intern(process: .pid(node: nodeB, id: 80, serial: 0, creation: 2))
        let listener = dictionaries.intern(process: .pid(node: nodeB, id: 81, serial: 0, creation: 2))
        func message(_ tag: String, _ i: Int) -> [UInt8] {
            var bytes: [UInt8] = []
            TermEncoder().encode(.tuple([.atom(Atom(tag)), .integer(Int64(i)), .atom(Atom("unique_tag"))]), into: &bytes)
            return bytes
        }
        var events: [(TraceEvent, [UInt8])] = []
        var pairs: [(send: Int64, receive: Int64, local: Bool)] = []
        func add(_ time: Int64, _ node: NodeID, _ pid: ProcessID, _ kind: EventKind, _ payload: [UInt8]) -> Int64 {
            let serial = Int64(events.count)
            events.append((TraceEvent(time: time, node: node, pid: pid, kind: kind, value: serial), payload))
            return serial
        }
        var t: Int64 = 1_000_000_000
        for i in 0..<200 {
            let call = message("call", i), note = message("note", i)
            let ask = message("ask", i), answer = message("answer", i)
            // The remote send stamped 50 µs late (20 µs before its receive would be 30 µs after it); the
            // server's note to another process there arrives 5 µs after it was sent.
            let sent = add(t + 50_000, nodeB, remote, .send, call)
            let received = add(t + 20_000, nodeA, server, .receive, call)
            let asked = add(t + 21_000, nodeA, neighbour, .send, ask)
            let got = add(t + 22_000, nodeA, server, .receive, ask)
            let noted = add(t + 25_000, nodeA, server, .send, note)
            let answered = add(t + 26_000, nodeA, server, .send, answer)
            let heard = add(t + 27_000, nodeA, neighbour, .receive, answer)
            let read = add(t + 30_000, nodeB, listener, .receive, note)
            pairs += [(sent, received, false), (noted, read, false), (asked, got, true), (answered, heard, true)]
            t += 300_000
        }
        try Self.write(events, nodes: names, dictionaries: dictionaries, session: "{}", to: path)

        let refinement = try #require(try ClockRefinement.refine(capture: path))
        #expect(refinement.pairs == 400 && refinement.sameNodePairs == 400, "\(refinement)")
        #expect(refinement.movedReceives > 0 && refinement.residualNs > 0, "a constant offset ordered them: \(refinement)")
        #expect(refinement.violationsAfter == 0, "\(refinement)")

        // Checked by the construction's own pairs.
        var time: [Int64: Int64] = [:]
        var order: [ProcessID: [Int64]] = [:]
        try CaptureReader(opening: path).forEach { event, _ in
            time[event.value] = event.time
            order[event.pid, default: []].append(event.value)
            return true
        }
        #expect(time.count == events.count)
        let early = pairs.filter { (time[$0.receive] ?? .min) <= (time[$0.send] ?? .max) }
        #expect(early.isEmpty, "\(early.count) receives not after their send (\(early.filter(\.local).count) within a node)")
        for (pid, values) in order { #expect(values == values.sorted(), "process \(pid) out of its own order") }
        // The session record says the same as the result (it was written before the count, once).
        let session = try CaptureReader(opening: path).meta.session ?? ""
        let record = try JSONSerialization.jsonObject(with: Data(session.utf8)) as? [String: Any]
        #expect((record?["clockRefinement"] as? [String: Any])?["violationsAfter"] as? Int == 0, "\(session)")
    }


    /// Three nodes whose clocks drift apart (the second 1,000 ppm fast and 2 ms ahead, the third 1,000 ppm
    /// slow and 1 ms behind; the offsets measured at the start as 0): clients on the first call through a
    /// relay on the second to a server on the third, which replies to the client, 30 µs a hop, a call
    /// every 300 µs for 0.9 s. No constant offsets order every hop (the skews change by 0.9 ms), so
    /// receives must move; a relay whose receive moved forwards later, and the server's receive must
    /// follow that forward as it lands, not where it was stamped.
    @Test func driftingClocksLeaveNoReceiveBeforeItsSend() throws {
        let dir = try Erlang.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("cap").path
        var dictionaries = TraceDictionaries()
        let names = ["client@a", "relay@b", "server@c"]
        let nodeA = dictionaries.intern(node: names[0]), nodeB = dictionaries.intern(node: names[1])
        let nodeC = dictionaries.intern(node: names[2])
        let clients = (0..<4).map { dictionaries.intern(process: .pid(node: nodeA, id: UInt32(80 + $0), serial: 0,
                                                                      creation: 1)) }
        let relay = dictionaries.intern(process: .pid(node: nodeB, id: 90, serial: 0, creation: 2))
        let server = dictionaries.intern(process: .pid(node: nodeC, id: 95, serial: 0, creation: 3))
        let handle = dictionaries.intern(module: "srv", function: "handle_call", arity: 3)
        func stampA(_ t: Int64) -> Int64 { t }
        func stampB(_ t: Int64) -> Int64 { t + 2_000_000 + (t - 1_000_000_000) / 1000 }
        func stampC(_ t: Int64) -> Int64 { t - 1_000_000 - (t - 1_000_000_000) / 1000 }
        func message(_ tag: String, _ i: Int, _ client: Int) -> [UInt8] {
            var bytes: [UInt8] = []
            TermEncoder().encode(.tuple([.atom(Atom(tag)), .integer(Int64(i)), .atom(Atom("client_\(client)"))]),
                                 into: &bytes)
            return bytes
        }
        // Each event's value is its serial; pairs as (send serial, receive serial).
        var events: [(TraceEvent, [UInt8])] = []
        var pairs: [(Int64, Int64)] = []
        func add(_ time: Int64, _ node: NodeID, _ pid: ProcessID, _ kind: EventKind, _ payload: [UInt8] = [],
                 mfa: FunctionID = 0) -> Int64 {
            let serial = Int64(events.count)
            events.append((TraceEvent(time: time, node: node, pid: pid, kind: kind, mfa: mfa, value: serial), payload))
            return serial
        }
        var t: Int64 = 1_000_000_000
        for i in 0..<3_000 {
            let c = i % clients.count
            let request = message("request", i, c), forward = message("forward", i, c), reply = message("reply", i, c)
            let sent = add(stampA(t), nodeA, clients[c], .send, request)
            let relayed = add(stampB(t + 30_000), nodeB, relay, .receive, request)
            let forwarded = add(stampB(t + 35_000), nodeB, relay, .send, forward)
            let received = add(stampC(t + 65_000), nodeC, server, .receive, forward)
            _ = add(stampC(t + 67_000), nodeC, server, .call, mfa: handle)
            let replied = add(stampC(t + 75_000), nodeC, server, .send, reply)
            let back = add(stampA(t + 105_000), nodeA, clients[c], .receive, reply)
            pairs += [(sent, relayed), (forwarded, received), (replied, back)]
            t += 300_000
        }
        try Self.write(events, nodes: names, dictionaries: dictionaries, to: path)

        let refinement = try #require(try ClockRefinement.refine(capture: path))
        #expect(refinement.pairs == pairs.count)
        #expect(refinement.violationsBefore > 0)
        #expect(refinement.movedReceives > 0, "the drift was small enough for a constant offset: \(refinement)")
        #expect(refinement.violationsAfter == 0, "\(refinement)")
        #expect(refinement.cyclicReceives == 0, "\(refinement)")

        // Checked here by the construction's own pairs, not by the refinement's matching.
        var time: [Int64: Int64] = [:]
        var order: [ProcessID: [(value: Int64, time: Int64)]] = [:]
        let reader = try CaptureReader(opening: path)
        try reader.forEach { event, _ in
            time[event.value] = event.time
            order[event.pid, default: []].append((event.value, event.time))
            return true
        }
        #expect(time.count == events.count, "\(events.count - time.count) events lost")
        let early = pairs.filter { (time[$0.1] ?? .min) <= (time[$0.0] ?? .max) }
        #expect(early.isEmpty, "\(early.count) receives not after their send, first: \(early.prefix(3))")
        for (pid, list) in order {
            let values = list.map(\.value)
            #expect(values == values.sorted(), "process \(pid) out of its own order")
            #expect(zip(list, list.dropFirst()).allSatisfy { $0.time <= $1.time })
        }
    }

    /// A capture of `events` (in time order, ties by their value) from `nodes`, offsets 0.
    static func write(_ events: [(TraceEvent, [UInt8])], nodes names: [String], dictionaries: TraceDictionaries,
                      session: String? = nil, to path: String) throws {
        var meta = CaptureMeta()
        meta.nodes = names.map { CaptureMeta.NodeInfo(name: $0, otpRelease: "25", clockOffsetNs: 0) }
        meta.session = session
        let writer = try CaptureWriter(creating: path, meta: meta)
        var batch = EventBatch()
        for (event, payload) in events.sorted(by: { ($0.0.time, $0.0.value) < ($1.0.time, $1.0.value) }) {
            batch.append(event, payload: payload)
        }
        try writer.append(batch, dictionaries: dictionaries)
        try writer.close(stopReason: "test")
    }
}
