// The agent-batch ingest (`FrameIngest.consumeAgentBatch`) against real OTP trace messages: a node
// traces its own calls (with and without timestamps, arity only and with arguments), builds a batch
// as the agent does (`term_to_binary` of the list, oldest first, with drop runs and junk among the
// messages) and prints what each element is. The events must come out as OTP described them, in
// list order, the junk counted and skipped; a batch cut anywhere never traps and keeps only whole
// elements before the cut; with `strict` the first bad element stops it with every event before it.
import BeamTerm
import Foundation
import Testing
import TestSupport
import TraceModel
@testable import CaptureStore

@Suite struct AgentBatchTests {
    static let source = #"""
    -module(btbatch).
    -export([main/0, f/1, g/2]).
    f(X) -> X * 2.
    g(A, B) -> {A, B}.
    collect(Acc) -> receive {done, P} -> P ! {msgs, lists:reverse(Acc)}; M -> collect([M | Acc]) end.
    traced(Flags, Run) ->
        Self = self(),
        T = spawn(fun() -> collect([]) end),
        W = spawn(fun() -> receive go -> Run(), Self ! ran end end),
        erlang:trace(W, true, [call, {tracer, T} | Flags]),
        W ! go,
        receive ran -> ok end,
        Ref = erlang:trace_delivered(W), receive {trace_delivered, _, Ref} -> ok end,
        T ! {done, self()},
        receive {msgs, Ms} -> Ms end.
    describe({trace_ts, _, call, {M, F, A}, T}) when is_integer(A) -> io_lib:format("call ~w ~w:~w/~w", [T, M, F, A]);
    describe({trace_ts, _, call, {M, F, Args}, T}) -> io_lib:format("call ~w ~w:~w/~w", [T, M, F, length(Args)]);
    describe({trace_ts, _, return_from, {M, F, A}, V, T}) -> io_lib:format("return_from ~w ~w:~w/~w ~p", [T, M, F, A, V]);
    describe({trace, _, call, {M, F, A}}) when is_integer(A) -> io_lib:format("call none ~w:~w/~w", [M, F, A]);
    describe({trace, _, return_from, {M, F, A}, V}) -> io_lib:format("return_from none ~w:~w/~w ~p", [M, F, A, V]);
    describe({beamtrace_drop, N}) when is_integer(N) -> io_lib:format("drop ~w", [N]);
    describe(_) -> "junk".
    main() ->
        erlang:trace_pattern({btbatch, f, 1}, [{'_', [], [{return_trace}]}], [local]),
        erlang:trace_pattern({btbatch, g, 2}, [{'_', [], [{return_trace}]}], [local]),
        Timed = traced([arity, monotonic_timestamp], fun() -> [btbatch:f(I) || I <- lists:seq(1, 40)] end),
        Args = traced([monotonic_timestamp], fun() -> btbatch:g(1, 2), btbatch:f(5) end),
        Bare = traced([arity], fun() -> [btbatch:f(I) || I <- lists:seq(1, 5)] end),
        Junk = [#{a => [1, 2.5, "str"]}, 1 bsl 200, make_ref(), fun lists:seq/2, <<1:3>>, lists:seq(1, 300),
                {trace_ts, self(), no_such_tag, x, 1}, {beamtrace_drop, not_a_count}],
        {T1, T2} = lists:split(30, Timed),
        Batch = T1 ++ [{beamtrace_drop, 7}] ++ Junk ++ T2 ++ Args ++ [{beamtrace_drop, 2}] ++ Bare,
        io:format("~s~n", [binary:encode_hex(term_to_binary(Batch))]),
        [io:format("~s~n", [describe(E)]) || E <- Batch].
    """#

    struct Fixture {
        var batch: [UInt8]
        var expected: [String]
    }

    static func fixture() throws -> Fixture {
        let lines = try Erlang.run(module: "btbatch", source: source).split(separator: "\n").map(String.init)
        try #require(lines.count > 1)
        return Fixture(batch: try #require(Self.bytes(hex: lines[0])), expected: Array(lines.dropFirst()))
    }

    /// What the ingest made of the elements, in the words `describe/1` uses.
    static func described(_ batch: EventBatch, _ decoder: TraceMessageDecoder) throws -> [String] {
        try (0..<batch.count).map { i in
            let event = batch[i]
            let time = event.flags.contains(.noTimestamp) ? "none" : "\(event.time)"
            let function = decoder.dictionaries.functionText(event.mfa)
            switch event.kind {
            case .call: return "call \(time) \(function)"
            case .returnFrom:
                let value = try batch.payload(i).withUnsafeBytes { raw in
                    var offset = 0
                    return try TermDecoder().decode(raw, offset: &offset, versioned: false).erlangText()
                }
                return "return_from \(time) \(function) \(value)"
            case .drop: return "drop \(event.value)"
            default: return "\(event.kind.otpName)?"
            }
        }
    }

    @Test func decodesRealMessagesInListOrderAndSkipsJunk() throws {
        let f = try Self.fixture()
        var ingest = FrameIngest()
        var decoder = TraceMessageDecoder()
        var batch = EventBatch()
        try f.batch.withUnsafeBytes { try ingest.consumeAgentBatch($0, streamOffset: 100, source: "n@h",
                                                                 decoder: &decoder, into: &batch) }
        let junk = f.expected.filter { $0 == "junk" }.count
        #expect(junk == 8)
        let got = try Self.described(batch, decoder), want = f.expected.filter { $0 != "junk" }
        #expect(got == want, "first difference: \(Self.firstDifference(got, want))")
        #expect(ingest.framesSkipped == junk)
        #expect(ingest.dropped == 9)
        #expect(ingest.damage.count == junk)
        #expect(ingest.damage.allSatisfy { $0.offset > 100 && $0.why.contains("does not decode") })
        #expect(ingest.damage.contains { $0.why.contains("no_such_tag") })
        // The same elements again (the decoder now knows every prefix): the same events.
        var again = EventBatch()
        try f.batch.withUnsafeBytes { try ingest.consumeAgentBatch($0, streamOffset: 0, source: "n@h",
                                                                 decoder: &decoder, into: &again) }
        #expect(try Self.described(again, decoder) == f.expected.filter { $0 != "junk" })
    }

    @Test func aBatchCutAnywhereKeepsTheWholeElementsBeforeTheCut() throws {
        let f = try Self.fixture()
        var full = FrameIngest()
        var fullDecoder = TraceMessageDecoder()
        var whole = EventBatch()
        try f.batch.withUnsafeBytes { try full.consumeAgentBatch($0, streamOffset: 0, source: "n@h",
                                                               decoder: &fullDecoder, into: &whole) }
        let all = try Self.described(whole, fullDecoder)
        for cut in stride(from: 0, to: f.batch.count - 1, by: 13) {
            var ingest = FrameIngest()
            var decoder = TraceMessageDecoder()
            var batch = EventBatch()
            try Array(f.batch[0..<cut]).withUnsafeBytes {
                try ingest.consumeAgentBatch($0, streamOffset: 0, source: "n@h", decoder: &decoder, into: &batch)
            }
            #expect(ingest.damage.last?.why.contains("not a proper list") == true, "cut at \(cut)")
            #expect(Array(all.prefix(batch.count)) == (try Self.described(batch, decoder)), "cut at \(cut)")
        }
    }

    @Test func strictStopsAtTheFirstBadElementWithEveryEventBeforeIt() throws {
        let f = try Self.fixture()
        var ingest = FrameIngest(strict: true)
        var decoder = TraceMessageDecoder()
        var batch = EventBatch()
        #expect(throws: IngestStopped.self) {
            try f.batch.withUnsafeBytes { try ingest.consumeAgentBatch($0, streamOffset: 0, source: "n@h",
                                                                     decoder: &decoder, into: &batch) }
        }
        let before = Array(f.expected.prefix { $0 != "junk" })
        #expect(try Self.described(batch, decoder) == before)
    }

    static func firstDifference(_ a: [String], _ b: [String]) -> String {
        guard let i = (0..<min(a.count, b.count)).first(where: { a[$0] != b[$0] }) else { return "lengths \(a.count) and \(b.count)" }
        return "element \(i): \(a[i]) against \(b[i])"
    }

    static func bytes(hex: String) -> [UInt8]? {
        var result: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2, limitedBy: hex.endIndex) ?? hex.endIndex
            guard let byte = UInt8(hex[index..<next], radix: 16) else { return nil }
            result.append(byte)
            index = next
        }
        return result
    }
}
