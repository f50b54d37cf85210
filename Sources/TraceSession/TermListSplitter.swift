// Splits the agent's batch — `term_to_binary([Newest, ..., Oldest])` — into its elements without
// building terms: a bounds-checked skipper over the External Term Format that records where each
// element starts and ends. Each element is the exact term a trace port would have written for one
// trace message (or the agent's `{beamtrace_drop, Count}`).

struct TermListSplitter {
    /// Element ranges, in list order.
    var ranges: [Range<Int>] = []

    /// Fills `ranges`; returns false (with what was found so far) when the bytes are not a proper list.
    mutating func split(_ bytes: UnsafeRawBufferPointer) -> Bool {
        ranges.removeAll(keepingCapacity: true)
        guard bytes.count >= 2, bytes[0] == 131 else { return false }
        if bytes[1] == 106 { return true }  // []
        guard bytes[1] == 108, bytes.count >= 6 else { return false }
        let count = Int(Self.u32(bytes, 2))
        var offset = 6
        ranges.reserveCapacity(count)
        for _ in 0..<count {
            guard let end = Self.skip(bytes, offset) else { return false }
            ranges.append(offset..<end)
            offset = end
        }
        return offset < bytes.count && bytes[offset] == 106
    }

    @inline(__always)
    static func u32(_ b: UnsafeRawBufferPointer, _ o: Int) -> UInt32 {
        UInt32(b[o]) << 24 | UInt32(b[o + 1]) << 16 | UInt32(b[o + 2]) << 8 | UInt32(b[o + 3])
    }

    @inline(__always)
    static func u16(_ b: UnsafeRawBufferPointer, _ o: Int) -> Int {
        Int(b[o]) << 8 | Int(b[o + 1])
    }

    /// The offset just past the term at `start`, or nil if it is cut or unknown.
    static func skip(_ b: UnsafeRawBufferPointer, _ start: Int) -> Int? {
        var offset = start
        var pending = 1
        let n = b.count
        @inline(__always) func need(_ k: Int) -> Bool { offset + k <= n }
        while pending > 0 {
            pending -= 1
            guard need(1) else { return nil }
            let tag = b[offset]
            offset += 1
            switch tag {
            case 97: guard need(1) else { return nil }; offset += 1                   // SMALL_INTEGER
            case 98: guard need(4) else { return nil }; offset += 4                   // INTEGER
            case 70: guard need(8) else { return nil }; offset += 8                   // NEW_FLOAT
            case 99: guard need(31) else { return nil }; offset += 31                 // FLOAT
            case 100, 118:                                                            // ATOM, ATOM_UTF8
                guard need(2) else { return nil }
                offset += 2 + u16(b, offset)
            case 115, 119:                                                            // SMALL_ATOM(_UTF8)
                guard need(1) else { return nil }
                offset += 1 + Int(b[offset])
            case 104:                                                                 // SMALL_TUPLE
                guard need(1) else { return nil }
                pending += Int(b[offset])
                offset += 1
            case 105:                                                                 // LARGE_TUPLE
                guard need(4) else { return nil }
                pending += Int(u32(b, offset))
                offset += 4
            case 106: break                                                           // NIL
            case 107:                                                                 // STRING
                guard need(2) else { return nil }
                offset += 2 + u16(b, offset)
            case 108:                                                                 // LIST (+ tail)
                guard need(4) else { return nil }
                pending += Int(u32(b, offset)) + 1
                offset += 4
            case 109:                                                                 // BINARY
                guard need(4) else { return nil }
                offset += 4 + Int(u32(b, offset))
            case 77:                                                                  // BIT_BINARY
                guard need(5) else { return nil }
                offset += 5 + Int(u32(b, offset))
            case 110:                                                                 // SMALL_BIG
                guard need(1) else { return nil }
                offset += 2 + Int(b[offset])
            case 111:                                                                 // LARGE_BIG
                guard need(4) else { return nil }
                offset += 5 + Int(u32(b, offset))
            case 88, 103, 89, 102, 120, 101:                                          // pids, ports, old ref
                guard let afterNode = skip(b, offset) else { return nil }
                offset = afterNode + (tag == 88 ? 12 : tag == 103 ? 9 : tag == 89 ? 8 : tag == 120 ? 12 : 5)
            case 90, 114:                                                             // NEWER/NEW_REFERENCE
                guard need(2) else { return nil }
                let words = u16(b, offset)
                guard let afterNode = skip(b, offset + 2) else { return nil }
                offset = afterNode + (tag == 90 ? 4 : 1) + 4 * words
            case 116:                                                                 // MAP
                guard need(4) else { return nil }
                pending += 2 * Int(u32(b, offset))
                offset += 4
            case 112:                                                                 // NEW_FUN: Size counts itself
                guard need(4) else { return nil }
                offset += Int(u32(b, offset))
            case 113:                                                                 // EXPORT
                pending += 3
            case 117:                                                                 // FUN (old)
                guard need(4) else { return nil }
                pending += 4 + Int(u32(b, offset))
                offset += 4
            default:
                return nil
            }
            if offset > n { return nil }
        }
        return offset
    }
}
