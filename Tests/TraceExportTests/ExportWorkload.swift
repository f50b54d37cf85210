// A workload of the export tests' own, run in a real erl and traced with OTP's dbg file port: a
// registered gen_server whose calls nest a traced helper (and one that raises and is caught), two
// clients calling it, and a pinger whose messages an echo process receives. It writes its own
// counts (calls made, messages sent) next to the trace.
import CaptureStore
import Foundation
import TestSupport

enum ExportWorkload {
    static let source = #"""
    -module(bt_export).
    -behaviour(gen_server).
    -export([run/3, store/2, work/1, init/1, handle_call/3, handle_cast/2]).

    store(K, V) -> timer:sleep(1), {K, V}.
    work(boom) -> erlang:error(boom).

    init([]) -> {ok, #{}}.
    handle_call({put, K, V}, _From, S) -> {reply, ok, maps:put(K, store(K, V), S)};
    handle_call(boom, _From, S) -> {reply, (catch work(boom)), S}.
    handle_cast(_, S) -> {noreply, S}.

    run(Dir, Calls, Pings) ->
        Trace = filename:join(Dir, "trace.trc"),
        {ok, _} = dbg:tracer(port, dbg:trace_port(file, Trace)),
        {ok, _} = dbg:p(new, [call, send, 'receive', procs, monotonic_timestamp]),
        [{ok, _} = dbg:tpl(?MODULE, F, A, [{'_', [], [{exception_trace}]}])
         || {F, A} <- [{handle_call, 3}, {store, 2}, {work, 1}]],
        {ok, Kv} = gen_server:start({local, kv}, ?MODULE, [], []),
        Parent = self(),
        Clients = [spawn(fun() ->
                       [ok = gen_server:call(kv, {put, {C, I}, I}) || I <- lists:seq(1, Calls)],
                       Parent ! {self(), done}
                   end) || C <- [1, 2]],
        [receive {C, done} -> ok end || C <- Clients],
        {'EXIT', {boom, _}} = gen_server:call(kv, boom),
        Echo = spawn(fun Loop() -> receive {ping, _} -> Loop(); stop -> ok end end),
        Pinger = spawn(fun() -> [Echo ! {ping, I} || I <- lists:seq(1, Pings)], Echo ! stop end),
        Ref = monitor(process, Echo),
        receive {'DOWN', Ref, _, _, _} -> ok end,
        timer:sleep(20),
        dbg:flush_trace_port(),
        dbg:stop_clear(),
        ok = file:write_file(filename:join(Dir, "truth.txt"), io_lib:format("~p.~n",
            [#{kv => pid_to_list(Kv), echo => pid_to_list(Echo), pinger => pid_to_list(Pinger),
               clients => [pid_to_list(C) || C <- Clients], calls => Calls, pings => Pings}])).
    """#

    struct Run {
        var directory: URL
        var capture: String
        var truth: String

        /// `kv => "<0.85.0>"` from the truth map.
        func pid(_ key: String) -> String? {
            guard let range = truth.range(of: key + " => \"") else { return nil }
            return String(truth[range.upperBound...].prefix { $0 != "\"" })
        }

        func integer(_ key: String) -> Int? {
            guard let range = truth.range(of: key + " => ") else { return nil }
            return Int(truth[range.upperBound...].prefix { $0.isNumber })
        }
    }

    static func run(calls: Int = 50, pings: Int = 200) throws -> Run {
        let directory = try Erlang.temporaryDirectory("bt-export")
        try Erlang.compile(module: "bt_export", source: source, in: directory)
        guard let erl = Erlang.executable("erl") else { throw ErlangError.notInstalled }
        try Shell.run(erl, ["-noshell", "-pa", directory.path, "-eval",
                            "bt_export:run(\"\(directory.path)\", \(calls), \(pings)), erlang:halt(0)."],
                      timeout: 120, workingDirectory: directory)
        let capture = directory.appendingPathComponent("capture").path
        _ = try Importer().run(sources: [directory.appendingPathComponent("trace.trc").path], output: capture)
        let truth = try String(contentsOf: directory.appendingPathComponent("truth.txt"), encoding: .utf8)
        return Run(directory: directory, capture: capture, truth: truth)
    }
}
