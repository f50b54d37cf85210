// The splitter of agent batches against real `term_to_binary` output of OTP: every kind of term a
// trace message can carry, element boundaries exact, and damaged input refused without trapping.
import BeamTerm
import Foundation
import Testing
import TestSupport
@testable import CaptureStore

@Suite struct TermListSplitterTests {
    static let source = #"""
    -module(btsplit).
    -export([main/0]).
    main() ->
        Big = 1 bsl 200,
        Terms = [{trace_ts, self(), call, {m, f, 2}, -576460751893575166},
                 {trace_ts, self(), 'receive', #{a => [1, 2.5, "str"], <<"k">> => {}}, 12},
                 {trace_ts, self(), send, {make_ref(), fun(X) -> X end, fun lists:seq/2}, self(), Big},
                 {trace_ts, open_port({spawn, "true"}, []), closed, normal, -Big},
                 {beamtrace_drop, 70000}, {beamtrace_drop, 3},
                 <<1:3>>, 'atom_ü', lists:seq(1, 300), [a | b], 1.0e300, 70000, -1,
                 maps:from_list([{I, I} || I <- lists:seq(1, 40)]), list_to_tuple(lists:seq(1, 300))],
        Elements = [binary:encode_hex(term_to_binary(T)) || T <- Terms],
        io:format("~s~n~s~n", [binary:encode_hex(term_to_binary(Terms)), lists:join(",", Elements)]).
    """#

    @Test func splitsRealTermsExactly() throws {
        let output = try Erlang.run(module: "btsplit", source: Self.source)
        let lines = output.split(separator: "\n").map(String.init)
        try #require(lines.count >= 2)
        let list = try #require(Self.bytes(hex: lines[0]))
        let elements = lines[1].split(separator: ",").compactMap { Self.bytes(hex: String($0)) }
        var splitter = TermListSplitter()
        let whole = list.withUnsafeBytes { splitter.split($0) }
        #expect(whole)
        #expect(splitter.ranges.count == elements.count)
        for (range, element) in zip(splitter.ranges, elements) {
            // Each element's own term_to_binary is 131 + exactly these bytes.
            #expect([131] + Array(list[range]) == element)
        }
        // Cut anywhere: never traps, never claims a whole list.
        for cut in stride(from: 0, to: list.count - 1, by: 7) {
            let prefix = Array(list[0..<cut])
            var partial = TermListSplitter()
            let ok = prefix.withUnsafeBytes { partial.split($0) }
            #expect(!ok)
        }
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
