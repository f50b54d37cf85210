// What a growing queue's owner was busy with: its busiest outermost traced function, from a real
// OTP trace whose process runs three functions interleaved (the first one seen is not the busiest).
import CaptureStore
import Foundation
import Testing
import TestSupport
import TraceAnalysis

@Suite("busiest activity of a queue's owner")
struct BusiestActivityTests {
    static let source = #"""
    -module(bt_busy).
    -export([run/1, a/1, b/1, c/1, handle_info/2]).
    %% A callback: the queue is estimated from its messages in and the callbacks that take them.
    handle_info(_Message, State) -> State.
    a(Ms) -> timer:sleep(Ms).
    b(Ms) -> timer:sleep(Ms).
    c(Ms) -> timer:sleep(Ms).
    run(Dir) ->
        File = filename:join(Dir, "trace.trc"),
        {ok, _} = dbg:tracer(port, dbg:trace_port(file, File)),
        Parent = self(),
        %% b first, a the busiest (3 calls of 40 ms), c and b in between; the owner takes one message
        %% (through its callback, another outermost call) and then never reads its mailbox again.
        Steps = [{b, 5}, {a, 40}, {c, 10}, {b, 5}, {a, 40}, {b, 5}, {c, 10}, {b, 5}, {a, 40}, {b, 5}, {b, 5}],
        Owner = spawn(fun() ->
            receive go -> ok end,
            receive {msg, _} = M -> ?MODULE:handle_info(M, state) end,
            [?MODULE:F(Ms) || {F, Ms} <- Steps],
            Parent ! {self(), done},
            receive never -> ok end
        end),
        Sender = spawn(fun() -> receive go -> ok end, send(Owner, 1) end),
        {ok, _} = dbg:p(Owner, [call, 'receive', monotonic_timestamp]),
        {ok, _} = dbg:p(Sender, [send, monotonic_timestamp]),
        [{ok, _} = dbg:tpl(?MODULE, F, A, [{'_', [], [{return_trace}]}]) || {F, A} <- [{a, 1}, {b, 1}, {c, 1}, {handle_info, 2}]],
        Owner ! go, Sender ! go,
        receive {Owner, done} -> ok end,
        exit(Sender, kill),
        dbg:flush_trace_port(),
        dbg:stop_clear(),
        Calls = [{F, length([x || {G, _} <- Steps, G =:= F])} || F <- [a, b, c]],
        ok = file:write_file(filename:join(Dir, "truth.txt"),
                             io_lib:format("~s~n~p~n", [pid_to_list(Owner), Calls])).
    send(Owner, N) ->
        Owner ! {msg, N},
        receive after 1 -> ok end,
        send(Owner, N + 1).
    """#

    @Test("names the function with the most time and its calls as the workload counted them")
    func busiestOfThree() throws {
        let directory = try Erlang.temporaryDirectory("bt-busy")
        defer { try? FileManager.default.removeItem(at: directory) }
        try Erlang.compile(module: "bt_busy", source: Self.source, in: directory)
        guard let erl = Erlang.executable("erl") else { throw ErlangError.notInstalled }
        try Shell.run(erl, ["-noshell", "-pa", directory.path, "-eval",
                            "bt_busy:run(\"\(directory.path)\"), erlang:halt(0)."],
                      timeout: 60, workingDirectory: directory)
        let capture = directory.appendingPathComponent("capture").path
        _ = try Importer().run(sources: [directory.appendingPathComponent("trace.trc").path], output: capture)
        let truth = try String(contentsOf: directory.appendingPathComponent("truth.txt"), encoding: .utf8)
        let lines = truth.split(separator: "\n")
        let owner = try #require(lines.first.map(String.init))
        // The workload's own count of a/1's calls: [{a,3},{b,6},{c,2}].
        let calls = try #require(lines.dropFirst().joined().firstMatch(of: /\{a,(\d+)\}/).map { String($0.1) })

        let analysis = try CaptureAnalysis.run(CaptureReader(opening: capture))
        let queue = try #require(analysis.queueReports().first { $0.pid == owner })
        #expect(queue.growing)
        let busiest = try #require(queue.ownerActivity.first { $0.hasPrefix("spent ") })
        #expect(busiest.hasSuffix(" of the capture in bt_busy:a/1 (\(calls) calls)"), "\(busiest)")
        // a/1 slept 120 ms of a capture of at least 185 ms: more than a third, less than all of it.
        let share = try #require(busiest.firstMatch(of: /spent (\d+)%/).flatMap { Int($0.1) })
        #expect(share > 33 && share < 100, "\(busiest)")
    }
}
