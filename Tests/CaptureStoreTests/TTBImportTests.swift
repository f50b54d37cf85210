// A ttb-style upload directory from two real nodes (each traced by its own dbg file port with
// the timestamp flag, plus the `.ti` metadata), imported and merged by time: counts equal
// dbg:trace_client's per node, both nodes appear, and the `.ti` process names resolve.
// (ttb itself lives in erlang-observer, which these machines need not have; the files are made
// the way ttb makes them, see PROTOCOLS.md section 3.)
import Foundation
import Testing
import TestSupport
@testable import CaptureStore
import TraceModel

@Suite(.serialized) struct TTBImportTests {
    static let source = #"""
-module(bt_ttb).
-export([run/3, ping/2, pong/0, add/2, count/1]).

add(A, B) -> A + B.

pong() ->
    receive
        {From, N} -> From ! {pong, add(N, 1)}, pong();
        stop -> ok
    end.

ping(Pong, N) ->
    receive go -> ok end,
    [begin Pong ! {self(), I}, receive {pong, _} -> ok end end || I <- lists:seq(1, N)],
    Pong ! stop,
    receive {done, From} -> From ! finished end.

%% What ttb:tracer/ttb:p/ttb:stop([fetch]) leave behind (ttb is in erlang-observer, not always
%% installed): per node a dbg file-port trace `<node>-bt` with the timestamp flag, and a
%% `<node>-bt.ti` of Len:8 + term_to_binary records naming the traced processes.
run(A, B, Dir) ->
    true = net_kernel:connect_node(A),
    true = net_kernel:connect_node(B),
    Pong = spawn(B, fun() -> register(bt_pong, self()), pong() end),
    Ping = spawn(A, fun() -> register(bt_ping, self()), ping(Pong, 500) end),
    timer:sleep(200),
    Upload = filename:join(Dir, "ttb_upload_bt-20260101-120000"),
    ok = file:make_dir(Upload),
    Nodes = [{A, Ping, bt_ping}, {B, Pong, bt_pong}],
    [begin
         File = filename:join(Upload, atom_to_list(N) ++ "-bt"),
         Port = rpc:call(N, dbg, trace_port, [file, File]),
         {ok, _} = rpc:call(N, dbg, tracer, [port, Port]),
         {ok, _} = rpc:call(N, dbg, tpl, [bt_ttb, add, 2, [{'_', [], [{return_trace}]}]]),
         {ok, _} = rpc:call(N, dbg, p, [P, [call, send, 'receive', timestamp]]),
         ti(File ++ ".ti", [{node, N}, {file, File}, {flags, {[P], [call, send, 'receive', timestamp]}},
                            {pid, {P, Name}}])
     end || {N, P, Name} <- Nodes],
    Ping ! go,
    Ping ! {done, self()},
    receive finished -> ok end,
    timer:sleep(200),
    [begin rpc:call(N, dbg, flush_trace_port, []), rpc:call(N, dbg, stop_clear, []) end || {N, _, _} <- Nodes],
    io:format("upload ~s~n", [Upload]).

ti(File, Terms) ->
    Records = [begin
                   Bin = term_to_binary(T),
                   case byte_size(Bin) of
                       S when S > 255 ->
                           Size = term_to_binary({'$size', S}),
                           [byte_size(Size), Size, Bin];
                       S -> [S, Bin]
                   end
               end || T <- Terms],
    ok = file:write_file(File, Records).

count(Files) ->
    Self = self(),
    [begin
         dbg:trace_client(file, F, {fun(end_of_trace, Acc) -> Self ! {done, Acc}, Acc;
                                       (Msg, Acc) -> maps:update_with(element(3, Msg), fun(V) -> V + 1 end, 1, Acc)
                                    end, #{}}),
         receive {done, Acc} -> [io:format("kind ~s ~p~n", [K, V]) || {K, V} <- maps:to_list(Acc)] end
     end || F <- Files].
"""#

    @Test func twoNodeUploadDirectoryMergesByTime() throws {
        let dir = try Erlang.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Erlang.compile(module: "bt_ttb", source: Self.source, in: dir)
        let cookie = Erlang.randomName("c")
        let a = try ErlangNode(cookie: cookie, codePaths: [dir.path])
        defer { a.stop() }
        let b = try ErlangNode(cookie: cookie, codePaths: [dir.path])
        defer { b.stop() }
        guard let erl = Erlang.executable("erl") else { throw ErlangError.notInstalled }
        let output = try Shell.run(erl, ["-sname", Erlang.randomName("d"), "-setcookie", cookie, "-noshell", "-pa", dir.path,
                                         "-eval", "bt_ttb:run('\(a.nodeName)', '\(b.nodeName)', \"\(dir.path)\"), erlang:halt(0)."],
                                   timeout: 120)
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("upload ") }) else {
            Issue.record("no upload directory: \(output)")
            return
        }
        let upload = String(line.dropFirst(7))
        let files = [a.nodeName, b.nodeName].map { "\"\(upload)/\($0)-bt\"" }.joined(separator: ",")
        let reference = try Shell.run(erl, ["-noshell", "-pa", dir.path, "-eval", "bt_ttb:count([\(files)]), erlang:halt(0)."],
                                      timeout: 120)
        let expected = Workload.parseCounts(reference)
        #expect(expected.kinds["call"] == 500)
        let capture = dir.appendingPathComponent("cap").path
        _ = try CLI.run(["import", upload, "-o", capture])
        let (counts, info) = try Workload.infoCounts(capture)
        #expect(counts.kinds == expected.kinds)
        #expect(Set(info["nodes"] as? [String] ?? []) == [a.nodeName, b.nodeName])
        // Merged by time across the two files.
        let reader = try CaptureReader(opening: capture)
        #expect(reader.meta.timeBase == "system")
        var last = Int64.min
        var ordered = true
        var nodesSeen = Set<NodeID>()
        try reader.forEach { event, _ in
            if event.time < last { ordered = false }
            last = event.time
            nodesSeen.insert(event.node)
            return true
        }
        #expect(ordered && nodesSeen.count == 2)
        // Names from the .ti files: bt_pong ran on b and did every call.
        let pong = try CLI.run(["events", capture, "--pid", "bt_pong", "--kind", "call", "--json"])
        #expect(pong.split(separator: "\n").count == 500)
    }
}
