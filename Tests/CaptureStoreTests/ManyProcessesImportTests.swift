// Many processes through OTP's dbg file port: more short-lived pids than the decoder's caches hold
// (the PidCache's 4,096 slots, the raw-bytes table's 65,536 for pids it cannot key), so a pid seen
// again after the caches forgot it must keep its one id, found in the dictionary's own index;
// and more processes alive at once than its direct-mapped pid cache has slots, their events
// interleaved, each counted as OTP's own dbg:trace_client counts it. The pids and their call counts
// come from the workload itself or from OTP.
import Foundation
import Testing
import TestSupport
@testable import CaptureStore
import TraceModel

@Suite struct ManyProcessesImportTests {
    /// Both workloads: `many/0` spawns its processes one after another, `alive/0` keeps them all alive
    /// at once; each reads the trace file and the process count from `-bt_file` and `-bt_n`.
    static let source = #"""
    -module(bt_many).
    -export([many/0, alive/0, work/1]).
    work(X) -> X + 1.
    %% The trace file and the process count, with OTP's dbg file port tracing to that file.
    start() ->
        {ok, [[File]]} = init:get_argument(bt_file),
        {ok, [[NText]]} = init:get_argument(bt_n),
        {ok, _} = dbg:tracer(port, dbg:trace_port(file, File)),
        {File, list_to_integer(NText)}.
    many() ->
        {_, N} = start(),
        Self = self(),
        {ok, _} = dbg:p(Self, [call, set_on_spawn, monotonic_timestamp]),
        {ok, _} = dbg:tpl(bt_many, work, 1, [{'_', [], [{return_trace}]}]),
        bt_many:work(0),
        Pids = spawn_all(N, []),
        bt_many:work(1),
        dbg:flush_trace_port(),
        dbg:stop_clear(),
        io:format("~s ~b~n", [pid_to_list(Self), length(lists:usort(Pids))]).
    spawn_all(0, Acc) -> Acc;
    spawn_all(K, Acc) ->
        {P, R} = spawn_monitor(fun() -> bt_many:work(K) end),
        receive {'DOWN', R, _, _, _} -> ok end,
        spawn_all(K - 1, [P | Acc]).
    alive() ->
        {File, N} = start(),
        {ok, _} = dbg:tpl(bt_many, work, 1, [{'_', [], [{return_trace}]}]),
        {ok, _} = dbg:p(new, [call, monotonic_timestamp]),
        Pids = [spawn(fun() -> rounds(3) end) || _ <- lists:seq(1, N)],
        Refs = [monitor(process, P) || P <- Pids],
        %% Three rounds: every process calls once a round, so N others come between its calls.
        [[P ! go || P <- Pids] || _ <- lists:seq(1, 3)],
        [receive {'DOWN', R, _, _, _} -> ok end || R <- Refs],
        dbg:flush_trace_port(),
        dbg:stop_clear(),
        Parent = self(),
        dbg:trace_client(file, File, {fun(end_of_trace, Acc) -> Parent ! {counts, Acc}, Acc;
                                         (T, Acc) -> maps:update_with({element(2, T), element(3, T)},
                                                                      fun(C) -> C + 1 end, 1, Acc)
                                      end, #{}}),
        receive {counts, Counts} -> ok end,
        [io:format("~s ~s ~b~n", [pid_to_list(P), Tag, C]) || {{P, Tag}, C} <- maps:to_list(Counts)].
    rounds(0) -> ok;
    rounds(K) -> receive go -> bt_many:work(K) end, rounds(K - 1).
    """#

    @Test func everyPidKeepsOneIDPastTheDecodersCache() throws {
        let dir = try Erlang.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let trace = dir.appendingPathComponent("many.trc").path
        let n = TraceMessageDecoder.processCacheLimit + 4_000
        let output = try Erlang.run(module: "bt_many", source: Self.source, function: "many",
                                    erlArguments: ["-bt_file", trace, "-bt_n", "\(n)"], timeout: 300)
        let fields = output.split(whereSeparator: { $0.isWhitespace })
        let parent = try #require(fields.dropLast().last.map(String.init))
        #expect(fields.last.flatMap { Int($0) } == n)

        let capture = dir.appendingPathComponent("cap").path
        let report = try Importer().run(sources: [trace], output: capture)
        #expect(report.events == 2 * (n + 2))
        let reader = try CaptureReader(opening: capture)
        var eventsByID: [ProcessID: Int] = [:]
        try reader.forEach { event, _ in
            eventsByID[event.pid, default: 0] += 1
            return true
        }
        // One id per pid the workload spawned, plus its own: each spawned pid made one call and its return.
        #expect(eventsByID.count == n + 1)
        let d = reader.dictionaries
        let identities = Set(eventsByID.keys.compactMap { d.process($0)?.identity })
        #expect(identities.count == n + 1)
        // The spawning process, seen first and again after the n others: one id, all four events.
        let parentID = try #require(eventsByID.keys.first { d.processText($0) == parent })
        #expect(eventsByID[parentID] == 4)
        #expect(eventsByID.filter { $0.key != parentID }.allSatisfy { $0.value == 2 })
    }


    @Test func processesAliveTogetherAreCountedAsTraceClientCountsThem() throws {
        let dir = try Erlang.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let trace = dir.appendingPathComponent("alive.trc").path
        let n = TraceMessageDecoder.pidCacheSlots + 2_000
        // A named node: its pids carry a node name other than nonode@nohost.
        let output = try Erlang.run(module: "bt_many", source: Self.source, function: "alive",
                                    erlArguments: ["-sname", Erlang.randomName("bta"), "-bt_file", trace,
                                                   "-bt_n", "\(n)"], timeout: 300)
        var expected: [String: [String: Int]] = [:]
        for line in output.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count == 3, let count = Int(fields[2]) else { continue }
            expected[String(fields[0]), default: [:]][String(fields[1])] = count
        }
        #expect(expected.count == n)
        #expect(expected.values.allSatisfy { $0 == ["call": 3, "return_from": 3] })

        let capture = dir.appendingPathComponent("cap").path
        let report = try Importer().run(sources: [trace], output: capture)
        #expect(report.events == 6 * n)
        let reader = try CaptureReader(opening: capture)
        let d = reader.dictionaries
        var counts: [String: [String: Int]] = [:]
        var ids = Set<ProcessID>()
        try reader.forEach { event, _ in
            counts[d.processText(event.pid), default: [:]][event.kind.otpName, default: 0] += 1
            ids.insert(event.pid)
            return true
        }
        #expect(counts == expected)
        // One id per process: a pid the cache forgot and met again kept its id.
        #expect(ids.count == n)
    }
}
