// Printing to a depth is OTP's `io_lib:format("~P", [Term, Depth])`: the I-th element of a tuple or
// list is printed at depth Depth - 1 - I, so later elements are cut sooner (`{get,{a,...},[...],...}`).
// Checked, both printers (the Term one and the byte-level one), against a real `erl` for depths 1..7.
import BeamTerm
import Foundation
import Testing
import TestSupport

@Suite struct DepthPrintingTests {
    static let source = #"""
    -module(bt_depth).
    -export([main/0]).
    main() ->
        Terms = [{get, {a, b, c, d, e}, [1, 2, 3, 4, 5], "hello world", <<"abcdef">>, #{a => 1, b => 2, c => 3}},
                 {call, {x, {y, {z, {w, 1}}}}}, {a, b, c, d, e, f, g}, [[[[[1]]]]],
                 {lookup, key_1, <<1, 2, 3, 4, 5, 6>>}, {{nested, [1, 2]}, x}, [1, 2, 3, 4, 5, 6],
                 [{a, b}, {c, d}, {e, f}], #{k => {1, 2, 3}, j => [1, 2, 3]}, "abcdefgh", <<1, 2, 3, 4, 5, 6, 7>>,
                 {'$gen_call', {tag, [alias | mref]}, {get_state, [{opt, 1}, {opt, 2}], {deep, {deeper, {deepest}}}}},
                 [a | b], [1, 2 | tail], [{x, [y, [z]]} | {t, u}], {[], {}, <<>>, ""}, {1.5, -7, 123456789012345678901},
                 [<<"bin">>, <<1, 2>>, 'Quoted atom', {nested, <<"x">>}], {{{{{{{{deep}}}}}}}}],
        [io:format("~s ~w ~s~n", [binary:encode_hex(term_to_binary(T)), D,
                                  base64:encode(iolist_to_binary(io_lib:format("~P", [T, D])))])
         || T <- Terms, D <- lists:seq(1, 7)].
    """#

    @Test func bothPrintersCutAsOTPsTildeP() throws {
        let output = try Erlang.run(module: "bt_depth", source: Self.source)
        var checked = 0
        var mismatches: [String] = []
        for line in output.split(separator: "\n") {
            let parts = line.split(separator: " ")
            guard parts.count == 3, let bytes = [UInt8](hex: parts[0]), let depth = Int(parts[1]),
                  let data = Data(base64Encoded: String(parts[2])) else { continue }
            let expected = String(decoding: data, as: UTF8.self)
            let options = ErlangPrintOptions(maxDepth: depth)
            let term = try TermDecoder().decode(bytes)
            let text = term.erlangText(options)
            var out: [UInt8] = []
            var offset = 1
            let ok = bytes.withUnsafeBytes { ErlangTermWriter(options: options).write($0, offset: &offset, into: &out) }
            let written = String(decoding: out, as: UTF8.self)
            if text != expected { mismatches.append("depth \(depth): Term \(text), ~P \(expected)") }
            if !ok || written != expected { mismatches.append("depth \(depth): bytes \(written), ~P \(expected)") }
            checked += 1
        }
        #expect(checked == 19 * 7, "\(output)")
        #expect(mismatches.isEmpty, "\(mismatches.count) differ: \(mismatches.prefix(8).joined(separator: "\n"))")
    }
}
