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

enum ExportData {
    static let directory = ProcessInfo.processInfo.environment["BEAMTRACE_BENCH_DIR"] ?? "/tmp/beamtrace-bench"
    static var traceFile: String { directory + "/export.trc" }
    static var capture: String { directory + "/export.btrace" }
    /// Loop iterations; each makes 2 call, 2 return_from, 2 send, 2 receive events.
    static let iterations = 700_000

    static let workload = """
    -module(bt_export_bench).
    -export([make/2, format/1, work/1]).
    work(X) -> X + 1.
    make(File, N) ->
        Echo = spawn(fun Loop() -> receive {From, M} -> From ! M, Loop() end end),
        {ok, _} = dbg:tracer(port, dbg:trace_port(file, File)),
        P = spawn(fun() -> receive go -> ok end, loop(Echo, N), exit(done) end),
        {ok, _} = dbg:p(P, [call, send, 'receive', monotonic_timestamp]),
        {ok, _} = dbg:p(Echo, [send, 'receive', monotonic_timestamp]),
        {ok, _} = dbg:tpl(?MODULE, work, 1, [{'_', [], [{return_trace}]}]),
        Ref = monitor(process, P),
        P ! go,
        receive {'DOWN', Ref, _, _, _} -> ok end,
        dbg:flush_trace_port(),
        dbg:stop_clear().
    loop(_, 0) -> ok;
    loop(Echo, N) ->
        ?MODULE:work(N), ?MODULE:work(N),
        Echo ! {self(), N},
        receive N -> ok end,
        loop(Echo, N - 1).
    %% OTP's own text formatting of every event of the file, timed inside erl.
    format(File) ->
        Self = self(),
        T0 = erlang:monotonic_time(),
        dbg:trace_client(file, File, {fun(end_of_trace, {N, B}) -> Self ! {done, N, B}, {N, B};
                                         (Msg, {N, B}) -> {N + 1, B + iolist_size(io_lib:format("~p~n", [Msg]))} end,
                                      {0, 0}}),
        receive {done, N, B} ->
            T = erlang:convert_time_unit(erlang:monotonic_time() - T0, native, microsecond),
            io:format("~p ~p ~p~n", [N, B, T])
        end.
    """

    static func erl(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/erl")
        process.arguments = ["-noshell", "-pa", directory] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    /// Makes the dbg file and the capture once.
    static func prepare() throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if !fm.fileExists(atPath: traceFile) {
            let source = directory + "/bt_export_bench.erl"
            try workload.write(toFile: source, atomically: true, encoding: .utf8)
            let erlc = Process()
            erlc.executableURL = URL(fileURLWithPath: "/usr/bin/erlc")
            erlc.arguments = ["-o", directory, source]
            try erlc.run()
            erlc.waitUntilExit()
            _ = try erl(["-eval", "bt_export_bench:make(\"\(traceFile)\", \(iterations)), halt()."])
        }
        if !fm.fileExists(atPath: capture) {
            _ = try Importer().run(sources: [traceFile], output: capture)
        }
    }
}

let benchmarks: @Sendable () -> Void = {
    do {
        try ExportData.prepare()
    } catch {
        print("cannot prepare the export benchmark: \(error)")
        return
    }
    let events = (try? CaptureReader(opening: ExportData.capture))?.blocks.reduce(0) { $0 + Int($1.count) } ?? 0
    print("export capture: \(events) events")

    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .peakMemoryResident],
        timeUnits: .milliseconds,
        maxDuration: .seconds(60),
        maxIterations: 3
    )

    for format in [ExportFormat.perfetto, .chrome] {
        Benchmark("beamtrace export \(format.rawValue)") { _ in
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
        let output = (try? ExportData.erl(["-eval", "bt_export_bench:format(\"\(ExportData.traceFile)\"), halt()."])) ?? ""
        print("dbg:trace_client ~p (events, bytes, microseconds inside erl): \(output.trimmingCharacters(in: .whitespacesAndNewlines))")
    }
}
