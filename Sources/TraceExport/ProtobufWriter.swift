// A small protocol-buffers encoder, enough for Perfetto's trace format: varints, zigzag-free
// signed ints, fixed64, length-delimited strings and nested messages, written straight into bytes.

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
