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

    func decode(_ entry: IndexEntry, into slot: Slot, reading wanted: EventColumns = .all) {
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
                // The payloads stay in the decoder's buffer: the merge reads them there (no copy).
                return slot.decoder.decode(columns, dictionaries: dictionaries, into: &slot.batch, reading: wanted,
                                           payloadsInBatch: false)
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
    /// to `problems`. `columns` says what the pass reads (column pruning): the rest comes as zeros
    /// and empty payloads, and is never decompressed.
    public func forEach(matching query: EventQuery = .all, columns: EventColumns = .all,
                        _ body: (TraceEvent, UnsafeRawBufferPointer) throws -> Bool) throws {
        let candidates = blocks.enumerated().filter { $0.element.mayMatch(query) }
            .sorted { ($0.element.timeMin, $0.offset) < ($1.element.timeMin, $1.offset) }.map(\.element)
        let n = candidates.count
        guard n > 0 else { return }
        let everything = query.isAll
        // Blocks decode on worker threads ahead of the merge (and on this thread while it would
        // wait), at most `window` blocks ahead of what the merge has taken: memory stays bounded.
        let ahead = DecodeAhead(reader: self, candidates: candidates, columns: columns, window: 4)
        ahead.start(workers: n > 1 ? max(1, ProcessInfo.processInfo.activeProcessorCount - 1) : 0)
        defer { ahead.cancel() }
        var slots = [Slot?](repeating: nil, count: n)
        var cursors = [Int](repeating: 0, count: n)
        var active: [Int] = []
        var next = 0
        var stop = false

        func release(_ i: Int) {
            if let slot = slots[i] { ahead.release(slot) }
            slots[i] = nil
        }
        func headTime(_ i: Int) -> Int64 { slots[i].map { $0.batch.times[cursors[i]] } ?? .max }

        while !stop {
            // Admit every block that could hold an event earlier than the current heads.
            while next < n {
                if !active.isEmpty {
                    var minimum = Int64.max
                    for a in active { minimum = min(minimum, headTime(a)) }
                    if candidates[next].timeMin > minimum { break }
                }
                let slot = ahead.take(next)
                if let failure = slot.failure { problems.append(failure) }
                if slot.batch.isEmpty {
                    ahead.release(slot)
                } else {
                    slots[next] = slot
                    active.append(next)
                }
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
            let first = cursors[blockIndex]
            let several = active.count > 1
            // The decoder's payload buffer (the slot holds it until released).
            let payload = slot.decoder.payloads
            // The run reads the columns through pointers (no per-event bounds or uniqueness checks).
            let (i, stopped) = try batch.withColumns { b -> (Int, Bool) in
                var i = first
                while i < b.count {
                    let t = b.times[i]
                    if t > limit || (t == limit && several && i > first) { break }
                    let kind = b.kinds[i], pid = b.pids[i], mfa = b.mfas[i], node = b.nodes[i]
                    if everything || query.matches(time: t, node: node, pid: pid, kind: kind, mfa: mfa) {
                        let start = i == 0 ? 0 : Int(b.payloadEnds[i - 1])
                        let end = Int(b.payloadEnds[i])
                        let event = TraceEvent(time: t, node: node, pid: pid, kind: kind, flags: b.flags[i],
                                               mfa: mfa, peer: b.peers[i], value: b.values[i])
                        let bytes = UnsafeRawBufferPointer(rebasing: payload[start..<end])
                        if try !body(event, bytes) { return (i + 1, true) }
                    }
                    i += 1
                    if t == limit { break }
                }
                return (i, false)
            }
            if stopped { stop = true }
            let count = batch.count
            cursors[blockIndex] = i
            if i >= count {
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

/// Decodes a merge's candidate blocks ahead of it: worker threads claim blocks in order, at most
/// `window` blocks beyond what the merge has taken (memory stays bounded by the window whatever the
/// capture's size), and the merging thread decodes the next unclaimed block itself rather than wait.
final class DecodeAhead: @unchecked Sendable {
    private let reader: CaptureReader
    private let candidates: [IndexEntry]
    private let columns: EventColumns
    private let window: Int
    private let condition = NSCondition()
    private var done: [CaptureReader.Slot?]
    private var pool: [CaptureReader.Slot] = []
    /// Blocks the merge has taken: workers decode below `taken + window`.
    private var taken = 0
    /// The lowest block nobody has claimed.
    private var claimNext = 0
    private var cancelled = false
    private let workers = DispatchGroup()

    init(reader: CaptureReader, candidates: [IndexEntry], columns: EventColumns = .all, window: Int) {
        self.reader = reader
        self.candidates = candidates
        self.columns = columns
        self.window = max(1, window)
        done = Array(repeating: nil, count: candidates.count)
    }

    func start(workers count: Int) {
        for _ in 0..<count {
            workers.enter()
            DispatchQueue.global().async {
                self.work()
                self.workers.leave()
            }
        }
    }

    /// Claims the next block within the window (the lock held); nil when there is none.
    private func claim() -> (Int, CaptureReader.Slot)? {
        guard !cancelled, claimNext < candidates.count, claimNext < taken + window else { return nil }
        let j = claimNext
        claimNext += 1
        return (j, pool.popLast() ?? CaptureReader.Slot())
    }

    /// Decodes block `j` into `slot` without the lock, then publishes it (the lock held again).
    private func decode(_ j: Int, _ slot: CaptureReader.Slot) {
        condition.unlock()
        reader.decode(candidates[j], into: slot, reading: columns)
        condition.lock()
        done[j] = slot
        condition.broadcast()
    }

    private func work() {
        condition.lock()
        while !cancelled && claimNext < candidates.count {
            if let (j, slot) = claim() {
                decode(j, slot)
            } else {
                condition.wait()
            }
        }
        condition.unlock()
    }

    /// Block `i`, decoded; the merge takes blocks in increasing order and hands each back with `release`.
    func take(_ i: Int) -> CaptureReader.Slot {
        condition.lock()
        defer { condition.unlock() }
        if taken < i + 1 {
            taken = i + 1
            condition.broadcast()
        }
        while true {
            if let slot = done[i] {
                done[i] = nil
                return slot
            }
            if let (j, slot) = claim() {
                decode(j, slot)
            } else {
                condition.wait()
            }
        }
    }

    func release(_ slot: CaptureReader.Slot) {
        condition.lock()
        pool.append(slot)
        condition.unlock()
    }

    /// Stops the workers and waits for them (an early stop or the end of the merge).
    func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
        workers.wait()
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
