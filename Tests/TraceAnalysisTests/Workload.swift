// Workloads of the tests' own, run in a real erl and traced with OTP's dbg file port. Each writes
// its own ground truth (its measured call durations, its sampled queue lengths) next to the trace.
import CaptureStore
import Foundation
import TestSupport

enum Workload {
    static let source = #"""
    -module(bt_workload).
    -behaviour(gen_server).
    -export([latency/2, stacks/1, queues/1, deadlock/1, diff/3, requests/2, owner_activity/1]).
    -export([step/1, fast/1, slow/1, fib/1, loop/1, outer/0, middle/0, inner/0, wait_forever/0]).
    -export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

    %% ---- traced functions ----
    step(Ms) -> timer:sleep(Ms), Ms.
    fast(Ms) -> timer:sleep(Ms).
    slow(Ms) -> timer:sleep(Ms).
    fib(0) -> 0;
    fib(1) -> 1;
    fib(N) -> fib(N - 1) + fib(N - 2).
    loop(0) -> done;
    loop(N) -> loop(N - 1).
    outer() -> try middle() catch error:boom -> caught end.
    middle() -> inner(), not_reached.
    inner() -> erlang:error(boom).
    wait_forever() -> receive never -> ok end.

    busy(Us) ->
        End = erlang:monotonic_time(microsecond) + Us,
        spin(End).
    spin(End) -> case erlang:monotonic_time(microsecond) >= End of true -> ok; false -> spin(End) end.

    %% ---- tracing with dbg's file port ----
    trace(File, Flags, Patterns, Fun) ->
        {ok, _} = dbg:tracer(port, dbg:trace_port(file, File)),
        {ok, _} = dbg:p(new, [monotonic_timestamp | Flags]),
        [{ok, _} = dbg:tpl(M, F, A, [{'_', [], [{exception_trace}]}]) || {M, F, A} <- Patterns],
        Result = Fun(),
        dbg:flush_trace_port(),
        dbg:stop_clear(),
        Result.

    write_terms(File, Terms) ->
        ok = file:write_file(File, [io_lib:format("~p.~n", [T]) || T <- Terms]).

    %% ---- scenarios ----
    %% Owner activity: a process runs fast/1, slow/1 and step/1 interleaved as outermost calls
    %% (fast first, slow the busiest: 6 calls of 40 ms, so also when a loaded machine stretches every
    %% sleep alike), after taking one message through its handle_info/2, while another process keeps
    %% sending to it: its queue grows to the end.
    owner_activity(Dir) ->
        {ok, _} = dbg:tracer(port, dbg:trace_port(file, filename:join(Dir, "trace.trc"))),
        Parent = self(),
        Steps = [{fast, 5}, {slow, 40}, {step, 10}, {slow, 40}, {fast, 5}, {slow, 40}, {step, 10},
                 {slow, 40}, {fast, 5}, {slow, 40}, {slow, 40}],
        Owner = spawn(fun() ->
            receive go -> ok end,
            receive {msg, _} = M -> ?MODULE:handle_info(M, state) end,
            [?MODULE:F(Ms) || {F, Ms} <- Steps],
            Parent ! {self(), done},
            receive never -> ok end
        end),
        Sender = spawn(fun() -> receive go -> ok end, keep_sending(Owner, 1) end),
        {ok, _} = dbg:p(Owner, [call, 'receive', monotonic_timestamp]),
        {ok, _} = dbg:p(Sender, [send, monotonic_timestamp]),
        [{ok, _} = dbg:tpl(?MODULE, F, A, [{'_', [], [{return_trace}]}])
         || {F, A} <- [{fast, 1}, {slow, 1}, {step, 1}, {handle_info, 2}]],
        Owner ! go, Sender ! go,
        receive {Owner, done} -> ok end,
        exit(Sender, kill),
        dbg:flush_trace_port(),
        dbg:stop_clear(),
        write_terms(filename:join(Dir, "truth.txt"),
                    [{owner, pid_to_list(Owner)}, {slow_calls, length([x || {slow, _} <- Steps])}]).
    keep_sending(To, N) ->
        To ! {msg, N},
        receive after 1 -> ok end,
        keep_sending(To, N + 1).

    %% Latency: 300 calls of step/1 sleeping 1..8 ms, each timed by the caller.
    latency(Dir, Calls) ->
        Trace = filename:join(Dir, "trace.trc"),
        Durations = trace(Trace, [call], [{?MODULE, step, 1}], fun() ->
            Parent = self(),
            P = spawn(fun() ->
                Ds = [begin
                          T0 = erlang:monotonic_time(nanosecond),
                          ?MODULE:step(1 + (I rem 8)),
                          erlang:monotonic_time(nanosecond) - T0
                      end || I <- lists:seq(1, Calls)],
                Parent ! {self(), Ds}
            end),
            receive {P, Ds} -> Ds end
        end),
        write_terms(filename:join(Dir, "truth.txt"), Durations).

    %% Stacks: recursive fib, a non-tail loop traced with return_trace, an exception caught two
    %% frames up, and a process killed inside a call.
    stacks(Dir) ->
        Trace = filename:join(Dir, "trace.trc"),
        trace(Trace, [call, procs], [{?MODULE, F, A} || {F, A} <- [{fib, 1}, {loop, 1}, {outer, 0}, {middle, 0},
                                                                        {inner, 0}, {wait_forever, 0}]], fun() ->
            Parent = self(),
            Worker = spawn(fun() ->
                55 = ?MODULE:fib(10),
                done = ?MODULE:loop(100),
                caught = ?MODULE:outer(),
                Parent ! {self(), done}
            end),
            receive {Worker, done} -> ok end,
            Victim = spawn(fun() -> ?MODULE:wait_forever() end),
            timer:sleep(50),
            exit(Victim, kill),
            timer:sleep(50),
            write_terms(filename:join(Dir, "truth.txt"), [{worker, pid_to_list(Worker)}, {victim, pid_to_list(Victim)}])
        end).

    %% Queues: producers cast to a gen_server faster than it handles; the workload samples the
    %% server's real message_queue_len every 20 ms.
    queues(Dir) ->
        Trace = filename:join(Dir, "trace.trc"),
        trace(Trace, [call, send, 'receive'], [{?MODULE, handle_cast, 2}], fun() ->
            {ok, Server} = gen_server:start(?MODULE, consumer, []),
            Parent = self(),
            Producers = [spawn(fun() -> produce(Server, 300) end) || _ <- [1, 2]],
            Samples = sample(Server, 40, []),
            [exit(P, kill) || P <- Producers],
            write_terms(filename:join(Dir, "truth.txt"), [{server, pid_to_list(Server)} | Samples]),
            exit(Server, kill),
            Parent
        end).

    produce(Server, N) ->
        [begin gen_server:cast(Server, {work, I}), timer:sleep(2) end || I <- lists:seq(1, N)].

    sample(_Server, 0, Acc) -> lists:reverse(Acc);
    sample(Server, N, Acc) ->
        timer:sleep(20),
        T0 = erlang:monotonic_time(nanosecond),
        {message_queue_len, L} = erlang:process_info(Server, message_queue_len),
        T1 = erlang:monotonic_time(nanosecond),
        sample(Server, N - 1, [{T0, T1, L} | Acc]).

    %% Deadlock: two gen_servers whose handle_call each call the other.
    deadlock(Dir) ->
        Trace = filename:join(Dir, "trace.trc"),
        trace(Trace, [call, send, 'receive'], [{?MODULE, handle_call, 3}], fun() ->
            {ok, A} = gen_server:start(?MODULE, peer, []),
            {ok, B} = gen_server:start(?MODULE, peer, []),
            ok = gen_server:call(A, {set_peer, B}),
            ok = gen_server:call(B, {set_peer, A}),
            spawn(fun() -> catch gen_server:call(A, ping, infinity) end),
            spawn(fun() -> timer:sleep(5), catch gen_server:call(B, ping, infinity) end),
            timer:sleep(300),
            write_terms(filename:join(Dir, "truth.txt"), [{a, pid_to_list(A)}, {b, pid_to_list(B)}])
        end).

    %% Diff: fast/1 and slow/1 sleep (ms); Factor multiplies slow/1's. Sleeps, not spins, so a
    %% loaded machine's preemption adds little relative noise.
    diff(Dir, Calls, Factor) ->
        Trace = filename:join(Dir, "trace.trc"),
        trace(Trace, [call], [{?MODULE, fast, 1}, {?MODULE, slow, 1}], fun() ->
            Parent = self(),
            P = spawn(fun() ->
                [begin ?MODULE:fast(2), ?MODULE:slow(round(3 * Factor)) end || _ <- lists:seq(1, Calls)],
                Parent ! {self(), done}
            end),
            receive {P, done} -> ok end
        end).

    %% Requests: 100 answered calls with 40-byte binaries in their requests, a caller stuck on a
    %% server that never answers, the rest of Calls answered calls, then a second caller stuck on
    %% the same server. Each stuck request printed by OTP (~0p) goes into the truth.
    requests(Dir, Calls) ->
        Trace = filename:join(Dir, "trace.trc"),
        trace(Trace, [send, 'receive'], [], fun() ->
            {ok, Stuck} = gen_server:start(?MODULE, peer, []),
            {ok, Echo} = gen_server:start(?MODULE, peer, []),
            Pad = binary:copy(<<"x">>, 40),
            Echoes = fun(From, To) -> [{I, Pad} = gen_server:call(Echo, {echo, I, Pad}) || I <- lists:seq(From, To)] end,
            Parent = self(),
            Client = spawn(fun() ->
                Echoes(1, 100),
                Parent ! {self(), half},
                receive go -> Echoes(101, Calls) end,
                Parent ! {self(), done}
            end),
            receive {Client, half} -> ok end,
            First = {hold, first},
            C1 = spawn(fun() -> catch gen_server:call(Stuck, First, infinity) end),
            timer:sleep(20),
            Client ! go,
            receive {Client, done} -> ok end,
            Last = {hold, [last, 45]},
            C2 = spawn(fun() -> catch gen_server:call(Stuck, Last, infinity) end),
            timer:sleep(1000),
            %% A last traced event: an imported capture ends at its last record.
            spawn(fun() -> Echo ! tick end),
            timer:sleep(50),
            write_terms(filename:join(Dir, "truth.txt"),
                        %% hang prints a request as ~P at depth 4 does.
                        [{first, pid_to_list(C1)}, {first_request, lists:flatten(io_lib:format("~P", [First, 4]))},
                         {last, pid_to_list(C2)}, {last_request, lists:flatten(io_lib:format("~P", [Last, 4]))}])
        end).

    %% ---- gen_server ----
    init(consumer) -> {ok, consumer};
    init(peer) -> {ok, undefined}.
    handle_call({set_peer, Peer}, _From, _) -> {reply, ok, Peer};
    handle_call(ping, _From, Peer) -> {reply, gen_server:call(Peer, ping, infinity), Peer};
    handle_call({echo, I, Pad}, _From, State) -> {reply, {I, Pad}, State};
    handle_call(Hold, _From, State) when element(1, Hold) =:= hold -> receive never -> {reply, ok, State} end.
    handle_cast({work, _}, State) -> busy(5000), {noreply, State}.
    handle_info(_, State) -> {noreply, State}.
    """#

    struct Run {
        var directory: URL
        var capture: String
        var truth: String
    }

    /// Runs `bt_workload:<call>` in a fresh erl, imports its trace with beamtrace's importer.
    static func run(_ call: String) throws -> Run {
        let directory = try Erlang.temporaryDirectory("bt-workload")
        try Erlang.compile(module: "bt_workload", source: source, in: directory)
        guard let erl = Erlang.executable("erl") else { throw ErlangError.notInstalled }
        let dir = directory.path
        try Shell.run(erl, ["-noshell", "-pa", dir, "-eval",
                            "bt_workload:\(call.replacingOccurrences(of: "DIR", with: "\"\(dir)\"")), erlang:halt(0)."],
                      timeout: 120, workingDirectory: directory)
        let capture = directory.appendingPathComponent("capture").path
        _ = try Importer().run(sources: [directory.appendingPathComponent("trace.trc").path], output: capture)
        let truth = (try? String(contentsOf: directory.appendingPathComponent("truth.txt"), encoding: .utf8)) ?? ""
        return Run(directory: directory, capture: capture, truth: truth)
    }

    /// `{Key, "<0.1.0>"}.` lines of a truth file.
    static func pids(_ truth: String) -> [String: String] {
        var result: [String: String] = [:]
        for line in truth.split(separator: "\n") {
            let parts = line.trimmingCharacters(in: CharacterSet(charactersIn: "{}.")).split(separator: ",", maxSplits: 1)
            guard parts.count == 2 else { continue }
            result[String(parts[0])] = parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        }
        return result
    }

    /// `{T0, T1, L}.` integer triples of a truth file.
    static func triples(_ truth: String) -> [(Int64, Int64, Int64)] {
        truth.split(separator: "\n").compactMap { line in
            let parts = line.trimmingCharacters(in: CharacterSet(charactersIn: "{}.")).split(separator: ",")
            guard parts.count == 3, let a = Int64(parts[0]), let b = Int64(parts[1]), let c = Int64(parts[2]) else { return nil }
            return (a, b, c)
        }
    }

    /// `N.` integers of a truth file.
    static func integers(_ truth: String) -> [Int64] {
        truth.split(separator: "\n").compactMap { Int64($0.trimmingCharacters(in: CharacterSet(charactersIn: ". "))) }
    }
}
