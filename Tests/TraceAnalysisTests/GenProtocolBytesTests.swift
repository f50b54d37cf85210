// The waiting model's byte-level reading of OTP's call messages (GenProtocol) and its table of
// waiting callers (WaitingTable), against what a real node says: every message is term_to_binary
// output of a distributed OTP node (its own pid and references), or bytes that node decodes to the
// term named; which references are the same one is the node's `=:=`, not ours.
import Foundation
import Testing
import TestSupport
@testable import TraceAnalysis
import TraceModel

@Suite struct GenProtocolBytesTests {
    /// Lines `kind class hex [extra]` from bt_genbytes:main/0 (below).
    static let source = #"""
    -module(bt_genbytes).
    -export([main/0]).

    hex(B) -> binary:encode_hex(B).
    %% term_to_binary without its version byte, as trace payloads hold terms.
    enc(T, Opts) -> <<131, Rest/binary>> = term_to_binary(T, Opts), Rest.

    %% References as raw unversioned bytes, each decoded by this node to make sure it is one:
    %% NEWER_REFERENCE_EXT of 1, 2 and 3 words, NEW_REFERENCE_EXT and REFERENCE_EXT (older nodes),
    %% the node's own re-encodings of those (it pads to 3 words), make_ref(), a monitor alias as
    %% gen:call makes it (monitor with {alias, demonitor}) and alias().
    refs() ->
        <<131, 90, 3:16, 100, L:16, Name:L/binary, Cr:32, W1:32, _:64>> =
            term_to_binary(make_ref(), [{minor_version, 1}]),
        Node = <<100, L:16, Name/binary>>,
        Raw = [<<90, N:16, Node/binary, Cr:32, (<< <<(W1 + I):32>> || I <- lists:seq(0, N - 1) >>)/binary>>
               || N <- [1, 2, 3]]
            ++ [<<114, 1:16, Node/binary, 2, W1:32>>, <<101, Node/binary, W1:32, 2>>,
                <<90, 3:16, Node/binary, Cr:32, W1:32, 0:64>>],
        Decoded = [binary_to_term(<<131, B/binary>>) || B <- Raw],
        Made = [make_ref(), erlang:monitor(process, self(), [{alias, demonitor}]), alias()],
        Raw ++ [enc(R, Opts) || R <- Decoded ++ Made, Opts <- [[{minor_version, 1}], [{minor_version, 2}]]].

    %% Each reference's class: the index of the first reference the node holds equal to it.
    classes(Refs) ->
        Terms = [binary_to_term(<<131, B/binary>>) || B <- Refs],
        [index_of(T, Terms, 0) || T <- Terms].
    index_of(T, [U | _], I) when T =:= U -> I;
    index_of(T, [_ | Us], I) -> index_of(T, Us, I + 1).

    %% Bytes built around a raw reference, checked: the node decodes them to the term named.
    checked(Bytes, Term) -> Term = binary_to_term(<<131, Bytes/binary>>), Bytes.

    main() ->
        Refs = refs(),
        Request = {work, 42, <<"payload">>, [1, 2, 3]},
        lists:foreach(fun({Class, RefBytes}) ->
            Ref = binary_to_term(<<131, RefBytes/binary>>),
            lists:foreach(fun(Opts) ->
                Self = enc(self(), Opts), Call = enc('$gen_call', Opts), Alias = enc(alias, Opts),
                Req = enc(Request, Opts),
                Plain = checked(<<104, 3, Call/binary, 104, 2, Self/binary, RefBytes/binary, Req/binary>>,
                                {'$gen_call', {self(), Ref}, Request}),
                Aliased = checked(<<104, 3, Call/binary, 104, 2, Self/binary, 108, 1:32, Alias/binary,
                                    RefBytes/binary, Req/binary>>,
                                  {'$gen_call', {self(), [alias | Ref]}, Request}),
                io:format("req ~p ~s ~s~n", [Class, hex(Plain), hex(Req)]),
                io:format("req ~p ~s ~s~n", [Class, hex(Aliased), hex(Req)]),
                io:format("req ~p ~s ~s~n", [Class, hex(enc({'$gen_call', {self(), Ref}, Request}, Opts)), hex(Req)]),
                io:format("req ~p ~s ~s~n", [Class, hex(enc({'$gen_call', {self(), [alias | Ref]}, Request}, Opts)),
                                            hex(Req)]),
                Reply = enc({ok, 7}, Opts),
                io:format("reply ~p ~s~n",
                          [Class, hex(checked(<<104, 2, RefBytes/binary, Reply/binary>>, {Ref, {ok, 7}}))]),
                io:format("reply ~p ~s~n", [Class, hex(checked(<<104, 2, 108, 1:32, Alias/binary, RefBytes/binary,
                                                              Reply/binary>>, {[alias | Ref], {ok, 7}}))]),
                io:format("reply ~p ~s~n", [Class, hex(enc({[alias | Ref], {ok, 7}}, Opts))]),
                io:format("multi ~p ~s ~s~n", [Class, hex(enc({'$gen_call', {self(), {Ref, node()}}, Request}, Opts)),
                                              node()]),
                io:format("multireply ~p ~s ~s~n", [Class, hex(enc({{Ref, node()}, {ok, 7}}, Opts)), node()]),
                [io:format("none ~p ~s~n", [Class, hex(enc(T, Opts))])
                 || T <- [{'$gen_cast', Request}, {'$gen_call', Ref, Request}, {'$gen_call', {self(), Ref}},
                          {'$gen_call', {self(), [other | Ref]}, Request}, {'$gen_call', {Ref, Ref}, Request},
                          {Ref}, {Ref, a, b}, [alias | Ref], {[other | Ref], ok}, {self(), Ref}, timeout,
                          {timeout, Ref, x}, {'DOWN', Ref, process, self(), normal}, Request]]
            end, [[{minor_version, 1}], [{minor_version, 2}]])
        end, lists:zip(classes(Refs), Refs)).
    """#

    struct Vectors {
        var requests: [(klass: Int, bytes: [UInt8], request: [UInt8])] = []
        var replies: [(klass: Int, bytes: [UInt8])] = []
        var multi: [(klass: Int, bytes: [UInt8], node: String)] = []
        var multiReplies: [(klass: Int, bytes: [UInt8], node: String)] = []
        var others: [[UInt8]] = []
        var classes: Set<Int> = []
    }

    static func vectors() throws -> Vectors {
        let output = try Erlang.run(module: "bt_genbytes", source: source,
                                    erlArguments: ["-sname", Erlang.randomName("g")])
        var v = Vectors()
        for line in output.split(separator: "\n") {
            let f = line.split(separator: " ").map(String.init)
            guard f.count >= 3, let klass = Int(f[1]), let bytes = [UInt8](hex: f[2]) else { continue }
            v.classes.insert(klass)
            switch f[0] {
            case "req": if f.count == 4, let request = [UInt8](hex: f[3]) { v.requests.append((klass, bytes, request)) }
            case "reply": v.replies.append((klass, bytes))
            case "multi": if f.count == 4 { v.multi.append((klass, bytes, f[3])) }
            case "multireply": if f.count == 4 { v.multiReplies.append((klass, bytes, f[3])) }
            case "none": v.others.append(bytes)
            default: break
            }
        }
        return v
    }

    @Test func callMessagesFromARealNode() throws {
        let v = try Self.vectors()
        // 24 reference encodings, each inside messages of 2 atom encodings: 4 request shapes, 3 replies.
        #expect(v.requests.count == 192 && v.replies.count == 144 && v.multi.count == 48)
        #expect(v.classes.count >= 5, "the node holds several distinct references among them")
        var keys: [Int: RefKey] = [:]
        func agree(_ klass: Int, _ key: RefKey?, _ what: String) {
            guard let key else { Issue.record("\(what): no tag read"); return }
            if let known = keys[klass] { #expect(known == key, "\(what): a reference the node holds equal") }
            keys[klass] = key
        }
        for r in v.requests {
            r.bytes.withUnsafeBytes { raw in
                let any = GenProtocol.anyRequest(raw)
                #expect(any?.node == nil)
                #expect(GenProtocol.request(raw)?.tag == any?.tag)
                #expect(GenProtocol.replyTag(raw) == nil)
                if let offset = any?.requestOffset {
                    #expect(Array(r.bytes[offset...]) == r.request, "the request is the message's last element")
                }
                agree(r.klass, any?.tag, "request \(r.bytes.hexString)")
            }
        }
        for r in v.replies {
            r.bytes.withUnsafeBytes { raw in
                #expect(GenProtocol.anyRequest(raw) == nil)
                agree(r.klass, GenProtocol.replyTag(raw), "reply \(r.bytes.hexString)")
            }
        }
        for m in v.multi {
            m.bytes.withUnsafeBytes { raw in
                let any = GenProtocol.anyRequest(raw)
                #expect(any?.node == m.node)
                #expect(GenProtocol.request(raw) == nil, "a multi_call's request is not a gen call")
                agree(m.klass, any?.tag, "multi_call request")
            }
        }
        for m in v.multiReplies {
            m.bytes.withUnsafeBytes { raw in
                let reply = GenProtocol.multiReplyTag(raw)
                #expect(reply?.node == m.node)
                #expect(GenProtocol.replyTag(raw) == nil)
                agree(m.klass, reply?.tag, "multi_call reply")
            }
        }
        // References the node holds different have different keys.
        let distinct = Set(keys.values.map { "\($0.hash)-\($0.first)" })
        #expect(distinct.count == keys.count && keys.count == v.classes.count)
        for bytes in v.others {
            bytes.withUnsafeBytes { raw in
                #expect(GenProtocol.anyRequest(raw) == nil, "not a call: \(bytes.hexString)")
                #expect(GenProtocol.replyTag(raw) == nil, "not a reply: \(bytes.hexString)")
            }
        }
        // Cut anywhere, a request or a reply reads as nothing or as the whole tag, never as another.
        let whole: [(klass: Int, bytes: [UInt8])] = v.requests.prefix(8).map { ($0.klass, $0.bytes) }
            + v.replies.prefix(6).map { ($0.klass, $0.bytes) }
        for r in whole {
            for cut in 0..<r.bytes.count {
                Array(r.bytes[..<cut]).withUnsafeBytes { raw in
                    if let tag = GenProtocol.anyRequest(raw)?.tag ?? GenProtocol.replyTag(raw) {
                        #expect(tag == keys[r.klass])
                    }
                }
            }
        }
    }

    @Test func waitingTableAgreesWithADictionary() {
        var table = WaitingTable()
        var model: [ProcessID: Int64] = [:]
        var random = SplitMix64(seed: 0x9A17)
        for step in 0..<20_000 {
            let pid = ProcessID(1 + random.next() % (step < 10_000 ? 50 : 5_000))
            switch random.next() % 3 {
            case 0, 1:
                let call = PendingCall(caller: pid, callerNode: 1, callee: 2, kind: .gen, since: Int64(step),
                                       tag: RefKey(hash: random.next(), first: 0), requestBytes: nil)
                table.set(call)
                model[pid] = Int64(step)
            default:
                #expect(table.remove(pid)?.call.since == model.removeValue(forKey: pid))
            }
            if step % 997 == 0 {
                #expect(table.count == model.count)
                #expect(Dictionary(uniqueKeysWithValues: table.calls.map { ($0.caller, $0.since) }) == model)
            }
            #expect(table[pid]?.since == model[pid])
        }
        #expect(Set(table.callers) == Set(model.keys))
        for (pid, since) in model {
            guard let slot = table.slot(pid) else { Issue.record("\(pid) lost"); continue }
            #expect(table[slot: slot].since == since && table[slot: slot].caller == pid)
        }
    }

    @Test func tagTableAgreesWithADictionary() {
        // Few distinct hashes' homes in a small table: long probe runs, removals in the middle of
        // them and wrapping past the end, as calls start and end.
        var table = TagTable()
        var model: [RefKey: ProcessID] = [:]
        var random = SplitMix64(seed: 0x7A61)
        for step in 0..<50_000 {
            let live = step < 25_000 ? 40 : 3_000
            let key = RefKey(hash: (random.next() % UInt64(live)) &* 0x9E37_79B9_7F4A_7C15, first: UInt32(random.next() % 3))
            switch random.next() % 4 {
            case 0, 1:
                let pid = ProcessID(1 + random.next() % 100)
                table[key] = pid
                model[key] = pid
            case 2:
                table[key] = nil
                model[key] = nil
            default:
                let pid = ProcessID(1 + random.next() % 100)
                table.remove(key, ifValue: pid)
                if model[key] == pid { model[key] = nil }
            }
            #expect(table[key] == model[key])
            if step % 1_009 == 0 {
                for (k, v) in model { #expect(table[k] == v) }
                #expect(table.isEmpty == model.isEmpty)
            }
        }
        for (k, v) in model { #expect(table[k] == v) }
    }
}
