// The one walker over raw External Term Format bytes that does not build terms: read a tag, an
// atom, a small or large tuple header, a list header, an integer, a pid; step over one tag's own
// bytes (saying how many child terms follow) or over a whole term. Every read is bounds-checked and
// returns nil or false on bad input, never traps; skipping is iterative (no recursion however deep
// the nesting) and refuses a count of children the remaining bytes cannot hold. The trace-message
// decoder, payload compaction and redaction, the agent-batch splitter and the analyses' payload
// patterns all walk bytes with it.

public struct TermCursor {
    @usableFromInline let base: UnsafeRawPointer
    public let count: Int
    public var offset: Int

    @inlinable public init(_ buffer: UnsafeRawBufferPointer, offset: Int = 0) {
        // A zero-length buffer may have a nil base; every read checks `count` first.
        self.base = buffer.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!
        self.count = buffer.count
        self.offset = min(max(offset, 0), buffer.count)
    }

    @inline(__always) @inlinable public var remaining: Int { count - offset }

    @inline(__always) @inlinable public func peek() -> UInt8? { offset < count ? base.load(fromByteOffset: offset, as: UInt8.self) : nil }

    @inline(__always) @inlinable public mutating func u8() -> UInt8? {
        guard offset < count else { return nil }
        defer { offset += 1 }
        return base.load(fromByteOffset: offset, as: UInt8.self)
    }

    @inline(__always) @inlinable public mutating func u16() -> Int? {
        guard count - offset >= 2 else { return nil }
        defer { offset += 2 }
        return Int(UInt16(bigEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
    }

    @inline(__always) @inlinable public mutating func u32() -> UInt32? {
        guard count - offset >= 4 else { return nil }
        defer { offset += 4 }
        return UInt32(bigEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    @inline(__always) @inlinable public mutating func skip(_ n: Int) -> Bool {
        guard n >= 0, count - offset >= n else { return false }
        offset += n
        return true
    }

    /// The bytes `start ..< end` of the buffer (both clamped to it).
    @inline(__always) @inlinable public func slice(_ start: Int, _ end: Int) -> UnsafeRawBufferPointer {
        let s = min(max(start, 0), count)
        let e = min(max(end, s), count)
        return UnsafeRawBufferPointer(start: base + s, count: e - s)
    }

    /// Reads a tuple header (small or large); returns its arity.
    @inline(__always) @inlinable public mutating func tupleArity() -> Int? {
        let start = offset
        guard let tag = u8() else { return nil }
        if tag == ExternalTag.smallTuple, let n = u8() { return Int(n) }
        if tag == ExternalTag.largeTuple, let n = u32() { return Int(n) }
        offset = start
        return nil
    }

    /// Reads a LIST_EXT header; returns its element count (the tail follows the elements).
    @inline(__always) @inlinable public mutating func listHeader() -> Int? {
        let start = offset
        guard u8() == ExternalTag.list, let n = u32() else {
            offset = start
            return nil
        }
        return Int(n)
    }

    /// Reads an atom; returns the range of its text bytes and whether it is Latin-1 (tags 100/115).
    @inline(__always) @inlinable public mutating func atomText() -> (start: Int, length: Int, latin1: Bool)? {
        let begin = offset
        guard let tag = u8() else { return nil }
        let length: Int
        switch tag {
        case ExternalTag.atom, ExternalTag.atomUTF8:
            guard let n = u16() else { offset = begin; return nil }
            length = n
        case ExternalTag.smallAtom, ExternalTag.smallAtomUTF8:
            guard let n = u8() else { offset = begin; return nil }
            length = Int(n)
        default:
            offset = begin
            return nil
        }
        let start = offset
        guard skip(length) else { offset = begin; return nil }
        return (start, length, tag == ExternalTag.atom || tag == ExternalTag.smallAtom)
    }

    /// True when the term at the cursor is the atom `name` (any atom tag); the cursor does not move.
    @inline(__always) @inlinable public func isAtom(_ name: StaticString) -> Bool {
        var probe = self
        guard let text = probe.atomText(), text.length == name.utf8CodeUnitCount else { return false }
        let bytes = UnsafeRawBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)
        for i in 0..<text.length where base.load(fromByteOffset: text.start + i, as: UInt8.self) != bytes[i] {
            return false
        }
        return true
    }

    /// Reads an integer that fits in Int64 (small, 32-bit or a bignum of up to 8 bytes).
    @inlinable public mutating func integer() -> Int64? {
        let begin = offset
        guard let tag = u8() else { return nil }
        switch tag {
        case ExternalTag.smallInteger:
            if let v = u8() { return Int64(v) }
        case ExternalTag.integer:
            if let v = u32() { return Int64(Int32(bitPattern: v)) }
        case ExternalTag.smallBig:
            guard let n = u8(), let sign = u8(), n <= 8, sign <= 1, remaining >= Int(n) else { break }
            var magnitude: UInt64 = 0
            if remaining >= 8 {
                // The digits (little-endian) as one word, the bytes after them masked off.
                let word = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
                magnitude = n == 8 ? word : word & ((1 << (8 * UInt64(n))) &- 1)
            } else {
                for i in 0..<Int(n) {
                    magnitude |= UInt64(base.load(fromByteOffset: offset + i, as: UInt8.self)) << (8 * UInt64(i))
                }
            }
            if sign == 0 {
                guard magnitude <= UInt64(Int64.max) else { break }
                offset += Int(n)
                return Int64(magnitude)
            }
            guard magnitude <= UInt64(Int64.max) + 1 else { break }
            offset += Int(n)
            return magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)
        default:
            break
        }
        offset = begin
        return nil
    }

    /// A pid (PID_EXT or NEW_PID_EXT): where its node atom's text is, and its numbers.
    public struct PidParts: Sendable, Hashable {
        public var nodeStart: Int
        public var nodeLength: Int
        public var nodeIsLatin1: Bool
        public var id: UInt32
        public var serial: UInt32
        public var creation: UInt32
        @inlinable public init(nodeStart: Int, nodeLength: Int, nodeIsLatin1: Bool, id: UInt32, serial: UInt32,
                               creation: UInt32) {
            self.nodeStart = nodeStart
            self.nodeLength = nodeLength
            self.nodeIsLatin1 = nodeIsLatin1
            self.id = id
            self.serial = serial
            self.creation = creation
        }
    }

    /// Reads a pid; nil (the cursor unmoved) for anything else.
    @inlinable public mutating func pid() -> PidParts? {
        let begin = offset
        guard let tag = u8(), tag == ExternalTag.newPid || tag == ExternalTag.pid, let node = atomText(),
              let id = u32(), let serial = u32() else {
            offset = begin
            return nil
        }
        let creation = tag == ExternalTag.newPid ? u32() : u8().map(UInt32.init)
        guard let creation else {
            offset = begin
            return nil
        }
        return PidParts(nodeStart: node.start, nodeLength: node.length, nodeIsLatin1: node.latin1, id: id,
                        serial: serial, creation: creation)
    }

    @inline(__always) @inlinable public mutating func skipAtom() -> Bool { atomText() != nil }

    @inlinable public static func isPidOrPortTag(_ tag: UInt8) -> Bool {
        tag == ExternalTag.newPid || tag == ExternalTag.pid || tag == ExternalTag.newPort || tag == ExternalTag.port
            || tag == ExternalTag.v4Port
    }

    @inlinable public func isPidOrPortTag(_ tag: UInt8) -> Bool { Self.isPidOrPortTag(tag) }

    /// Steps over one term's tag and its own bytes; returns how many child terms follow it (tuple
    /// elements, list elements plus the tail, map keys and values, a fun's parts), nil if malformed.
    /// The cursor is unmoved on failure.
    @inline(__always) @inlinable public mutating func skipHeader() -> Int? {
        let begin = offset
        let children = stepHeader()
        if children == nil { offset = begin }
        return children
    }

    // Always inlined: `skipTerm` calls it once per node of every payload it steps over.
    @inlinable @inline(__always) mutating func stepHeader() -> Int? {
        guard let tag = u8() else { return nil }
        switch tag {
        case ExternalTag.smallInteger: return skip(1) ? 0 : nil
        case ExternalTag.integer: return skip(4) ? 0 : nil
        case ExternalTag.newFloat: return skip(8) ? 0 : nil
        case ExternalTag.float: return skip(31) ? 0 : nil
        case ExternalTag.atom, ExternalTag.atomUTF8:
            guard let n = u16() else { return nil }
            return skip(n) ? 0 : nil
        case ExternalTag.smallAtom, ExternalTag.smallAtomUTF8:
            guard let n = u8() else { return nil }
            return skip(Int(n)) ? 0 : nil
        case ExternalTag.smallTuple: return u8().map(Int.init)
        case ExternalTag.largeTuple: return u32().map(Int.init)
        case ExternalTag.nil: return 0
        case ExternalTag.string:
            guard let n = u16() else { return nil }
            return skip(n) ? 0 : nil
        case ExternalTag.list:
            guard let n = u32() else { return nil }
            return Int(n) + 1
        case ExternalTag.binary:
            guard let n = u32() else { return nil }
            return skip(Int(n)) ? 0 : nil
        case ExternalTag.bitBinary:
            guard let n = u32() else { return nil }
            return skip(Int(n) + 1) ? 0 : nil
        case ExternalTag.smallBig:
            guard let n = u8() else { return nil }
            return skip(Int(n) + 1) ? 0 : nil
        case ExternalTag.largeBig:
            guard let n = u32() else { return nil }
            return skip(Int(n) + 1) ? 0 : nil
        case ExternalTag.newPid: return skipAtom() && skip(12) ? 0 : nil
        case ExternalTag.pid: return skipAtom() && skip(9) ? 0 : nil
        case ExternalTag.newPort: return skipAtom() && skip(8) ? 0 : nil
        case ExternalTag.port: return skipAtom() && skip(5) ? 0 : nil
        case ExternalTag.v4Port: return skipAtom() && skip(12) ? 0 : nil
        case ExternalTag.reference: return skipAtom() && skip(5) ? 0 : nil
        case ExternalTag.newReference:
            guard let n = u16(), n <= 5 else { return nil }
            return skipAtom() && skip(1 + 4 * n) ? 0 : nil
        case ExternalTag.newerReference:
            guard let n = u16(), n <= 5 else { return nil }
            return skipAtom() && skip(4 + 4 * n) ? 0 : nil
        case ExternalTag.newFun:
            // Size counts itself and the rest of the fun.
            guard let n = u32(), n >= 4 else { return nil }
            return skip(Int(n) - 4) ? 0 : nil
        case ExternalTag.export: return 3
        case ExternalTag.map:
            guard let n = u32() else { return nil }
            return 2 * Int(n)
        case ExternalTag.fun:
            guard let free = u32() else { return nil }
            return 4 + Int(free)
        default:
            return nil
        }
    }

    /// Skips one whole term (iteratively). False, with the cursor unmoved, on malformed or short input.
    @inlinable public mutating func skipTerm() -> Bool {
        let begin = offset
        var pending = 1
        while pending > 0 {
            pending -= 1
            guard let children = stepHeader() else {
                offset = begin
                return false
            }
            pending += children
            // A hostile count could claim more terms than bytes remain; every term takes a byte.
            if pending > remaining {
                offset = begin
                return false
            }
        }
        return true
    }
}
