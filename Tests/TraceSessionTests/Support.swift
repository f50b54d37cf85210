// Shared by the recording tests: the tests' own workload module (known behaviour, timing itself),
// a traced node with a control connection, waiting for the agent to be tracing, checking that
// nothing is left on a node, and reading captures back.
import BeamDistribution
import BeamTerm
import CaptureStore
import Foundation
import Testing
import TestSupport
import TraceModel
import TraceSession

enum Workload {
    static let source = #"""
    -module(btwl).
    -behaviour(gen_server).
    -export([named_start/0, named_go/1, tracer_of/1, big_heap/1]).
    -export([f/1, g/1, calls/1, guarded/1, slow/1, flood/3, storm/2, spin/1, clean_report/0, traced/0]).
    -export([worker/0, work/2, work_child/2, churn/1]).
    -export([init/1, handle_call/3, handle_cast/2]).

    f(X) -> X + 1.
    g(X) -> X * 2.

    calls(N) -> calls_loop(N), N.
    calls_loop(0) -> ok;
    calls_loop(N) -> f(N), calls_loop(N - 1).

    guarded(N) -> [g(I) || I <- lists:seq(1, N)], N.

    %% A gen_server whose calls sleep the given milliseconds; returns what the caller measured (ns).
    slow(Sleeps) ->
        {ok, S} = gen_server:start(?MODULE, [], []),
        Times = [begin
                     T0 = erlang:monotonic_time(nanosecond),
                     ok = gen_server:call(S, {sleep, Ms}),
                     erlang:monotonic_time(nanosecond) - T0
                 end || Ms <- Sleeps],
        gen_server:stop(S),
        Times.
    init([]) -> {ok, nostate}.
    handle_call({sleep, Ms}, _From, State) -> timer:sleep(Ms), {reply, ok, State}.
    handle_cast(_, State) -> {noreply, State}.

    %% A producer sending one message per millisecond for Ms ms to a consumer that takes Work ms each.
    flood(Count, Every, Work) ->
        Consumer = spawn(fun() -> consume(Work) end),
        [begin Consumer ! {job, I}, timer:sleep(Every) end || I <- lists:seq(1, Count)],
        Consumer.
    consume(Work) -> receive {job, _} -> timer:sleep(Work), consume(Work) end.

    %% Procs processes each calling f/1 K times in a tight loop; returns the number of calls.
    storm(Procs, K) ->
        Parent = self(),
        Pids = [spawn(fun() -> calls_loop(K), Parent ! {done, self()} end) || _ <- lists:seq(1, Procs)],
        [receive {done, P} -> ok end || P <- Pids],
        Procs * K.

    %% Calls f/1 in a loop until told to stop (a long-running traced workload).
    spin(Pause) -> spawn(fun() -> spin_loop(Pause, 0) end).
    spin_loop(Pause, N) ->
        f(N),
        receive stop -> ok after Pause -> spin_loop(Pause, N + 1) end.

    %% A registered process that calls f/1 N times when told to.
    named_start() ->
        Pid = spawn(fun named_loop/0),
        register(btwl_named, Pid),
        Pid.
    named_loop() ->
        receive {go, N, From} -> calls_loop(N), From ! {done, self()}, named_loop() end.
    named_go(N) ->
        btwl_named ! {go, N, self()},
        receive {done, _} -> N end.

    tracer_of(Name) -> erlang:trace_info(whereis(Name), tracer).

    %% A long-lived process that calls f/1 N times when told to ({go, ...}), or spawns a child that
    %% does ({spawn_go, ...}).
    worker() -> spawn(fun worker_loop/0).
    worker_loop() ->
        receive
            {go, N, From} -> calls_loop(N), From ! {done, self()}, worker_loop();
            {spawn_go, N, From} -> spawn(fun() -> calls_loop(N), From ! {child_done, self()} end), worker_loop();
            stop -> ok
        end.
    work(Pid, N) ->
        Pid ! {go, N, self()},
        receive {done, Pid} -> N end.
    %% Returns the child's pid once it has made its N calls.
    work_child(Pid, N) ->
        Pid ! {spawn_go, N, self()},
        receive {child_done, Child} -> Child end.

    %% A process that allocates (garbage collections) and sleeps (is scheduled out and in) Rounds
    %% times; returns its pid once it is done.
    churn(Rounds) ->
        Parent = self(),
        Pid = spawn(fun() -> churn_loop(Rounds), Parent ! {churned, self()} end),
        receive {churned, Pid} -> Pid end.
    churn_loop(0) -> ok;
    churn_loop(N) -> _ = length(lists:seq(1, 20000)), timer:sleep(1), churn_loop(N - 1).

    %% A process whose heap grows past Words (a large_heap system_monitor event).
    big_heap(Words) ->
        Self = self(),
        spawn(fun() -> L = lists:seq(1, Words), timer:sleep(200), Self ! {len, length(L)} end),
        receive {len, N} -> N end.

    traced() ->
        [P || P <- erlang:processes(),
              case erlang:trace_info(P, flags) of {flags, []} -> false; undefined -> false; _ -> true end].

    clean_report() ->
        #{loaded => code:is_loaded(beamtrace_agent),
          new => erlang:trace_info(new, flags),
          f => erlang:trace_info({btwl, f, 1}, traced),
          g => erlang:trace_info({btwl, g, 1}, traced),
          handle_call => erlang:trace_info({btwl, handle_call, 3}, traced),
          system_monitor => erlang:system_monitor(),
          traced => length(traced()),
          registered => whereis(beamtrace_agent)}.
    """#

    /// The compiled workload's directory (compiled once per test process).
    static let directory: String = {
        do {
            let directory = try Erlang.temporaryDirectory("beamtrace-record-wl")
            try Erlang.compile(module: "btwl", source: source, in: directory)
            return directory.path
        } catch {
            return "/nonexistent-btwl-compile-failed: \(error)"
        }
    }()
}

/// A node with the workload loaded and a control connection of the test's own.
final class TracedNode: @unchecked Sendable {
    let node: ErlangNode
    let control: DistributionConnection

    static func start(cookie: String = Erlang.randomName("c"), extraArguments: [String] = []) async throws -> TracedNode {
        let node = try ErlangNode(cookie: cookie, extraArguments: extraArguments, codePaths: [Workload.directory],
                                  setup: "code:ensure_loaded(btwl)")
        do {
            let control = try await DistributionConnection.connect(to: node.nodeName, cookie: Cookie(node.cookie))
            return TracedNode(node: node, control: control)
        } catch {
            node.stop()
            throw error
        }
    }

    private init(node: ErlangNode, control: DistributionConnection) {
        self.node = node
        self.control = control
    }

    var name: String { node.nodeName }
    var cookie: Cookie { Cookie(node.cookie) }

    func rpc(_ module: String, _ function: String, _ arguments: [Term] = [], timeout: Duration = .seconds(60)) async throws -> Term {
        try await control.rpc(module: module, function: function, arguments: arguments, timeout: timeout)
    }

    /// Waits until the agent has set its process flags (the last step of starting).
    func waitUntilTracing(timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let reply = try await rpc("erlang", "trace_info", [.atom("new"), .atom("tracer")])
            if case .tuple(let t) = reply, t.count == 2 { if case .pid = t[1] { return }; if case .port = t[1] { return } }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestFailure("the agent did not start tracing on \(name)")
    }

    /// Waits until the registered process `name` has a tracer.
    func waitUntilTraced(name: String, timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let reply = try await rpc("btwl", "tracer_of", [.atom(name)])
            if case .tuple(let t) = reply, t.count == 2, case .pid = t[1] { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestFailure("\(name) on \(self.name) did not get traced")
    }

    /// What is switched on or loaded now (see btwl:clean_report/0).
    func report() async throws -> [String: Term] {
        let reply = try await rpc("btwl", "clean_report")
        guard case .map(let pairs) = reply else { throw TestFailure("bad report \(reply.erlangText())") }
        var result: [String: Term] = [:]
        for pair in pairs { if case .atom(let a) = pair.key { result[a.name] = pair.value } }
        return result
    }

    /// Nothing of beamtrace is left: module unloaded, no flags on any process or for new ones, no
    /// call patterns, no system monitor.
    func isClean() async throws -> Bool {
        let r = try await report()
        return r["loaded"]?.erlangText() == "false" && r["new"]?.erlangText() == "{flags,[]}"
            && r["f"]?.erlangText() == "{traced,false}" && r["g"]?.erlangText() == "{traced,false}"
            && r["handle_call"]?.erlangText() == "{traced,false}" && r["system_monitor"]?.erlangText() == "undefined"
            && r["traced"]?.erlangText() == "0" && r["registered"]?.erlangText() == "undefined"
    }

    /// Polls `isClean` (the agent cleans up by itself after losing the recorder).
    func waitUntilClean(timeout: Duration = .seconds(20)) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await isClean() { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    func reportText() async -> String {
        guard let r = try? await report() else { return "(no report)" }
        return r.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.erlangText())" }.joined(separator: " ")
    }

    func stop() async {
        await control.close()
        node.stop()
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A capture read back.
struct ReadCapture {
    let reader: CaptureReader
    let events: [RecordedEvent]

    init(_ path: String) throws {
        reader = try CaptureReader(opening: path)
        events = try reader.events()
    }

    var dictionaries: TraceDictionaries { reader.dictionaries }

    func count(_ kind: EventKind, function: String? = nil, node: String? = nil) -> Int {
        events.filter { e in
            e.event.kind == kind
                && (function == nil || dictionaries.functionText(e.event.mfa) == function)
                && (node == nil || dictionaries.nodeName(e.event.node) == node)
        }.count
    }

    var traceEvents: Int { events.filter { !EventKind.ownKinds.contains($0.event.kind) }.count }
    var dropped: Int64 { events.filter { $0.event.kind == .drop }.reduce(0) { $0 + $1.event.value } }

    func markers(code: Int64) -> [Term] {
        events.filter { $0.event.kind == .marker && $0.event.value == code }.compactMap {
            Payload.terms($0.payload, flags: $0.event.flags)?.first
        }
    }
}

extension EventKind {
    static let ownKinds: Set<EventKind> = [.sample, .monitor, .drop, .marker]
}

func temporaryCapturePath() throws -> String {
    try Erlang.temporaryDirectory("beamtrace-record").appendingPathComponent("capture").path
}

/// Options for an in-process session on the given nodes (fast sampling, no rate limit).
func recordingOptions(_ nodes: [TracedNode], patterns: [String], output: String) throws -> RecordingOptions {
    let spec = TraceSpec(patterns: try patterns.map { try TracePattern(parsing: $0) })
    var options = RecordingOptions(nodes: nodes.map(\.name), cookie: nodes[0].cookie, spec: spec, output: output)
    options.limits.maxRate = nil
    options.limits.duration = .seconds(60)
    options.sampleInterval = .milliseconds(50)
    return options
}

/// Runs a session in a task, waits until every node is tracing, runs `workload`, stops the session.
func record<T: Sendable>(_ options: RecordingOptions, nodes: [TracedNode],
                         workload: @Sendable () async throws -> T) async throws -> (RecordingSummary, T) {
    let session = TraceSession(options: options)
    let running = Task { try await session.run() }
    do {
        for node in nodes { try await node.waitUntilTracing() }
        let result = try await workload()
        session.requestStop("test done")
        return (try await running.value, result)
    } catch {
        session.requestStop("test failed")
        _ = try? await running.value
        throw error
    }
}

/// Expects nothing of beamtrace left on the node, naming what is left otherwise.
func expectClean(_ node: TracedNode, waiting: Bool = false, sourceLocation: SourceLocation = #_sourceLocation) async throws {
    let clean = waiting ? try await node.waitUntilClean() : try await node.isClean()
    let report = clean ? "" : await node.reportText()
    #expect(clean, "left on \(node.name): \(report)", sourceLocation: sourceLocation)
}
