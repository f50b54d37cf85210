// The clock refinement rewrites a multi-node capture with corrected times: it reads every event and
// writes it again, so whatever it reads is what the capture keeps. Every payload byte must survive
// (a misread there is frozen into the capture for good), times move by their node's correction only
// (receives moved after their send excepted), and the session's markers still bracket every event.
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
        // Clocks drifting apart by milliseconds (far more than a real session's) leave some receives that
        // moving others cannot order (a moved receive moves its process's later sends too): counted.
        #expect(refinement.violationsAfter < refinement.violationsBefore)
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
}
