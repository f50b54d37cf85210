// The term parser against OTP's own: every input is parsed by erl_scan + erl_parse:parse_term in a
// real erl and by TermParser, and the terms must be equal (or both must reject the input).
import BeamTerm
import Foundation
import Testing
import TestSupport

@Suite("Erlang term syntax parser against erl_parse")
struct TermParserTests {
    static let valid: [String] = [
        // atoms
        "a", "'Hello'", "'with space'", "'héllo'", "'привет'", "''", #"'a\'b'"#, #"'a\\b'"#, "true", "nil", "'after'",
        "a@b", "node@host", "aB_9@x", #"'tab\there'"#, "ñandú", "maybe", "'Elixir.Foo'",
        // integers
        "0", "42", "-7", "+5", "- 3", "1_000_000", "16#ff", "-16#FF", "2#1010", "36#zz", "8#777",
        "123456789012345678901234567890", "-99999999999999999999", "9223372036854775807", "9223372036854775808",
        "-9223372036854775808", "-9223372036854775809", "16#ffffffffffffffffffffffff", "$a", #"$\n"#, #"$\x{1F600}"#,
        #"$\\"#, "$ ", "-$a",
        // floats
        "1.5", "-0.0", "0.0", "1.0e10", "1.0E-3", "2.5e+3", "3.141592653589793", "1_000.5", "1.7976931348623157e308",
        "5.0e-324", "123456789.123456789",
        // strings
        #""""#, #""abc""#, #""a\nb\t\"q\"\\""#, #""héllo""#, #""привет""#, #""ab" "cd""#,
        #""\x41\x{42}\101\^a\s\e\d\7""#, #""tab\there""#, #""ab" "" "c""#,
        // binaries
        "<<>>", #"<<"abc">>"#, "<<1,2,3>>", #"<<"héllo"/utf8>>"#, #"<<"ab", 3:4>>"#, "<<1:3>>", "<<-1:16>>",
        "<<256:16/little>>", "<<1.5/float>>", "<<1.5:32/float>>", #"<<$a, "b">>"#, #"<<"x"/utf16>>"#,
        "<<16#1F600/utf8>>", "<<-1>>", "<<300>>", "<<1:1, 0:1, 1:1>>", "<< 7 : 4 / unsigned-integer >>",
        #"<<"ab"/utf32-little>>"#, "<<1:16/signed-big>>", "<<5:2/unit:8>>",
        // lists
        "[]", "[1,2,3]", "[a|b]", "[1,2|3]", "[1|[2,3]]", "[[]]", #"[a, "s", <<"b">>, 1.5]"#, #"[1 | "ab"]"#,
        "[a | [b | [c | d]]]", "[$h, $i]",
        // tuples
        "{}", "{a}", "{a, {b, {c}}}", #"{1, "two", 3.0}"#,
        // maps
        "#{}", "#{a => 1}", #"#{b => 2, a => 1, 1 => x, "k" => {x}}"#, "#{a => 1, a => 2}", "#{1 => a, 1.0 => b}",
        "#{#{} => [], {k} => #{x => y}}",
        // external funs
        "fun lists:map/2", "fun erlang:'+'/2", "fun 'Elixir.Enum':map/2",
        // layout
        "  {a , b}  ", "{a, % comment\n b}",
    ]

    static let invalid: [String] = [
        "X", "_x", "after", "1e5", "[1,]", "{a", "'unterminated", #""abc"#, "#{a}", #"<<"a"/foo>>"#, "16#", "37#1",
        "a b", "[a|b|c]", "1.e5", "<<1.5>>", "{a,,b}", "#{a => }", "", "fun", "Foo", "<<1", "a. b",
    ]

    /// Asks erl to parse each input (given as hex UTF-8), answering term_to_binary hex or `error`.
    static func otpParse(_ inputs: [String]) throws -> [String] {
        let source = #"""
        -module(bt_parse).
        -export([main/0]).
        main() -> loop().
        loop() ->
            case io:get_line("") of
                eof -> ok;
                Line ->
                    Text = unicode:characters_to_list(binary:decode_hex(list_to_binary(string:trim(Line)))),
                    Out = try
                        {ok, Tokens, _} = erl_scan:string(Text ++ " ."),
                        {ok, Term} = erl_parse:parse_term(Tokens),
                        binary:encode_hex(term_to_binary(Term))
                    catch _:_ -> <<"error">>
                    end,
                    io:format("~s~n", [Out]),
                    loop()
            end.
        """#
        let input = inputs.map { Array($0.utf8).hexString + "\n" }.joined()
        let output = try Erlang.run(module: "bt_parse", source: source, stdin: Data(input.utf8))
        return output.split(separator: "\n").map(String.init)
    }

    @Test("valid inputs parse to exactly the term erl_parse makes")
    func matchesErlParse() throws {
        let answers = try Self.otpParse(Self.valid)
        #expect(answers.count == Self.valid.count)
        for (input, answer) in zip(Self.valid, answers) {
            guard answer != "error" else {
                Issue.record("erl rejected a test input: \(input)")
                continue
            }
            let expected = try TermDecoder().decode([UInt8](hex: answer) ?? [])
            let parsed: Term
            do {
                parsed = try TermParser().parse(input)
            } catch {
                Issue.record("\(input): \(error)")
                continue
            }
            #expect(parsed == expected, "\(input): got \(parsed.erlangText()), erl has \(expected.erlangText())")
            // And the bytes OTP would send are the same.
            #expect(try TermDecoder().decode(TermEncoder().encode(parsed)) == expected)
        }
    }

    @Test("inputs erl_parse rejects are rejected, with a position")
    func rejectsWhatErlRejects() throws {
        let answers = try Self.otpParse(Self.invalid.filter { !$0.isEmpty })
        #expect(answers.allSatisfy { $0 == "error" }, "erl accepted one of the invalid inputs: \(answers)")
        for input in Self.invalid {
            #expect(throws: TermParseError.self, "\(input)") { try TermParser().parse(input) }
        }
        let error = try #require(throws: TermParseError.self) { try TermParser().parse("{a, X}") }
        #expect(error.offset == 4)
        #expect(error.description.contains("variable"))
    }

    @Test("a final dot is allowed, as in the shell")
    func finalDot() throws {
        #expect(try TermParser().parse("a.") == .atom("a"))
        #expect(try TermParser().parse("{a,b}.  ") == .tuple([.atom("a"), .atom("b")]))
        #expect(try TermParser().parse("1.5.") == .float(1.5))
        #expect(throws: TermParseError.self) { try TermParser().parse("$") }
    }

    @Test("pids in printed form equal list_to_pid/1 of the same text")
    func pidsMatchListToPid() throws {
        let texts = ["<0.1.0>", "<0.80.0>", "<0.32767.8191>"]
        let source = #"""
        -module(bt_pids).
        -export([main/0]).
        main() -> [io:format("~s~n", [binary:encode_hex(term_to_binary(list_to_pid(T)))]) || T <- \#(texts)].
        """#
        let lines = try Erlang.run(module: "bt_pids", source: source.replacingOccurrences(
            of: "\\#(texts)", with: "[" + texts.map { "\"\($0)\"" }.joined(separator: ",") + "]"))
            .split(separator: "\n")
        #expect(lines.count == texts.count)
        for (text, line) in zip(texts, lines) {
            let expected = try TermDecoder().decode([UInt8](hex: line) ?? [])
            #expect(try TermParser().parse(text) == expected, "\(text)")
        }
    }

    @Test("node 0 means the target node; named nodes, refs and ports parse too")
    func identifiersOfANode() throws {
        let parser = TermParser(options: .init(localNode: "app@host", localCreation: 7))
        #expect(try parser.parse("<0.5.0>") == .pid(Pid(node: "app@host", id: 5, serial: 0, creation: 7)))
        #expect(try parser.parse("<other@h.9.1>") == .pid(Pid(node: "other@h", id: 9, serial: 1, creation: 0)))
        #expect(try parser.parse("<'a@h.example.com'.9.1>")
                    == .pid(Pid(node: "a@h.example.com", id: 9, serial: 1, creation: 0)))
        let reference = Term.reference(Reference(node: "app@host", creation: 7, ids: [3, 2, 1]))
        #expect(try parser.parse("#Ref<0.1.2.3>") == reference)
        #expect(reference.erlangText(ErlangPrintOptions(localNode: "app@host")) == "#Ref<0.1.2.3>")
        #expect(try parser.parse("#Port<0.5>") == .port(Port(node: "app@host", id: 5, creation: 7)))
        #expect(try parser.parse("{<0.1.0>, [#Ref<0.1.2.3>]}").hasOpaqueParts)
        #expect(throws: TermParseError.self) { try parser.parse("<1.2.3>") }
    }

    @Test("printed terms parse back to themselves")
    func printParseRoundTrip() throws {
        let terms: [Term] = [
            .tuple([.atom("a"), .integer(-5), .float(2.5), .string(Array("hi\n".utf8)), .binary([0, 255, 10])]),
            .map(unordered: [MapPair(.atom("k"), .list([.integer(1), .atom("with space")]))]),
            .improperList([.integer(1)], tail: .atom("t")),
            .bitBinary([0xA0], trailingBits: 3),
            .integer(BigInteger(decimal: "-123456789012345678901234567890") ?? BigInteger(0)),
            .pid(Pid(node: "a@b", id: 3, serial: 4, creation: 0)),
        ]
        for term in terms {
            #expect(try TermParser().parse(term.erlangText()) == term, "\(term.erlangText())")
        }
    }
}
