// `info` from the block summaries the index points at vs the full decode it replaces, side by
// side on the same 30M-event capture (synthetic, seeded: 50 processes, 40 functions, 8 kinds; as
// `beamtrace synth --events 30000000` writes it). Both include opening the capture (every index
// entry checked against its block). Run:
//   swift package --package-path Benchmarks benchmark --target Info
// The capture is made once and kept in $BEAMTRACE_BENCH_DIR (default /tmp/beamtrace-bench).
import Benchmark
import CaptureStore
import Foundation
import TraceModel

enum InfoData {
    static let directory = ProcessInfo.processInfo.environment["BEAMTRACE_BENCH_DIR"] ?? "/tmp/beamtrace-bench"
    static var capture: String { directory + "/info-30M.btrace" }
    static let events = 30_000_000

    /// Writes the capture unless a complete one (with block summaries) is there.
    static func make() throws {
        if let reader = try? CaptureReader(opening: capture), reader.problems.isEmpty,
           let summary = reader.indexSummary().summary, summary.events == events { return }
        try? FileManager.default.removeItem(atPath: capture)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var generator = SyntheticEvents(seed: 1)
        let writer = try CaptureWriter(creating: capture)
        var batch = EventBatch()
        var left = events
        while left > 0 {
            batch.removeAll()
            let n = min(left, 16_384)
            generator.generate(n, into: &batch)
            try writer.append(batch, dictionaries: generator.dictionaries)
            left -= n
        }
        try writer.close(stopReason: "benchmark")
    }
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .peakMemoryResident],
                                           maxDuration: .seconds(20), maxIterations: 20)

    Benchmark("info from the block summaries (30M events)",
              configuration: .init(setup: { try InfoData.make() })) { benchmark in
        let reader = try CaptureReader(opening: InfoData.capture)
        guard let summary = reader.indexSummary().summary else { throw CaptureError(.corrupt, "no block summaries") }
        blackHole(summary.events)
    }

    Benchmark("info decoding every event (30M events)",
              configuration: .init(maxIterations: 5, setup: { try InfoData.make() })) { benchmark in
        let reader = try CaptureReader(opening: InfoData.capture)
        blackHole(try reader.summary().events)
    }
}
