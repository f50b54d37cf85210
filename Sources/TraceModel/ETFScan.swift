// Allocation-free walking of External Term Format bytes: find where a term ends, read atoms and
// integers in place. Every read is bounds-checked; bad input returns nil, never traps.

@usableFromInline
struct ETFScan {
    @usableFromInline let base: UnsafeRawPointer
    @usableFromInline let count: Int
    @usableFromInline var offset: Int

    @inlinable init(_ buffer: UnsafeRawBufferPointer, offset: Int = 0) {
        // A zero-length buffer may have a nil base; every read checks `count` first.
        self.base = buffer.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!
        self.count = buffer.count
        self.offset = offset
    }

    @inlinable var remaining: Int { count - offset }

    @inlinable func peek() -> UInt8? { offset < count ? base.load(fromByteOffset: offset, as: UInt8.self) : nil }

    @inlinable mutating func u8() -> UInt8? {
        guard offset < count else { return nil }
        defer { offset += 1 }
        return base.load(fromByteOffset: offset, as: UInt8.self)
    }

    @inlinable mutating func u16() -> Int? {
        guard count - offset >= 2 else { return nil }
        defer { offset += 2 }
        return Int(UInt16(bigEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
    }

    @inlinable mutating func u32() -> UInt32? {
        guard count - offset >= 4 else { return nil }
        defer { offset += 4 }
        return UInt32(bigEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    @inlinable mutating func skip(_ n: Int) -> Bool {
        guard n >= 0, count - offset >= n else { return false }
        offset += n
        return true
    }

    @inlinable func slice(_ start: Int, _ end: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base + start, count: end - start)
    }

    /// Reads a tuple header (small or large); returns its arity.
    @inlinable mutating func tupleArity() -> Int? {
        guard let tag = u8() else { return nil }
        if tag == 104 { return u8().map(Int.init) }
        if tag == 105 { return u32().map(Int.init) }
        return nil
    }

    /// Reads an atom; returns the range of its text bytes and whether it is Latin-1 (tags 100/115).
    @inlinable mutating func atomText() -> (start: Int, length: Int, latin1: Bool)? {
        guard let tag = u8() else { return nil }
        let length: Int
        switch tag {
        case 100, 118: guard let n = u16() else { return nil }; length = n
        case 115, 119: guard let n = u8() else { return nil }; length = Int(n)
        default: return nil
        }
        let start = offset
        guard skip(length) else { return nil }
        return (start, length, tag == 100 || tag == 115)
    }

    /// Reads an integer that fits in Int64 (small, 32-bit or a bignum of up to 8 bytes).
    @inlinable mutating func integer() -> Int64? {
        guard let tag = u8() else { return nil }
        switch tag {
        case 97: return u8().map(Int64.init)
        case 98: return u32().map { Int64(Int32(bitPattern: $0)) }
        case 110:
            guard let n = u8(), let sign = u8(), n <= 8, remaining >= Int(n) else { return nil }
            var magnitude: UInt64 = 0
            for i in 0..<Int(n) {
                magnitude |= UInt64(base.load(fromByteOffset: offset + i, as: UInt8.self)) << (8 * UInt64(i))
            }
            offset += Int(n)
            if sign == 0 {
                guard magnitude <= UInt64(Int64.max) else { return nil }
                return Int64(magnitude)
            }
            guard magnitude <= UInt64(Int64.max) + 1 else { return nil }
            return magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)
        default: return nil
        }
    }

    /// Skips one whole term (iteratively, no recursion). Returns false on malformed or short input.
    @inlinable mutating func skipTerm() -> Bool {
        var pending = 1
        while pending > 0 {
            pending -= 1
            guard let tag = u8() else { return false }
            switch tag {
            case 97: guard skip(1) else { return false }
            case 98: guard skip(4) else { return false }
            case 70: guard skip(8) else { return false }
            case 99: guard skip(31) else { return false }
            case 100, 118: guard let n = u16(), skip(n) else { return false }
            case 115, 119: guard let n = u8(), skip(Int(n)) else { return false }
            case 104: guard let n = u8() else { return false }; pending += Int(n)
            case 105: guard let n = u32() else { return false }; pending += Int(n)
            case 106: break
            case 107: guard let n = u16(), skip(n) else { return false }
            case 108: guard let n = u32() else { return false }; pending += Int(n) + 1
            case 109: guard let n = u32(), skip(Int(n)) else { return false }
            case 77: guard let n = u32(), skip(Int(n) + 1) else { return false }
            case 110: guard let n = u8(), skip(Int(n) + 1) else { return false }
            case 111: guard let n = u32(), skip(Int(n) + 1) else { return false }
            case 88: guard skipAtom(), skip(12) else { return false }
            case 103: guard skipAtom(), skip(9) else { return false }
            case 89: guard skipAtom(), skip(8) else { return false }
            case 102: guard skipAtom(), skip(5) else { return false }
            case 120: guard skipAtom(), skip(12) else { return false }
            case 101: guard skipAtom(), skip(5) else { return false }
            case 114: guard let n = u16(), skipAtom(), skip(1 + 4 * n) else { return false }
            case 90: guard let n = u16(), skipAtom(), skip(4 + 4 * n) else { return false }
            case 112: guard let n = u32(), n >= 4, skip(Int(n) - 4) else { return false }
            case 113: pending += 3
            case 116: guard let n = u32() else { return false }; pending += 2 * Int(n)
            case 117:
                guard let free = u32() else { return false }
                pending += 4 + Int(free)
            default: return false
            }
            // A hostile length could claim more terms than bytes remain; every term takes a byte.
            if pending > remaining { return false }
        }
        return true
    }

    @inlinable mutating func skipAtom() -> Bool { atomText() != nil }

    /// Reads a term if it is a pid or port: the start/end of its bytes and which.
    @inlinable func isPidOrPortTag(_ tag: UInt8) -> Bool {
        tag == 88 || tag == 103 || tag == 89 || tag == 102 || tag == 120
    }
}
