// Replay throughput: call stacks + latency histograms + queue tracking over a capture of a real
// OTP trace with >= 10M events, side by side with OTP's dbg:trace_client merely counting the same
// events from the original dbg file. Run:
//   swift package --package-path Benchmarks benchmark --target Replay
// The trace (BenchTraces' OTPTrace.replay: a loop calling traced functions that also messages a
// second process; [call, send, 'receive', monotonic_timestamp] with {return_trace}) is made once
// with erl and kept in $BEAMTRACE_BENCH_DIR (default /tmp/beamtrace-bench).
import BenchTraces
import Benchmark
import CaptureStore
import Foundation
import TraceAnalysis

let benchmarks: @Sendable () -> Void = {
    do {
        try OTPTrace.replay.prepare()
    } catch {
        print("cannot prepare the replay benchmark: \(error)")
        return
    }
    let events = (try? CaptureReader(opening: OTPTrace.replay.capture))?.blocks.reduce(0) { $0 + Int($1.count) } ?? 0
    print("replay capture: \(events) events")

    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .peakMemoryResident, .mallocCountTotal],
        timeUnits: .milliseconds,
        maxDuration: .seconds(60),
        maxIterations: 3
    )

    // One iteration replays the whole capture: events/s = events / wall clock.
    Benchmark("beamtrace replay: stacks + histograms + queues") { benchmark in
        guard let reader = try? CaptureReader(opening: OTPTrace.replay.capture) else { return }
        let analysis = try? CaptureAnalysis.run(reader)
        blackHole(analysis?.latency.functions.count)
    }

    // One iteration: OTP's dbg:trace_client counting the same events from the dbg file (the erl
    // VM's own timing is printed too, without its start-up).
    Benchmark("OTP dbg:trace_client counting the same events") { benchmark in
        print("dbg:trace_client (count, microseconds inside erl): \(OTPTrace.replay.countWithOTP())")
    }
}
