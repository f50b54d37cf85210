// Why a trace message did not decode, and where in its bytes.

public struct TraceDecodingError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What was wrong, in words (`unknown trace tag 'foo'`, `truncated term`...).
    public var message: String
    /// Byte offset within the trace message (the frame body) where the problem was found.
    public var offset: Int

    public init(_ message: String, offset: Int) {
        self.message = message
        self.offset = offset
    }

    public var description: String { "\(message) at byte \(offset) of the trace message" }
}
