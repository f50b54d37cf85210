// Replay throughput: call stacks + latency histograms + queue tracking over a capture of a real
// OTP trace with >= 10M events, side by side with OTP's dbg:trace_client merely counting the same
// events from the original dbg file. Run:
//   swift package --package-path Benchmarks benchmark --target Replay
// The trace is made once with erl (a loop calling a traced function that also messages a second
// process; [call, send, 'receive', monotonic_timestamp] with {return_trace}) and kept in
// $BEAMTRACE_BENCH_DIR (default /tmp/beamtrace-bench).
import Benchmark
import CaptureStore
import Foundation
import TraceAnalysis

enum ReplayData {
    static let directory = ProcessInfo.processInfo.environment["BEAMTRACE_BENCH_DIR"] ?? "/tmp/beamtrace-bench"
    static var traceFile: String { directory + "/replay.trc" }
    static var capture: String { directory + "/replay.btrace" }
    /// Loop iterations; each makes 2 call events, 2 return_from, 1 send, 1 receive.
    static let iterations = 1_700_000

    static let workload = """
    -module(bt_replay_bench).
    -export([make/2, count/1, work/1]).
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
    count(File) ->
        Self = self(),
        T0 = erlang:monotonic_time(),
        dbg:trace_client(file, File, {fun(end_of_trace, N) -> Self ! {count, N}, N; (_, N) -> N + 1 end, 0}),
        receive {count, N} ->
            T = erlang:convert_time_unit(erlang:monotonic_time() - T0, native, microsecond),
            io:format("~p ~p~n", [N, T])
        end.
    """

    static func run(_ arguments: [String]) throws -> String {
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
            let source = directory + "/bt_replay_bench.erl"
            try workload.write(toFile: source, atomically: true, encoding: .utf8)
            let erlc = Process()
            erlc.executableURL = URL(fileURLWithPath: "/usr/bin/erlc")
            erlc.arguments = ["-o", directory, source]
            try erlc.run()
            erlc.waitUntilExit()
            _ = try run(["-eval", "bt_replay_bench:make(\"\(traceFile)\", \(iterations)), halt()."])
        }
        if !fm.fileExists(atPath: capture) {
            _ = try Importer().run(sources: [traceFile], output: capture)
        }
    }
}

let benchmarks: @Sendable () -> Void = {
    do {
        try ReplayData.prepare()
    } catch {
        print("cannot prepare the replay benchmark: \(error)")
        return
    }
    let events = (try? CaptureReader(opening: ReplayData.capture))?.blocks.reduce(0) { $0 + Int($1.count) } ?? 0
    print("replay capture: \(events) events")

    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .peakMemoryResident, .mallocCountTotal],
        timeUnits: .milliseconds,
        maxDuration: .seconds(60),
        maxIterations: 3
    )

    // One iteration replays the whole capture: events/s = events / wall clock.
    Benchmark("beamtrace replay: stacks + histograms + queues") { benchmark in
        guard let reader = try? CaptureReader(opening: ReplayData.capture) else { return }
        let analysis = try? CaptureAnalysis.run(reader)
        blackHole(analysis?.latency.functions.count)
    }

    // One iteration: OTP's dbg:trace_client counting the same events from the dbg file (the erl
    // VM's own timing is printed too, without its start-up).
    Benchmark("OTP dbg:trace_client counting the same events") { benchmark in
        let output = (try? ReplayData.run(["-eval", "bt_replay_bench:count(\"\(ReplayData.traceFile)\"), halt()."])) ?? ""
        print("dbg:trace_client (count, microseconds inside erl): \(output.trimmingCharacters(in: .whitespacesAndNewlines))")
    }
}
