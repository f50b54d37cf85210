// Bad input never traps the decoder: truncations, mutations, hostile lengths and deep nesting.
import BeamTerm
import Testing
import TestSupport

@Suite("Decoder robustness")
struct RobustnessTests {
    @Test("every proper prefix of every OTP vector fails with an error")
    func prefixes() throws {
        let vectors = try OTPVectors.generated.get().vectors
        var checked = 0
        for vector in vectors where vector.bytes.count < 3000 {
            for length in 0..<vector.bytes.count {
                #expect(throws: TermDecodingError.self) { try TermDecoder().decode(Array(vector.bytes.prefix(length))) }
                checked += 1
            }
        }
        #expect(checked > 10_000)
    }

    @Test("100,000 seeded random mutations decode or fail cleanly, and what decodes round-trips")
    func mutations() throws {
        let vectors = try OTPVectors.generated.get().vectors.filter { $0.bytes.count < 4000 }
        var rng = SplitMix64(seed: 0xBEA7_7ACE)
        var decoded = 0, failed = 0
        for _ in 0..<100_000 {
            var bytes = vectors[Int(rng.next() % UInt64(vectors.count))].bytes
            switch rng.next() % 4 {
            case 0, 1:  // flip 1-4 bytes
                for _ in 0...(rng.next() % 4) where bytes.count > 1 {
                    bytes[1 + Int(rng.next() % UInt64(bytes.count - 1))] = UInt8(truncatingIfNeeded: rng.next())
                }
            case 2:  // a hostile length or tag at a random position
                let position = 1 + Int(rng.next() % UInt64(max(1, bytes.count - 1)))
                let hostile: [UInt8] = [[0xFF, 0xFF, 0xFF, 0xFF], [0x7F, 0xFF, 0xFF, 0xFF], [0, 0, 0, 0]][Int(rng.next() % 3)]
                for (i, byte) in hostile.enumerated() where position + i < bytes.count { bytes[position + i] = byte }
            default:  // insert or delete a byte
                let position = 1 + Int(rng.next() % UInt64(max(1, bytes.count - 1)))
                if rng.next() % 2 == 0 || bytes.count < 3 {
                    bytes.insert(UInt8(truncatingIfNeeded: rng.next()), at: min(position, bytes.count))
                } else {
                    bytes.remove(at: min(position, bytes.count - 1))
                }
            }
            do {
                let term = try TermDecoder().decode(bytes)
                decoded += 1
                // Whatever decodes must survive our own encoder and decoder unchanged.
                #expect(try TermDecoder().decode(TermEncoder().encode(term)) == term)
            } catch {
                failed += 1
            }
        }
        #expect(decoded + failed == 100_000)
        #expect(decoded > 1_000)
        #expect(failed > 10_000)
    }

    @Test("absurd lengths are refused without allocating them")
    func absurdLengths() {
        let cases: [[UInt8]] = [
            [131, 105, 0xFF, 0xFF, 0xFF, 0xFF],  // LARGE_TUPLE of 4G elements
            [131, 108, 0xFF, 0xFF, 0xFF, 0xFF, 106],  // LIST of 4G elements
            [131, 116, 0xFF, 0xFF, 0xFF, 0xFF],  // MAP of 4G pairs
            [131, 109, 0xFF, 0xFF, 0xFF, 0xFF, 1],  // BINARY of 4 GB
            [131, 111, 0xFF, 0xFF, 0xFF, 0xFF, 0],  // LARGE_BIG of 4 GB
            [131, 80, 0xFF, 0xFF, 0xFF, 0xFF, 0x78, 0x9C],  // compressed, claims 4 GB
            [131, 114, 0xFF, 0xFF, 119, 1, 97, 0],  // NEW_REFERENCE with 65535 words
        ]
        for bytes in cases {
            #expect(throws: TermDecodingError.self) { try TermDecoder().decode(bytes) }
        }
        do {
            _ = try TermDecoder().decode([131, 105, 0xFF, 0xFF, 0xFF, 0xFF])
        } catch {
            #expect(error.reason == .lengthTooLarge(0xFFFF_FFFF))
            #expect(error.offset == 6)
        }
    }

    @Test("nesting deeper than the limit is an error naming the limit, not a stack overflow")
    func deepNesting() throws {
        var bytes: [UInt8] = [131]
        for _ in 0..<100_000 { bytes += [104, 1] }  // {{{{...}}}}
        bytes += [106]
        #expect(throws: TermDecodingError(.tooDeep(limit: 400), offset: 803, expected: "a shallower term")) {
            try TermDecoder().decode(bytes)
        }
        var shallow: [UInt8] = [131]
        for _ in 0..<300 { shallow += [104, 1] }
        shallow += [106]
        let term = try TermDecoder().decode(shallow)
        var depth = 0
        var current = term
        while case .tuple(let elements) = current, let first = elements.first { depth += 1; current = first }
        #expect(depth == 300)
    }

    @Test("a cons chain of 1,000,000 nested LIST_EXT tails decodes without recursion")
    func longConsChain() throws {
        var bytes: [UInt8] = [131]
        for _ in 0..<1_000_000 { bytes += [108, 0, 0, 0, 1, 97, 7] }
        bytes += [106]
        let term = try TermDecoder().decode(bytes)
        #expect(term.listElements?.count == 1_000_000)
    }

    @Test("errors carry the byte offset and what was expected")
    func errorOffsets() {
        #expect(throws: TermDecodingError(.badVersion(130), offset: 0, expected: "version byte 131")) {
            try TermDecoder().decode([130, 97, 1])
        }
        #expect(throws: TermDecodingError(.unknownTag(200), offset: 3, expected: "an external term tag")) {
            try TermDecoder().decode([131, 104, 1, 200])
        }
        #expect(throws: TermDecodingError(.truncated, offset: 2, expected: "32-bit integer")) {
            try TermDecoder().decode([131, 98, 0])
        }
        #expect(throws: TermDecodingError(.trailingBytes(count: 1), offset: 3, expected: "end of input")) {
            try TermDecoder().decode([131, 97, 1, 0])
        }
        #expect(throws: TermDecodingError(.invalidUTF8, offset: 1, expected: "UTF-8 atom text")) {
            try TermDecoder().decode([131, 119, 2, 0xC3, 0x28])
        }
    }
}
