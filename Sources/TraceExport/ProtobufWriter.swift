// A small protocol-buffers encoder, enough for Perfetto's trace format: varints, zigzag-free
// signed ints, fixed64, length-delimited strings and nested messages, written straight into bytes;
// and RawBytes, the in-place buffer the exporters build each event in.

import BeamTerm

public struct ProtobufWriter {
    public var bytes: [UInt8] = []

    public init(capacity: Int = 64) { bytes.reserveCapacity(capacity) }

    @inline(__always)
    public mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    @inline(__always)
    public mutating func tag(_ field: UInt32, _ wireType: UInt32) { varint(UInt64(field << 3 | wireType)) }

    /// uint32/uint64/bool/enum fields.
    @inline(__always)
    public mutating func uint(_ field: UInt32, _ value: UInt64) {
        tag(field, 0)
        varint(value)
    }

    /// int32/int64 fields (two's complement, as protobuf encodes them).
    @inline(__always)
    public mutating func int(_ field: UInt32, _ value: Int64) {
        tag(field, 0)
        varint(UInt64(bitPattern: value))
    }

    @inline(__always)
    public mutating func fixed64(_ field: UInt32, _ value: UInt64) {
        tag(field, 1)
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    public mutating func string(_ field: UInt32, _ text: String) {
        var text = text
        text.withUTF8 { raw in
            tag(field, 2)
            varint(UInt64(raw.count))
            bytes.append(contentsOf: raw)
        }
    }

    /// Stores `value` as a varint at `p`, which has room for 10 bytes; returns the bytes it took.
    @inline(__always)
    static func store(varint value: UInt64, at p: UnsafeMutablePointer<UInt8>) -> Int {
        var v = value
        var k = 0
        while v >= 0x80 {
            p[k] = UInt8(truncatingIfNeeded: v) | 0x80
            v >>= 7
            k += 1
        }
        p[k] = UInt8(v)
        return k + 1
    }

    /// Bytes a varint of `value` takes.
    @inline(__always)
    public static func varintSize(_ value: UInt64) -> Int { value == 0 ? 1 : (70 - value.leadingZeroBitCount) / 7 }

    @inline(__always)
    public mutating func message(_ field: UInt32, _ body: [UInt8]) {
        tag(field, 2)
        varint(UInt64(body.count))
        bytes.append(contentsOf: body)
    }

    /// A nested message written by `body` (encoded into a scratch writer, then length-prefixed).
    @inline(__always)
    public mutating func message(_ field: UInt32, _ body: (inout ProtobufWriter) -> Void) {
        var nested = ProtobufWriter(capacity: 32)
        body(&nested)
        message(field, nested.bytes)
    }
}

/// Bytes built in place in memory of their own (no array, so no retain or uniqueness check
/// per write): a message an exporter encodes once per event, or a table of names it copies from. Its owner
/// calls `deallocate` when done.
struct RawBytes {
    private(set) var base: UnsafeMutablePointer<UInt8>
    private(set) var count = 0
    private var capacity: Int

    init(capacity: Int) {
        self.capacity = max(64, capacity)
        base = .allocate(capacity: self.capacity)
    }

    func deallocate() { base.deallocate() }

    var isEmpty: Bool { count == 0 }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    @inline(__always)
    mutating func removeAll() { count = 0 }

    @inline(__always)
    private mutating func room(_ n: Int) {
        if count + n > capacity { grow(count + n) }
    }

    private mutating func grow(_ needed: Int) {
        regrowBytes(&base, count: count, capacity: &capacity, needed: needed)
    }

    @inline(__always)
    mutating func varint(_ value: UInt64) {
        room(10)
        count += ProtobufWriter.store(varint: value, at: base + count)
    }

    @inline(__always)
    mutating func tag(_ field: UInt32, _ wireType: UInt32) { varint(UInt64(field << 3 | wireType)) }

    @inline(__always)
    mutating func uint(_ field: UInt32, _ value: UInt64) {
        tag(field, 0)
        varint(value)
    }

    @inline(__always)
    mutating func int(_ field: UInt32, _ value: Int64) {
        tag(field, 0)
        varint(UInt64(bitPattern: value))
    }

    @inline(__always)
    mutating func fixed64(_ field: UInt32, _ value: UInt64) {
        tag(field, 1)
        room(8)
        UnsafeMutableRawPointer(base + count).storeBytes(of: value.littleEndian, as: UInt64.self)
        count += 8
    }

    @inline(__always)
    mutating func append(_ raw: UnsafeRawBufferPointer) {
        guard let source = raw.baseAddress, !raw.isEmpty else { return }
        room(raw.count)
        (base + count).update(from: source.assumingMemoryBound(to: UInt8.self), count: raw.count)
        count += raw.count
    }
}
