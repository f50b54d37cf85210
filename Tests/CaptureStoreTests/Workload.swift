// The tests' own Erlang workload: traces itself with dbg's file port, a wrap set, or the ip port,
// and counts a trace with dbg:trace_client (the reference reader) by kind and by function.
import Foundation
import TestSupport

enum Workload {
    static let module = "bt_work"

    /// `count/1`, `count_files/1`: dbg:trace_client, OTP's reference reader, counting a trace file
    /// by kind and by function, printed as `kind K N` / `mfa M:F/A N` lines (`parseCounts` reads
    /// them). Spliced into every test module that needs a reference count.
    static let counter = #"""
    count(File) -> report(dbg:trace_client(file, File, handler())).
    count_files(Files) -> [count(F) || F <- Files].

    handler() ->
        Self = self(),
        {fun(end_of_trace, Acc) -> Self ! {done, Acc}, Acc;
            (Msg, Acc) ->
                 K = case Msg of
                         {drop, _} -> drop;
                         _ when element(1, Msg) =:= seq_trace -> seq_trace;
                         _ -> element(3, Msg)
                     end,
                 Acc1 = maps:update_with({kind, K}, fun(V) -> V + 1 end, 1, Acc),
                 case K of
                     C when C =:= call; C =:= return_from; C =:= exception_from ->
                         {M, F, A} = element(4, Msg),
                         Ar = if is_list(A) -> length(A); true -> A end,
                         maps:update_with({mfa, M, F, Ar}, fun(V) -> V + 1 end, 1, Acc1);
                     _ -> Acc1
                 end
         end, #{}}.

    report(_) ->
        receive {done, Acc} ->
            [case Key of
                 {kind, K} -> io:format("kind ~s ~p~n", [K, V]);
                 {mfa, M, F, A} -> io:format("mfa ~s:~s/~p ~p~n", [M, F, A, V])
             end || {Key, V} <- lists:sort(maps:to_list(Acc))]
        after 60000 -> io:format("trace_client timed out~n")
        end.
    """#

    static let source = #"""
    -module(bt_work).
    -export([file/2, wrap/2, ip/2, add/2, fail/1, count/1, count_files/1, echo/0, integers/2]).

    add(A, B) -> A + B.
    fail(X) -> erlang:error({bad, X}).

    echo() ->
        receive
            {From, Msg} -> From ! {self(), Msg}, echo();
            stop -> ok
        end.

    loop(0, _, Acc) -> Acc;
    loop(N, Echo, Acc) ->
        Echo ! {self(), N},
        receive {Echo, M} -> ok end,
        catch fail(N),
        receive after 0 -> ok end,
        loop(N - 1, Echo, add(Acc, M)).

    work(N) -> work(N, []).
    work(N, Untraced) ->
        Echo = spawn(fun echo/0),
        register(bt_echo, Echo),
        dbg:tpl(bt_work, add, 2, [{'_', [], [{return_trace}]}]),
        dbg:tpl(bt_work, fail, 1, [{'_', [], [{exception_trace}, {message, {caller}}]}]),
        dbg:p(all, [call, send, 'receive', procs, monotonic_timestamp]),
        [dbg:p(P, clear) || P <- Untraced],
        R = loop(N, Echo, 0),
        Echo ! stop,
        A = alias(), A ! hello, receive hello -> ok end, unalias(A),
        timer:sleep(50),
        R.

    file(File, N) ->
        dbg:tracer(port, dbg:trace_port(file, File)),
        work(N),
        dbg:flush_trace_port(),
        dbg:stop_clear().

    %% Integers of every width in messages, arguments and return values: around the edges of
    %% SMALL_INTEGER_EXT, INTEGER_EXT and SMALL_BIG_EXT (1 to 8 digit bytes and beyond), both signs.
    integers(File, N) ->
        Edges = [0, 255, 256, 1 bsl 27, 1 bsl 31, 1 bsl 32, 1 bsl 40, 1 bsl 56, 1 bsl 62, (1 bsl 63) - 1,
                 1 bsl 63, 1 bsl 64, 1 bsl 100],
        Values = lists:usort([V + D || E <- Edges, V <- [E, -E], D <- [-1, 0, 1]]),
        Echo = spawn(fun echo/0),
        dbg:tracer(port, dbg:trace_port(file, File)),
        dbg:tpl(bt_work, add, 2, [{'_', [], [{return_trace}]}]),
        dbg:p(self(), [call, send, 'receive', monotonic_timestamp]),
        dbg:p(Echo, [send, 'receive', monotonic_timestamp]),
        [begin
             Echo ! {self(), {[V + K, V - K, -V + K], K, V * K}},
             receive {Echo, _} -> ok end,
             add(V, K)
         end || K <- lists:seq(1, N), V <- Values],
        Echo ! stop,
        dbg:flush_trace_port(),
        dbg:stop_clear().

    wrap(Prefix, N) ->
        dbg:tracer(port, dbg:trace_port(file, {Prefix, wrap, ".trc", 20000, 4})),
        work(N),
        dbg:flush_trace_port(),
        dbg:stop_clear().

    %% Traces to the ip port and saves the raw TCP stream to File, and its whole frames to File.whole
    %% (closing the port can leave the client a cut record; dbg:trace_client cannot read that).
    ip(File, N) ->
        dbg:tracer(port, dbg:trace_port(ip, {0, 100000})),
        {ok, Port} = dbg:trace_port_control(node(), get_listen_port),
        Self = self(),
        Collector = spawn(fun() ->
            {ok, S} = gen_tcp:connect("localhost", Port, [binary, {active, false}]),
            Self ! {connected, S},
            collect(S, File, [])
        end),
        Socket = receive {connected, S} -> S end,
        work(N, [Collector, Socket]),
        timer:sleep(300),
        dbg:stop_clear(),
        Ref = monitor(process, Collector),
        receive {'DOWN', Ref, _, _, _} -> ok end,
        {ok, Bin} = file:read_file(File),
        ok = file:write_file(File ++ ".whole", whole(Bin, [])).

    whole(<<0, Size:32, Body:Size/binary, Rest/binary>>, Acc) -> whole(Rest, [<<0, Size:32, Body/binary>> | Acc]);
    whole(<<1, Count:32, Rest/binary>>, Acc) -> whole(Rest, [<<1, Count:32>> | Acc]);
    whole(_, Acc) -> lists:reverse(Acc).

    collect(S, File, Acc) ->
        case gen_tcp:recv(S, 0, 5000) of
            {ok, Data} -> collect(S, File, [Data | Acc]);
            {error, _} -> ok = file:write_file(File, lists:reverse(Acc))
        end.

    \#(counter)
    """#

    /// Runs `bt_work:Function(Args)` in a fresh erl and returns its output.
    static func run(_ call: String) throws -> String {
        let directory = try Erlang.temporaryDirectory("bt-work")
        defer { try? FileManager.default.removeItem(at: directory) }
        try Erlang.compile(module: module, source: source, in: directory)
        guard let erl = Erlang.executable("erl") else { throw ErlangError.notInstalled }
        return try Shell.run(erl, ["-noshell", "-pa", directory.path, "-eval", "\(call), erlang:halt(0)."],
                             timeout: 180, workingDirectory: directory)
    }

    struct Counts: Equatable {
        var kinds: [String: Int] = [:]
        var functions: [String: Int] = [:]
    }

    static func parseCounts(_ output: String) -> Counts {
        var counts = Counts()
        // Several reports (one per file) add up.
        for line in output.split(separator: "\n") {
            let parts = line.split(separator: " ")
            guard parts.count == 3, let n = Int(parts[2]) else { continue }
            if parts[0] == "kind" { counts.kinds[String(parts[1]), default: 0] += n }
            if parts[0] == "mfa" { counts.functions[String(parts[1]), default: 0] += n }
        }
        return counts
    }

    /// Counts from `beamtrace info --json`.
    static func infoCounts(_ capture: String) throws -> (Counts, [String: Any]) {
        let json = try CLI.run(["info", capture, "--json"])
        guard let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else {
            throw ErlangError.failed(command: "info", status: 0, output: json)
        }
        var counts = Counts()
        counts.kinds = object["kinds"] as? [String: Int] ?? [:]
        counts.functions = object["functions"] as? [String: Int] ?? [:]
        return (counts, object)
    }
}

enum CLI {
    static func run(_ arguments: [String], stdin: Data? = nil) throws -> String {
        guard let beamtrace = BuiltProducts.executable("beamtrace") else {
            throw ErlangError.failed(command: "beamtrace", status: -1, output: "the beamtrace executable was not built")
        }
        return try Shell.run(beamtrace, arguments, stdin: stdin, timeout: 300)
    }

    static func runCapturing(_ arguments: [String], stdin: Data? = nil) throws -> Shell.Result {
        guard let beamtrace = BuiltProducts.executable("beamtrace") else {
            throw ErlangError.failed(command: "beamtrace", status: -1, output: "the beamtrace executable was not built")
        }
        return try Shell.runCapturing(beamtrace, arguments, stdin: stdin, timeout: 300)
    }
}
