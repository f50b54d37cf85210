// A capture of seeded synthetic events, written in a fresh directory (the caller removes it), for
// tests about the format itself: pruning, recovery, the flight recorder.
import Foundation
import TestSupport
@testable import CaptureStore
import TraceModel

struct SyntheticCapture {
    let directory: URL
    let path: String
    let batch: EventBatch
    let dictionaries: TraceDictionaries
    let writer: CaptureWriter

    init(seed: UInt64, events: Int, configure: (inout CaptureWriter.Options) -> Void) throws {
        directory = try Erlang.temporaryDirectory()
        var generator = SyntheticEvents(seed: seed)
        var batch = EventBatch()
        generator.generate(events, into: &batch)
        self.batch = batch
        dictionaries = generator.dictionaries
        var options = CaptureWriter.Options()
        configure(&options)
        path = directory.appendingPathComponent("cap").path
        writer = try CaptureWriter(creating: path, options: options)
        try writer.append(batch, dictionaries: generator.dictionaries)
        try writer.close()
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }
}
