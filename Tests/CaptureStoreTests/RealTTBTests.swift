// A capture made by OTP's own ttb (erlang-observer) over two real nodes: a node started with
// -sname/-setcookie starts a peer, ttb traces a registered server and client on each, fetches the
// per-node files and .ti metadata, and dbg:trace_client counts them. `beamtrace import` of the
// fetched directory must give the same counts, both nodes, time order, and the .ti names.
import Foundation
import Testing
import TestSupport
@testable import CaptureStore
import TraceModel

@Suite(.serialized) struct RealTTBTests {
    static let module = "bt_realttb"
    static let source = #"""
    -module(bt_realttb).
    -export([main/0, add/2, server/0, client/2, count/1, count_files/1]).

    add(A, B) -> A + B.

    server() ->
        receive
            {From, N} -> From ! {self(), add(N, 1)}, server();
            stop -> ok
        end.

    client(Server, N) ->
        receive {go, From} -> ok end,
        [begin Server ! {self(), I}, receive {Server, _} -> ok end end || I <- lists:seq(1, N)],
        From ! {done, self()},
        receive stop -> ok end.

    %% Both nodes run a registered server and client (bt_srv_a/bt_cli_a here, bt_srv_b/bt_cli_b on
    %% the peer); the clients make 300 and 200 calls. ttb traces the four by name and fetches to
    %% -btdir (ttb wants a directory that does not exist yet and puts the files right in it).
    main() ->
        {ok, [[Dir]]} = init:get_argument(btdir),
        Code = filename:dirname(code:which(?MODULE)),
        {ok, Peer, PeerNode} = peer:start_link(#{name => peer:random_name(bt_peer),
                                                 args => ["-setcookie", atom_to_list(erlang:get_cookie()),
                                                          "-pa", Code]}),
        SrvA = spawn(?MODULE, server, []),
        true = register(bt_srv_a, SrvA),
        CliA = spawn(?MODULE, client, [SrvA, 300]),
        true = register(bt_cli_a, CliA),
        SrvB = spawn(PeerNode, ?MODULE, server, []),
        true = rpc:call(PeerNode, erlang, register, [bt_srv_b, SrvB]),
        CliB = spawn(PeerNode, ?MODULE, client, [SrvB, 200]),
        true = rpc:call(PeerNode, erlang, register, [bt_cli_b, CliB]),
        {ok, _} = ttb:tracer([node(), PeerNode], [{file, "bt"}]),
        {ok, _} = ttb:p([bt_srv_a, bt_cli_a, bt_srv_b, bt_cli_b], [call, send, 'receive']),
        {ok, _} = ttb:tpl(?MODULE, add, 2, [{'_', [], [{return_trace}]}]),
        [C ! {go, self()} || C <- [CliA, CliB]],
        [receive {done, C} -> ok after 10000 -> exit(client_timeout) end || C <- [CliA, CliB]],
        timer:sleep(100),
        stopped = ttb:stop([fetch, {fetch_dir, Dir}]),
        [C ! stop || C <- [CliA, CliB, SrvA, SrvB]],
        ok = peer:stop(Peer),
        io:format("node ~s~nnode ~s~n", [node(), PeerNode]),
        Files = [F || F <- filelib:wildcard(filename:join(Dir, "*")), filename:extension(F) =/= ".ti"],
        io:format("files ~p~n", [length(Files)]),
        count_files(Files).

    \#(Workload.counter)
    """#

    @Test func ttbUploadFromTwoNodesImports() throws {
        let dir = try Erlang.temporaryDirectory("bt-realttb")
        defer { try? FileManager.default.removeItem(at: dir) }
        let upload = dir.appendingPathComponent("upload").path
        let cookie = Erlang.randomName("c")
        let output: String
        do {
            output = try Erlang.run(module: Self.module, source: Self.source,
                                    erlArguments: ["-sname", Erlang.randomName("bt"), "-setcookie", cookie, "-btdir", upload],
                                    timeout: 60)
        } catch ErlangError.failed(let command, let status, let text) {
            // Not the cookie in the report.
            throw ErlangError.failed(command: command.replacingOccurrences(of: cookie, with: "<cookie>"), status: status,
                                     output: text.replacingOccurrences(of: cookie, with: "<cookie>"))
        }
        let nodes = output.split(separator: "\n").filter { $0.hasPrefix("node ") }.map { String($0.dropFirst(5)) }
        try #require(nodes.count == 2, "\(output)")
        #expect(output.contains("files 2\n"))
        #expect(nodes.allSatisfy { $0.hasSuffix("@" + Erlang.shortHostName) })
        // What ttb fetched: per node `<node>-bt` and `<node>-bt.ti`, right in the fetch_dir.
        let fetched = Set(try FileManager.default.contentsOfDirectory(atPath: upload))
        #expect(fetched == Set(nodes.flatMap { ["\($0)-bt", "\($0)-bt.ti"] }))

        // The reference: dbg:trace_client over both files.
        let expected = Workload.parseCounts(output)
        #expect(expected.kinds["call"] == 500)
        #expect(expected.kinds["return_from"] == 500)
        #expect(expected.functions["bt_realttb:add/2"] == 1000)

        let capture = dir.appendingPathComponent("cap").path
        _ = try CLI.run(["import", upload, "-o", capture])
        let (counts, info) = try Workload.infoCounts(capture)
        #expect(counts.kinds == expected.kinds)
        #expect(counts.functions == expected.functions)
        #expect(info["events"] as? Int == expected.kinds.values.reduce(0, +))
        #expect(Set(info["nodes"] as? [String] ?? []) == Set(nodes))
        #expect(info["drops"] as? Int == 0)

        // Merged by time across the two files, both nodes present.
        let reader = try CaptureReader(opening: capture)
        let d = reader.dictionaries
        var last = Int64.min
        var ordered = true
        var eventsByNode: [String: Int] = [:]
        try reader.forEach { event, _ in
            if event.time < last { ordered = false }
            last = event.time
            eventsByNode[d.nodeName(event.node), default: 0] += 1
            return true
        }
        #expect(ordered)
        #expect(Set(eventsByNode.keys) == Set(nodes))

        // The .ti names: each registered process is a pid on its own node.
        for (name, node) in [("bt_srv_a", nodes[0]), ("bt_cli_a", nodes[0]), ("bt_srv_b", nodes[1]), ("bt_cli_b", nodes[1])] {
            let pids = d.processes(named: name).compactMap { d.process($0) }.filter {
                if case .pid(let pidNode, _, _, _) = $0.identity { return d.nodeName(pidNode) == node }
                return false
            }
            #expect(pids.count == 1, "\(name) on \(node)")
        }
        // And a name finds that process's events: the servers made the calls, 300 and 200.
        let a = try CLI.run(["events", capture, "--pid", "bt_srv_a", "--kind", "call", "--json"])
        #expect(a.split(separator: "\n").count == 300)
        let b = try CLI.run(["events", capture, "--pid", "bt_srv_b", "--kind", "call", "--json"])
        #expect(b.split(separator: "\n").count == 200)
    }
}
