// Cost per event on the axes real systems have: many traced functions, many processes. Each pair
// runs side by side in one run on real OTP traces of the same number of events:
//   latency and hang, 4 vs 10,000 vs 50,000 functions (1M events each);
//   import and read, 5 processes vs 1M processes (4M events each);
//   latency --by process on 5,000 processes vs plain latency on the same capture.
// Run: swift package --package-path Benchmarks benchmark --target Scale
// Allocation gates: swift package --package-path Benchmarks benchmark thresholds check --target Scale
// The traces are made once with erl (a generated module of N functions called round-robin, or a
// workload spawning short-lived processes; [call, monotonic_timestamp] with {return_trace}, through
// the dbg file port) and kept in $BEAMTRACE_BENCH_DIR (default /tmp/beamtrace-bench).
import Benchmark
import CaptureStore
import Foundation
import TraceAnalysis

enum ScaleData {
    static let directory = (ProcessInfo.processInfo.environment["BEAMTRACE_BENCH_DIR"] ?? "/tmp/beamtrace-bench") + "/scale"

    static let driver = """
    -module(bt_scale).
    -export([functions/3, processes/4]).
    %% Calls, round-robin, the N generated functions of Module: each call is a call and a return_from.
    functions(File, Module, Calls) ->
        N = length(Module:module_info(exports)) - 2,
        Fs = list_to_tuple([list_to_atom("f" ++ integer_to_list(I)) || I <- lists:seq(1, N)]),
        P = spawn(fun() -> receive go -> ok end, call_loop(Module, Fs, N, Calls) end),
        trace(File, [{P, [call]}], Module, P).
    call_loop(_, _, _, 0) -> ok;
    call_loop(M, Fs, N, K) -> M:(element(K rem N + 1, Fs))(K), call_loop(M, Fs, N, K - 1).
    %% Procs processes, spawned Width at a time, each calling work/1 Calls times and exiting.
    processes(File, Procs, Width, Calls) ->
        P = spawn(fun() -> receive go -> ok end, spawn_loop(Procs, Width, Calls) end),
        trace(File, [{P, [call, set_on_spawn]}], bt_scale_work, P).
    spawn_loop(0, _, _) -> ok;
    spawn_loop(Left, Width, Calls) ->
        W = min(Left, Width),
        Refs = [element(2, spawn_monitor(fun() -> work_loop(Calls) end)) || _ <- lists:seq(1, W)],
        [receive {'DOWN', R, _, _, _} -> ok end || R <- Refs],
        spawn_loop(Left - W, Width, Calls).
    work_loop(0) -> ok;
    work_loop(K) -> bt_scale_work:work(K), work_loop(K - 1).
    trace(File, Procs, Module, P) ->
        {ok, _} = dbg:tracer(port, dbg:trace_port(file, File)),
        [{ok, _} = dbg:p(Pid, [monotonic_timestamp | Flags]) || {Pid, Flags} <- Procs],
        {ok, _} = dbg:tpl(Module, '_', [{'_', [], [{return_trace}]}]),
        Ref = monitor(process, P),
        P ! go,
        receive {'DOWN', Ref, _, _, _} -> ok end,
        dbg:flush_trace_port(),
        dbg:stop_clear().
    """

    static let work = """
    -module(bt_scale_work).
    -export([work/1]).
    work(X) -> X + 1.
    """

    static func functionsModule(_ n: Int) -> String {
        var text = "-module(bt_f\(n)).\n-export([" + (1...n).map { "f\($0)/1" }.joined(separator: ",") + "]).\n"
        for i in 1...n { text += "f\(i)(X) -> X + \(i).\n" }
        return text
    }

    static func run(_ executable: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        try process.run()
        process.waitUntilExit()
    }

    static func compile(_ name: String, _ source: String) throws {
        let path = directory + "/" + name + ".erl"
        guard !FileManager.default.fileExists(atPath: directory + "/" + name + ".beam") else { return }
        try source.write(toFile: path, atomically: true, encoding: .utf8)
        try run("/usr/bin/erlc", ["-o", directory, path])
    }

    /// Each trace in a folder of its own: f4.trc beside f10000.trc would be read as one wrap set.
    static func traceFile(_ name: String) -> String { directory + "/" + name + "/trace.trc" }

    static func trace(_ name: String, _ call: String) throws -> String {
        let trc = traceFile(name), capture = directory + "/" + name + "/capture.btrace"
        try FileManager.default.createDirectory(atPath: directory + "/" + name, withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: trc) {
            try run("/usr/bin/erl", ["-noshell", "-pa", directory, "-eval", "bt_scale:\(call), halt()."])
        }
        if !FileManager.default.fileExists(atPath: capture) { _ = try Importer().run(sources: [trc], output: capture) }
        return capture
    }

    /// 500k calls (1M events) over 4, 10,000 and 50,000 functions; 4M events from 5 or from 1M
    /// processes; 5,000 processes of 10 calls for --by process.
    static func prepare() throws -> [String: String] {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try compile("bt_scale", driver)
        try compile("bt_scale_work", work)
        var captures: [String: String] = [:]
        for n in [4, 10_000, 50_000] {
            try compile("bt_f\(n)", functionsModule(n))
            captures["f\(n)"] = try trace("f\(n)", "functions(\"\(traceFile("f\(n)"))\", bt_f\(n), 500000)")
        }
        captures["p5"] = try trace("p5", "processes(\"\(traceFile("p5"))\", 5, 5, 400000)")
        captures["p1M"] = try trace("p1M", "processes(\"\(traceFile("p1M"))\", 1000000, 1000, 2)")
        captures["p5k"] = try trace("p5k", "processes(\"\(traceFile("p5k"))\", 5000, 100, 10)")
        return captures
    }

    static func events(_ capture: String) -> Int {
        (try? CaptureReader(opening: capture))?.blocks.reduce(0) { $0 + Int($1.count) } ?? 0
    }
}

let benchmarks: @Sendable () -> Void = {
    let captures: [String: String]
    do {
        captures = try ScaleData.prepare()
    } catch {
        print("cannot prepare the scale benchmark: \(error)")
        return
    }
    for name in captures.keys.sorted() { print("scale capture \(name): \(ScaleData.events(captures[name] ?? "")) events") }

    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .cpuTotal, .peakMemoryResident, .mallocCountTotal],
        timeUnits: .milliseconds,
        warmupIterations: 0,
        maxDuration: .seconds(30),
        maxIterations: 3,
        thresholds: [.mallocCountTotal: .init(relative: [.p90: 10.0])]
    )

    // As the commands run them: `latency` without the waiting model and with its JSON, `hang` with it.
    func analyze(_ capture: String, _ options: AnalysisOptions, latency: Bool) -> Int {
        var options = options
        options.followCalls = !latency
        options.trackProcesses = !latency
        guard let reader = try? CaptureReader(opening: capture),
              let analysis = try? CaptureAnalysis.run(reader, options: options) else { return 0 }
        guard latency else { return analysis.hangReport().suspects.count }
        // And its report as `latency --json` writes it (the bytes counted, not kept).
        var bytes = 0
        var json = PrettyJSON(drain: { bytes += $0.count })
        analysis.latencyTable().writeJSON(into: &json)
        json.finish()
        return bytes
    }

    // Latency of 1M events over 4, 10,000 and 50,000 functions: side by side, the same events.
    for n in [4, 10_000, 50_000] {
        guard let capture = captures["f\(n)"] else { continue }
        Benchmark("latency_\(n)_functions") { _ in
            blackHole(analyze(capture, AnalysisOptions(latency: .percentiles), latency: true))
        }
        Benchmark("hang_\(n)_functions") { _ in
            blackHole(analyze(capture, AnalysisOptions(latency: .none), latency: false))
        }
    }

    // Import and read of 4M events from 5 processes and from 1M processes.
    for name in ["p5", "p1M"] {
        guard let capture = captures[name] else { continue }
        let trc = ScaleData.traceFile(name)
        Benchmark("import_\(name)") { benchmark in
            let output = ScaleData.directory + "/import-\(name)-\(getpid()).btrace"
            benchmark.startMeasurement()
            blackHole(try? Importer().run(sources: [trc], output: output))
            benchmark.stopMeasurement()
            try? FileManager.default.removeItem(atPath: output)
        }
        Benchmark("read_\(name)") { _ in
            guard let reader = try? CaptureReader(opening: capture) else { return }
            var payloadBytes = 0
            try? reader.forEach(matching: .all) { _, payload in
                payloadBytes &+= payload.count
                return true
            }
            blackHole(payloadBytes)
        }
    }

    // --by process: a key per function and process, on 5,000 processes, beside plain latency.
    if let capture = captures["p5k"] {
        Benchmark("latency_by_process_5k_processes") { _ in
            blackHole(analyze(capture, AnalysisOptions(grouping: .process, latency: .percentiles), latency: true))
        }
        Benchmark("latency_5k_processes") { _ in
            blackHole(analyze(capture, AnalysisOptions(latency: .percentiles), latency: true))
        }
    }
}
