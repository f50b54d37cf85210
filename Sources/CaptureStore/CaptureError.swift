// Errors from reading and writing captures: what happened, and where (file, segment, offset).

public struct CaptureError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case io, notACapture, corrupt, unsupportedVersion, invalidArgument, importFailed
    }
    public var code: Code
    public var message: String
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { message }
}

/// Something wrong found while opening or reading a capture; the capture stays readable around it.
public struct CaptureProblem: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable, Codable {
        /// The last record of a segment was cut short (a crash while writing); its bytes are ignored.
        case tornTail = "torn_tail"
        /// A whole record failed its CRC or structure check; it was skipped.
        case corruptRecord = "corrupt_record"
        /// Bytes between records that are not a record; skipped up to the next record.
        case garbage
        /// The index sidecar disagreed with the segment and was ignored for it.
        case staleIndex = "stale_index"
    }
    public var kind: Kind
    public var segment: Int
    public var offset: Int64
    public var bytes: Int64
    public var detail: String
    public var description: String {
        switch kind {
        case .tornTail:
            return "segment \(segment): cut a torn tail of \(bytes) bytes at offset \(offset) (\(detail)); everything before it is kept"
        case .corruptRecord:
            return "segment \(segment): skipped a corrupt record of \(bytes) bytes at offset \(offset) (\(detail)); the rest is readable"
        case .garbage:
            return "segment \(segment): skipped \(bytes) bytes of garbage at offset \(offset) (\(detail))"
        case .staleIndex:
            return "segment \(segment): index ignored (\(detail)); rebuilt in memory from the segment"
        }
    }
}
