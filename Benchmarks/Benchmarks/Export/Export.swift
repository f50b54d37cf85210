// Export throughput: a capture of a real OTP trace with >= 5M events exported to Perfetto protobuf
// and to Chrome JSON (the analysis stream and the writer, into a file), side by side in the same
// run with OTP's own text formatting of the same events from the original dbg file
// (`dbg:trace_client(file, ...)` with a handler doing `io_lib:format("~p~n", [Msg])`). Run:
//   swift package --package-path Benchmarks benchmark --target Export
// Events/s = events / wall clock of one iteration; bytes/event and the event count are printed.
// The trace is made once with erl (a loop calling two traced functions with return_trace and
// messaging an echo process; call, send, 'receive', monotonic_timestamp) and kept in
// $BEAMTRACE_BENCH_DIR (default /tmp/beamtrace-bench).
import Benchmark
import CaptureStore
import Foundation
import TraceExport
import BenchTraces

let ExportData = OTPTrace.export

let benchmarks: @Sendable () -> Void = {
    do {
        try ExportData.prepare()
    } catch {
        print("cannot prepare the export benchmark: \(error)")
        return
    }
    let events = (try? CaptureReader(opening: ExportData.capture))?.blocks.reduce(0) { $0 + Int($1.count) } ?? 0
    print("export capture: \(events) events")

    // Gated by Benchmarks/Thresholds (`thresholds check`): allocations, CPU time (user+sys, steadier
    // than wall clock on a shared machine) and peak memory, each p90 of 3 iterations.
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .cpuTotal, .throughput, .peakMemoryResident, .mallocCountTotal],
        timeUnits: .milliseconds,
        maxDuration: .seconds(60),
        maxIterations: 3,
        thresholds: [
            .mallocCountTotal: .init(relative: [.p90: 10]),
            .cpuTotal: .init(relative: [.p90: 35]),
            .peakMemoryResident: .init(relative: [.p90: 25]),
        ]
    )

    for format in [ExportFormat.perfetto, .chrome] {
        // No spaces in the name: `thresholds update` writes them as underscores, `thresholds check` reads them as they are.
        Benchmark("beamtrace_export_\(format.rawValue)") { _ in
            guard let reader = try? CaptureReader(opening: ExportData.capture) else { return }
            let out = ExportData.directory + "/export-out." + format.rawValue
            let summary = try? TraceExporter.export(reader, options: ExportOptions(format: format), to: out)
            if let summary {
                print(String(format: "%@: %d events, %lld bytes, %.1f bytes/event", format.rawValue, summary.events,
                             summary.stats.bytes, Double(summary.stats.bytes) / Double(max(1, summary.events))))
            }
        }
    }

    // One iteration: OTP's dbg:trace_client formatting the same events with ~p (erl's own timing is
    // printed too, without its start-up).
    Benchmark("OTP dbg:trace_client + io_lib:format(\"~p~n\") of the same events") { _ in
        print("dbg:trace_client ~p (events, bytes, microseconds inside erl): \(ExportData.formatWithOTP())")
    }
}
