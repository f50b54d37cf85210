%% beamtrace agent: loaded onto a traced node for one recording session (compiled there from this
%% source over RPC), it is the node-local tracer. It collects trace messages and ships them in
%% batches to the recorder as one term_to_binary of the list (oldest first; a run of dropped
%% messages is one {beamtrace_drop, Count} element), samples queues, forwards system_monitor
%% messages, protects the node with bounds, and removes every trace flag and pattern it set on
%% every way out -- including the recorder vanishing, after which it also unloads itself.
%%
%% Why a list and not trace-port frames (<<0, Size:32, term_to_binary(Msg)>> each): one
%% term_to_binary per batch costs the tracer about half of one per message plus the binary append
%% (0.58 vs 1.17 us per message measured on OTP 25), and the tracer is the bottleneck of live
%% recording. Each list element is exactly the term a trace port would have written, so the
%% recorder feeds the same trace-message decoder. Oldest first (one lists:reverse of the batch, a
%% BIF: a few ns per message) lets the recorder decode each element where it lies, in one walk.
%%
%% Processes: the controller (monitors the recorder, owns system_monitor, samples, cleans up) and
%% the tracer (hot loop: receive, encode, batch, send; linked to the controller).
%%
%% Messages to the recorder:
%%   {beamtrace_batch, Tracer, Seq, Binary}          term_to_binary([Oldest, ..., Newest]);
%%                                                   acked with {beamtrace_ack, Seq} to Tracer
%%   {beamtrace_samples, Controller, Time, Procs, Totals}
%%   {beamtrace_monitor, Controller, Time, PidOrPort, Tag, Info}
%%   {beamtrace_stopping, Controller, Reason}        the agent decided to stop (limit, overload)
%%   {beamtrace_done, Tracer, Stats}                 the tracer's last batch has been sent
%%   {beamtrace_stopped, Controller, Reason, Stats}  everything switched off; unloading follows
-module(beamtrace_agent).
-export([start/2, compile_ms/3, loaded_info/0, guard/1, names/1, cut_message/2]).
-export([controller_init/3, tracer_init/2, guard_init/1]).

%% No macros: the source is compiled on the node with erl_scan/erl_parse/compile:forms (no epp).
%% Events between slow-path checks: 2000. Drops between mailbox checks: 1000. Rate window: 100 ms.

%% ---------------------------------------------------------------------------------------------
%% API (called over rpc)

%% Starts a session. Config is a map (see defaults/0). Returns {ok, #{controller, tracer, matched,
%% release}} or {error, Reason}, in which case nothing is left switched on.
start(Recorder, Config0) when is_pid(Recorder), is_map(Config0) ->
    Config = maps:merge(defaults(), Config0),
    Parent = self(),
    Ref = make_ref(),
    Controller = proc_lib:spawn(beamtrace_agent, controller_init, [Parent, Ref, {Recorder, Config}]),
    MRef = erlang:monitor(process, Controller),
    receive
        {Ref, Reply} ->
            erlang:demonitor(MRef, [flush]),
            Reply;
        {'DOWN', MRef, process, Controller, Why} ->
            {error, {agent_crashed, Why}}
    after 30000 ->
        exit(Controller, kill),
        {error, start_timeout}
    end.

%% Compiles "fun([ArgsText]) when GuardText -> Actions end" into a match spec with the node's own
%% ms_transform. Actions: a list of atoms (return, exception, caller, process_dump).
compile_ms(ArgsText, GuardText, Actions) ->
    Body = case [action_text(A) || A <- Actions] of
               [] -> "true";
               Texts -> lists:join(", ", Texts)
           end,
    Guard = case GuardText of
                "" -> "";
                _ -> [" when ", GuardText]
            end,
    %% dbg's fun2ms takes the argument list as the fun's one parameter.
    Source = lists:flatten(["fun([", ArgsText, "])", Guard, " -> ", Body, " end."]),
    try
        {ok, Tokens, _} = erl_scan:string(Source),
        {ok, [Fun]} = erl_parse:parse_exprs(Tokens),
        {'fun', _, {clauses, Clauses}} = Fun,
        case ms_transform:transform_from_shell(dbg, Clauses, []) of
            {error, [{_, [{_, Mod, Desc} | _]} | _], _} ->
                {error, lists:flatten(Mod:format_error(Desc))};
            {error, _, _} = E ->
                {error, lists:flatten(io_lib:format("~p", [E]))};
            MS when is_list(MS) ->
                {ok, MS}
        end
    catch
        _:{badmatch, {error, {_, M, D}, _}} -> {error, lists:flatten(M:format_error(D))};
        _:{badmatch, {error, {_, M, D}}} -> {error, lists:flatten(M:format_error(D))};
        C:R -> {error, lists:flatten(io_lib:format("~p:~p", [C, R]))}
    end.

action_text(return) -> "return_trace()";
action_text(exception) -> "exception_trace()";
action_text(caller) -> "message(caller())";
action_text(process_dump) -> "message(process_dump())".

%% Whether an agent runs on this node now (for tests and for refusing a second session): running
%% (a controller), guarded (loaded for a recorder that is still connected), or none (an orphan
%% nobody will unload: the recorder may remove it).
loaded_info() ->
    case {whereis(beamtrace_agent), whereis(beamtrace_agent_guard)} of
        {undefined, undefined} -> none;
        {undefined, Guard} -> {guarded, Guard};
        {Pid, _} -> {running, Pid}
    end.

%% Called right after loading: a process that unloads the module when the recorder vanishes before
%% a controller runs (a start that failed halfway, a connection dropped by the node). Once a
%% controller runs it cleans up and unloads on its own; unloading (by anyone) kills the guard.
guard(Recorder) when is_pid(Recorder) ->
    Self = self(),
    Pid = spawn(beamtrace_agent, guard_init, [{Self, Recorder}]),
    receive {Pid, Reply} -> Reply after 10000 -> exit(Pid, kill), {error, guard_timeout} end.

guard_init({From, Recorder}) ->
    group_leader(whereis(init), self()),
    case catch register(beamtrace_agent_guard, self()) of
        true ->
            MRef = erlang:monitor(process, Recorder),
            From ! {self(), {ok, self()}},
            receive {'DOWN', MRef, process, _, _} -> guard_down(50) end;
        _ ->
            From ! {self(), {error, {already_guarded, whereis(beamtrace_agent_guard)}}}
    end.

%% Gives a controller (which watches the recorder too) up to 10 s to clean up and unload.
guard_down(0) ->
    unload();
guard_down(N) ->
    case whereis(beamtrace_agent) of
        undefined -> unload();
        _ -> receive after 200 -> guard_down(N - 1) end
    end.

%% Registered names and proc_lib initial calls of the given processes (all when the list is all):
%% [{Pid, RegisteredName | [], InitialCall | []}] for those that have one or the other. Selectors
%% as in the procs option (all, existing, new, pids, names).
names(Selectors) ->
    Pids = lists:usort(lists:flatmap(fun(all) -> erlang:processes();
                                        (existing) -> erlang:processes();
                                        (new) -> [];
                                        (P) when is_pid(P) -> [P];
                                        (N) when is_atom(N) -> [P || P <- [whereis(N)], is_pid(P)]
                                     end, Selectors)),
    lists:foldl(fun(P, Acc) ->
                        case process_name(P) of
                            {[], []} -> Acc;
                            {Name, Initial} -> [{P, Name, Initial} | Acc]
                        end
                end, [], Pids).

process_name(P) ->
    case erlang:process_info(P, [registered_name, dictionary]) of
        [{registered_name, Name}, {dictionary, Dict}] ->
            Initial = case lists:keyfind('$initial_call', 1, Dict) of
                          {_, {M, F, A}} when is_atom(M), is_atom(F), is_integer(A) -> {M, F, A};
                          _ -> []
                      end,
            {Name, Initial};
        _ ->
            {[], []}
    end.

defaults() ->
    #{patterns => [],               % [{M, F, A, MatchSpec, local | global}]
      procs => [all],               % all | new | existing | Pid | RegisteredName
      flags => [call, arity],       % erlang:trace/3 flags (no tracer, no timestamp)
      timestamp => monotonic_timestamp,
      batch_events => 4000,
      batch_ms => 5,
      max_in_flight => 8,
      max_pending => 50000,         % events held while the recorder is behind; beyond: drop
      max_rate => 0,                % events/s, 0 = none
      max_events => 0,              % 0 = none
      soft_queue => 50000,          % tracer mailbox: drop above this
      hard_queue => 500000,         % tracer mailbox: stop tracing above this
      sample_ms => 100,             % 0 = no sampling
      sample_top => 50,
      system_monitor => true,
      long_gc => 100,
      long_schedule => 100,
      large_heap => 8388608,        % words
      payload_limit => 256}.        % bytes of a message's payload terms; beyond: cut (see cut/2)

%% ---------------------------------------------------------------------------------------------
%% Controller

-record(c, {recorder, rmon, config, tracer, own = [], patterns = [], prev_monitor = none, monitor_set = false,
            samples_prev = #{}, sample_timer, stopping = false, release}).

controller_init(Parent, Ref, {Recorder, Config}) ->
    process_flag(trap_exit, true),
    process_flag(priority, high),
    group_leader(whereis(init), self()),
    case catch register(beamtrace_agent, self()) of
        true ->
            RMon = erlang:monitor(process, Recorder),
            Tracer = proc_lib:spawn_link(beamtrace_agent, tracer_init, [self(), {Recorder, Config}]),
            %% The tracer's helpers exist before any flag is set, so they are untraced like us.
            Helpers = receive {tracer_ready, Tracer, Hs} -> Hs after 10000 -> [] end,
            S0 = #c{recorder = Recorder, rmon = RMon, config = Config, tracer = Tracer, own = [Tracer | Helpers],
                    release = erlang:system_info(otp_release)},
            %% Before any process flag is set: every trace timestamp of this node comes after it.
            Since = erlang:monotonic_time(nanosecond),
            case catch install(S0) of
                {ok, S1, Matched} ->
                    Parent ! {Ref, {ok, #{controller => self(), tracer => Tracer, matched => Matched,
                                          tracing_since => Since,
                                          release => list_to_binary(S1#c.release)}}},
                    S2 = start_sampling(S1),
                    controller_loop(S2);
                Error ->
                    Reason = case Error of
                                 {error, R, _} -> R;
                                 {error, R} -> R;
                                 {'EXIT', R} -> {crashed, R};
                                 Other -> Other
                             end,
                    S1 = case Error of
                             {error, _, SPartial} -> SPartial;
                             _ -> S0
                         end,
                    cleanup(S1),
                    unlink(Tracer),
                    exit(Tracer, kill),
                    Parent ! {Ref, {error, Reason}}
            end;
        _ ->
            Parent ! {Ref, {error, {already_running, whereis(beamtrace_agent)}}}
    end.

%% Sets patterns, then process flags, then the system monitor. Any failure: {error, Reason}, and
%% the caller cleans whatever was set (patterns are recorded before they are set).
install(S0) ->
    #{patterns := Patterns, procs := Procs, flags := Flags0, timestamp := TS} = S0#c.config,
    {S1, Matched} = install_patterns(Patterns, S0, []),
    Flags = [{tracer, S1#c.tracer}, TS | Flags0],
    Own = [self() | S1#c.own] ++ [G || G <- [whereis(beamtrace_agent_guard)], is_pid(G)],
    case install_procs(Procs, Flags, Own) of
        ok ->
            S2 = install_monitor(S1),
            {ok, S2, Matched};
        {error, R} ->
            throw({error, R, S1})
    end.

install_patterns([], S, Acc) ->
    {S, lists:reverse(Acc)};
install_patterns([{M, F, A, MS, Scope} | Rest], S, Acc) ->
    case code:ensure_loaded(M) of
        {module, M} -> ok;
        {error, Why} -> throw({error, {no_module, M, Why}, S})
    end,
    S1 = S#c{patterns = [{M, F, A} | S#c.patterns]},
    N = try erlang:trace_pattern({M, F, A}, MS, [Scope])
        catch error:badarg -> throw({error, {bad_match_spec, {M, F, A}}, S1})
        end,
    case N of
        0 -> throw({error, {no_match, {M, F, A}}, S1});
        _ -> install_patterns(Rest, S1, [N | Acc])
    end.

install_procs([], _Flags, _Own) ->
    ok;
install_procs([P | Rest], Flags, Own) ->
    Target = case P of
                 all -> all;
                 new -> new;
                 existing -> existing;
                 Pid when is_pid(Pid) -> Pid;
                 Name when is_atom(Name) ->
                     case whereis(Name) of
                         undefined -> {error, {no_process, Name}};
                         Pid -> Pid
                     end
             end,
    case Target of
        {error, _} = E -> E;
        _ ->
            Result = try erlang:trace(Target, true, Flags)
                     catch error:badarg -> {error, {trace_failed, P}}
                     end,
            case Result of
                {error, _} = E2 -> E2;
                _ ->
                    [catch erlang:trace(O, false, [all]) || O <- Own, Target =/= new],
                    install_procs(Rest, Flags, Own)
            end
    end.

install_monitor(S = #c{config = #{system_monitor := false}}) ->
    S;
install_monitor(S = #c{config = C}) ->
    Opts0 = [{long_gc, maps:get(long_gc, C)}, {long_schedule, maps:get(long_schedule, C)},
             {large_heap, maps:get(large_heap, C)}, busy_port, busy_dist_port],
    Opts = case catch list_to_integer(S#c.release) of
               R when is_integer(R), R >= 27 -> [{long_message_queue, {100, 1000}} | Opts0];
               _ -> Opts0
           end,
    Prev = erlang:system_monitor(self(), Opts),
    S#c{prev_monitor = Prev, monitor_set = true}.

start_sampling(S = #c{config = #{sample_ms := 0}}) ->
    S;
start_sampling(S = #c{config = #{sample_ms := Ms}}) ->
    self() ! sample_tick,
    S#c{sample_timer = Ms}.

controller_loop(S) ->
    receive
        sample_tick when S#c.stopping =:= false ->
            S1 = sample(S),
            erlang:send_after(S#c.sample_timer, self(), sample_tick),
            controller_loop(S1);
        sample_tick ->
            controller_loop(S);
        {monitor, Who, Tag, Info} ->
            S#c.recorder ! {beamtrace_monitor, self(), erlang:monotonic_time(nanosecond), Who, Tag, Info},
            controller_loop(S);
        {beamtrace_stop, Reason} ->
            finish(S, Reason, false);
        {tracer_stop, Reason} ->
            S#c.recorder ! {beamtrace_stopping, self(), Reason},
            finish(S, Reason, false);
        {'DOWN', Ref, process, _, Why} when Ref =:= S#c.rmon ->
            finish(S, {recorder_lost, Why}, true);
        {'EXIT', Tracer, Why} when Tracer =:= S#c.tracer ->
            S#c.recorder ! {beamtrace_stopping, self(), {tracer_crashed, Why}},
            cleanup(S),
            S#c.recorder ! {beamtrace_stopped, self(), {tracer_crashed, Why}, #{}},
            unload();
        _ ->
            controller_loop(S)
    end.

%% Switches everything off, lets the tracer send its last batch, reports, and (when the recorder
%% is gone) unloads the module. The recorder unloads it otherwise (and checks).
finish(S, Reason, RecorderLost) ->
    cleanup(S),
    Ref = erlang:trace_delivered(all),
    receive {trace_delivered, all, Ref} -> ok after 5000 -> ok end,
    Tracer = S#c.tracer,
    Tracer ! {finish, self(), RecorderLost},
    Stats = receive
                {tracer_finished, Tracer, St} -> St;
                {'EXIT', Tracer, Why} -> #{tracer_exit => Why}
            after 10000 ->
                exit(Tracer, kill),
                #{tracer_exit => timeout}
            end,
    case RecorderLost of
        true -> unload();
        false ->
            S#c.recorder ! {beamtrace_stopped, self(), Reason, Stats},
            %% The recorder unloads us; if it vanishes first, do it ourselves.
            receive
                {'DOWN', Ref2, process, _, _} when Ref2 =:= S#c.rmon -> unload()
            after 30000 -> unload()
            end
    end.

cleanup(S) ->
    Tracer = S#c.tracer,
    case catch erlang:trace_info(new, tracer) of
        {tracer, Tracer} -> catch erlang:trace(new, false, [all]);
        _ -> ok
    end,
    [catch erlang:trace(P, false, [all]) || P <- erlang:processes(), traced_by(P, Tracer)],
    [begin
         catch erlang:trace_pattern(MFA, false, [local]),
         catch erlang:trace_pattern(MFA, false, [global])
     end || MFA <- S#c.patterns],
    case S#c.monitor_set of
        true ->
            case erlang:system_monitor() of
                {Self, _} when Self =:= self() ->
                    case S#c.prev_monitor of
                        {PrevPid, PrevOpts} when is_pid(PrevPid) ->
                            case is_process_alive(PrevPid) of
                                true -> erlang:system_monitor(PrevPid, PrevOpts);
                                false -> erlang:system_monitor(undefined)
                            end;
                        _ -> erlang:system_monitor(undefined)
                    end;
                _ -> ok
            end;
        false -> ok
    end,
    ok.

traced_by(P, Tracer) ->
    case catch erlang:trace_info(P, tracer) of
        {tracer, Tracer} -> true;
        _ -> false
    end.

%% Purges and deletes this module. Whatever still runs its code is killed by the last purge (that
%% includes us; nothing is left to do by then).
unload() ->
    catch unregister(beamtrace_agent),
    catch code:purge(beamtrace_agent),
    catch code:delete(beamtrace_agent),
    spawn(code, purge, [beamtrace_agent]),
    exit(normal).

%% ---------------------------------------------------------------------------------------------
%% Sampler (runs in the controller)

sample(S = #c{config = C}) ->
    Time = erlang:monotonic_time(nanosecond),
    Top = maps:get(sample_top, C),
    Own = [self() | S#c.own],
    {Queues, Waiting} = lists:foldl(
               fun(P, {Qs, Ws}) ->
                       case erlang:process_info(P, [message_queue_len, current_function, initial_call]) of
                           [{message_queue_len, L}, {current_function, F}, {initial_call, I}] ->
                               {case L > 0 of true -> [{L, P} | Qs]; false -> Qs end,
                                case waits_in_call(F) orelse I =:= {erpc, execute_call, 4} of
                                    true -> [P | Ws];
                                    false -> Ws
                                end};
                           _ -> {Qs, Ws}
                       end
               end, {[], []}, erlang:processes() -- Own),
    Chosen = lists:sublist(lists:reverse(lists:sort(Queues)), Top),
    ChosenPids = [P || {_, P} <- Chosen],
    %% Processes blocked in a gen call or erpc call (whatever their queue), with the processes
    %% they monitor (the callees, when local), and the processes running an erpc call for another
    %% node (erpc:execute_call/4, the callees of erpc): hangs that began before the session show here.
    Waiters = lists:sublist(Waiting, Top),
    Callees = [Callee || P <- Waiters, Callee <- monitored(P), node(Callee) =:= node()],
    Extra = (lists:usort(Waiters ++ Callees) -- ChosenPids) -- Own,
    Procs = [describe(P, L) || {L, P} <- Chosen] ++ [describe(P, queue_len(P)) || P <- Extra],
    Now = maps:from_list([{P, true} || P <- ChosenPids ++ Extra]),
    %% A process reported before and not now: its queue drained (or it died), report 0 once.
    Drained = [describe(P, 0) || P <- maps:keys(S#c.samples_prev), not maps:is_key(P, Now)],
    Totals = #{process_count => erlang:system_info(process_count),
               memory_total => erlang:memory(total),
               run_queue => erlang:statistics(total_run_queue_lengths)},
    S#c.recorder ! {beamtrace_samples, self(), Time, Procs ++ Drained, Totals},
    S#c{samples_prev = Now}.

waits_in_call({gen, do_call, 4}) -> true;
waits_in_call({erpc, call, 5}) -> true;
waits_in_call(_) -> false.

monitored(P) ->
    case erlang:process_info(P, monitors) of
        {monitors, Ms} -> [M || {process, M} <- Ms, is_pid(M)];
        _ -> []
    end.

%% A caller in gen:do_call/4 that monitors several processes: which one it calls. Its stack says:
%% the frames of the call (gen:do_call, gen:call, gen_server:call...) hold the callee's pid, its
%% registered name or {Name, Node}. Exactly one monitored process named in the top frames is the
%% callee (call_to); otherwise nothing is claimed.
call_to(P, Monitors, Info) when length(Monitors) > 1 ->
    case erlang:process_info(P, backtrace) of
        {backtrace, Text} ->
            Top = iolist_to_binary(lists:join(<<"\n\n">>, lists:sublist(binary:split(Text, <<"\n\n">>, [global]), 3))),
            case [M || {process, M} <- Monitors, named_in(Top, M)] of
                [Callee] -> Info#{call_to => Callee};
                _ -> Info
            end;
        _ -> Info
    end;
call_to(_, _, Info) -> Info.

named_in(Text, P) when is_pid(P) ->
    binary:match(Text, list_to_binary(pid_to_list(P))) =/= nomatch orelse
        (node(P) =:= node() andalso
         case erlang:process_info(P, registered_name) of
             {registered_name, Name} -> binary:match(Text, <<" ", (atom_to_binary(Name))/binary, "\n">>) =/= nomatch;
             _ -> false
         end);
named_in(Text, {Name, Node}) when is_atom(Name), is_atom(Node) ->
    binary:match(Text, list_to_binary(io_lib:format("~w", [{Name, Node}]))) =/= nomatch;
named_in(_, _) -> false.

queue_len(P) ->
    case erlang:process_info(P, message_queue_len) of
        {message_queue_len, L} -> L;
        _ -> 0
    end.

describe(P, L) ->
    Keys = [current_function, memory, reductions, registered_name, initial_call, status, monitors],
    case erlang:process_info(P, Keys) of
        undefined ->
            {P, 0, undefined, #{message_queue_len => 0}};
        Info ->
            M0 = maps:from_list(Info),
            %% proc_lib processes all start in proc_lib:init_p/5; their real one is $initial_call.
            M = case maps:get(initial_call, M0, undefined) of
                    {proc_lib, init_p, 5} -> M0#{initial_call => proc_lib:translate_initial_call(P)};
                    _ -> M0
                end,
            Current = maps:get(current_function, M, undefined),
            M1 = case waits_in_call(Current) of
                     true -> call_to(P, maps:get(monitors, M, []), M);
                     false -> M
                 end,
            {P, L, Current, maps:remove(current_function, M1#{message_queue_len => L})}
    end.

%% ---------------------------------------------------------------------------------------------
%% Tracer: the hot loop keeps (Acc, N, Left, S): Acc the batch (newest first), N its length, Left
%% the events granted until the next slow-path check (granted holds what was granted, so
%% sent = granted - Left on the way out).

-record(t, {recorder, controller, seq = 0, in_flight = 0, max_in_flight, batch, max_pending,
            sent = 0, granted = 0, max_events, dropped = 0, pending_drop = 0, win_allow, win_used = 0,
            soft_q, hard_q, drop_reason = none, drops = #{}, batches = 0, bytes = 0, over_limit = 0,
            stopping = false, payload_limit = 256}).

tracer_init(Controller, {Recorder, C}) ->
    process_flag(priority, high),
    process_flag(message_queue_data, off_heap),
    group_leader(whereis(init), self()),
    Rate = maps:get(max_rate, C),
    WinAllow = case Rate of
                   0 -> infinity;
                   _ -> max(1, Rate * 100 div 1000)
               end,
    S = #t{recorder = Recorder, controller = Controller,
           max_in_flight = maps:get(max_in_flight, C), batch = maps:get(batch_events, C),
           max_pending = maps:get(max_pending, C),
           max_events = case maps:get(max_events, C) of 0 -> infinity; N -> N end,
           win_allow = WinAllow, soft_q = maps:get(soft_queue, C), hard_q = maps:get(hard_queue, C),
           payload_limit = maps:get(payload_limit, C)},
    Flush = ticker_start(maps:get(batch_ms, C), flush_tick),
    Rates = case WinAllow of
                infinity -> [];
                _ -> [ticker_start(100, rate_tick)]
            end,
    Controller ! {tracer_ready, self(), [Flush | Rates]},
    {Left, S1} = grant(S),
    tloop([], 0, Left, S1).

ticker_start(Ms, Msg) ->
    Self = self(),
    spawn_link(fun() -> ticker(Self, Ms, Msg) end).

ticker(To, Ms, Msg) ->
    receive after Ms -> ok end,
    To ! Msg,
    ticker(To, Ms, Msg).

grant(S) ->
    L0 = 2000,
    L1 = case S#t.win_allow of
             infinity -> L0;
             W -> min(L0, W - S#t.win_used)
         end,
    L = case S#t.max_events of
            infinity -> L1;
            Max -> min(L1, Max - S#t.sent)
        end,
    L2 = max(0, L),
    {L2, S#t{granted = L2}}.

account(S, Left) ->
    Used = S#t.granted - Left,
    S#t{sent = S#t.sent + Used, win_used = S#t.win_used + Used, granted = Left}.

tloop(Acc, N, Left, S) when Left > 0 ->
    receive
        Msg when element(1, Msg) =:= trace_ts; element(1, Msg) =:= trace; element(1, Msg) =:= seq_trace ->
            case N + 1 >= S#t.batch of
                true -> tflush_full([Msg | Acc], N + 1, Left - 1, S);
                false -> tloop([Msg | Acc], N + 1, Left - 1, S)
            end;
        Other ->
            tcontrol(Other, Acc, N, Left, S)
    end;
tloop(Acc, N, Left, S) ->
    tcheck(Acc, N, account(S, Left)).

%% The slow path: limits, rate window, the tracer's own mailbox.
tcheck(Acc, N, S) ->
    {message_queue_len, Q} = erlang:process_info(self(), message_queue_len),
    if
        S#t.max_events =/= infinity, S#t.sent >= S#t.max_events ->
            over_limit(Acc, N, S);
        Q > S#t.hard_q ->
            S#t.controller ! {tracer_stop, {overload, tracer_queue, Q}},
            tdrop(Acc, N, 0, S#t{drop_reason = overload, stopping = true});
        Q > S#t.soft_q ->
            tdrop(Acc, N, 0, S#t{drop_reason = queue});
        S#t.win_allow =/= infinity, S#t.win_used >= S#t.win_allow ->
            tdrop(Acc, N, 0, S#t{drop_reason = rate});
        true ->
            {Left, S1} = grant(S),
            tloop(Acc, N, Left, S1)
    end.

tflush_full(Acc, N, Left, S) ->
    case S#t.in_flight < S#t.max_in_flight of
        true ->
            tloop([], 0, Left, send_batch(Acc, S));
        false when N >= S#t.max_pending ->
            tdrop(Acc, N, 0, (account(S, Left))#t{drop_reason = backpressure});
        false ->
            tloop(Acc, N, Left, S)
    end.

send_batch([], S) ->
    S;
send_batch(Acc, S) ->
    Seq = S#t.seq + 1,
    %% Acc is newest first (consed as the messages come); the batch goes oldest first.
    Batch = lists:reverse(Acc),
    Bin = bounded_batch(Batch, term_to_binary(Batch), S#t.payload_limit),
    S#t.recorder ! {beamtrace_batch, self(), Seq, Bin},
    S#t{seq = Seq, in_flight = S#t.in_flight + 1, batches = S#t.batches + 1,
        bytes = S#t.bytes + byte_size(Bin)}.

tcontrol(flush_tick, Acc, N, Left, S) ->
    case S#t.in_flight < S#t.max_in_flight of
        true -> tloop([], 0, Left, send_batch(Acc, S));
        false -> tloop(Acc, N, Left, S)
    end;
tcontrol({beamtrace_ack, _Seq}, Acc, N, Left, S) ->
    S1 = S#t{in_flight = max(0, S#t.in_flight - 1)},
    case N >= S1#t.batch of
        true -> tloop([], 0, Left, send_batch(Acc, S1));
        false -> tloop(Acc, N, Left, S1)
    end;
tcontrol(rate_tick, Acc, N, Left, S) ->
    S1 = (account(S, Left))#t{win_used = 0},
    {Left1, S2} = grant(S1),
    tloop(Acc, N, Left1, S2);
tcontrol({finish, Controller, RecorderLost}, Acc, _N, Left, S) ->
    tfinish(Acc, Controller, RecorderLost, account(S, Left));
tcontrol(_Other, Acc, N, Left, S) ->
    tloop(Acc, N, Left, S).

tfinish(Acc, Controller, RecorderLost, S) ->
    %% Trace messages queued before {finish, ...} were delivered before trace_delivered returned.
    {Acc1, S1} = drain(Acc, S),
    Acc2 = with_drops(Acc1, S1),
    S2 = case RecorderLost of
             true -> S1;
             false -> send_batch(Acc2, S1)
         end,
    Stats = #{sent => S2#t.sent, batches => S2#t.batches, bytes => S2#t.bytes, dropped => S2#t.dropped,
              drops => S2#t.drops, over_limit => S2#t.over_limit},
    case RecorderLost of
        true -> ok;
        false -> S2#t.recorder ! {beamtrace_done, self(), Stats}
    end,
    Controller ! {tracer_finished, self(), Stats},
    unlink(Controller),
    exit(normal).

drain(Acc, S) ->
    receive
        Msg when element(1, Msg) =:= trace_ts; element(1, Msg) =:= trace; element(1, Msg) =:= seq_trace ->
            if
                S#t.max_events =/= infinity, S#t.sent >= S#t.max_events ->
                    drain(Acc, S#t{over_limit = S#t.over_limit + 1});
                S#t.stopping; S#t.drop_reason =/= none ->
                    drain(Acc, note_drop(S));
                true ->
                    drain([Msg | Acc], S#t{sent = S#t.sent + 1})
            end
    after 0 ->
        {Acc, S}
    end.

note_drop(S) ->
    R = S#t.drop_reason,
    S#t{dropped = S#t.dropped + 1, pending_drop = S#t.pending_drop + 1,
        drops = maps:update_with(R, fun(V) -> V + 1 end, 1, S#t.drops)}.

with_drops(Acc, #t{pending_drop = 0}) ->
    Acc;
with_drops(Acc, S) ->
    [{beamtrace_drop, S#t.pending_drop} | Acc].

%% Past max_events: the controller switches tracing off; what still comes is counted, not sent.
over_limit(Acc, N, S) ->
    case S#t.stopping of
        true -> ok;
        false -> S#t.controller ! {tracer_stop, {limit, max_events, S#t.sent}}
    end,
    tover(Acc, N, S#t{stopping = true}).

tover(Acc, N, S) ->
    receive
        Msg when element(1, Msg) =:= trace_ts; element(1, Msg) =:= trace; element(1, Msg) =:= seq_trace ->
            tover(Acc, N, S#t{over_limit = S#t.over_limit + 1});
        {finish, Controller, RecorderLost} ->
            tfinish(Acc, Controller, RecorderLost, S);
        {beamtrace_ack, _} ->
            S1 = S#t{in_flight = max(0, S#t.in_flight - 1)},
            tover([], 0, send_batch(Acc, S1));
        flush_tick when S#t.in_flight < S#t.max_in_flight ->
            tover([], 0, send_batch(Acc, S));
        _ ->
            tover(Acc, N, S)
    end.

%% Drop mode: discard and count trace messages until the reason has passed (K counts drops
%% since the last mailbox check).
tdrop(Acc, N, K, S) ->
    receive
        Msg when element(1, Msg) =:= trace_ts; element(1, Msg) =:= trace; element(1, Msg) =:= seq_trace ->
            S1 = note_drop(S),
            case K + 1 >= 1000 of
                true -> tdrop_check(Acc, N, S1);
                false -> tdrop(Acc, N, K + 1, S1)
            end;
        {finish, Controller, RecorderLost} ->
            tfinish(Acc, Controller, RecorderLost, S);
        {beamtrace_ack, _} ->
            S1 = S#t{in_flight = max(0, S#t.in_flight - 1)},
            S2 = send_batch(Acc, S1),
            case S#t.drop_reason of
                backpressure -> resume([], 0, S2);
                _ -> tdrop([], 0, K, S2)
            end;
        flush_tick when S#t.in_flight < S#t.max_in_flight, S#t.drop_reason =:= backpressure ->
            resume([], 0, send_batch(Acc, S));
        flush_tick when S#t.in_flight < S#t.max_in_flight ->
            tdrop([], 0, K, send_batch(Acc, S));
        rate_tick when S#t.drop_reason =:= rate ->
            resume(Acc, N, S#t{win_used = 0});
        rate_tick ->
            tdrop(Acc, N, K, S#t{win_used = 0});
        _ ->
            tdrop(Acc, N, K, S)
    end.

tdrop_check(Acc, N, S) ->
    case S#t.stopping of
        true -> tdrop(Acc, N, 0, S);
        false ->
            {message_queue_len, Q} = erlang:process_info(self(), message_queue_len),
            if
                Q > S#t.hard_q ->
                    S#t.controller ! {tracer_stop, {overload, tracer_queue, Q}},
                    tdrop(Acc, N, 0, S#t{drop_reason = overload, stopping = true});
                S#t.drop_reason =:= queue, Q < S#t.soft_q div 2 -> resume(Acc, N, S);
                true -> tdrop(Acc, N, 0, S)
            end
    end.

resume(Acc, N, S) ->
    case S#t.stopping of
        true -> tdrop(Acc, N, 0, S);
        false ->
            Acc1 = with_drops(Acc, S),
            S1 = S#t{pending_drop = 0, drop_reason = none},
            {Left, S2} = grant(S1),
            tloop(Acc1, N + 1, Left, S2)
    end.

%% ---------------------------------------------------------------------------------------------
%% Cutting oversized payloads (the same rules as BeamTerm's TermCut.swift, which cuts at import).
%% The hot loop pays one size comparison per batch: only a batch bigger than its events could be
%% with payloads within the limit is looked at message by message, and its big messages are cut to
%% what io_lib:format("~P", [Term, Depth]) shows of them, for the largest Depth =< 20 that fits
%% the limit. Such a message travels as {beamtrace_cut, Depth, TraceTuple}. The cut itself walks
%% at most a budget of nodes per attempt (never the whole of a huge term).

bounded_batch(Acc, Bin, Limit) ->
    case byte_size(Bin) > length(Acc) * (Limit + 256) of
        false -> Bin;
        true -> term_to_binary([cut_message(M, Limit) || M <- Acc])
    end.

cut_message(Msg, Limit) when is_tuple(Msg), tuple_size(Msg) >= 4,
                             (element(1, Msg) =:= trace orelse element(1, Msg) =:= trace_ts) ->
    Slots = payload_slots(Msg),
    Terms = [slot_get(Msg, Slot) || Slot <- Slots],
    case Terms =/= [] andalso payload_size(Terms) > Limit of
        false ->
            Msg;
        true ->
            {D, Cut} = cut_terms(Terms, Limit - 2, 0, 20, [cut_mark() || _ <- Terms]),
            {beamtrace_cut, D, lists:foldl(fun({Slot, T}, M) -> slot_put(M, Slot, T) end, Msg,
                                           lists:zip(Slots, Cut))}
    end;
cut_message(Msg, _Limit) ->
    Msg.

payload_size(Terms) -> lists:sum([erlang:external_size(T) - 1 || T <- Terms]).

%% The elements the recorder's decoder keeps as the payload: {I} an element, {I, J} element J of
%% the tuple at element I.
payload_slots(Msg) ->
    Last = case element(1, Msg) of
               trace_ts -> tuple_size(Msg) - 1;
               trace -> tuple_size(Msg)
           end,
    Extra = [{I} || I <- lists:seq(5, Last)],
    case element(3, Msg) of
        call when is_tuple(element(4, Msg)), tuple_size(element(4, Msg)) =:= 3 ->
            case is_list(element(3, element(4, Msg))) of
                true -> [{4, 3} | Extra];
                false -> Extra
            end;
        Tag when Tag =:= return_from; Tag =:= exception_from -> [{I} || I <- lists:seq(5, Last)];
        Tag when Tag =:= send; Tag =:= send_to_non_existing_process -> [{I} || I <- lists:seq(4, Last)];
        Tag when Tag =:= 'receive'; Tag =:= exit -> [{4}];
        Tag when Tag =:= spawn; Tag =:= spawned ->
            case Last >= 5 andalso is_tuple(element(5, Msg)) andalso tuple_size(element(5, Msg)) =:= 3 of
                true -> [{5, 3}];
                false -> []
            end;
        Tag when Tag =:= gc_minor_start; Tag =:= gc_minor_end; Tag =:= gc_major_start;
                 Tag =:= gc_major_end; Tag =:= gc_max_heap_size -> [{4}];
        _ -> []
    end.

slot_get(Msg, {I}) -> element(I, Msg);
slot_get(Msg, {I, J}) -> element(J, element(I, Msg)).

slot_put(Msg, {I}, T) -> setelement(I, Msg, T);
slot_put(Msg, {I, J}, T) -> setelement(I, Msg, setelement(J, element(I, Msg), T)).

cut_mark() -> '$beamtrace_cut'.

%% The largest depth in Low..High whose cut fits Limit bytes (binary search; sizes grow with depth).
cut_terms(_Terms, _Limit, Low, High, Best) when Low >= High ->
    {Low, Best};
cut_terms(Terms, Limit, Low, High, Best) ->
    Mid = (Low + High + 1) div 2,
    case catch [cut(T, Mid, Limit) || T <- Terms] of
        Cut when is_list(Cut) ->
            case payload_size(Cut) =< Limit of
                true -> cut_terms(Terms, Limit, Mid, High, Cut);
                false -> cut_terms(Terms, Limit, Low, Mid - 1, Best)
            end;
        _ ->
            cut_terms(Terms, Limit, Low, Mid - 1, Best)
    end.

%% cut(Term, Depth, Budget): Term cut to ~P depth Depth; throws too_big after Budget nodes.
cut(T, D, Budget) ->
    put(beamtrace_cut_budget, Budget),
    try cut(T, D) after erase(beamtrace_cut_budget) end.

spend() ->
    case get(beamtrace_cut_budget) of
        N when N =< 0 -> throw(too_big);
        N -> put(beamtrace_cut_budget, N - 1)
    end.

cut(T, D) when is_tuple(T) ->
    spend(),
    case tuple_size(T) of
        0 -> T;
        N ->
            Kept = min(N, D - 1),
            Es = [cut(element(I, T), D - I) || I <- lists:seq(1, Kept)],
            list_to_tuple(case Kept < N of true -> Es ++ [cut_mark()]; false -> Es end)
    end;
cut([], _D) ->
    [];
cut(L, D) when is_list(L) ->
    spend(),
    case is_string(L, 65536) of
        _ when D =:= 1 -> [cut_mark()];
        true -> cut_string(L, 4 * (D - 1), []);
        false -> cut_list(L, D)
    end;
cut(M, D) when is_map(M) ->
    spend(),
    case maps:size(M) of
        0 -> M;
        N ->
            Kept = min(N, D - 1),
            Pairs = take_pairs(maps:next(maps:iterator(M)), Kept),
            Cut = maps:from_list([{cut(K, D - 1), cut(V, D - 1)} || {K, V} <- Pairs]),
            case Kept < N of
                true -> Cut#{cut_mark() => cut_mark()};
                false -> Cut
            end
    end;
cut(B, D) when is_bitstring(B) ->
    spend(),
    cut_binary(B, D);
cut(T, _D) ->
    T.

take_pairs(_, 0) -> [];
take_pairs(none, _) -> [];
take_pairs({K, V, I}, N) -> [{K, V} | take_pairs(maps:next(I), N - 1)].

%% Elements I (from 1) at depth D - I while the running depth is above 1; then the mark. An
%% improper tail goes at the running depth - 1.
cut_list(L, D) when D =< 1, L =/= [] -> cut_mark();
cut_list([], _D) -> [];
cut_list([H | T], D) -> spend(), [cut(H, D - 1) | cut_list(T, D - 1)];
cut_list(Tail, D) -> cut(Tail, D - 1).

%% A proper list of printable latin1 characters (io_lib's printable_latin1_list), which ~P prints
%% whole; past Max elements it is taken for one.
is_string([], _Max) -> true;
is_string(_, 0) -> true;
is_string([C | T], Max) when is_integer(C) ->
    printable_char(C) andalso is_string(T, Max - 1);
is_string(_, _Max) -> false.

printable_char(C) ->
    (C >= 32 andalso C =< 126) orelse (C >= 160 andalso C =< 255) orelse (C >= 8 andalso C =< 13)
        orelse C =:= 27.

%% A printable string: whole up to N characters; longer, its first N with the mark as the tail.
cut_string([], _N, Acc) -> lists:reverse(Acc);
cut_string(_, 0, Acc) -> lists:reverse(Acc, cut_mark());
cut_string([C | T], N, Acc) -> cut_string(T, N - 1, [C | Acc]).

cut_bin_mark(Prefix) -> {cut_mark(), binary, Prefix}.

cut_binary(<<>> = B, _D) ->
    B;
cut_binary(_B, 1) ->
    cut_bin_mark(<<>>);
cut_binary(B, D) when bit_size(B) rem 8 =/= 0 ->
    %% A bit string is never text to ~P: it shows D - 1 bytes.
    D1 = D - 1,
    case byte_size(B) =< D1 of
        true -> B;
        false -> <<P:D1/binary, _/bitstring>> = B, cut_bin_mark(P)
    end;
cut_binary(B, D) ->
    D1 = D - 1,
    Size = byte_size(B),
    Shown = min(4 * D1, Size),
    Printable = printable_bytes(B, 0, Shown),
    if
        Printable =:= Shown, Shown =:= Size -> B;
        Printable =:= Shown -> cut_bin_mark(binary:part(B, 0, Shown));
        Printable >= D1 -> cut_bin_mark(binary:part(B, 0, Printable));
        Size =< D1 -> B;
        true -> cut_bin_mark(binary:part(B, 0, D1))
    end.

printable_bytes(B, I, N) when I < N ->
    case printable_char(binary:at(B, I)) of
        true -> printable_bytes(B, I + 1, N);
        false -> I
    end;
printable_bytes(_B, I, _N) ->
    I.
