// Every event written is read back identical: seeded random streams (several blocks, several
// segments, small blocks) and an OTP capture against the decoder's own output.
import Foundation
import Testing
import TestSupport
@testable import CaptureStore
import TraceModel

@Suite struct RoundTripTests {
    func write(_ batch: EventBatch, dictionaries: TraceDictionaries, to path: String, options: CaptureWriter.Options) throws {
        let writer = try CaptureWriter(creating: path, options: options)
        var index = 0
        // Uneven appends, so blocks fill across calls.
        while index < batch.count {
            let n = min(batch.count - index, 777)
            var part = EventBatch()
            for i in index..<(index + n) { part.append(batch[i], payload: batch.payload(i)) }
            try writer.append(part, dictionaries: dictionaries)
            index += n
        }
        try writer.close(stopReason: "test")
    }

    @Test(arguments: [UInt64(1), 2, 3])
    func randomStreamsReadBackIdentical(seed: UInt64) throws {
        let dir = try Erlang.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var generator = SyntheticEvents(seed: seed)
        var batch = EventBatch()
        generator.generate(40_000, into: &batch)
        var options = CaptureWriter.Options()
        options.blockEvents = 1000 + Int(seed) * 500
        options.segmentBytes = 100_000
        let path = dir.appendingPathComponent("cap").path
        try write(batch, dictionaries: generator.dictionaries, to: path, options: options)
        let reader = try CaptureReader(opening: path)
        #expect(reader.problems.isEmpty)
        #expect(reader.segmentNumbers.count > 1)
        let events = try reader.events()
        #expect(events.count == batch.count)
        var same = events.count == batch.count
        for i in 0..<min(events.count, batch.count) where events[i].event != batch[i] || events[i].payload != Array(batch.payload(i)) {
            same = false
            break
        }
        #expect(same)
        #expect(reader.dictionaries.functions == generator.dictionaries.functions)
        #expect(reader.dictionaries.processes == generator.dictionaries.processes)
    }

    @Test func outOfOrderEventsComeBackInTimeOrder() throws {
        let dir = try Erlang.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var generator = SyntheticEvents(seed: 9)
        var batch = EventBatch()
        generator.generate(20_000, into: &batch)
        // Step back in time across "processes", as OTP's file order does.
        var shuffled = EventBatch()
        var order = Array(0..<batch.count)
        for i in stride(from: 0, to: order.count - 7, by: 7) { order.swapAt(i, i + 6) }
        for i in order { shuffled.append(batch[i], payload: batch.payload(i)) }
        var options = CaptureWriter.Options()
        options.blockEvents = 500
        let path = dir.appendingPathComponent("cap").path
        try write(shuffled, dictionaries: generator.dictionaries, to: path, options: options)
        let events = try CaptureReader(opening: path).events()
        #expect(events.map(\.event) == (0..<batch.count).map { batch[$0] })
    }

    @Test func otpCaptureReadsBackAsDecoded() throws {
        try expectReadsBackAsDecoded { trace in "bt_work:file(\"\(trace)\", 1500)" }
    }

    /// OTP's own bytes for integers of every width (payload integers have a column of their own in
    /// block encoding 1) come back exactly, across blocks.
    @Test func otpIntegersOfEveryWidthReadBackExactly() throws {
        let events = try expectReadsBackAsDecoded { trace in "bt_work:integers(\"\(trace)\", 40)" }
        // Big integers (SMALL_BIG_EXT) were in the payloads.
        let bigs = events.filter { $0.event.kind == .send && $0.payload.contains(110) }.count
        #expect(bigs > 1000)
    }

    @discardableResult
    func expectReadsBackAsDecoded(_ call: (String) -> String) throws -> [RecordedEvent] {
        let dir = try Erlang.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let trace = dir.appendingPathComponent("t.trc").path
        _ = try Workload.run(call(trace))
        // Decode the file directly.
        var decoder = TraceMessageDecoder()
        var direct = EventBatch()
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: trace)))
        _ = try bytes.withUnsafeBytes { raw in
            try FrameScanner().scan(raw, streamOffset: 0) { frame, _ in
                switch frame {
                case .message(let body): try decoder.decode(body, into: &direct)
                case .drop(let n): decoder.appendDrop(count: Int64(n), into: &direct)
                }
            }
        }
        var options = CaptureWriter.Options()
        options.blockEvents = 1000
        let capture = dir.appendingPathComponent("cap").path
        _ = try Importer(writerOptions: options).run(sources: [trace], output: capture)
        let reader = try CaptureReader(opening: capture)
        let events = try reader.events()
        // Same events, each with its payload; the capture is in time order.
        let expected = (0..<direct.count).map { RecordedEvent(event: direct[$0], payload: Array(direct.payload($0))) }
            .enumerated().sorted { ($0.element.event.time, $0.offset) < ($1.element.event.time, $1.offset) }.map(\.element)
        #expect(events.count == expected.count)
        #expect(events == expected)
        #expect(reader.dictionaries.atoms == decoder.dictionaries.atoms)
        return events
    }
}
