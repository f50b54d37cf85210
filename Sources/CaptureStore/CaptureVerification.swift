// Opening a capture without believing anything outside a block unchecked: segment headers (capture
// id, number, place in the capture), index entries (each checked against the record it points at:
// framing, length, CRC, block sequence, count and times), meta and dictionary records, and the seal
// that closes each segment. What disagrees is reported in `problems` and read around.
import Foundation
import SystemPackage
import TraceModel

struct SegmentHeader {
    var fileNumber: Int
    var number: Int
    var version: UInt32
    var captureID: [UInt8]
    /// Version 2: the sequence number of the segment's first block, and the events written before it.
    var firstSequence: UInt64?
    var eventsBefore: UInt64?
    var size: Int64
}

/// The last record of a version-2 segment (docs/FORMAT.md "Seal record").
struct SegmentSeal {
    var number: Int
    var final: Bool
    var blocks: Int
    var records: Int
    var events: UInt64
    var firstSequence: UInt64
    var lastSequence: UInt64

    init?(_ body: [UInt8]) {
        guard body.count == Format.sealBodySize else { return nil }
        let fields: (UInt32, UInt8, UInt32, UInt32, UInt64, UInt64, UInt64)? = body.withUnsafeBytes { raw in
            var c = ByteCursor(raw)
            guard let number = c.u32(), let final = c.u8(), c.bytes(3) != nil, let blocks = c.u32(),
                  let records = c.u32(), let events = c.u64(), let first = c.u64(), let last = c.u64() else { return nil }
            return (number, final, blocks, records, events, first, last)
        }
        guard let fields, fields.1 <= 1 else { return nil }
        number = Int(fields.0)
        final = fields.1 == 1
        blocks = Int(fields.2)
        records = Int(fields.3)
        events = fields.4
        firstSequence = fields.5
        lastSequence = fields.6
    }
}

/// What reading one segment found.
struct SegmentFacts {
    var header: SegmentHeader
    var seal: SegmentSeal?
    var sealOffset: Int64 = 0
    var blocksBeforeSeal = 0
    var eventsBeforeSeal = 0
    /// Blocks skipped as corrupt whose own header (CRC good) said how many events they held: they
    /// are reported, with those events lost, once; the seal check counts them as accounted for.
    var skippedBlocks = 0
    var skippedEvents = 0
    var skippedBlocksBeforeSeal = 0
    var skippedEventsBeforeSeal = 0
    var recordsBeforeSeal = 0
    var sequences: [UInt64] = []
    var events = 0
    var records = 0
    /// Damage reported while scanning (corrupt records, torn tail, garbage).
    var damaged = false
    /// Where the last good record ends.
    var end: Int64 = 0
    var minSequence: UInt64? { sequences.min() }
    var maxSequence: UInt64? { sequences.max() }
}

extension CaptureReader {
    func open(trustIndex: Bool) throws {
        var headers: [SegmentHeader] = []
        var unknownVersions: [(file: Int, version: UInt32)] = []
        for file in segmentNumbers {
            let path = directory + "/" + Format.segmentName(file)
            let fd: FileDescriptor
            do { fd = try SegmentIO.openForReading(path) } catch {
                problems.append(CaptureProblem(kind: .unreadableSegment, segment: file, offset: 0, bytes: 0,
                                               detail: "\(error); not read"))
                continue
            }
            let size = SegmentIO.size(fd)
            bytesOnDisk += size
            var raw: [UInt8] = []
            let n = (try? SegmentIO.read(fd, at: 0, count: Format.segmentHeaderSize, into: &raw)) ?? 0
            guard n >= Format.segmentHeaderSizeV1, Array(raw[0..<8]) == Format.segmentMagic else {
                problems.append(CaptureProblem(kind: .unreadableSegment, segment: file, offset: 0, bytes: size,
                                               detail: "no segment header (not a beamtrace segment, or cut before its header is complete); not read"))
                try? fd.close()
                continue
            }
            let (version, number32) = raw.withUnsafeBytes { bytes -> (UInt32, UInt32) in
                var c = ByteCursor(bytes, offset: 8)
                return (c.u32() ?? 0, c.u32() ?? 0)
            }
            guard Format.readableVersions.contains(version) else {
                unknownVersions.append((file, version))
                try? fd.close()
                continue
            }
            let number = Int(number32)
            let id = Array(raw[16..<32])
            var header = SegmentHeader(fileNumber: file, number: number, version: version, captureID: id, size: size)
            if version >= 2 {
                guard n >= Format.segmentHeaderSize else {
                    problems.append(CaptureProblem(kind: .unreadableSegment, segment: file, offset: 0, bytes: size,
                                                   detail: "the segment header is cut short; not read"))
                    try? fd.close()
                    continue
                }
                (header.firstSequence, header.eventsBefore) = raw.withUnsafeBytes { bytes -> (UInt64?, UInt64?) in
                    var c = ByteCursor(bytes, offset: 32)
                    return (c.u64(), c.u64())
                }
            }
            descriptors[file] = fd
            headers.append(header)
        }
        if headers.isEmpty {
            if let unknown = unknownVersions.first {
                throw CaptureError(.unsupportedVersion, "\(directory)/\(Format.segmentName(unknown.file)) is format version "
                                   + "\(unknown.version); this beamtrace reads versions \(Format.readableVersions.lowerBound) "
                                   + "to \(Format.readableVersions.upperBound)")
            }
            throw CaptureError(.corrupt, "\(directory): no segment can be read: "
                               + problems.map(\.description).joined(separator: "; "))
        }
        for unknown in unknownVersions {
            problems.append(CaptureProblem(kind: .unreadableSegment, segment: unknown.file, offset: 8, bytes: 0,
                                           detail: "unknown format version \(unknown.version) while the other segments are "
                                           + "readable (a damaged header?); not read"))
        }

        // The capture id: the one most segments carry (on a tie, the lowest-numbered segment's).
        var votes: [[UInt8]: Int] = [:]
        for h in headers { votes[h.captureID, default: 0] += 1 }
        let most = votes.values.max() ?? 0
        captureID = headers.first { votes[$0.captureID] == most }?.captureID ?? headers[0].captureID
        var ours: [SegmentHeader] = []
        for h in headers {
            guard h.captureID == captureID else {
                problems.append(CaptureProblem(kind: .foreignSegment, segment: h.fileNumber, offset: 16, bytes: h.size,
                                               detail: "belongs to another capture (id \(Self.uuidText(h.captureID)), this "
                                               + "capture is \(Self.uuidText(captureID))); not read"))
                try? descriptors.removeValue(forKey: h.fileNumber)?.close()
                continue
            }
            if h.number != h.fileNumber {
                problems.append(CaptureProblem(kind: .misplacedSegment, segment: h.fileNumber, offset: 12, bytes: 0,
                                               detail: "the file is named segment \(h.fileNumber) but its header says segment "
                                               + "\(h.number) (renamed, or a damaged header); read as it is"))
            }
            ours.append(h)
        }

        var facts: [SegmentFacts] = []
        var seen = Set<UInt64>()
        var metaDecoded = false
        for h in ours { facts.append(readSegment(h, trustIndex: trustIndex, seen: &seen, metaDecoded: &metaDecoded)) }
        blocks = facts.flatMap { records[$0.header.fileNumber, default: []].filter { $0.kind == .block } }
        checkContinuity(facts)
        if !metaDecoded {
            problems.append(CaptureProblem(kind: .badMeta, segment: ours.first?.fileNumber ?? 0, offset: 0, bytes: 0,
                                           detail: "no meta record could be read: the time base, sources and session are unknown"))
        } else if meta.captureIDBytes != captureID {
            problems.append(CaptureProblem(kind: .badMeta, segment: ours.first?.fileNumber ?? 0, offset: 0, bytes: 0,
                                           detail: "the meta record names capture \(meta.captureID) but the segments are "
                                           + "\(Self.uuidText(captureID))"))
        }
    }

    static func uuidText(_ bytes: [UInt8]) -> String {
        guard bytes.count == 16 else { return "?" }
        let uuid = bytes.withUnsafeBytes { raw -> uuid_t in raw.loadUnaligned(as: uuid_t.self) }
        return UUID(uuid: uuid).uuidString
    }

    // MARK: one segment

    private func readSegment(_ h: SegmentHeader, trustIndex: Bool, seen: inout Set<UInt64>,
                             metaDecoded: inout Bool) -> SegmentFacts {
        var facts = SegmentFacts(header: h)
        guard let fd = descriptors[h.fileNumber] else { return facts }
        var entries: [IndexEntry] = []
        var position = Int64(Format.segmentHeaderSize(version: h.version))
        var duplicates = 0
        let firstProblem = problems.count
        func note(_ entry: IndexEntry) -> Bool {
            if entry.kind == .block {
                guard seen.insert(entry.sequence).inserted else {
                    duplicates += 1
                    return false
                }
                facts.sequences.append(entry.sequence)
                facts.events += Int(entry.count)
            }
            facts.records += 1
            return true
        }
        func applySeal(_ body: [UInt8], offset: Int64) {
            guard let seal = SegmentSeal(body) else {
                problems.append(CaptureProblem(kind: .corruptRecord, segment: h.fileNumber, offset: offset, bytes: 0,
                                               detail: "a seal record of the wrong shape"))
                return
            }
            facts.seal = seal
            facts.sealOffset = offset
            facts.blocksBeforeSeal = facts.sequences.count
            facts.eventsBeforeSeal = facts.events
            facts.skippedBlocksBeforeSeal = facts.skippedBlocks
            facts.skippedEventsBeforeSeal = facts.skippedEvents
            facts.recordsBeforeSeal = facts.records
        }
        var unconfirmed: [IndexEntry]?
        var indexed: [IndexEntry]?
        if trustIndex {
            switch verifiedIndex(h, fd: fd) {
            case .trusted(let entries): indexed = entries
            case .unconfirmed(let entries): unconfirmed = entries
            case .none: break
            }
        }
        if let indexed {
            var buffer: [UInt8] = []
            for entry in indexed {
                if entry.kind != .block {
                    let count = Int(entry.recordLength)
                    guard (try? SegmentIO.read(fd, at: Int64(entry.offset), count: count, into: &buffer)) == count else { break }
                    let checked = buffer.withUnsafeBytes { SegmentScanner.check(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
                    // A record that fails its CRC: the scan from here reports it.
                    guard case .success(let (type, range)) = checked else { break }
                    let body = Array(buffer[range])
                    if type == .seal { applySeal(body, offset: Int64(entry.offset)) } else {
                        if apply(type: type, body: body, segment: h.fileNumber, offset: Int64(entry.offset)), type == .meta {
                            metaDecoded = true
                        }
                    }
                }
                if note(entry) { entries.append(entry) }
                position = Int64(entry.offset) + Int64(entry.recordLength)
            }
        }
        // Processes new to the segment can be checked only when the scan sees all of its blocks.
        var summarizer = BlockSummarizer()
        var wholeSegmentScanned = position == Int64(Format.segmentHeaderSize(version: h.version))
        var summaryProblems: [CaptureProblem] = []
        let scanProblems = SegmentScanner.scan(fd: fd, segment: h.fileNumber, from: position, fileSize: h.size) { record in
            var entry = IndexEntry(kind: IndexEntry.RecordKind(rawValue: record.type.rawValue) ?? .meta,
                                   segment: UInt32(h.fileNumber), offset: UInt64(record.offset),
                                   recordLength: UInt32(record.length))
            entry.recordCRC = record.crc
            entry.recordFlags = record.flags
            switch record.type {
            case .block:
                var batch = EventBatch()
                var decoder = BlockDecoder()
                let dictionaries = self.dictionaries
                let flagged = record.flags & Format.RecordFlag.summary != 0
                let (failure, header, stored) = record.body.withUnsafeBytes { raw -> (String?, BlockHeader?, BlockSummary?) in
                    let (summary, columnsEnd) = flagged ? BlockSummary.split(raw) : (nil, raw.count)
                    let columns = UnsafeRawBufferPointer(rebasing: raw[0..<(summary == nil ? raw.count : columnsEnd)])
                    return (decoder.decode(columns, dictionaries: dictionaries, into: &batch), BlockDecoder.header(raw), summary)
                }
                if let failure {
                    problems.append(CaptureProblem(kind: .corruptRecord, segment: h.fileNumber, offset: record.offset,
                                                   bytes: Int64(record.length), detail: "block \(header?.sequence ?? 0): \(failure)",
                                                   eventsLost: header.map { Int64($0.count) }))
                    if let header {
                        facts.skippedBlocks += 1
                        facts.skippedEvents += Int(header.count)
                    }
                    wholeSegmentScanned = false
                    return
                }
                let sequence = header?.sequence ?? 0
                entry.describe(batch, sequence: sequence)
                let computed = summarizer.summarize(batch, sequence: sequence)
                if flagged {
                    var disagreement: String?
                    if var stored {
                        if !wholeSegmentScanned { stored.newProcesses = computed.newProcesses }
                        if stored != computed {
                            disagreement = stored.facts.firstDifference(from: computed.facts).map { "its summary " + $0 }
                                ?? "its summary's counts (by kind, node, function or new processes) differ from its events"
                        }
                    } else {
                        disagreement = "its summary does not decode"
                    }
                    if let disagreement {
                        summaryProblems.append(CaptureProblem(kind: .badSummary, segment: h.fileNumber, offset: record.offset,
                                                              bytes: Int64(record.length),
                                                              detail: "block \(sequence): \(disagreement) although its CRC is "
                                                              + "good (a forged block?); its events are read, the summary is "
                                                              + "not used"))
                    }
                }
            case .seal:
                applySeal(record.body, offset: record.offset)
            case .meta, .dictionary:
                if apply(type: record.type, body: record.body, segment: h.fileNumber, offset: record.offset),
                   record.type == .meta {
                    metaDecoded = true
                }
            }
            if note(entry) { entries.append(entry) }
        }
        problems += scanProblems + summaryProblems
        if let unconfirmed, let why = Self.disagreement(index: unconfirmed, segment: entries) {
            problems.append(CaptureProblem(kind: .staleIndex, segment: h.fileNumber, offset: 0, bytes: 0,
                                           detail: why + " (its blocks carry no summaries, so the index was checked "
                                           + "against the blocks themselves)"))
        }
        if problems.count > firstProblem {
            problems[firstProblem...].sort { $0.offset < $1.offset }
            facts.damaged = problems[firstProblem...].contains {
                $0.kind == .corruptRecord || $0.kind == .tornTail || $0.kind == .garbage
            }
        }
        if duplicates > 0 {
            problems.append(CaptureProblem(kind: .misplacedSegment, segment: h.fileNumber, offset: 0, bytes: 0,
                                           detail: "\(duplicates) block(s) repeat blocks already read from another segment "
                                           + "(a copied segment?); read once"))
        }
        if let seal = facts.seal {
            // Blocks skipped as corrupt, with their counts, are reported already (and their events
            // counted lost there): only what neither was read nor reported is missing.
            let accountedBlocks = facts.blocksBeforeSeal + facts.skippedBlocksBeforeSeal
            let accountedEvents = facts.eventsBeforeSeal + facts.skippedEventsBeforeSeal
            let lostEvents = Int64(clamping: seal.events) &- Int64(accountedEvents)
            if seal.number != h.number {
                problems.append(CaptureProblem(kind: .misplacedSegment, segment: h.fileNumber, offset: facts.sealOffset,
                                               bytes: 0, detail: "its seal record says segment \(seal.number)"))
            }
            if seal.blocks != accountedBlocks || lostEvents != 0 {
                let skipped = facts.skippedBlocksBeforeSeal == 0 ? ""
                    : " and \(facts.skippedBlocksBeforeSeal) with \(facts.skippedEventsBeforeSeal) event(s) were skipped as corrupt"
                problems.append(CaptureProblem(kind: .missingBlocks, segment: h.fileNumber, offset: facts.sealOffset, bytes: 0,
                                               detail: "the seal record counts \(seal.blocks) block(s) and \(seal.events) "
                                               + "event(s); \(facts.blocksBeforeSeal) block(s) with \(facts.eventsBeforeSeal) "
                                               + "event(s) were read" + skipped,
                                               eventsLost: lostEvents > 0 ? lostEvents : nil))
            }
        }
        records[h.fileNumber] = entries
        return facts
    }

    enum IndexCheck {
        /// No usable index (none, version 1, or one that disagrees: reported): the segment is scanned.
        case none
        /// Every entry confirmed by what it points at.
        case trusted([IndexEntry])
        /// Framing confirmed, but the blocks carry no summaries (written before them): the segment
        /// is scanned and the entries compared with what the scan finds.
        case unconfirmed([IndexEntry])
    }

    /// The entries of a segment's index sidecar, each checked against the record it points at
    /// (docs/FORMAT.md "Index sidecar").
    private func verifiedIndex(_ h: SegmentHeader, fd: FileDescriptor) -> IndexCheck {
        let path = directory + "/" + Format.indexName(h.fileNumber)
        guard let data = FileManager.default.contents(atPath: path) else { return .none }
        let bytes = [UInt8](data)
        func stale(_ why: String, at offset: Int = 0) -> IndexCheck {
            problems.append(CaptureProblem(kind: .staleIndex, segment: h.fileNumber, offset: Int64(offset), bytes: 0,
                                           detail: why))
            return .none
        }
        guard bytes.count >= Format.indexHeaderSize, Array(bytes[0..<8]) == Format.indexMagic else {
            return bytes.isEmpty ? .none : stale("\(Format.indexName(h.fileNumber)) has no index header")
        }
        let (version, entrySize) = bytes.withUnsafeBytes { raw -> (UInt32, UInt32) in
            var c = ByteCursor(raw, offset: 8)
            return (c.u32() ?? 0, c.u32() ?? 0)
        }
        if version == 1 && entrySize == UInt32(Format.indexEntrySizeV1) {
            // A version-1 index has no CRCs to check its entries by: the segment is read instead.
            return .none
        }
        guard version == Format.indexVersion, entrySize == UInt32(Format.indexEntrySize) else {
            return stale("index version \(version) with \(entrySize)-byte entries is unknown")
        }
        guard Array(bytes[16..<32]) == h.captureID else {
            return stale("the index names capture \(Self.uuidText(Array(bytes[16..<32]))), not this one")
        }
        var result: [IndexEntry] = []
        var expected = UInt64(Format.segmentHeaderSize(version: h.version))
        var record: [UInt8] = []
        var tail: [UInt8] = []
        var at = Format.indexHeaderSize
        var k = 0
        var summarized = 0, blocks = 0
        let none = IndexEntry(kind: .meta, segment: 0, offset: 0, recordLength: 0)
        while at + Format.indexEntrySize <= bytes.count {
            let bad: String? = bytes.withUnsafeBytes { raw -> String? in
                let slice = UnsafeRawBufferPointer(rebasing: raw[at..<(at + Format.indexEntrySize)])
                if IndexEntry.checksumFailure(slice) { return "fails its CRC" }
                var c = ByteCursor(slice)
                guard let e = IndexEntry.decode(&c) else { return "does not decode" }
                guard e.segment == UInt32(h.number) else { return "names segment \(e.segment)" }
                guard e.offset == expected else { return "says offset \(e.offset) where the previous record ends at \(expected)" }
                guard e.recordLength >= UInt32(Format.recordOverhead), e.offset <= UInt64(h.size),
                      Int64(e.offset) + Int64(e.recordLength) <= h.size else { return "points past the end of the segment" }
                if e.kind != .block {
                    guard e.recordFlags == 0, e.sameBlockFacts(none) else { return "gives block facts to a \(e.kind) record" }
                }
                let summaryLength = e.hasSummary ? BlockSummary.fixedSize : 0
                let headLength = e.kind == .block ? Format.recordHeaderSize + Format.blockHeaderSize : Format.recordHeaderSize
                let tailLength = Format.recordTrailerSize + summaryLength
                guard Int(e.recordLength) >= Format.recordHeaderSize + tailLength + (e.kind == .block ? Format.blockHeaderSize : 0)
                else { return "gives length \(e.recordLength), too short for its record" }
                guard (try? SegmentIO.read(fd, at: Int64(e.offset), count: headLength, into: &record)) == headLength,
                      (try? SegmentIO.read(fd, at: Int64(e.offset) + Int64(e.recordLength) - Int64(tailLength),
                                           count: tailLength, into: &tail)) == tailLength
                else { return "points at bytes that cannot be read" }
                let facts: String? = record.withUnsafeBytes { r -> String? in
                    var rc = ByteCursor(r)
                    guard rc.u32() == Format.recordMagic else { return "points at no record" }
                    guard rc.u8() == e.kind.rawValue else { return "gives the wrong record type" }
                    guard rc.u8() == e.recordFlags, rc.u16() != nil else { return "gives record flags the record does not have" }
                    let length = rc.u32() ?? 0
                    guard UInt64(length) + UInt64(Format.recordOverhead) == UInt64(e.recordLength) else {
                        return "gives length \(e.recordLength), the record is \(UInt64(length) + 20) bytes"
                    }
                    let trailerOK = tail.withUnsafeBytes { t -> Bool in
                        var tc = ByteCursor(t, offset: summaryLength)
                        return tc.u32() == e.recordCRC && tc.u32() == length
                    }
                    guard trailerOK else { return "gives a CRC or length the record's trailer does not have" }
                    guard e.kind == .block else { return nil }
                    guard let block = BlockDecoder.header(UnsafeRawBufferPointer(rebasing: r[Format.recordHeaderSize...])) else {
                        return "points at a block without a header"
                    }
                    if block.sequence != e.sequence { return "gives sequence \(e.sequence), the block has \(block.sequence)" }
                    if block.count != Int(e.count) { return "gives \(e.count) events, the block has \(block.count)" }
                    if block.timeMin != e.timeMin || block.timeMax != e.timeMax { return "gives times the block does not have" }
                    guard e.hasSummary else { return nil }
                    // Every other fact is confirmed by the summary at the end of the block.
                    let fixed = tail.withUnsafeBytes { t in
                        BlockSummary.decodeFixed(UnsafeRawBufferPointer(rebasing: t[0..<BlockSummary.fixedSize]))
                    }
                    guard let summary = fixed?.summary else { return "points at a block whose summary does not decode" }
                    return e.firstDifference(from: summary.facts).map { $0 + " (its summary says otherwise)" }
                }
                if let facts { return facts }
                var entry = e
                entry.segment = UInt32(h.fileNumber)
                result.append(entry)
                if e.kind == .block {
                    blocks += 1
                    if e.hasSummary { summarized += 1 }
                }
                expected = e.offset + UInt64(e.recordLength)
                return nil
            }
            if let bad { return stale("entry \(k) (byte \(at) of the index) \(bad)", at: at) }
            at += Format.indexEntrySize
            k += 1
        }
        return summarized == blocks ? .trusted(result) : .unconfirmed(result)
    }

    /// Where an index that could not be confirmed record by record disagrees with the records the
    /// scan found (entries past the index's end are a lagging index, not a disagreement).
    static func disagreement(index: [IndexEntry], segment: [IndexEntry]) -> String? {
        for (k, (e, found)) in zip(index, segment).enumerated() {
            if e.kind != found.kind || e.offset != found.offset || e.recordLength != found.recordLength
                || e.recordCRC != found.recordCRC || e.recordFlags != found.recordFlags {
                return "entry \(k) does not describe the record at offset \(e.offset)"
            }
            if let why = e.firstDifference(from: found) { return "entry \(k) (block \(found.sequence)) \(why)" }
        }
        if index.count > segment.count { return "it lists \(index.count) records, the segment holds \(segment.count)" }
        return nil
    }

    /// Applies a meta or dictionary record; true when it decoded completely.
    func apply(type: Format.RecordType, body: [UInt8], segment: Int, offset: Int64) -> Bool {
        switch type {
        case .meta:
            do {
                meta = try JSONDecoder().decode(CaptureMeta.self, from: Data(body))
                return true
            } catch {
                problems.append(CaptureProblem(kind: .badMeta, segment: segment, offset: offset, bytes: Int64(body.count),
                                               detail: "a meta record does not decode (\(Self.jsonError(error))); "
                                               + "the previous one (or defaults) is used"))
                return false
            }
        case .dictionary:
            if let failure = body.withUnsafeBytes({ DictionaryRecord.apply($0, to: &dictionaries) }) {
                problems.append(CaptureProblem(kind: .badDictionary, segment: segment,
                                               offset: offset + Int64(Format.recordHeaderSize + failure.offset),
                                               bytes: Int64(body.count - failure.offset),
                                               detail: "dictionary record at offset \(offset): \(failure.message) at byte "
                                               + "\(failure.offset) of its body; the entries before it are kept, the ones after it are "
                                               + "lost (their names may print as ids)"))
                return false
            }
            return true
        case .block, .seal:
            return true
        }
    }

    static func jsonError(_ error: Error) -> String {
        switch error {
        case DecodingError.dataCorrupted(let context): return context.debugDescription
        case DecodingError.keyNotFound(let key, _): return "no \(key.stringValue)"
        case DecodingError.typeMismatch(_, let context): return "\(context.codingPath.map(\.stringValue).joined(separator: ".")): \(context.debugDescription)"
        case DecodingError.valueNotFound(_, let context): return "\(context.codingPath.map(\.stringValue).joined(separator: ".")) is null"
        default: return "\(error)"
        }
    }

    // MARK: the segments together

    /// Checks that the segments read make one whole capture: contiguous block sequences from the
    /// first (or the flight recorder's oldest kept) to the last, the last sealed as final.
    private func checkContinuity(_ facts: [SegmentFacts]) {
        let ordered = facts.sorted {
            ($0.minSequence ?? $0.header.firstSequence ?? .max, $0.header.number)
                < ($1.minSequence ?? $1.header.firstSequence ?? .max, $1.header.number)
        }
        guard let first = ordered.first, let last = ordered.last else { return }
        // Before the first segment.
        let firstSequence = first.header.firstSequence ?? first.minSequence ?? 1
        if firstSequence > 1 || first.header.number > 1 {
            if meta.retainBytes != nil {
                segmentsPruned = max(0, first.header.number - 1)
            } else {
                let blocks = firstSequence > 1 ? " (blocks 1 to \(firstSequence - 1))" : ""
                problems.append(CaptureProblem(kind: .missingSegment, segment: first.header.fileNumber, offset: 0, bytes: 0,
                                               detail: "the segments before this one are missing\(blocks)"
                                               + (first.header.version == 1 ? "; deleted by flight-recorder mode, or lost" : ""),
                                               eventsLost: first.header.eventsBefore.map { Int64(clamping: $0) }))
            }
        }
        // Inside each segment, where nothing else explains a gap.
        for f in ordered where !f.damaged && f.seal == nil {
            let sorted = f.sequences.sorted()
            for (a, b) in zip(sorted, sorted.dropFirst()) where b > a + 1 {
                problems.append(CaptureProblem(kind: .missingBlocks, segment: f.header.fileNumber, offset: 0, bytes: 0,
                                               detail: "blocks \(a + 1) to \(b - 1) are missing from this segment"))
            }
        }
        // Between segments.
        for (a, b) in zip(ordered, ordered.dropFirst()) {
            if a.header.version >= 2 && a.seal == nil {
                problems.append(CaptureProblem(kind: .unsealed, segment: a.header.fileNumber, offset: a.header.size, bytes: 0,
                                               detail: "ends without its seal record although segment \(b.header.number) "
                                               + "follows (cut short?)"))
            }
            if a.seal?.final == true {
                problems.append(CaptureProblem(kind: .misplacedSegment, segment: b.header.fileNumber, offset: 0, bytes: 0,
                                               detail: "follows segment \(a.header.number), which was sealed as the end of "
                                               + "the capture"))
            }
            // Header fields are not CRC-checked: every sum here saturates instead of trapping.
            let aLast = a.seal?.lastSequence ?? a.maxSequence ?? (max(a.header.firstSequence ?? 1, 1) - 1)
            guard aLast < UInt64.max, let bFirst = b.header.firstSequence ?? b.minSequence, bFirst > aLast + 1 else { continue }
            var lost: Int64?
            if let before = b.header.eventsBefore, let aBefore = a.header.eventsBefore {
                let aEvents = a.seal.map { Int64(clamping: $0.events) } ?? Int64(a.events)
                let (d1, o1) = Int64(clamping: before).subtractingReportingOverflow(Int64(clamping: aBefore))
                let (d2, o2) = d1.subtractingReportingOverflow(aEvents)
                lost = o1 || o2 || d2 < 0 ? nil : d2
            }
            let numbers = b.header.number == a.header.number + 2 ? "segment \(a.header.number + 1) is missing: "
                : b.header.number > a.header.number + 2
                ? "segments \(a.header.number + 1) to \(b.header.number - 1) are missing: " : ""
            problems.append(CaptureProblem(kind: .missingSegment, segment: b.header.fileNumber, offset: 0, bytes: 0,
                                           detail: "\(numbers)blocks \(aLast + 1) to \(bFirst - 1) between segment "
                                           + "\(a.header.number) and segment \(b.header.number) are not here",
                                           eventsLost: lost))
        }
        // After the last.
        guard last.header.version >= 2 else { return }
        if let seal = last.seal {
            if seal.final {
                isSealed = true
            } else {
                problems.append(CaptureProblem(kind: .missingSegment, segment: last.header.fileNumber, offset: 0, bytes: 0,
                                               detail: "its seal record says the capture goes on, but no later segment is here"))
            }
        } else {
            let end = last.header.fileNumber
            problems.append(CaptureProblem(kind: .unsealed, segment: end, offset: last.header.size, bytes: 0,
                                           detail: "the capture was not closed: its last segment has no seal record (the "
                                           + "recorder was killed or failed, the disk filled, or the file was cut; a capture "
                                           + "still being written looks the same). Everything readable is kept; events after "
                                           + "it, if any, are lost"))
        }
    }
}
