%% A mailbox overload, reproduced on purpose: producers cast to demo_overload's `sink` gen_server
%% faster than it handles, until its queue is in the thousands, while clients make ordinary
%% gen_server calls to a healthy `kv` server next to it. run/2 traces it with OTP's dbg file port.
-module(demo_overload).
-behaviour(gen_server).
-export([run/2, record/1, start/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).
-export([get/1, put/2, store/2]).

%% Runs the workload untraced for Seconds (for `beamtrace record` from outside), then halts.
start(Seconds) ->
    {ok, Sink} = gen_server:start({local, sink}, ?MODULE, sink, []),
    {ok, Kv} = gen_server:start({local, kv}, ?MODULE, kv, []),
    Stop = erlang:monotonic_time(millisecond) + Seconds * 1000,
    _ = [spawn(fun() -> produce(Stop, I) end) || I <- lists:seq(1, 4)]
        ++ [spawn(fun() -> client(Stop, I) end) || I <- lists:seq(1, 2)],
    timer:sleep(Seconds * 1000),
    {message_queue_len, Len} = erlang:process_info(Sink, message_queue_len),
    io:format("sink queue at the end: ~p messages~n", [Len]),
    [exit(P, kill) || P <- [Sink, Kv]],
    erlang:halt(0).

%% Traces every process spawned from here on (calls of the callbacks and the kv API with
%% return/exception traces, sends, receives, process events) into TraceFile for Seconds.
record(TraceFile) -> run(TraceFile, 2).

run(TraceFile, Seconds) ->
    {ok, _} = dbg:tracer(port, dbg:trace_port(file, TraceFile)),
    {ok, _} = dbg:p(new, [call, send, 'receive', procs, monotonic_timestamp]),
    Spec = [{'_', [], [{exception_trace}]}],
    [{ok, _} = dbg:tpl(?MODULE, F, A, Spec) || {F, A} <- [{handle_call, 3}, {handle_cast, 2}, {get, 1}, {put, 2}, {store, 2}]],
    {ok, Sink} = gen_server:start({local, sink}, ?MODULE, sink, []),
    {ok, Kv} = gen_server:start({local, kv}, ?MODULE, kv, []),
    Stop = erlang:monotonic_time(millisecond) + Seconds * 1000,
    Workers = [spawn(fun() -> produce(Stop, I) end) || I <- lists:seq(1, 4)]
        ++ [spawn(fun() -> client(Stop, I) end) || I <- lists:seq(1, 2)],
    %% Stop tracing while the overload is still on: the capture ends inside the hang.
    timer:sleep(Seconds * 1000 - 50),
    {message_queue_len, Len} = erlang:process_info(Sink, message_queue_len),
    dbg:flush_trace_port(),
    dbg:stop_clear(),
    [exit(P, kill) || P <- [Sink, Kv | Workers]],
    io:format("sink queue at the end: ~p messages~n", [Len]).

produce(Stop, I) ->
    case erlang:monotonic_time(millisecond) >= Stop of
        true -> ok;
        false ->
            gen_server:cast(sink, {event, I, erlang:unique_integer([positive])}),
            timer:sleep(1),
            produce(Stop, I)
    end.

client(Stop, I) ->
    case erlang:monotonic_time(millisecond) >= Stop of
        true -> ok;
        false ->
            Key = rand:uniform(50),
            ok = ?MODULE:put(Key, {I, Key}),
            _ = ?MODULE:get(Key),
            timer:sleep(5),
            client(Stop, I)
    end.

get(Key) -> gen_server:call(kv, {get, Key}).
put(Key, Value) -> gen_server:call(kv, {put, Key, Value}).

store(Map, {Key, Value}) -> Map#{Key => Value}.

init(sink) -> {ok, 0};
init(kv) -> {ok, #{}}.

handle_call({get, Key}, _From, Map) -> {reply, maps:get(Key, Map, undefined), Map};
handle_call({put, Key, Value}, _From, Map) -> {reply, ok, ?MODULE:store(Map, {Key, Value})}.

%% The sink spends ~3 ms per event: four producers at ~1 event/ms each outrun it.
handle_cast({event, _, _}, N) ->
    End = erlang:monotonic_time(microsecond) + 3000,
    spin(End),
    {noreply, N + 1}.

handle_info(_, State) -> {noreply, State}.

spin(End) -> case erlang:monotonic_time(microsecond) >= End of true -> ok; false -> spin(End) end.
