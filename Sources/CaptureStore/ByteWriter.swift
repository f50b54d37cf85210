// Little-endian and varint writing into a growable byte array, and the matching bounds-checked reader.

struct ByteWriter {
    var bytes: [UInt8] = []

    init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func i64(_ v: Int64) { u64(UInt64(bitPattern: v)) }

    @inline(__always) mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    mutating func string(_ s: String) {
        let utf8 = Array(s.utf8)
        varint(UInt64(utf8.count))
        bytes.append(contentsOf: utf8)
    }

    mutating func patchU64(_ v: UInt64, at offset: Int) {
        patchU32(UInt32(truncatingIfNeeded: v), at: offset)
        patchU32(UInt32(truncatingIfNeeded: v >> 32), at: offset + 4)
    }

    mutating func patchU32(_ v: UInt32, at offset: Int) {
        withUnsafeBytes(of: v.littleEndian) { raw in
            for i in 0..<4 { bytes[offset + i] = raw[i] }
        }
    }
}

@inline(__always) func zigzag(_ v: Int64) -> UInt64 { UInt64(bitPattern: (v << 1) ^ (v >> 63)) }
@inline(__always) func unzigzag(_ v: UInt64) -> Int64 { Int64(bitPattern: v >> 1) ^ -Int64(bitPattern: v & 1) }

/// The LEB128 varint at `offset` of the `count` bytes at `base`, `offset` left after it; nil when
/// cut short or longer than 64 bits.
@inline(__always) func readVarint(_ base: UnsafeRawPointer, _ offset: inout Int, count: Int) -> UInt64? {
    var result: UInt64 = 0
    var shift: UInt64 = 0
    while offset < count {
        let byte = base.load(fromByteOffset: offset, as: UInt8.self)
        offset += 1
        result |= UInt64(byte & 0x7F) << shift
        if byte < 0x80 { return result }
        shift += 7
        if shift > 63 { return nil }
    }
    return nil
}

/// Reads a column of `n` LEB128 varints, calling `body(i, value)` for each in order; false when
/// the column is cut short, holds an over-long varint, a value `body` refuses (false), or bytes
/// after the last. Most values of a column are one byte: that case is tested first, before the
/// general loop.
@inline(__always) func readVarintColumn(_ column: UnsafeRawBufferPointer, _ n: Int,
                                        _ body: (Int, UInt64) -> Bool) -> Bool {
    guard let base = column.baseAddress else { return n == 0 }
    let count = column.count
    var offset = 0
    var i = 0
    while i < n {
        guard offset < count else { return false }
        let byte = base.load(fromByteOffset: offset, as: UInt8.self)
        if byte < 0x80 {
            offset += 1
            guard body(i, UInt64(byte)) else { return false }
        } else {
            guard let v = readVarint(base, &offset, count: count), body(i, v) else { return false }
        }
        i += 1
    }
    return offset == count
}

struct ByteCursor {
    let base: UnsafeRawPointer?
    let count: Int
    var offset: Int

    init(_ buffer: UnsafeRawBufferPointer, offset: Int = 0) {
        base = buffer.baseAddress
        count = buffer.count
        self.offset = offset
    }

    var remaining: Int { count - offset }

    mutating func u8() -> UInt8? {
        guard offset < count, let base else { return nil }
        defer { offset += 1 }
        return base.load(fromByteOffset: offset, as: UInt8.self)
    }
    mutating func u16() -> UInt16? {
        guard count - offset >= 2, let base else { return nil }
        defer { offset += 2 }
        return UInt16(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }
    mutating func u32() -> UInt32? {
        guard count - offset >= 4, let base else { return nil }
        defer { offset += 4 }
        return UInt32(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }
    mutating func u64() -> UInt64? {
        guard count - offset >= 8, let base else { return nil }
        defer { offset += 8 }
        return UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }
    mutating func i64() -> Int64? { u64().map { Int64(bitPattern: $0) } }

    @inline(__always) mutating func varint() -> UInt64? {
        guard let base, offset < count else { return nil }
        // One byte, the common case, first.
        let byte = base.load(fromByteOffset: offset, as: UInt8.self)
        if byte < 0x80 {
            offset += 1
            return UInt64(byte)
        }
        return readVarint(base, &offset, count: count)
    }

    mutating func bytes(_ n: Int) -> UnsafeRawBufferPointer? {
        guard n >= 0, count - offset >= n, let base else { return n == 0 ? UnsafeRawBufferPointer(start: nil, count: 0) : nil }
        defer { offset += n }
        return UnsafeRawBufferPointer(start: base + offset, count: n)
    }

    mutating func string() -> String? {
        guard let n = varint(), n < 1 << 20, let raw = bytes(Int(n)) else { return nil }
        return String(decoding: raw, as: UTF8.self)
    }
}
