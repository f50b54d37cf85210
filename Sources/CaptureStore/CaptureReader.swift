// Opens a capture (recovering from a crash: torn tails are cut, corrupt records skipped, both
// reported) and replays its events in time order, skipping blocks the index rules out. Blocks are
// decoded on all cores in groups and merged, so overlapping blocks still come out in order.
import Dispatch
import Foundation
import SystemPackage
import TraceModel

public final class CaptureReader: @unchecked Sendable {
    public let directory: String
    /// Whether the index sidecars were used (after checking) or every record was read.
    let trustedIndex: Bool
    public internal(set) var dictionaries = TraceDictionaries()
    public internal(set) var meta = CaptureMeta()
    /// Everything found wrong: torn tails cut, corrupt records skipped, stale index files ignored,
    /// missing, foreign or misplaced segments, undecodable meta and dictionary records, blocks that
    /// fail while being read. Empty for a sound capture.
    public internal(set) var problems: [CaptureProblem] = []
    /// Every readable block, in file order.
    public internal(set) var blocks: [IndexEntry] = []
    /// All verified records (meta, dictionary, block, seal) per segment file, as the index should list them.
    var records: [Int: [IndexEntry]] = [:]
    public internal(set) var bytesOnDisk: Int64 = 0
    /// The segment files present (by the number in their names).
    public internal(set) var segmentNumbers: [Int] = []
    /// The capture id the segments share (the majority's, when some disagree).
    public internal(set) var captureID: [UInt8] = []
    /// Oldest segments deleted by flight-recorder mode (expected; not a problem).
    public internal(set) var segmentsPruned = 0
    /// True when the capture was closed by its writer (version 2: the last segment is sealed as final).
    public internal(set) var isSealed = false
    /// Segment files actually read (foreign and unreadable ones are left out), keyed by file number.
    var descriptors: [Int: FileDescriptor] = [:]

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

    /// Opens a capture. Every structure outside a block is checked before it is believed (see
    /// CaptureVerification.swift); what is wrong goes into `problems`. With `trustIndex` false the
    /// index sidecars are not used at all: every record is read and CRC-checked (`index --rebuild`).
    public init(opening directory: String, trustIndex: Bool = true) throws {
        self.directory = directory
        self.trustedIndex = trustIndex
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
        try open(trustIndex: trustIndex)
        // Pids print as <0.N.S> when their node is the only one with events (docs/EVENTS.md).
        let eventNodes = blocks.reduce(UInt64(0)) { $0 | $1.nodes } & ~1
        dictionaries.localNode = eventNodes.nonzeroBitCount == 1 ? NodeID(eventNodes.trailingZeroBitCount) : nil
    }

    /// Print this capture's functions and pids in Elixir syntax (see `TraceDictionaries.elixirSyntax`).
    public var elixirSyntax: Bool {
        get { dictionaries.elixirSyntax }
        set { dictionaries.elixirSyntax = newValue }
    }

    deinit {
        for fd in descriptors.values { try? fd.close() }
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
                let body = UnsafeRawBufferPointer(rebasing: record[range])
                // A block summary follows the columns (BlockSummary.swift).
                let columnsEnd = entry.hasSummary ? BlockSummary.columnsEnd(body) : nil
                let columns = columnsEnd.map { UnsafeRawBufferPointer(rebasing: body[0..<$0]) } ?? body
                return slot.decoder.decode(columns, dictionaries: dictionaries, into: &slot.batch)
            }
        }
        if let problem {
            slot.batch.removeAll()
            slot.failure = CaptureProblem(kind: .corruptRecord, segment: Int(entry.segment), offset: Int64(entry.offset),
                                          bytes: Int64(count), detail: "block \(entry.sequence): \(problem)",
                                          eventsLost: Int64(entry.count))
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

extension CaptureReader {
    /// Rewrites every segment's index sidecar from a full, CRC-checked read of the segments (never
    /// from the old index), each atomically by rename; returns the entries written. On failure
    /// (a full disk) no temporary file is left behind and the old index stays.
    public func rebuildIndex() throws -> Int {
        let verified = trustedIndex ? try CaptureReader(opening: directory, trustIndex: false) : self
        var written = 0
        for (number, entries) in verified.records.sorted(by: { $0.key < $1.key }) {
            var w = ByteWriter()
            w.bytes.append(contentsOf: Format.indexMagic)
            w.u32(Format.indexVersion)
            w.u32(UInt32(Format.indexEntrySize))
            w.bytes.append(contentsOf: verified.captureID)
            for e in entries { w.bytes.append(contentsOf: e.encoded()) }
            let path = directory + "/" + Format.indexName(number)
            let temporary = path + ".tmp"
            unlink(temporary)
            do {
                let fd = try SegmentIO.create(temporary)
                do {
                    try w.bytes.withUnsafeBytes { try SegmentIO.writeAll(fd, $0, path: temporary) }
                    try SegmentIO.sync(fd, path: temporary)
                    try fd.close()
                } catch {
                    try? fd.close()
                    throw error
                }
                guard rename(temporary, path) == 0 else {
                    let code = errno
                    throw CaptureError(.io, "cannot replace \(path): \(String(cString: strerror(code)))")
                }
            } catch {
                unlink(temporary)
                throw CaptureError(.io, "rebuilding the index of segment \(number) failed: \(error); the old index "
                                   + "is left as it was (\(written) entries of earlier segments were rewritten)")
            }
            written += entries.count
        }
        SegmentIO.syncDirectory(directory)
        return written
    }
}
