%% Hangs reproduced on purpose, and the same system healthy: the workload of the shipped hang
%% captures (traces/record-demo) and of the live hang tests. start/2 waits until the node is
%% traced (`beamtrace record` has switched tracing on), runs one scenario next to a healthy kv
%% server with clients, and writes what it did to a truth file: the pids it made and its own
%% clock readings (erlang:monotonic_time(nanosecond)) at the moments that matter.
-module(demo_hang).
-behaviour(gen_server).
-export([start/2, start/3, txn/1, block/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

%% Scenario: stuck_call | deadlock | frozen_queue | selective_receive | healthy | timeout |
%% callee_died | workers | otp | cluster | multi_call | erpc | monitors | monitors_via.
start(Scenario, TruthFile) -> start(Scenario, TruthFile, []).

%% Options: `now` runs the scenario at once (a hang already under way when recording starts).
start(Scenario, TruthFile, Options) ->
    spawn(fun() ->
                  case proplists:get_bool(now, Options) of
                      true -> ok;
                      false -> wait_traced(), timer:sleep(200)
                  end,
                  Truth = run(Scenario, Options),
                  ok = file:write_file(TruthFile, [io_lib:format("~p.~n", [T]) || T <- Truth]),
                  %% Then idle in a receive, as processes do by design.
                  receive stop -> ok end
          end),
    ok.

wait_traced() ->
    case erlang:trace_info(new, flags) of
        {flags, []} -> timer:sleep(10), wait_traced();
        _ -> ok
    end.

%% Until the recorder has switched tracing on at Peer too (nodes are attached one after another).
wait_traced(Peer) ->
    case rpc:call(Peer, erlang, trace_info, [new, flags]) of
        {flags, [_ | _]} -> ok;
        _ -> timer:sleep(10), wait_traced(Peer)
    end.

now_ns() -> erlang:monotonic_time(nanosecond).
pid(P) -> pid_to_list(P).

%% ---- scenarios ----

%% A client calls front, whose handle_call calls backend, which waits forever inside its
%% handle_call; a second client's call to front waits in front's queue.
run(stuck_call, _) ->
    Kv = healthy_kv(),
    {ok, Backend} = gen_server:start({local, backend}, ?MODULE, backend, []),
    {ok, Front} = gen_server:start({local, front}, ?MODULE, front, []),
    T0 = now_ns(),
    A = spawn(fun() -> gen_server:call(front, {lookup, 42}, infinity) end),
    timer:sleep(50),
    B = spawn(fun() -> gen_server:call(front, {lookup, 7}, infinity) end),
    [{kv, pid(Kv)}, {backend, pid(Backend)}, {front, pid(Front)}, {client_a, pid(A)}, {client_b, pid(B)},
     {t_call, T0}];

%% Three gen_servers whose handle_call each call the next: a client's ping goes round and never
%% comes back.
run(deadlock, _) ->
    Kv = healthy_kv(),
    {ok, A} = gen_server:start({local, ring_a}, ?MODULE, {ring, ring_b}, []),
    {ok, B} = gen_server:start({local, ring_b}, ?MODULE, {ring, ring_c}, []),
    {ok, C} = gen_server:start({local, ring_c}, ?MODULE, {ring, ring_a}, []),
    T0 = now_ns(),
    Client = spawn(fun() -> gen_server:call(ring_a, ping, infinity) end),
    [{kv, pid(Kv)}, {ring_a, pid(A)}, {ring_b, pid(B)}, {ring_c, pid(C)}, {client, pid(Client)}, {t_call, T0}];

%% A server blocks in a receive inside handle_cast; five more casts wait in its queue, and
%% nothing else arrives.
run(frozen_queue, _) ->
    Kv = healthy_kv(),
    {ok, F} = gen_server:start({local, frozen}, ?MODULE, frozen, []),
    gen_server:cast(frozen, hold),
    [gen_server:cast(frozen, {work, I}) || I <- lists:seq(1, 5)],
    T0 = now_ns(),
    [{kv, pid(Kv)}, {frozen, pid(F)}, {frozen_len, 5}, {t_frozen, T0}];

%% A process waits for {wanted, _} while a producer sends it {unwanted, _}: its queue grows and
%% it never runs.
run(selective_receive, _) ->
    Kv = healthy_kv(),
    Picky = spawn(fun picky/0),
    register(picky, Picky),
    Producer = spawn(fun() -> unwanted(picky, 1) end),
    [{kv, pid(Kv)}, {picky, pid(Picky)}, {producer, pid(Producer)}, {t_start, now_ns()}];

%% Calls that time out (catch gen_server:call(S, R, 50) on a server that takes 150 ms; the late
%% replies arrive after).
run(timeout, _) ->
    Kv = healthy_kv(),
    {ok, Slow} = gen_server:start({local, slowpoke}, ?MODULE, slowpoke, []),
    Caller = self(),
    %% The caller stays alive after its timed-out calls, idle in a receive.
    P = spawn(fun() -> Caller ! {timeouts, timeouts(4, 0)}, receive stop -> ok end end),
    N = receive {timeouts, Count} -> Count end,
    [{kv, pid(Kv)}, {slowpoke, pid(Slow)}, {caller, pid(P)}, {timeouts, N}];

%% Calls whose callee dies while they wait: the caller gets the monitor's 'DOWN' and goes on.
run(callee_died, _) ->
    Kv = healthy_kv(),
    Caller = self(),
    P = spawn(fun() -> Caller ! {downs, downs(4, 0)}, receive stop -> ok end end),
    N = receive {downs, Count} -> Count end,
    [{kv, pid(Kv)}, {caller, pid(P)}, {downs, N}];

%% A pool of workers blocked in receive by design, given a job now and then.
run(workers, _) ->
    Kv = healthy_kv(),
    Workers = [spawn(fun worker/0) || _ <- lists:seq(1, 4)],
    [begin [W ! {job, self(), I} || W <- Workers], [receive {done, W} -> ok end || W <- Workers] end
     || I <- lists:seq(1, 3)],
    [{kv, pid(Kv)}, {workers, [pid(W) || W <- Workers]}];

%% OTP's own machinery at work: an application started and stopped, a supervisor starting a
%% child whose init takes 300 ms, timers, logger, code loading, pg.
run(otp, _) ->
    Kv = healthy_kv(),
    {ok, Sup} = supervisor:start_link({local, demo_sup}, ?MODULE, []),
    {ok, _} = supervisor:start_child(demo_sup, #{id => slow_child, start => {gen_server, start_link,
                                                                             [?MODULE, {slow_init, 300}, []]}}),
    {ok, TRef} = timer:send_interval(50, tick),
    _ = application:start(sasl),
    _ = application:stop(sasl),
    logger:notice("demo_hang: otp scenario"),
    _ = code:ensure_loaded(lists),
    _ = pg:start(pg),
    ok = pg:join(demo_group, self()),
    timer:sleep(300),
    _ = timer:cancel(TRef),
    [{kv, pid(Kv)}, {sup, pid(Sup)}];

%% Transactions that abort as mnesia's do under lock contention ({aborted, {cyclic, ...}}, each
%% with its own lock), others that fail with badarg, the rest commit.
run(exceptions, _) ->
    Kv = healthy_kv(),
    Results = [catch ?MODULE:txn(I) || I <- lists:seq(1, 30)],
    Cyclic = length([R || {'EXIT', {aborted, {cyclic, _, _, _}}} = R <- Results]),
    Badarg = length([R || {'EXIT', {badarg, _}} = R <- Results]),
    [{kv, pid(Kv)}, {cyclic, Cyclic}, {badarg, Badarg}, {committed, length([ok || ok <- Results])}];

%% A queue that grows: sink takes 3 ms per cast (a sleep: a traced busy loop would flood the
%% trace) while four producers cast every 2 ms.
run(overload, _) ->
    Kv = healthy_kv(),
    {ok, Sink} = gen_server:start({local, sink}, ?MODULE, sink, []),
    Producers = [spawn(fun() -> produce(sink) end) || _ <- lists:seq(1, 4)],
    [{kv, pid(Kv)}, {sink, pid(Sink)}, {producers, [pid(P) || P <- Producers]}];

%% A process whose heap grows past a million words 1.2 s into the scenario, near the end of a
%% 2 s recording (system_monitor large_heap with --large-heap 1000000).
run(big_heap, _) ->
    Kv = healthy_kv(),
    Parent = self(),
    Big = spawn(fun() ->
                        timer:sleep(1200),
                        T = now_ns(),
                        L = lists:seq(1, 1500000),
                        Parent ! {grown, T},
                        receive stop -> length(L) end
                end),
    T0 = receive {grown, T} -> T end,
    [{kv, pid(Kv)}, {big, pid(Big)}, {t_grow, T0}];

%% A node of the cluster: a ping-pong server; with {peers, Nodes}, clients call the other nodes'
%% servers, each message carrying a unique id; with {join, Node, AfterMs} this node connects to
%% Node (joining the cluster) after AfterMs.
run(cluster, Options) ->
    {ok, Server} = gen_server:start({local, pp}, ?MODULE, pp, []),
    Joined = case proplists:get_value(join, Options) of
                 {JoinNode, After} ->
                     timer:sleep(After),
                     true = net_kernel:connect_node(JoinNode),
                     [{t_join, now_ns()}];
                 undefined -> []
             end,
    Peers = proplists:get_value(peers, Options, []),
    Calls = cluster_calls(Peers, proplists:get_value(rounds, Options, 50)),
    [{pp, pid(Server)}, {calls, Calls} | Joined];

%% gen_server:multi_call across nodes: every node runs an `mc` server, which never answers on the
%% node started with {mc, stuck}. The caller node ({mc, caller}, {peers, Nodes}) first makes a
%% multi_call that finishes (to the answering servers), then one client multi_calls every peer with
%% infinity and another with a 60 s timeout (through multi_call's middleman, which it monitors).
run(multi_call, Options) ->
    Role = proplists:get_value(mc, Options, answer),
    {ok, Server} = gen_server:start({local, mc}, ?MODULE, {mc, Role}, []),
    case Role of
        caller ->
            Peers = proplists:get_value(peers, Options, []),
            [wait_for(Peer, mc) || Peer <- Peers],
            [wait_traced(Peer) || Peer <- Peers, not proplists:get_bool(now, Options)],
            Answering = [N || N <- Peers, rpc:call(N, sys, get_state, [mc]) =:= {mc, answer}],
            {Done, []} = gen_server:multi_call(Answering, mc, {ask, done}, infinity),
            T0 = now_ns(),
            A = spawn(fun() -> gen_server:multi_call(Peers, mc, {ask, 1}, infinity) end),
            B = spawn(fun() -> gen_server:multi_call(Peers, mc, {ask, 2}, 60000) end),
            timer:sleep(100),
            {monitors, [{process, Middleman}]} = process_info(B, monitors),
            [{mc, pid(Server)}, {caller_inf, pid(A)}, {caller_mm, pid(B)}, {middleman, pid(Middleman)},
             {t_call, T0}, {done_replies, length(Done)}];
        _ ->
            [{mc, pid(Server)}]
    end;

%% erpc from this node to {peer, Node}: a call that returns, then one that never does
%% (demo_hang:block/1 on the peer, which writes its own pid and clock to the peer's truth file).
run(erpc, Options) ->
    case proplists:get_value(peer, Options) of
        undefined ->
            [];
        Peer ->
            wait_for(Peer, init),
            proplists:get_bool(now, Options) orelse wait_traced(Peer),
            Finished = erpc:call(Peer, erlang, node, [], 5000),
            T0 = now_ns(),
            Stuck = spawn(fun() -> erpc:call(Peer, ?MODULE, block, [proplists:get_value(peer_truth, Options)],
                                             infinity) end),
            timer:sleep(100),
            [{caller, pid(Stuck)}, {t_call, T0}, {finished, Finished}]
    end;

%% A client that monitors two other processes, then calls a server stuck in its handle_call, by
%% name: with the hang under way before the recording, only the samples show whom it calls.
%% monitors_via: the same call through {via, global, demo_backend}: its stack then holds neither
%% the server's pid nor a registered name, and the callee is one of the three it monitors.
run(Monitors, _) when Monitors =:= monitors; Monitors =:= monitors_via ->
    Kv = healthy_kv(),
    {ok, Backend} = gen_server:start({local, backend}, ?MODULE, backend, []),
    Dest = case Monitors of
               monitors -> backend;
               monitors_via -> yes = global:register_name(demo_backend, Backend), {via, global, demo_backend}
           end,
    Watched = [spawn(fun() -> receive stop -> ok end end) || _ <- [1, 2]],
    T0 = now_ns(),
    Client = spawn(fun() ->
                           [erlang:monitor(process, W) || W <- Watched],
                           gen_server:call(Dest, {fetch, 1}, infinity)
                   end),
    [{kv, pid(Kv)}, {backend, pid(Backend)}, {client, pid(Client)}, {watched, [pid(W) || W <- Watched]},
     {t_call, T0}];

%% The system of the hang scenarios, healthy: kv with clients, front and backend answering,
%% workers in receive, a timed-out call, a callee that died, OTP's timers.
run(healthy, _) ->
    Kv = healthy_kv(),
    {ok, _} = gen_server:start({local, backend}, ?MODULE, {backend, answering}, []),
    {ok, _} = gen_server:start({local, front}, ?MODULE, front, []),
    {ok, _} = gen_server:start({local, slowpoke}, ?MODULE, slowpoke, []),
    Workers = [spawn(fun worker/0) || _ <- lists:seq(1, 3)],
    Front = spawn(fun() -> front_client(40) end),
    T = timeouts(2, 0),
    D = downs(2, 0),
    [W ! {job, self(), 1} || W <- Workers],
    [receive {done, W} -> ok end || W <- Workers],
    [{kv, pid(Kv)}, {front_client, pid(Front)}, {timeouts, T}, {downs, D}].

%% ---- helpers ----

txn(I) when I rem 3 =:= 0 -> exit({aborted, {cyclic, node(), {accounts, I}, write}});
txn(I) when I rem 3 =:= 1 -> erlang:error(badarg);
txn(_) -> ok.

healthy_kv() ->
    {ok, Kv} = gen_server:start({local, kv}, ?MODULE, kv, []),
    [spawn(fun() -> kv_client(I) end) || I <- [1, 2]],
    Kv.

kv_client(I) ->
    Key = rand:uniform(20),
    ok = gen_server:call(kv, {put, Key, I}, 5000),
    _ = gen_server:call(kv, {get, Key}),
    timer:sleep(10),
    kv_client(I).

front_client(0) -> ok;
front_client(N) ->
    {ok, _} = gen_server:call(front, {lookup, N}, 1000),
    timer:sleep(5),
    front_client(N - 1).

timeouts(0, N) -> N;
timeouts(K, N) ->
    case catch gen_server:call(slowpoke, nap, 50) of
        {'EXIT', {timeout, _}} -> timer:sleep(150), timeouts(K - 1, N + 1);
        _ -> timeouts(K - 1, N)
    end.

downs(0, N) -> N;
downs(K, N) ->
    {ok, S} = gen_server:start(?MODULE, doomed, []),
    spawn(fun() -> timer:sleep(30), exit(S, kill) end),
    case catch gen_server:call(S, wait, infinity) of
        {'EXIT', {killed, _}} -> downs(K - 1, N + 1);
        _ -> downs(K - 1, N)
    end.

produce(To) ->
    gen_server:cast(To, {event, erlang:unique_integer([positive])}),
    timer:sleep(2),
    produce(To).

worker() ->
    receive
        {job, From, _} -> timer:sleep(2), From ! {done, self()}, worker()
    end.

picky() ->
    receive
        {wanted, _} -> picky()
    end.

unwanted(To, I) ->
    To ! {unwanted, I},
    timer:sleep(2),
    unwanted(To, I + 1).

cluster_calls([], _) -> 0;
cluster_calls(Peers, Rounds) ->
    %% Each node starts its scenario when it is traced, a little apart: wait for the peers' servers.
    [wait_for_pp(Peer) || Peer <- Peers],
    lists:sum([begin
                   Peer = lists:nth(1 + (R rem length(Peers)), Peers),
                   Id = {node(), erlang:unique_integer([positive])},
                   {pong, Id} = gen_server:call({pp, Peer}, {ping, Id}, 5000),
                   timer:sleep(5),
                   1
               end || R <- lists:seq(1, Rounds)]).

wait_for(Peer, Name) ->
    case rpc:call(Peer, erlang, whereis, [Name]) of
        P when is_pid(P) -> ok;
        _ -> timer:sleep(20), wait_for(Peer, Name)
    end.

%% The callee of the stuck erpc call: says who and when it is, then waits for ever.
block(TruthFile) ->
    ok = file:write_file(TruthFile, io_lib:format("~p.~n~p.~n", [{callee, pid(self())}, {t_block, now_ns()}])),
    receive never_sent -> ok end.

wait_for_pp(Peer) ->
    case rpc:call(Peer, erlang, whereis, [pp]) of
        P when is_pid(P) -> ok;
        _ -> timer:sleep(20), wait_for_pp(Peer)
    end.

%% ---- gen_server and supervisor callbacks ----

init([]) -> {ok, {#{strategy => one_for_one}, []}};
init({slow_init, Ms}) -> timer:sleep(Ms), {ok, slow_child};
init(State) -> {ok, State}.

handle_call({put, Key, Value}, _From, kv) -> put(Key, Value), {reply, ok, kv};
handle_call({get, Key}, _From, kv) -> {reply, get(Key), kv};
handle_call({lookup, Key}, _From, front) -> {reply, gen_server:call(backend, {fetch, Key}, infinity), front};
handle_call({fetch, Key}, _From, {backend, answering} = S) -> timer:sleep(1), {reply, {ok, Key}, S};
handle_call({fetch, _}, _From, backend) ->
    %% Waits for a message nobody sends: the hang.
    receive never_sent -> {reply, ok, backend} end;
handle_call(ping, _From, {ring, Next} = S) -> {reply, gen_server:call(Next, ping, infinity), S};
handle_call(nap, _From, slowpoke) -> timer:sleep(150), {reply, ok, slowpoke};
handle_call(wait, _From, doomed) -> receive never_sent -> {reply, ok, doomed} end;
handle_call({ping, Id}, _From, pp) -> {reply, {pong, Id}, pp};
handle_call({ask, _}, _From, {mc, stuck} = S) ->
    %% Never answers: the multi_call waits for this server for ever.
    receive never_sent -> {reply, ok, S} end;
handle_call({ask, N}, _From, {mc, _} = S) -> {reply, {answer, N}, S}.

handle_cast({event, _}, sink) ->
    timer:sleep(3),
    {noreply, sink};
handle_cast(hold, frozen) ->
    %% Waits for a release nobody sends, while more casts queue up behind it.
    receive release -> {noreply, frozen} end;
handle_cast(_, State) -> {noreply, State}.

handle_info(_, State) -> {noreply, State}.
