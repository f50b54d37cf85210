// The byte-level printer against the Term printer on OTP's own term_to_binary output: the same
// text for every vector, with and without depth and width limits.
import BeamTerm
import Testing

@Suite("ErlangTermWriter prints as Term.erlangText")
struct ErlangTermWriterTests {
    static let optionSets: [ErlangPrintOptions] = [
        ErlangPrintOptions(),
        ErlangPrintOptions(maxDepth: 20, maxWidth: 400),
        ErlangPrintOptions(maxDepth: 3, maxWidth: 40),
        ErlangPrintOptions(maxDepth: 1),
        ErlangPrintOptions(maxDepth: 2, maxWidth: 7),
    ]

    @Test("every OTP vector prints the same from bytes as from its Term")
    func sameText() throws {
        let vectors = try OTPVectors.generated.get().vectors.filter { $0.bytes.count > 1 && $0.bytes[1] != 80 }
        #expect(vectors.count > 100)
        var mismatches = 0
        for vector in vectors {
            let term = try TermDecoder().decode(vector.bytes)
            // The pids of the vectors are the generating node's: print them once as local, once not.
            var local: Atom?
            if case .pid(let pid) = term { local = pid.node }
            for options in Self.optionSets + [ErlangPrintOptions(maxDepth: 20, maxWidth: 400, localNode: local)] {
                var out: [UInt8] = []
                var offset = 1
                let ok = vector.bytes.withUnsafeBytes { raw in
                    ErlangTermWriter(options: options).write(raw, offset: &offset, into: &out)
                }
                let expected = term.erlangText(options)
                let printed = String(decoding: out, as: UTF8.self)
                if !ok || offset != vector.bytes.count || printed != expected {
                    mismatches += 1
                    if mismatches <= 10 { Issue.record("\(options.maxDepth ?? -1)/\(options.maxWidth ?? -1): ours \(printed) term \(expected)") }
                }
            }
        }
        #expect(mismatches == 0)
    }

    @Test("a cut payload's marks print as ~P prints its cuts")
    func cutMarks() {
        let mark = Term.atom(CutMarker.atom)
        let cut = Term.tuple([.atom("a"), .improperList([.integer(1), .integer(2)], tail: mark),
                              .tuple([.atom("b"), mark])])
        #expect(cut.erlangText() == "{a,[1,2|...],{b,...}}")
        let binary = Term.tuple([mark, .atom("binary"), .binary(Array("hello wo".utf8))])
        #expect(Term.list([binary]).erlangText() == "[<<\"hello wo\"...>>]")
        let bytes = Term.tuple([mark, .atom("binary"), .binary([1, 2, 3, 4])])
        #expect(bytes.erlangText() == "<<1,2,3,4,...>>")
        let map = Term.map(unordered: [MapPair(.atom("a"), .integer(1)), MapPair(mark, mark)])
        #expect(map.erlangText() == "#{a => 1,...}")
        #expect(map.elixirText() == "%{a: 1, ...}")
        #expect(cut.elixirText() == "{:a, [1, 2, ...], {:b, ...}}")
        for term in [cut, binary, bytes, map] {
            let encoded = TermEncoder().encode(term)
            var out: [UInt8] = []
            var offset = 1
            _ = encoded.withUnsafeBytes { ErlangTermWriter().write($0, offset: &offset, into: &out) }
            #expect(String(decoding: out, as: UTF8.self) == term.erlangText())
        }
    }
}
