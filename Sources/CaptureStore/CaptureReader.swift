// Opens a capture (recovering from a crash: torn tails are cut, corrupt records skipped, both
// reported) and replays its events in time order, skipping blocks the index rules out. Blocks are
// decoded on all cores in groups and merged, so overlapping blocks still come out in order.
import Dispatch
import Foundation
import SystemPackage
import TraceModel

public final class CaptureReader: @unchecked Sendable {
    public let directory: String
    public private(set) var dictionaries = TraceDictionaries()
    public private(set) var meta = CaptureMeta()
    /// What recovery found: torn tails cut, corrupt records skipped, stale index files ignored.
    public private(set) var problems: [CaptureProblem] = []
    /// Every readable block, in file order.
    public private(set) var blocks: [IndexEntry] = []
    /// All records (meta, dictionary, block) per segment, as the index should list them.
    private(set) var records: [Int: [IndexEntry]] = [:]
    public private(set) var bytesOnDisk: Int64 = 0
    public private(set) var segmentNumbers: [Int] = []
    private var descriptors: [Int: FileDescriptor] = [:]
    private let statisticsLock = NSLock()
    private var decompressed = 0

    /// Blocks decompressed since the reader was opened (pruning is measured with it).
    public var blocksDecompressed: Int {
        statisticsLock.lock()
        defer { statisticsLock.unlock() }
        return decompressed
    }

    /// Bytes cut from torn tails.
    public var bytesCut: Int64 { problems.filter { $0.kind == .tornTail }.reduce(0) { $0 + $1.bytes } }

    public init(opening directory: String) throws {
        self.directory = directory
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw CaptureError(.notACapture, "cannot read capture directory \(directory): \(error.localizedDescription)")
        }
        segmentNumbers = names.compactMap(Format.segmentNumber(fromName:)).sorted()
        guard !segmentNumbers.isEmpty else {
            throw CaptureError(.notACapture, "\(directory) holds no capture segments (segment-*.btseg)")
        }
        for number in segmentNumbers { try openSegment(number) }
        // Pids print as <0.N.S> when their node is the only one with events (docs/EVENTS.md).
        let eventNodes = blocks.reduce(UInt64(0)) { $0 | $1.nodes } & ~1
        dictionaries.localNode = eventNodes.nonzeroBitCount == 1 ? NodeID(eventNodes.trailingZeroBitCount) : nil
    }

    deinit {
        for fd in descriptors.values { try? fd.close() }
    }

    private func openSegment(_ number: Int) throws {
        let path = directory + "/" + Format.segmentName(number)
        let fd = try SegmentIO.openForReading(path)
        descriptors[number] = fd
        let size = SegmentIO.size(fd)
        bytesOnDisk += size
        var header: [UInt8] = []
        let n = (try? SegmentIO.read(fd, at: 0, count: Format.segmentHeaderSize, into: &header)) ?? 0
        guard n == Format.segmentHeaderSize, Array(header[0..<8]) == Format.segmentMagic else {
            problems.append(CaptureProblem(kind: .tornTail, segment: number, offset: 0, bytes: size,
                                           detail: "no complete segment header"))
            return
        }
        let version = header.withUnsafeBytes { raw -> UInt32 in var c = ByteCursor(raw, offset: 8); return c.u32() ?? 0 }
        guard version == Format.version else {
            throw CaptureError(.unsupportedVersion, "\(path) is format version \(version); this beamtrace reads version \(Format.version)")
        }
        // Trust the index for the prefix it describes consistently; scan the rest.
        var indexed = loadIndex(number, fileSize: size)
        var entries: [IndexEntry] = []
        var position = Int64(Format.segmentHeaderSize)
        var buffer: [UInt8] = []
        while !indexed.isEmpty {
            let entry = indexed.removeFirst()
            guard entry.kind != .block else {
                entries.append(entry)
                position = Int64(entry.offset) + Int64(entry.recordLength)
                continue
            }
            // Meta and dictionary records are read (and checked) now.
            let count = Int(entry.recordLength)
            guard (try? SegmentIO.read(fd, at: Int64(entry.offset), count: count, into: &buffer)) == count else { break }
            let checked = buffer.withUnsafeBytes { SegmentScanner.check(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
            guard case .success(let (type, range)) = checked else {
                problems.append(CaptureProblem(kind: .staleIndex, segment: number, offset: Int64(entry.offset), bytes: 0,
                                               detail: "the record it lists there does not check"))
                break
            }
            apply(type: type, body: Array(buffer[range]), segment: number, offset: Int64(entry.offset))
            entries.append(entry)
            position = Int64(entry.offset) + Int64(entry.recordLength)
        }
        SegmentScanner.scan(fd: fd, segment: number, from: position, fileSize: size, problems: &problems) { record in
            var entry = IndexEntry(kind: IndexEntry.RecordKind(rawValue: record.type.rawValue) ?? .meta,
                                   segment: UInt32(number), offset: UInt64(record.offset), recordLength: UInt32(record.length))
            if record.type == .block {
                var batch = EventBatch()
                var decoder = BlockDecoder()
                let dictionaries = self.dictionaries
                let failure = record.body.withUnsafeBytes { decoder.decode($0, dictionaries: dictionaries, into: &batch) }
                if let failure {
                    problems.append(CaptureProblem(kind: .corruptRecord, segment: number, offset: record.offset,
                                                   bytes: Int64(record.length), detail: failure))
                    return
                }
                var encoder = BlockEncoder()
                var scratch = ByteWriter()
                let sequence = BlockDecoder.header(record.body.withUnsafeBytes { $0 })?.sequence ?? 0
                encoder.encode(batch, dictionaries: dictionaries, sequence: sequence, droppedBefore: 0, into: &scratch, entry: &entry)
            } else {
                apply(type: record.type, body: record.body, segment: number, offset: record.offset)
            }
            entries.append(entry)
        }
        records[number] = entries
        blocks.append(contentsOf: entries.filter { $0.kind == .block })
    }

    private func apply(type: Format.RecordType, body: [UInt8], segment: Int, offset: Int64) {
        switch type {
        case .meta:
            if let decoded = try? JSONDecoder().decode(CaptureMeta.self, from: Data(body)) { meta = decoded }
        case .dictionary:
            if let failure = body.withUnsafeBytes({ DictionaryRecord.apply($0, to: &dictionaries) }) {
                problems.append(CaptureProblem(kind: .corruptRecord, segment: segment, offset: offset,
                                               bytes: Int64(body.count), detail: "dictionary: \(failure)"))
            }
        case .block:
            break
        }
    }

    /// The index entries of a segment's sidecar that chain from the header without gaps.
    private func loadIndex(_ number: Int, fileSize: Int64) -> [IndexEntry] {
        let path = directory + "/" + Format.indexName(number)
        guard let data = FileManager.default.contents(atPath: path), data.count >= Format.indexHeaderSize else { return [] }
        let bytes = [UInt8](data)
        guard Array(bytes[0..<8]) == Format.indexMagic else {
            problems.append(CaptureProblem(kind: .staleIndex, segment: number, offset: 0, bytes: 0, detail: "bad index header"))
            return []
        }
        var result: [IndexEntry] = []
        var expected = UInt64(Format.segmentHeaderSize)
        bytes.withUnsafeBytes { raw in
            var c = ByteCursor(raw, offset: Format.indexHeaderSize)
            while c.remaining >= Format.indexEntrySize, let entry = IndexEntry.decode(&c) {
                guard entry.segment == UInt32(number), entry.offset == expected,
                      Int64(entry.offset) + Int64(entry.recordLength) <= fileSize else { break }
                result.append(entry)
                expected = entry.offset + UInt64(entry.recordLength)
            }
        }
        return result
    }

    /// Rewrites every segment's index sidecar from what was found in the segments (atomically, by rename).
    public func rebuildIndex() throws -> Int {
        var written = 0
        for (number, entries) in records {
            var w = ByteWriter()
            w.bytes.append(contentsOf: Format.indexMagic)
            w.u32(Format.version)
            w.u32(UInt32(Format.indexEntrySize))
            w.bytes.append(contentsOf: meta.captureIDBytes)
            for e in entries { w.bytes.append(contentsOf: e.encoded()) }
            let path = directory + "/" + Format.indexName(number)
            let temporary = path + ".tmp"
            unlink(temporary)
            let fd = try SegmentIO.create(temporary)
            try w.bytes.withUnsafeBytes { try SegmentIO.writeAll(fd, $0, path: temporary) }
            SegmentIO.sync(fd)
            try? fd.close()
            guard rename(temporary, path) == 0 else { throw CaptureError(.io, "cannot replace \(path)") }
            written += entries.count
        }
        return written
    }

    // MARK: reading events

    final class Slot: @unchecked Sendable {
        var batch = EventBatch()
        var decoder = BlockDecoder()
        var buffer: [UInt8] = []
        var failure: CaptureProblem?
    }

    private func decode(_ entry: IndexEntry, into slot: Slot) {
        slot.failure = nil
        slot.batch.removeAll()
        guard let fd = descriptors[Int(entry.segment)] else { return }
        let count = Int(entry.recordLength)
        let read = (try? SegmentIO.read(fd, at: Int64(entry.offset), count: count, into: &slot.buffer)) ?? 0
        let problem: String? = read != count ? "the block is cut short" : slot.buffer.withUnsafeBytes { raw -> String? in
            let record = UnsafeRawBufferPointer(rebasing: raw[0..<count])
            switch SegmentScanner.check(record) {
            case .failure(let failure): return failure.why
            case .success(let (_, range)):
                statisticsLock.lock()
                decompressed += 1
                statisticsLock.unlock()
                return slot.decoder.decode(UnsafeRawBufferPointer(rebasing: record[range]), dictionaries: dictionaries, into: &slot.batch)
            }
        }
        if let problem {
            slot.batch.removeAll()
            slot.failure = CaptureProblem(kind: .corruptRecord, segment: Int(entry.segment), offset: Int64(entry.offset),
                                          bytes: Int64(count), detail: "block \(entry.sequence): \(problem)")
        }
    }

    /// Calls `body` for each matching event in time order (ties in write order); `payload` is only
    /// valid during the call. Return false from `body` to stop. Corrupt blocks are skipped and added
    /// to `problems`.
    public func forEach(matching query: EventQuery = .all,
                        _ body: (TraceEvent, UnsafeRawBufferPointer) throws -> Bool) throws {
        let candidates = blocks.enumerated().filter { $0.element.mayMatch(query) }
            .sorted { ($0.element.timeMin, $0.offset) < ($1.element.timeMin, $1.offset) }.map(\.element)
        let n = candidates.count
        guard n > 0 else { return }
        let everything = query.isAll
        let group = max(2, min(8, ProcessInfo.processInfo.activeProcessorCount * 4))
        var pool: [Slot] = []
        var slots = [Slot?](repeating: nil, count: n)
        var cursors = [Int](repeating: 0, count: n)
        var active: [Int] = []
        var next = 0
        var stop = false

        // Decoding runs a group ahead of the merge: while the caller visits one group's events,
        // the next group decodes on the other cores.
        var prefetch: (range: Range<Int>, group: DispatchGroup, work: [(Int, Slot)])?
        func dispatch(_ range: Range<Int>) -> (Range<Int>, DispatchGroup, [(Int, Slot)]) {
            var work: [(Int, Slot)] = []
            for j in range where slots[j] == nil {
                let slot = pool.popLast() ?? Slot()
                slots[j] = slot
                work.append((j, slot))
            }
            let jobs = work
            let group = DispatchGroup()
            group.enter()
            DispatchQueue.global().async {
                DispatchQueue.concurrentPerform(iterations: jobs.count) { k in
                    self.decode(candidates[jobs[k].0], into: jobs[k].1)
                }
                group.leave()
            }
            return (range, group, work)
        }
        func finish(_ pending: (range: Range<Int>, group: DispatchGroup, work: [(Int, Slot)])) {
            pending.group.wait()
            for (_, slot) in pending.work { if let failure = slot.failure { problems.append(failure) } }
        }
        func ensureDecoded(_ i: Int) {
            if let pending = prefetch, pending.range.contains(i) {
                finish(pending)
                prefetch = nil
            }
            if slots[i] == nil {
                let now = dispatch(i..<min(n, i + group))
                finish((now.0, now.1, now.2))
            }
            if prefetch == nil {
                var start = i + 1
                while start < n && slots[start] != nil { start += 1 }
                if start < n { prefetch = dispatch(start..<min(n, start + group)) }
            }
        }
        func release(_ i: Int) {
            if let slot = slots[i] { pool.append(slot) }
            slots[i] = nil
        }
        func headTime(_ i: Int) -> Int64 { slots[i].map { $0.batch.times[cursors[i]] } ?? .max }

        defer { if let pending = prefetch { pending.group.wait() } }
        while !stop {
            // Admit every block that could hold an event earlier than the current heads.
            while next < n {
                if !active.isEmpty {
                    var minimum = Int64.max
                    for a in active { minimum = min(minimum, headTime(a)) }
                    if candidates[next].timeMin > minimum { break }
                }
                ensureDecoded(next)
                if let slot = slots[next], !slot.batch.isEmpty { active.append(next) } else { release(next) }
                next += 1
            }
            if active.isEmpty { break }
            // Pick the earliest head (the first admitted wins ties).
            var best = 0
            var bestTime = headTime(active[0])
            for k in 1..<active.count {
                let t = headTime(active[k])
                if t < bestTime { best = k; bestTime = t }
            }
            let blockIndex = active[best]
            guard let slot = slots[blockIndex] else { active.remove(at: best); continue }
            let batch = slot.batch
            // Emit a run: up to the next block's start and the other heads.
            var limit = next < n ? candidates[next].timeMin : Int64.max
            for (k, a) in active.enumerated() where k != best { limit = min(limit, headTime(a)) }
            var i = cursors[blockIndex]
            try batch.payloadBytes.withUnsafeBytes { payload in
                while i < batch.count {
                    let t = batch.times[i]
                    if t > limit || (t == limit && active.count > 1 && i > cursors[blockIndex]) { break }
                    let kind = batch.kinds[i], pid = batch.pids[i], mfa = batch.mfas[i], node = batch.nodes[i]
                    if everything || query.matches(time: t, node: node, pid: pid, kind: kind, mfa: mfa) {
                        let start = i == 0 ? 0 : Int(batch.payloadEnds[i - 1])
                        let end = Int(batch.payloadEnds[i])
                        let event = TraceEvent(time: t, node: node, pid: pid, kind: kind, flags: batch.flags[i],
                                               mfa: mfa, peer: batch.peers[i], value: batch.values[i])
                        let bytes = UnsafeRawBufferPointer(rebasing: payload[start..<end])
                        if try !body(event, bytes) { stop = true; i += 1; break }
                    }
                    i += 1
                    if t == limit { break }
                }
            }
            cursors[blockIndex] = i
            if i >= batch.count {
                active.remove(at: best)
                release(blockIndex)
            }
        }
    }

    /// Matching events with their payloads copied out.
    public func events(matching query: EventQuery = .all, limit: Int = .max) throws -> [RecordedEvent] {
        var result: [RecordedEvent] = []
        try forEach(matching: query) { event, payload in
            result.append(RecordedEvent(event: event, payload: Array(payload)))
            return result.count < limit
        }
        return result
    }
}
