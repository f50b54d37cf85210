// `events` output speed: a capture of a real OTP trace (1.2M events, see BenchTraces) printed as
// text lines and as JSON objects (EventPrinter.write / EventJSON into a reused buffer, written to
// /dev/null in 1 MiB writes, as `beamtrace events` does), side by side in the same run with OTP's
// own `dbg:trace_client` + `io_lib:format("~p~n")` of the same events from the original dbg file.
// Run: swift package --package-path Benchmarks benchmark --target Events
// Targets (#13): text >= 5M events/s, JSON >= 3M events/s, each >= 10x OTP's ~p. Thresholds in
// Thresholds/Events.*.json gate allocations (within 10%): `cd Benchmarks && swift package benchmark
// thresholds check --target Events --filter 'events_.*'`. Times are too noisy here to gate.
import BeamTerm
import BenchTraces
import Benchmark
import CaptureStore
import Foundation
import TraceModel

let trace = OTPTrace.events

/// Prints every event of the capture; returns the event count.
func printAll(json: Bool) -> Int {
    guard let reader = try? CaptureReader(opening: trace.capture) else { return 0 }
    let start = reader.blocks.map(\.timeMin).min() ?? 0
    var printer = EventPrinter(dictionaries: reader.dictionaries,
                               time: TimeText(style: nil, start: start, timeBase: reader.meta.timeBase))
    var writer = EventJSON()
    var buffer = TextBuffer(capacity: 1 << 21)
    let sink = FileHandle(forWritingAtPath: "/dev/null")
    var count = 0
    try? reader.forEach(matching: .all) { event, payload in
        if json {
            writer.write(event, payload: payload, printer: &printer, into: &buffer)
        } else {
            printer.write(event, payload: payload, into: &buffer)
        }
        buffer.append(10)
        count += 1
        if buffer.count >= 1 << 20 {
            buffer.withUnsafeBytes { raw in _ = Foundation.write(sink?.fileDescriptor ?? -1, raw.baseAddress, raw.count) }
            buffer.removeAll()
        }
        return true
    }
    buffer.withUnsafeBytes { raw in _ = Foundation.write(sink?.fileDescriptor ?? -1, raw.baseAddress, raw.count) }
    return count
}

let benchmarks: @Sendable () -> Void = {
    do {
        try trace.prepare()
    } catch {
        print("cannot prepare the events benchmark: \(error)")
        return
    }
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal, .peakMemoryResident],
        timeUnits: .milliseconds,
        maxDuration: .seconds(60),
        maxIterations: 5,
        thresholds: [.mallocCountTotal: .init(relative: [.p90: 10.0])]
    )
    for json in [false, true] {
        // No spaces in the name: `thresholds update` writes them as `_`, `thresholds check` reads them as they are.
        Benchmark(json ? "events_json" : "events_text") { benchmark in
            let start = Date()
            let events = printAll(json: json)
            let seconds = Date().timeIntervalSince(start)
            print(String(format: "%@: %d events, %.2fM events/s", json ? "json" : "text", events,
                         Double(events) / seconds / 1e6))
        }
    }
    Benchmark("OTP dbg:trace_client + io_lib:format(\"~p~n\") of the same events",
              configuration: .init(maxIterations: 1)) { _ in
        print("dbg:trace_client ~p (events, bytes, microseconds inside erl): \(trace.formatWithOTP())")
    }
}
