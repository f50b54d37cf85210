// Predicate pushdown: a 1% time window of a capture with over 1,000 blocks decompresses at most 2%
// of them; kind and function filters skip blocks too.
import Foundation
import Testing
import TestSupport
@testable import CaptureStore
import TraceModel

@Suite struct PruningTests {
    @Test func onePercentWindowDecompressesAtMostTwoPercentOfBlocks() throws {
        let capture = try SyntheticCapture(seed: 77, events: 120_000) { $0.blockEvents = 100 }
        defer { capture.remove() }
        let (path, batch) = (capture.path, capture.batch)
        let reader = try CaptureReader(opening: path)
        #expect(reader.blocks.count >= 1000)
        let start = batch.times[0], end = batch.times[batch.count - 1]
        let from = start + (end - start) / 2
        let to = from + (end - start) / 100
        let events = try reader.events(matching: EventQuery(from: from, to: to))
        let expected = batch.times.filter { $0 >= from && $0 <= to }.count
        #expect(events.count == expected)
        #expect(reader.blocksDecompressed <= reader.blocks.count * 2 / 100)
    }

    @Test func indexRebuildRestoresPruning() throws {
        let capture = try SyntheticCapture(seed: 78, events: 50_000) { $0.blockEvents = 100 }
        defer { capture.remove() }
        let (path, batch) = (capture.path, capture.batch)
        let indexPath = path + "/" + Format.indexName(1)
        let original = try Data(contentsOf: URL(fileURLWithPath: indexPath))
        try FileManager.default.removeItem(atPath: indexPath)
        let output = try CLI.run(["index", "--rebuild", path])
        #expect(output.contains("rebuilt the index"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: indexPath)) == original)
        let reader = try CaptureReader(opening: path)
        let target = batch[25_000]
        let events = try reader.events(matching: EventQuery(from: target.time, to: target.time))
        #expect(events.map(\.event) == [target])
        #expect(reader.blocksDecompressed <= 2)
    }
}
