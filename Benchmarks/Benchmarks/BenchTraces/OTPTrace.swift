// Real OTP traces for the benchmarks, shared by Export, Events and Replay: a workload module that
// loops calling two traced functions with return_trace and messaging an echo process (call,
// return_from, send, 'receive', monotonic_timestamp), traced through the dbg file port, imported
// once; and OTP's own reading of the same file (formatting or merely counting every event) as the
// peer to compare against.
import CaptureStore
import Foundation

/// A real OTP trace (dbg file port) and its capture, made once with erl and kept in a directory.
public struct OTPTrace: Sendable {
    public static let directory = ProcessInfo.processInfo.environment["BEAMTRACE_BENCH_DIR"] ?? "/tmp/beamtrace-bench"
    /// The Export benchmark's trace: 5.6M events.
    public static let export = OTPTrace(name: "export", iterations: 700_000)
    /// The Events benchmark's trace: 1.2M events.
    public static let events = OTPTrace(name: "events", iterations: 150_000)
    /// The Replay benchmark's trace: 13.6M events.
    public static let replay = OTPTrace(name: "replay", iterations: 1_700_000)

    public init(name: String, iterations: Int) {
        self.name = name
        self.iterations = iterations
    }

    public let name: String
    /// Loop iterations; each makes 2 call, 2 return_from, 2 send, 2 receive events.
    public let iterations: Int
    public var directory: String { Self.directory }
    public var traceFile: String { directory + "/\(name).trc" }
    public var capture: String { directory + "/\(name).btrace" }

    static let workload = """
    -module(bt_export_bench).
    -export([make/2, format/1, count/1, work/1]).
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
    %% OTP merely counting every event of the file, timed inside erl.
    count(File) ->
        Self = self(),
        T0 = erlang:monotonic_time(),
        dbg:trace_client(file, File, {fun(end_of_trace, N) -> Self ! {count, N}, N; (_, N) -> N + 1 end, 0}),
        receive {count, N} ->
            T = erlang:convert_time_unit(erlang:monotonic_time() - T0, native, microsecond),
            io:format("~p ~p~n", [N, T])
        end.
    """

    public static func erl(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/erl")
        process.arguments = ["-noshell", "-pa", Self.directory] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    /// Makes the dbg file and the capture once.
    public func prepare() throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // Compiled every time (a second): a module left by an older benchmark may lack a function.
        let source = directory + "/bt_export_bench.erl"
        try Self.workload.write(toFile: source, atomically: true, encoding: .utf8)
        let erlc = Process()
        erlc.executableURL = URL(fileURLWithPath: "/usr/bin/erlc")
        erlc.arguments = ["-o", directory, source]
        try erlc.run()
        erlc.waitUntilExit()
        if !fm.fileExists(atPath: traceFile) {
            _ = try Self.erl(["-eval", "bt_export_bench:make(\"\(traceFile)\", \(iterations)), halt()."])
        }
        // A capture imported by an older beamtrace (blocks without summaries) is opened by decoding
        // every block, which would be timed as part of each benchmark: import it again.
        if fm.fileExists(atPath: capture), (try? CaptureReader(opening: capture))?.indexSummary().summary == nil {
            try fm.removeItem(atPath: capture)
        }
        if !fm.fileExists(atPath: capture) {
            _ = try Importer().run(sources: [traceFile], output: capture)
        }
    }

    /// OTP's own text formatting of every event of the file (`dbg:trace_client` + `io_lib:format("~p~n")`),
    /// timed inside erl: "events bytes microseconds".
    public func formatWithOTP() -> String {
        ((try? Self.erl(["-eval", "bt_export_bench:format(\"\(traceFile)\"), halt()."])) ?? "")
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// OTP's `dbg:trace_client` merely counting every event of the file, timed inside erl:
    /// "events microseconds".
    public func countWithOTP() -> String {
        ((try? Self.erl(["-eval", "bt_export_bench:count(\"\(traceFile)\"), halt()."])) ?? "")
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
