// OTP's trace-port record format, shared by the file port, the ip port and beamtrace's agent:
// `Op:8, Size:32/big, Body` with Op 0 = a term_to_binary'd trace message of Size bytes and
// Op 1 = a drop record (no body) whose Size counts the messages lost.

public enum TraceFrame {
    case message(UnsafeRawBufferPointer)
    case drop(count: UInt32)
}

public struct FrameError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    /// Byte offset of the frame in the stream.
    public var offset: Int64
    public init(_ message: String, offset: Int64) {
        self.message = message
        self.offset = offset
    }
    public var description: String { "\(message) at byte \(offset)" }
}

/// Splits a buffer into frames. Stops before a frame that does not fit in the buffer (the caller
/// keeps those bytes for the next read, or reports a truncated tail at the end of the stream).
public struct FrameScanner {
    /// Largest trace message accepted (a corrupt length beyond this is garbage, not a frame).
    public var maxFrameSize: Int = 64 << 20

    public init() {}

    /// Calls `body` for each whole frame in `buffer`; returns how many bytes were consumed.
    /// `streamOffset` is the position of `buffer` in the whole stream, for error messages.
    @inlinable
    public func scan(_ buffer: UnsafeRawBufferPointer, streamOffset: Int64,
                     _ body: (TraceFrame, Int64) throws -> Void) throws -> Int {
        guard let base = buffer.baseAddress else { return 0 }
        var offset = 0
        let count = buffer.count
        while count - offset >= 5 {
            let op = base.load(fromByteOffset: offset, as: UInt8.self)
            let size = UInt32(bigEndian: base.loadUnaligned(fromByteOffset: offset + 1, as: UInt32.self))
            switch op {
            case 0:
                guard Int(size) <= maxFrameSize else {
                    throw FrameError("trace frame claims \(size) bytes (more than \(maxFrameSize)): not a trace file, or corrupt",
                                     offset: streamOffset + Int64(offset))
                }
                guard count - offset - 5 >= Int(size) else { return offset }
                try body(.message(UnsafeRawBufferPointer(start: base + offset + 5, count: Int(size))), streamOffset + Int64(offset))
                offset += 5 + Int(size)
            case 1:
                try body(.drop(count: size), streamOffset + Int64(offset))
                offset += 5
            default:
                throw FrameError("bad trace frame tag \(op) (expected 0 or 1)", offset: streamOffset + Int64(offset))
            }
        }
        return offset
    }
}
