// The meta record: format version, capture id, where the events came from, the clock they use,
// and why recording started and stopped. Stored as JSON in a record so it can grow.
import Foundation
import TraceModel

public struct CaptureMeta: Codable, Sendable, Hashable {
    public struct NodeInfo: Codable, Sendable, Hashable {
        public var name: String
        public var otpRelease: String?
        /// Nanoseconds to add to this node's times to put them on the session clock.
        public var clockOffsetNs: Int64?
        public init(name: String, otpRelease: String? = nil, clockOffsetNs: Int64? = nil) {
            self.name = name
            self.otpRelease = otpRelease
            self.clockOffsetNs = clockOffsetNs
        }
    }
    public var formatVersion: UInt32 = Format.version
    public var captureID: String = UUID().uuidString
    /// UTC, ISO 8601 to the second (`2026-12-04T21:04:23Z`, as Foundation's ISO8601DateFormatter
    /// writes it). Formatted with the C library: every reader makes a default meta before it reads
    /// the stored one, and the formatter's first use loaded ICU's calendar data (3% of the CPU of
    /// a `hang`, and 5 MiB).
    public var createdAt: String = CaptureMeta.utcNow()
    /// "monotonic", "system" or "none".
    public var timeBase: String = "none"
    public var sources: [String] = []
    public var nodes: [NodeInfo] = []
    public var session: String?
    public var startReason: String?
    public var stopReason: String?
    public var payloadLimit: Int = 256
    public var redacted: Bool = false
    /// Flight-recorder mode: the writer deleted the oldest segments beyond this many bytes, so a
    /// capture that starts after segment 1 is expected (format version 2; absent before).
    public var retainBytes: Int?

    public init() {}

    /// Now as `createdAt` writes it.
    public static func utcNow() -> String {
        var now = time(nil)
        var parts = tm()
        guard gmtime_r(&now, &parts) != nil else { return "1970-01-01T00:00:00Z" }
        var text = [CChar](repeating: 0, count: 32)
        let written = strftime(&text, text.count, "%Y-%m-%dT%H:%M:%SZ", &parts)
        guard written > 0 else { return "1970-01-01T00:00:00Z" }
        return String(decoding: text[0..<written].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    var captureIDBytes: [UInt8] {
        guard let uuid = UUID(uuidString: captureID) else { return Array(repeating: 0, count: 16) }
        return withUnsafeBytes(of: uuid.uuid) { Array($0) }
    }
}
