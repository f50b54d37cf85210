// A bounds-checked big-endian cursor over borrowed bytes: every read returns nil on a short buffer
// instead of trapping, so outside data can never crash the decoder.

@usableFromInline
struct ByteReader {
    @usableFromInline let bytes: UnsafeRawBufferPointer
    @usableFromInline var offset: Int

    @inlinable init(_ bytes: UnsafeRawBufferPointer, offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    @inlinable var remaining: Int { bytes.count - offset }

    @inlinable @inline(__always) mutating func readUInt8() -> UInt8? {
        guard offset < bytes.count else { return nil }
        let value = bytes.load(fromByteOffset: offset, as: UInt8.self)
        offset += 1
        return value
    }

    @inlinable mutating func readUInt16() -> UInt16? {
        guard remaining >= 2 else { return nil }
        defer { offset += 2 }
        return UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
    }

    @inlinable mutating func readUInt32() -> UInt32? {
        guard remaining >= 4 else { return nil }
        defer { offset += 4 }
        return UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16
            | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
    }

    @inlinable mutating func readUInt64() -> UInt64? {
        guard let high = readUInt32(), let low = readUInt32() else { return nil }
        return UInt64(high) << 32 | UInt64(low)
    }

    /// A view of the next `count` bytes, valid as long as the underlying buffer is.
    @inlinable mutating func readSlice(_ count: Int) -> UnsafeRawBufferPointer? {
        guard count >= 0, remaining >= count else { return nil }
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)])
    }

    @inlinable mutating func readBytes(_ count: Int) -> [UInt8]? {
        guard let slice = readSlice(count) else { return nil }
        return Array(slice)
    }
}
