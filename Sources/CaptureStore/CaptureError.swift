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
/// Every command prints these as warnings and `info --json` lists them.
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
        /// A segment file that belongs to another capture (its capture id differs); not read.
        case foreignSegment = "foreign_segment"
        /// Segments that should be there are not (a gap in the numbers, or the capture goes on after the last one).
        case missingSegment = "missing_segment"
        /// A segment file whose header names another place in the capture, or repeats one.
        case misplacedSegment = "misplaced_segment"
        /// Blocks absent between the ones read (their sequence numbers are not contiguous).
        case missingBlocks = "missing_blocks"
        /// The capture was never closed (or was cut at a record boundary): events after its end may be missing.
        case unsealed
        /// A meta record that does not decode; an earlier one (or defaults) is used.
        case badMeta = "bad_meta"
        /// A dictionary record that does not decode entirely; the entries before the damage are kept.
        case badDictionary = "bad_dictionary"
        /// A segment that cannot be read at all (no header, unknown version).
        case unreadableSegment = "unreadable_segment"
        /// A block whose summary (docs/FORMAT.md "Block summary") disagrees with its own events or
        /// does not decode although its CRC is good; its events are read, its summary is not used.
        case badSummary = "bad_summary"
    }
    public var kind: Kind
    public var segment: Int
    public var offset: Int64
    public var bytes: Int64
    public var detail: String
    /// Events known to be lost (nil: unknown or none).
    public var eventsLost: Int64?

    public init(kind: Kind, segment: Int, offset: Int64, bytes: Int64, detail: String, eventsLost: Int64? = nil) {
        self.kind = kind
        self.segment = segment
        self.offset = offset
        self.bytes = bytes
        self.detail = detail
        self.eventsLost = eventsLost
    }

    /// The problem as JSON-ready fields (`info --json`).
    public var fields: [String: Sendable] {
        var object: [String: Sendable] = ["kind": kind.rawValue, "segment": segment, "offset": offset, "bytes": bytes,
                                          "detail": detail, "message": description]
        if let eventsLost { object["events_lost"] = eventsLost }
        return object
    }

    private var lost: String {
        guard let eventsLost else { return "" }
        return "; \(eventsLost) event(s) lost"
    }

    public var description: String {
        switch kind {
        case .tornTail:
            return "segment \(segment): cut a torn tail of \(bytes) bytes at offset \(offset) (\(detail)); everything before it is kept" + lost
        case .corruptRecord:
            return "segment \(segment): skipped a corrupt record of \(bytes) bytes at offset \(offset) (\(detail)); the rest is readable" + lost
        case .garbage:
            return "segment \(segment): skipped \(bytes) bytes of garbage at offset \(offset) (\(detail))" + lost
        case .staleIndex:
            return "segment \(segment): index ignored (\(detail)); rebuilt in memory from the segment (run `beamtrace index --rebuild`)"
        case .foreignSegment, .missingSegment, .misplacedSegment, .missingBlocks, .unsealed, .badMeta, .badDictionary,
             .unreadableSegment, .badSummary:
            let at = offset > 0 ? " at offset \(offset)" : ""
            return "segment \(segment)\(at): \(detail)" + lost
        }
    }
}

extension CaptureProblem {
    /// The problems as warning lines for a person, alike ones grouped: a damage that repeats in
    /// every block (a capture whose blocks a newer beamtrace wrote in an encoding this one does not
    /// know, a disk that zeroed a range) prints its first occurrence and one line that counts the
    /// rest, not one line per block. Alike: the same kind and the same detail once its numbers are
    /// set aside. Groups keep the order of their first problem; the full list stays
    /// in `info --json` and `index --json`.
    public static func warningLines(_ problems: some Sequence<CaptureProblem>, listingUpTo limit: Int = 3) -> [String] {
        var groups: [(key: String, members: [CaptureProblem])] = []
        var groupOf: [String: Int] = [:]
        for problem in problems {
            let key = problem.kind.rawValue + "\u{0}" + problem.detailShape
            if let g = groupOf[key] {
                groups[g].members.append(problem)
            } else {
                groupOf[key] = groups.count
                groups.append((key, [problem]))
            }
        }
        var lines: [String] = []
        for group in groups {
            let members = group.members
            guard members.count > limit, let first = members.first else {
                lines += members.map { "\($0)" }
                continue
            }
            lines.append("\(first)")
            let rest = members.dropFirst()
            let segments = Set(rest.map(\.segment)).sorted()
            let segmentText = segments.count == 1 ? "segment \(segments[0])"
                : segments.count == (segments.last ?? 0) - (segments.first ?? 0) + 1
                ? "segments \(segments.first ?? 0)–\(segments.last ?? 0)" : "\(segments.count) segments"
            let bytes = rest.reduce(Int64(0)) { $0 + $1.bytes }
            var line = "\(rest.count) more like it in \(segmentText)" + (bytes > 0 ? ", \(bytes) bytes" : "")
            let lostKnown = members.compactMap(\.eventsLost)
            if !lostKnown.isEmpty {
                let total = lostKnown.reduce(0, +)
                line += "; \(total) event(s) lost in all"
                if lostKnown.count < members.count { line += " (and an unknown number where it is not said)" }
            }
            lines.append(line)
        }
        return lines
    }

    /// The detail with every number set aside (what makes alike problems alike: the same damage
    /// in another block, or another segment's count of it).
    var detailShape: String {
        var shape = ""
        var inNumber = false
        for c in detail.unicodeScalars {
            if c.properties.numericType != nil {
                if !inNumber { shape.append("#") }
                inNumber = true
            } else {
                shape.unicodeScalars.append(c)
                inNumber = false
            }
        }
        return shape
    }
}
