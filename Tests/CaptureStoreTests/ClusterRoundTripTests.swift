// Multi-node captures read back exactly: real-shaped payloads from several nodes (pids of every node,
// integers of every width, refs, calls and replies), batches of the nodes interleaved as a recorder
// appends them, re-sorted into blocks of every size; read whole, filtered and pruned (payloads of some
// kinds only).
import Foundation
import Testing
import TestSupport
@testable import CaptureStore
import TraceModel

@Suite struct ClusterRoundTripTests {
    /// Writes the batches, reads them back; the mismatches found (empty: exact).
    func roundTrip(_ batches: [EventBatch], _ dictionaries: TraceDictionaries, options: CaptureWriter.Options,
                   path: String) throws -> [String] {
        var written: [Int64: RecordedEvent] = [:]
        for batch in batches {
            for i in 0..<batch.count { written[batch[i].value] = RecordedEvent(event: batch[i], payload: Array(batch.payload(i))) }
        }
        let writer = try CaptureWriter(creating: path, options: options)
        for batch in batches { try writer.append(batch, dictionaries: dictionaries) }
        try writer.close(stopReason: "test")
        let reader = try CaptureReader(opening: path)
        var problems = reader.problems.map { "\($0)" }
        var read = 0
        var last = Int64.min
        func check(_ event: TraceEvent, _ payload: UnsafeRawBufferPointer) {
            guard let expected = written[event.value] else { return problems.append("never written: \(event)") }
            if event != expected.event { problems.append("event \(event.value): \(event), written \(expected.event)") }
            if !payload.elementsEqual(expected.payload) {
                problems.append("event \(event.value) (\(event.kind), pid \(event.pid)): payload \(Array(payload)), "
                                + "written \(expected.payload)")
            }
        }
        try reader.forEach { event, payload in
            check(event, payload)
            if event.time < last { problems.append("event \(event.value) out of time order") }
            last = event.time
            read += 1
            return true
        }
        if read != written.count { problems.append("\(read) events read back of \(written.count)") }
        // A filtered read expands the payloads it returns alike.
        try reader.forEach(matching: EventQuery(kinds: [.send, .receive])) { event, payload in
            check(event, payload)
            return true
        }
        // A pruned read (column pruning): the payloads it names exactly (the others walked to keep the
        // integer column's place and predictions), the rest empty, peers 0.
        for kinds in [[EventKind.send], [.receive, .returnFrom], [.exit, .call, .spawn]] {
            try reader.forEach(columns: EventColumns(payloadsOf: Set(kinds), peers: false)) { event, payload in
                guard let expected = written[event.value] else { return true }
                var event = event
                event.peer = expected.event.peer
                if event != expected.event { problems.append("pruned \(kinds): event \(event.value): \(event)") }
                let wanted = kinds.contains(event.kind) ? expected.payload : []
                if !payload.elementsEqual(wanted) {
                    problems.append("pruned \(kinds): event \(event.value) (\(event.kind)): payload \(Array(payload)), "
                                    + "expected \(wanted)")
                }
                return true
            }
        }
        return problems
    }

    @Test(arguments: [(UInt64(1), 7), (2, 64), (3, 700), (4, 16_384), (5, 1)])
    func shuffledNodeBatchesReadBackExactly(seed: UInt64, blockEvents: Int) throws {
        let dir = try Erlang.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var generator = SyntheticClusterEvents(seed: seed, nodes: 6, processesPerNode: 300)
        let batches = generator.batches(events: blockEvents == 1 ? 1_000 : 8_000)
        var options = CaptureWriter.Options()
        options.blockEvents = blockEvents
        options.background = seed % 2 == 0
        options.segmentBytes = seed == 3 ? 200_000 : options.segmentBytes
        let problems = try roundTrip(batches, generator.dictionaries, options: options,
                                     path: dir.appendingPathComponent("cap").path)
        #expect(problems.isEmpty, "\(problems.count) mismatches, first: \(problems.prefix(3))")
    }

    /// The shapes of the 6-node capture whose pings read back wrong: one process's calls with an
    /// INTEGER_EXT id (`{'$gen_call', {Pid, [alias|Ref]}, {ping, {Node, Id}}}`, id stepping by 16 and
    /// jumping back below 256 when the process changes scheduler), each seen in its send and, on
    /// another node, its receive and reply; between them other processes' payloads that share the
    /// integer table's slots, bare pids and payloads of more than four integers, in blocks of ~700.
    @Test func pingsWithIntegerIDsAcrossNodesReadBackExactly() throws {
        let dir = try Erlang.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var problems: [String] = []
        for seed in UInt64(10)..<UInt64(20) {
            var generator = SyntheticClusterEvents(seed: seed, nodes: 6, processesPerNode: 60)
            let batches = generator.batches(events: 3_000)
            var options = CaptureWriter.Options()
            options.blockEvents = 700
            problems += try roundTrip(batches, generator.dictionaries, options: options,
                                      path: dir.appendingPathComponent("cap\(seed)").path)
        }
        #expect(problems.isEmpty, "\(problems.count) mismatches, first: \(problems.prefix(3))")
    }
}
