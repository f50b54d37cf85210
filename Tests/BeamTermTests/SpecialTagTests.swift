// Tags OTP 25's term_to_binary never writes: ATOM_CACHE_REF, the old FUN_EXT, LOCAL_EXT (OTP 26+).
import BeamTerm
import Testing

@Suite("Tags without an OTP 25 producer")
struct SpecialTagTests {
    @Test("ATOM_CACHE_REF resolves through the caller's cache, and a miss is an error")
    func atomCache() throws {
        let bytes: [UInt8] = [131, 104, 2, 82, 0, 82, 1]
        let decoder = TermDecoder(atomCacheReferences: ["trace_ts", "call"])
        #expect(try decoder.decode(bytes) == .tuple([.atom("trace_ts"), .atom("call")]))
        #expect(throws: TermDecodingError(.atomCacheMiss(index: 1), offset: 5, expected: "a known atom cache reference")) {
            try TermDecoder(atomCacheReferences: ["only"]).decode(bytes)
        }
    }

    @Test("the old FUN_EXT decodes its pid, module, index, uniq and free variables")
    func oldFun() throws {
        let node: [UInt8] = [119, 6] + Array("a@host".utf8)
        var bytes: [UInt8] = [131, 117, 0, 0, 0, 1]  // one free variable
        bytes += [88] + node + [0, 0, 0, 80, 0, 0, 0, 0, 0, 0, 0, 1]  // NEW_PID_EXT
        bytes += [119, 3] + Array("mod".utf8) + [97, 2] + [98, 0, 1, 0, 0] + [97, 42]
        let term = try TermDecoder().decode(bytes)
        guard case .fun(let fun) = term else {
            Issue.record("not a fun: \(term)")
            return
        }
        #expect(fun.isOldFormat)
        #expect(fun.module == "mod")
        #expect(fun.oldIndex == 2 && fun.oldUniq == 65536)
        #expect(fun.pid == Pid(node: "a@host", id: 80, serial: 0, creation: 1))
        #expect(fun.freeVars == [.integer(42)])
        #expect(term.erlangText() == "#Fun<mod.2.65536>")
    }

    @Test("LOCAL_EXT: the hash is skipped and NIL_EXT stands for the creating node")
    func localExt() throws {
        let bytes: [UInt8] = [131, 121, 0xDE, 0xAD, 0xBE, 0xEF, 104, 2, 97, 7, 88, 106, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0]
        #expect(try TermDecoder().decode(bytes) == .tuple([.integer(7), .pid(Pid(node: "", id: 5, serial: 0, creation: 0))]))
        // Outside LOCAL_EXT a NIL_EXT node name is malformed.
        #expect(throws: TermDecodingError.self) { try TermDecoder().decode([131, 88, 106, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0]) }
        #expect(throws: TermDecodingError(.truncated, offset: 2, expected: "LOCAL_EXT hash")) {
            try TermDecoder().decode([131, 121, 0])
        }
    }

    @Test("a compressed term whose zlib stream is corrupt or short is an error")
    func badCompression() throws {
        let good = TermEncoder().encode(.list((1...300).map { .integer($0) }), compressed: true)
        #expect(try TermDecoder().decode(good).listElements?.count == 300)
        var corrupt = good
        corrupt[10] ^= 0xFF
        #expect(throws: TermDecodingError.self) { try TermDecoder().decode(corrupt) }
        var wrongSize = good
        wrongSize[5] &+= 1
        #expect(throws: TermDecodingError.self) { try TermDecoder().decode(wrongSize) }
    }
}

@Test("a map from unordered pairs is in term order and keeps the last value of a repeated key, like maps:from_list/1")
func mapFromUnorderedPairs() throws {
    let map = Term.map(unordered: [MapPair(.atom("b"), .integer(1)), MapPair(.integer(7), .nil),
                                   MapPair(.atom("a"), .integer(2)), MapPair(.atom("b"), .integer(3))])
    #expect(map == .map([MapPair(.integer(7), .nil), MapPair(.atom("a"), .integer(2)), MapPair(.atom("b"), .integer(3))]))
    #expect(map.erlangText() == "#{7 => [],a => 2,b => 3}")
    // A MAP_EXT carrying the same key twice decodes the same way.
    let bytes: [UInt8] = [131, 116, 0, 0, 0, 2, 119, 1, 97, 97, 1, 119, 1, 97, 97, 2]
    #expect(try TermDecoder().decode(bytes) == .map([MapPair(.atom("a"), .integer(2))]))
}
