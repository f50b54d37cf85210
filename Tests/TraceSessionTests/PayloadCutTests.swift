// Oversized arguments and return values recorded live from a real node are kept cut to what
// `io_lib:format("~P", [Term, Depth])` shows: what beamtrace prints equals what OTP prints for the
// depth recorded, and the bytes kept stay within the payload limit. The agent's cut (on the node)
// and the import cut (in the recorder's decoder) give the same bytes for the same message.
import BeamDistribution
import BeamTerm
import CaptureStore
import Foundation
import Testing
import TestSupport
import TraceModel
@testable import TraceSession

@Suite(.serialized) struct PayloadCutTests {
    /// Big terms of every kind: deep, long lists, big binaries (text and not), maps, strings.
    static let source = #"""
    -module(btcut).
    -export([echo/1, terms/0, run/0, printed/2, agent_cut/2]).
    echo(T) -> T.
    deep(0) -> leaf;
    deep(N) -> {N, deep(N - 1)}.
    terms() ->
        [deep(200),
         lists:seq(1, 5000),
         << <<(I rem 251)>> || I <- lists:seq(1, 100000) >>,
         binary:copy(<<"the quick brown fox ">>, 2000),
         maps:from_list([{I, {I, [I, I, I], <<"value">>}} || I <- lists:seq(1, 20)]),
         maps:from_list([{list_to_atom("k" ++ integer_to_list(I)), I} || I <- lists:seq(1, 200)]),
         lists:flatten(lists:duplicate(100, "hello world ")),
         {a, lists:seq(1, 300), #{b => <<1, 2, 3, 4, 5, 6, 7, 8, 9>>, c => "text"}, <<"abc", 1, 2, 3, 4, 5, 6>>},
         [{I, <<I>>, [I, I]} || I <- lists:seq(1, 100)],
         lists:foldr(fun(X, Acc) -> [X | Acc] end, improper_tail, lists:seq(1, 200))].
    run() -> [echo(T) || T <- terms()], ok.
    %% What OTP prints for term I (or its one-element argument list) cut at Depth.
    printed(I, Depth) ->
        T = lists:nth(I, terms()),
        [unicode:characters_to_binary(io_lib:format("~0tP", [X, Depth])) || X <- [[T], T]].
    %% The trace message of a call with term I, cut by the agent's rules; and the uncut message.
    agent_cut(I, Limit) ->
        Msg = {trace_ts, self(), call, {btcut, echo, [lists:nth(I, terms())]}, {1, 2, 3}},
        {term_to_binary(beamtrace_agent:cut_message(Msg, Limit)), term_to_binary(Msg)}.
    """#

    static let termCount = 10

    static let directory: Result<URL, Error> = Result {
        let directory = try Erlang.temporaryDirectory()
        try Erlang.compile(module: "btcut", source: source, in: directory)
        return directory
    }

    @Test func liveOversizedPayloadsPrintAsOTPsDepthLimitedPrint() async throws {
        let directory = try Self.directory.get()
        let node = try await TracedNode.start(extraArguments: ["-pa", directory.path])
        defer { Task { await node.stop() } }
        let output = try temporaryCapturePath()
        var options = try recordingOptions([node], patterns: ["btcut:echo/1"], output: output)
        options.spec.arguments = true
        options.payloadLimit = 256
        _ = try await record(options, nodes: [node]) { try await node.rpc("btcut", "run") }
        try await expectClean(node)

        let capture = try ReadCapture(output)
        let calls = capture.events.filter { $0.event.kind == .call }
        let returns = capture.events.filter { $0.event.kind == .returnFrom }
        #expect(calls.count == Self.termCount && returns.count == Self.termCount)
        var printer = EventPrinter(dictionaries: capture.dictionaries,
                                   time: TimeText(style: .ns, start: 0, timeBase: "none"), maxWidth: nil)
        for (i, (call, ret)) in zip(calls, returns).enumerated() {
            for (event, which) in [(call, 0), (ret, 1)] {
                #expect(event.event.flags.contains(.payloadTruncated), "term \(i + 1) was not cut")
                #expect(event.payload.count <= 256, "term \(i + 1): \(event.payload.count) bytes kept")
                let cut = try #require(event.payload.withUnsafeBytes { Payload.cut($0, flags: event.event.flags) })
                #expect(cut.depth >= 1 && cut.depth <= TermCut.maxDepth)
                let reply = try await node.rpc("btcut", "printed", [.integer(Int64(i + 1)), .integer(Int64(cut.depth))])
                guard case .list(let texts) = reply, texts.count == 2, case .binary(let expected) = texts[which] else {
                    Issue.record("unexpected reply \(reply)")
                    continue
                }
                let ours = try #require(cut.terms.first).erlangText()
                let otp = String(decoding: expected, as: UTF8.self)
                if i + 1 == 7 {
                    // A long string: ~P prints it whole; beamtrace keeps 4 * (Depth - 1) characters
                    // of it and ends it in `...` (docs/FORMAT.md).
                    let kept = try #require(ours.range(of: "\"...")).lowerBound
                    #expect(otp.hasPrefix(String(ours[..<kept])), "term 7: \(ours)")
                    #expect(ours[..<kept].count >= 4 * (cut.depth - 2))
                } else if i + 1 == 6 {
                    // A map of more than 32 keys: ~P prints its pairs in iteration order, beamtrace
                    // sorted by key (docs/FORMAT.md): the same pairs, the same count.
                    #expect(ours.count == expected.count, "term 6 at depth \(cut.depth): \(ours)")
                } else {
                    #expect(ours == otp, "term \(i + 1) at depth \(cut.depth)")
                }
            }
            // The event line prints the cut arguments as the call's arguments, ending in `...`.
            let line = call.payload.withUnsafeBytes { printer.line(call.event, payload: $0) }
            #expect(line.contains("call btcut:echo("), "\(line)")
        }
    }

    @Test func agentCutAndImportCutKeepTheSameBytes() async throws {
        let directory = try Self.directory.get()
        let node = try await TracedNode.start(extraArguments: ["-pa", directory.path])
        defer { Task { await node.stop() } }
        // The agent's source, loaded as the session would (compiled on the node).
        let loader = AgentLoader(connection: node.control, node: node.name)
        try await loader.load()
        defer { Task { await loader.unload() } }
        for limit in [256, 1024] {
            for i in 1...Self.termCount {
                let reply = try await node.rpc("btcut", "agent_cut", [.integer(Int64(i)), .integer(Int64(limit))])
                guard case .tuple(let parts) = reply, parts.count == 2, case .binary(let agentCut) = parts[0],
                      case .binary(let whole) = parts[1] else {
                    Issue.record("unexpected reply \(reply)")
                    continue
                }
                var decoder = TraceMessageDecoder(options: TraceDecoderOptions(payloadLimit: limit))
                var batch = EventBatch()
                try decoder.decode(agentCut, into: &batch)
                try decoder.decode(whole, into: &batch)
                #expect(batch.count == 2)
                // Term 6, a map of 200 keys: the agent keeps the first pairs in maps:iterator order (as
                // ~P prints them), the import those first in the file; both keep the same number.
                #expect(batch.flags[0] == batch.flags[1], "term \(i), limit \(limit)")
                if i != 6 {
                    #expect(Array(batch.payload(0)) == Array(batch.payload(1)), "term \(i), limit \(limit)")
                }
                #expect(batch.payload(0).count <= limit)
            }
        }
    }
}
