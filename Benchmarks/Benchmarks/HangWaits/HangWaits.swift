// The waiting model's cost (CallWaits: every send and receive checked against OTP's call protocols)
// on a real OTP trace rich in gen calls, side by side with the same analysis pass that does not
// follow calls and with a plain decode of every event. Run:
//   swift package --package-path Benchmarks benchmark --target HangWaits
// The trace is made once with erl: 8 clients each making 40,000 gen_server:call's (alias tags, a
// default timeout) to one server, every 50th a call with a 0 ms timeout that times out (the late
// reply arrives after), traced with [call, send, 'receive', procs, monotonic_timestamp] and
// {return_trace} on handle_call/3: about 2M events. Kept in $BEAMTRACE_BENCH_DIR (default
// /tmp/beamtrace-bench).
import Benchmark
import CaptureStore
import Foundation
import TraceAnalysis

enum HangWaitsData {
    static let directory = ProcessInfo.processInfo.environment["BEAMTRACE_BENCH_DIR"] ?? "/tmp/beamtrace-bench"
    static var traceFile: String { directory + "/hang-waits.trc" }
    static var capture: String { directory + "/hang-waits.btrace" }

    static let workload = """
    -module(bt_hang_bench).
    -behaviour(gen_server).
    -export([make/3, init/1, handle_call/3, handle_cast/2]).
    init(_) -> {ok, 0}.
    handle_call({work, N}, _From, S) -> {reply, N + 1, S + 1};
    handle_call(nap, _From, S) -> erlang:yield(), {reply, ok, S}.
    handle_cast(_, S) -> {noreply, S}.
    make(File, Clients, Calls) ->
        {ok, _} = dbg:tracer(port, dbg:trace_port(file, File)),
        {ok, _} = dbg:p(new, [call, send, 'receive', procs, monotonic_timestamp]),
        {ok, _} = dbg:tpl(?MODULE, handle_call, 3, [{'_', [], [{return_trace}]}]),
        {ok, S} = gen_server:start(?MODULE, [], []),
        Parent = self(),
        Pids = [spawn(fun() -> client(S, Calls), Parent ! {done, self()} end) || _ <- lists:seq(1, Clients)],
        [receive {done, P} -> ok end || P <- Pids],
        gen_server:stop(S),
        dbg:flush_trace_port(),
        dbg:stop_clear().
    client(_, 0) -> ok;
    client(S, N) when N rem 50 =:= 0 -> catch gen_server:call(S, nap, 0), client(S, N - 1);
    client(S, N) -> N = gen_server:call(S, {work, N - 1}), client(S, N - 1).
    """

    /// The peer: OTP's own reader of the same file (`dbg:trace_client`) merely counting its events.
    static let counter = """
    -module(bt_hang_count).
    -export([count/1]).
    count(File) ->
        Self = self(),
        dbg:trace_client(file, File, {fun(end_of_trace, N) -> Self ! {count, N}, N; (_, N) -> N + 1 end, 0}),
        receive {count, N} -> io:format("~p~n", [N]) end.
    """

    static func run(_ tool: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
    }

    /// Makes the dbg file and the capture once.
    static func prepare() throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let counterSource = directory + "/bt_hang_count.erl"
        try counter.write(toFile: counterSource, atomically: true, encoding: .utf8)
        try run("/usr/bin/erlc", ["-o", directory, counterSource])
        if !fm.fileExists(atPath: traceFile) {
            let source = directory + "/bt_hang_bench.erl"
            try workload.write(toFile: source, atomically: true, encoding: .utf8)
            for (tool, arguments) in [("/usr/bin/erlc", ["-o", directory, source]),
                                      ("/usr/bin/erl", ["-noshell", "-pa", directory, "-eval",
                                                        "bt_hang_bench:make(\"\(traceFile)\", 8, 40000), halt()."])] {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: tool)
                process.arguments = arguments
                try process.run()
                process.waitUntilExit()
            }
        }
        if !fm.fileExists(atPath: capture) {
            _ = try Importer().run(sources: [traceFile], output: capture)
        }
    }
}

let benchmarks: @Sendable () -> Void = {
    do {
        try HangWaitsData.prepare()
    } catch {
        print("cannot prepare the hang benchmark: \(error)")
        return
    }
    if let reader = try? CaptureReader(opening: HangWaitsData.capture),
       let analysis = try? CaptureAnalysis.run(reader, options: AnalysisOptions(latency: .none)) {
        print("hang-waits capture: \(analysis.events) events, gen calls ended \(analysis.callEndings)")
    }

    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .peakMemoryResident, .mallocCountTotal],
        timeUnits: .milliseconds,
        maxDuration: .seconds(60),
        maxIterations: 5,
        // Gated by Benchmarks/Thresholds (`thresholds check`): allocations within 15% (the decode
        // worker's timing moves them a little); times are too noisy on a shared machine to gate.
        thresholds: [.mallocCountTotal: .init(relative: [.p90: 15.0])]
    )

    // One iteration each over the whole capture.
    Benchmark("hang_with_the_waiting_model") { _ in
        guard let reader = try? CaptureReader(opening: HangWaitsData.capture),
              let analysis = try? CaptureAnalysis.run(reader, options: AnalysisOptions(latency: .none)) else { return }
        blackHole(analysis.hangReport().suspects.count)
    }

    Benchmark("hang_pass_without_following_calls") { _ in
        var options = AnalysisOptions(latency: .none)
        options.followCalls = false
        guard let reader = try? CaptureReader(opening: HangWaitsData.capture),
              let analysis = try? CaptureAnalysis.run(reader, options: options) else { return }
        blackHole(analysis.events)
    }

    // As `beamtrace latency` runs it: percentiles, no waiting model.
    Benchmark("latency_without_the_waiting_model") { _ in
        var options = AnalysisOptions(latency: .percentiles)
        options.followCalls = false
        options.trackProcesses = false
        guard let reader = try? CaptureReader(opening: HangWaitsData.capture),
              let analysis = try? CaptureAnalysis.run(reader, options: options) else { return }
        blackHole(analysis.latencyReport().functions.count)
    }

    // The peer, as a whole process (an erl VM starting, reading the dbg file, counting its events);
    // timed only (its allocations are Foundation's starting a process: not ours to gate).
    Benchmark("dbg_trace_client_count_of_the_same_file",
              configuration: .init(metrics: [.wallClock], timeUnits: .milliseconds, maxIterations: 3,
                                   thresholds: [:])) { _ in
        try? HangWaitsData.run("/usr/bin/erl", ["-noshell", "-pa", HangWaitsData.directory, "-eval",
                                                "bt_hang_count:count(\"\(HangWaitsData.traceFile)\"), halt()."])
    }

    Benchmark("plain_decode_of_every_event") { _ in
        guard let reader = try? CaptureReader(opening: HangWaitsData.capture) else { return }
        var count = 0
        try? reader.forEach(matching: .all) { _, _ in
            count += 1
            return true
        }
        blackHole(count)
    }
}
