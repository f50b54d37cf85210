%% A slow dependency and the same system with the fix, for `beamtrace report --vs`: clients call a
%% `frontend` gen_server, whose every request asks a `backend` gen_server, which takes ~8 ms per
%% lookup (a slow database, say). With the fix (`start(fixed, _)`) the frontend keeps what it got
%% in an ETS cache, so only the first request for a key goes to the backend.
-module(demo_slowcall).
-behaviour(gen_server).
-export([start/2, lookup/1, fetch/1]).
-export([init/1, handle_call/3, handle_cast/2]).

%% Runs the workload untraced for Seconds (for `beamtrace record` from outside), then halts.
start(Mode, Seconds) ->
    {ok, _} = gen_server:start({local, backend}, ?MODULE, backend, []),
    {ok, _} = gen_server:start({local, frontend}, ?MODULE, {frontend, Mode}, []),
    Stop = erlang:monotonic_time(millisecond) + Seconds * 1000,
    Clients = [spawn(fun() -> client(Stop, I) end) || I <- lists:seq(1, 4)],
    timer:sleep(Seconds * 1000),
    [exit(P, kill) || P <- Clients],
    erlang:halt(0).

client(Stop, I) ->
    case erlang:monotonic_time(millisecond) >= Stop of
        true -> ok;
        false ->
            _ = ?MODULE:lookup((I * 7 + erlang:unique_integer([positive])) rem 20),
            timer:sleep(2),
            client(Stop, I)
    end.

%% The API the clients call.
lookup(Key) -> gen_server:call(frontend, {get, Key}).

%% The slow dependency.
fetch(Key) -> timer:sleep(8), {value, Key}.

init(backend) -> {ok, backend};
init({frontend, Mode}) -> {ok, {Mode, ets:new(cache, [set, private])}}.

handle_call({fetch, Key}, _From, backend) -> {reply, ?MODULE:fetch(Key), backend};
handle_call({get, Key}, _From, {slow, _} = State) -> {reply, gen_server:call(backend, {fetch, Key}), State};
handle_call({get, Key}, _From, {fixed, Cache} = State) ->
    case ets:lookup(Cache, Key) of
        [{_, Value}] -> {reply, Value, State};
        [] ->
            Value = gen_server:call(backend, {fetch, Key}),
            true = ets:insert(Cache, {Key, Value}),
            {reply, Value, State}
    end.

handle_cast(_, State) -> {noreply, State}.
