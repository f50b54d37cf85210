// Term vectors made by a real OTP: `term_to_binary` of a wide set of terms with their `~tp` form.
import Foundation
import TestSupport

struct OTPVector: Sendable {
    var bytes: [UInt8]
    var printed: String
}

/// Old-format bytes (handmade, accepted by OTP 25's binary_to_term) and what OTP re-encodes them to.
struct OTPOldFormatVector: Sendable {
    var name: String
    var oldBytes: [UInt8]
    var newBytes: [UInt8]
}

enum OTPVectors {
    static let source = #"""
    -module(bt_vectors).
    -export([main/0, check/0, parse_back/0]).

    terms() ->
        Big = 1 bsl 200,
        Env = {captured, node()},
        [0, 1, 255, 256, -1, -129, 2147483647, -2147483648, 2147483648, -2147483649,
         1 bsl 63, -(1 bsl 63), (1 bsl 64) - 1, -(1 bsl 64), Big, -Big, 1 bsl 2100, -(1 bsl 2100) + 12345,
         0.0, -0.0, 1.5, -3.25e-10, 1.0e300, 5.0e-324, 1.7976931348623157e308, 3.141592653589793,
         100.0, 1.0e15, 1.0e16, 9007199254740992.0, 123456789012345678.0, 0.0001, 1.0e-5,
         a, 'Hello', 'with space', 'héllo', 'привет', '', 'a\'b', 'a\\b', 'Elixir.Foo.Bar', true, false,
         nil, undefined, 'after', 'maybe', 'else', 'cond', 'a@b', 'A', '_x', 'x-y', '\x{7f}', 'tab\there',
         {}, {a}, {a, b, c}, {1, {2, {3, {4}}}}, list_to_tuple(lists:seq(1, 300)),
         [], "abc", "a\nb\t\"q\"\\", [1, 2, 3], [a | b], [1, 2 | 3], [[]], [[], []], lists:seq(1, 300),
         lists:seq(250, 260), [1087, 1088], [7, 8, 9], "héllo", [-1, 0], [1.5, a, "s", <<"b">>],
         <<>>, <<"abc">>, <<1, 2, 3>>, <<"héllo"/utf8>>, <<"привет"/utf8>>, <<"abc", 200>>, <<"a\nb">>,
         <<1:3>>, <<1, 2, 3:4>>, <<"ab", 3:4>>, binary:copy(<<"x">>, 1000), <<0, 127, 128, 255>>,
         #{}, #{a => 1}, #{a => #{b => [1, 2]}, "k" => {x}, 3 => 4.5}, #{1 => a, 1.0 => b},
         maps:from_list([{I, I * I} || I <- lists:seq(1, 40)]),
         maps:from_list([{list_to_atom("k" ++ integer_to_list(I)), I} || I <- lists:seq(1, 33)]),
         self(), make_ref(), hd(erlang:ports()), spawn(fun() -> ok end),
         fun() -> ok end, fun(X) -> {X, Env} end, fun lists:map/2, fun erlang:'+'/2,
         {trace_ts, self(), call, {lists, seq, [1, 10]}, {1700, 123456, 789}},
         {trace_ts, self(), return_from, {lists, seq, 2}, lists:seq(1, 10), -576460751234567890},
         {trace, self(), 'receive', {'$gen_call', {self(), make_ref()}, {get, key}}},
         {trace_ts, self(), send, {reply, <<"ok">>}, self(), {123456789, 42}},
         {trace_ts, self(), exit, {badarg, [{m, f, 1, [{file, "m.erl"}, {line, 3}]}]}, 5}]
        ++ random_floats(300) ++ random_integers(100).

    random_floats(N) ->
        rand:seed(exsss, {1, 2, 3}),
        lists:filtermap(fun(_) ->
            case rand:bytes(8) of
                <<F:64/float>> -> {true, F};
                _ -> false
            end
        end, lists:seq(1, N)) ++
        [rand:uniform() * math:pow(10, rand:uniform(60) - 30) || _ <- lists:seq(1, N)].

    random_integers(N) ->
        [(rand:uniform(1 bsl 80) - (1 bsl 79)) bsr rand:uniform(80) || _ <- lists:seq(1, N)].

    hex(B) -> binary:encode_hex(B).

    printed(T) -> hex(unicode:characters_to_binary(io_lib:format("~9999999tp", [T]))).

    old_formats() ->
        Node = atom_to_binary(node(), latin1),
        NL = byte_size(Node),
        [{float_ext, <<131, 99, "1.50000000000000000000e+00", 0, 0, 0, 0, 0>>},
         {float_ext_neg, <<131, 99, "-2.50000000000000000000e-03", 0, 0, 0, 0>>},
         {atom_ext, <<131, 100, 0, 5, "hello">>},
         {atom_ext_latin1, <<131, 100, 0, 5, "h", 233, "llo">>},
         {small_atom_ext, <<131, 115, 3, "abc">>},
         {atom_utf8_ext, <<131, 118, 0, 3, "xyz">>},
         {pid_ext, <<131, 103, 100, NL:16, Node/binary, 0, 0, 0, 77, 0, 0, 0, 1, 2>>},
         {port_ext, <<131, 102, 100, NL:16, Node/binary, 0, 0, 0, 9, 1>>},
         {new_port_ext, <<131, 89, 100, NL:16, Node/binary, 0, 0, 0, 9, 0, 0, 0, 3>>},
         {v4_port_ext, <<131, 120, 100, NL:16, Node/binary, 0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0, 3>>},
         {reference_ext, <<131, 101, 100, NL:16, Node/binary, 0, 0, 0, 42, 1>>},
         {new_reference_ext, <<131, 114, 0, 3, 100, NL:16, Node/binary, 2, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3>>},
         {large_tuple_small, <<131, 105, 0, 0, 0, 2, 97, 1, 97, 2>>},
         {list_with_string_tail, <<131, 108, 0, 0, 0, 1, 97, 1, 107, 0, 2, 2, 3>>},
         {small_big_small_value, <<131, 110, 2, 1, 1, 1>>},
         {large_big_small_value, <<131, 111, 0, 0, 0, 1, 0, 7>>},
         {bit_binary_full, <<131, 77, 0, 0, 0, 2, 8, 1, 2>>},
         {map_unsorted, <<131, 116, 0, 0, 0, 2, 100, 0, 1, "b", 97, 2, 100, 0, 1, "a", 97, 1>>},
         {compressed, term_to_binary(lists:duplicate(200, {a, <<"xyz">>}), [compressed])},
         {compressed_level9, term_to_binary(lists:seq(1, 2000), [{compressed, 9}])}].

    main() ->
        Ts = terms(),
        Compressed = [term_to_binary(T, [compressed]) || T <- [lists:seq(1, 500), binary:copy(<<"ab">>, 300)]],
        lists:foreach(fun(T) -> io:format("v\t~s\t~s~n", [hex(term_to_binary(T)), printed(T)]) end, Ts),
        lists:foreach(fun(B) -> io:format("v\t~s\t~s~n", [hex(B), printed(binary_to_term(B))]) end, Compressed),
        lists:foreach(fun({Name, Old}) ->
            New = term_to_binary(binary_to_term(Old)),
            io:format("o\t~s\t~s\t~s~n", [Name, hex(Old), hex(New)])
        end, old_formats()).

    %% stdin: lines "OriginalHex ReencodedHex"; prints "ok N" or the first mismatch.
    check() -> check(0).
    check(N) ->
        case io:get_line("") of
            eof -> io:format("ok ~p~n", [N]);
            Line ->
                [A, B] = string:lexemes(string:trim(Line), " "),
                TA = binary_to_term(binary:decode_hex(list_to_binary(A))),
                TB = binary_to_term(binary:decode_hex(list_to_binary(B))),
                case TA =:= TB of
                    true -> check(N + 1);
                    false -> io:format("mismatch ~s ~s~n", [A, B])
                end
        end.

    %% stdin: lines "OriginalHex PrintedTextHex"; the printed text must parse back to an equal term.
    parse_back() -> parse_back(0).
    parse_back(N) ->
        case io:get_line("") of
            eof -> io:format("ok ~p~n", [N]);
            Line ->
                [A, P] = string:lexemes(string:trim(Line), " "),
                T = binary_to_term(binary:decode_hex(list_to_binary(A))),
                Text = unicode:characters_to_list(binary:decode_hex(list_to_binary(P))),
                Result = try
                    {ok, Tokens, _} = erl_scan:string(Text ++ "."),
                    {ok, Parsed} = erl_parse:parse_term(Tokens),
                    Parsed =:= T
                catch C:R -> {C, R} end,
                case Result of
                    true -> parse_back(N + 1);
                    Other -> io:format("mismatch ~s ~ts ~p~n", [A, Text, Other])
                end
        end.
    """#

    struct Generated: Sendable {
        var vectors: [OTPVector]
        var oldFormats: [OTPOldFormatVector]
    }

    /// Runs OTP once per test process and caches the result.
    static let generated: Result<Generated, Error> = Result {
        let node = Erlang.randomName() + "@" + Erlang.shortHostName
        let output = try Erlang.run(module: "bt_vectors", source: source,
                                    erlArguments: ["-sname", node, "-setcookie", Erlang.randomName("c")])
        var vectors: [OTPVector] = []
        var old: [OTPOldFormatVector] = []
        for line in output.split(separator: "\n") {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            if fields.first == "v", fields.count == 3, let bytes = [UInt8](hex: fields[1]),
               let printed = [UInt8](hex: fields[2]) {
                vectors.append(OTPVector(bytes: bytes, printed: String(decoding: printed, as: UTF8.self)))
            } else if fields.first == "o", fields.count == 4, let a = [UInt8](hex: fields[2]),
                      let b = [UInt8](hex: fields[3]) {
                old.append(OTPOldFormatVector(name: String(fields[1]), oldBytes: a, newBytes: b))
            }
        }
        return Generated(vectors: vectors, oldFormats: old)
    }

    /// Feeds lines to one of the module's checking functions and returns its verdict line.
    static func runCheck(_ function: String, lines: [String]) throws -> String {
        let input = Data((lines.joined(separator: "\n") + "\n").utf8)
        return try Erlang.run(module: "bt_vectors", source: source, function: function, stdin: input)
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
