// Writes a capture: events are gathered into blocks (closed at `blockEvents` events, `blockBytes`
// of payload, or `blockInterval` after the first event, whichever first); a background queue sorts,
// encodes, compresses and appends them (the caller keeps decoding on the other core, and encodes a
// block itself when the queue is full rather than wait). Dictionary
// changes are written before the block that first uses them; segments rotate at `segmentBytes`;
// with `retainBytes` only the newest segments are kept (flight recorder). Nothing written is ever
// rewritten in place.
import Dispatch
import Foundation
import SystemPackage
import TraceModel

public final class CaptureWriter: @unchecked Sendable {
    public struct Options: Sendable {
        public var blockEvents = 16_384
        public var blockBytes = 256 << 10
        public var blockInterval: Duration = .milliseconds(100)
        public var syncInterval: Duration = .seconds(1)
        public var segmentBytes = 64 << 20
        /// Flight-recorder mode: delete the oldest segments beyond this many bytes.
        public var retainBytes: Int?
        /// Encode and write on a background queue (both cores); false writes on the caller's thread.
        public var background = true
        /// The block encoding written: 2 (docs/FORMAT.md); 1 only for tests that check readers of
        /// captures written before encoding 2.
        var blockEncoding = Format.BlockEncoding.marked
        /// Tests: the caller encodes every block itself, as it does each one it seals while the
        /// writer is behind.
        var callerEncodesAlways = false
        public init() {}
    }

    public struct Statistics: Sendable {
        public var events = 0
        public var blocks = 0
        public var segments = 0
        public var bytesWritten: Int64 = 0
        public var segmentsDeleted = 0
    }

    public let directory: String
    public let options: Options
    public private(set) var meta: CaptureMeta

    private var open = EventBatch()
    private var openSince: ContinuousClock.Instant?
    /// What the caller's dictionaries gained since the last block was handed over, and how much of
    /// them was taken (the writer's queue keeps its own copy: see DictionaryDelta).
    private var delta = DictionaryDelta()
    private var taken = DictionaryDelta.Cursor()
    private var sequence: UInt64 = 0
    private let queue = DispatchQueue(label: "beamtrace.capture.writer")
    private let slots = DispatchSemaphore(value: 3)
    /// Encodes the blocks this thread seals while the writer is behind (made at the first).
    private var callerEncoder: BlockEncoder?
    private let state: WriterState
    private var closed = false

    public init(creating directory: String, meta: CaptureMeta = CaptureMeta(), options: Options = Options()) throws {
        guard options.blockEvents > 0, options.segmentBytes > 0 else {
            throw CaptureError(.invalidArgument, "block size and segment size must be positive")
        }
        try SegmentIO.createDirectory(directory)
        self.directory = directory
        self.options = options
        var meta = meta
        meta.formatVersion = Format.version
        meta.retainBytes = options.retainBytes
        self.meta = meta
        state = WriterState(directory: directory, meta: meta, options: options)
        open.reserveCapacity(options.blockEvents, payloadBytes: options.blockBytes)
    }

    deinit {
        if !closed { try? close() }
    }

    /// Adds events. `dictionaries` must define every id they use (the decoder's, as it is now).
    public func append(_ batch: EventBatch, dictionaries: TraceDictionaries) throws {
        try state.throwIfFailed()
        delta.take(from: dictionaries, cursor: &taken)
        if open.isEmpty, batch.count == options.blockEvents, batch.payloadBytes.count <= options.blockBytes * 2 {
            // A whole block already: hand it over without copying.
            try seal(batch, dictionaries: dictionaries)
            return
        }
        var index = 0
        while index < batch.count {
            if open.isEmpty { openSince = .now }
            let room = options.blockEvents - open.count
            let end = min(batch.count, index + room)
            let payloadStart = index == 0 ? 0 : Int(batch.payloadEnds[index - 1])
            let payloadEnd = end == 0 ? 0 : Int(batch.payloadEnds[end - 1])
            let base = UInt32(open.payloadBytes.count)
            open.times.append(contentsOf: batch.times[index..<end])
            open.nodes.append(contentsOf: batch.nodes[index..<end])
            open.pids.append(contentsOf: batch.pids[index..<end])
            open.kinds.append(contentsOf: batch.kinds[index..<end])
            open.flags.append(contentsOf: batch.flags[index..<end])
            open.mfas.append(contentsOf: batch.mfas[index..<end])
            open.peers.append(contentsOf: batch.peers[index..<end])
            open.values.append(contentsOf: batch.values[index..<end])
            for i in index..<end { open.payloadEnds.append(base &+ batch.payloadEnds[i] &- UInt32(payloadStart)) }
            open.payloadBytes.append(contentsOf: batch.payloadBytes[payloadStart..<payloadEnd])
            index = end
            if open.count >= options.blockEvents || open.payloadBytes.count >= options.blockBytes {
                try seal(dictionaries: dictionaries)
            }
        }
        try flushIfDue()
    }

    /// Closes the open block if it is older than `blockInterval`, and syncs if a sync is due.
    public func flushIfDue() throws {
        if let since = openSince, !open.isEmpty, ContinuousClock.now - since >= options.blockInterval { try seal() }
        if !options.background { try state.syncIfDue() } else {
            let state = self.state
            queue.async { try? state.syncIfDue() }
        }
    }

    /// Closes the open block and waits until everything is on disk (fsync).
    public func flush() throws {
        try seal()
        if options.background { queue.sync {} }
        try state.throwIfFailed()
        try state.sync()
    }

    /// Flushes, records the stop reason and closes the files.
    public func close(stopReason: String? = nil) throws {
        guard !closed else { return }
        closed = true
        try seal()
        if options.background { queue.sync {} }
        meta.stopReason = stopReason ?? meta.stopReason
        let last = delta
        delta = DictionaryDelta()
        try state.finish(meta: meta, delta: last)
    }

    /// Updates the meta record written at the start of each segment and at close.
    public func updateMeta(_ update: (inout CaptureMeta) -> Void) {
        update(&meta)
        let meta = self.meta
        let state = self.state
        if options.background { queue.async { state.meta = meta } } else { state.meta = meta }
    }

    public var statistics: Statistics {
        if options.background { queue.sync {} }
        return state.statistics
    }

    /// `dictionaries`: the caller's, when it has them at hand (then it may encode the block itself).
    private func seal(dictionaries: TraceDictionaries? = nil) throws {
        guard !open.isEmpty else { return }
        let batch = open
        open = EventBatch(reservingCapacity: options.blockEvents, payloadBytes: options.blockBytes)
        openSince = nil
        try seal(batch, dictionaries: dictionaries)
    }

    private func seal(_ batch: EventBatch, dictionaries: TraceDictionaries? = nil) throws {
        sequence += 1
        let job = (batch, delta, sequence)
        delta = DictionaryDelta()
        if options.background {
            // A writer that is behind (its queue full) would keep this thread waiting: this thread
            // encodes the block itself meanwhile (sort, payload compaction, compression: the same
            // bytes, from the same dictionaries, as the writer's), and the writer only appends it.
            // The two cores share the encoding whichever of them is the busier.
            var encoded: EncodedBlock?
            let free = !options.callerEncodesAlways && slots.wait(timeout: .now()) == .success
            if !free {
                if let dictionaries {
                    encoded = encodeHere(batch, dictionaries: dictionaries, sequence: job.2)
                }
                slots.wait()
            }
            let state = self.state
            let slots = self.slots
            let block = encoded
            queue.async {
                state.write(block: job.0, delta: job.1, sequence: job.2, encoded: block)
                slots.signal()
            }
        } else {
            state.write(block: job.0, delta: job.1, sequence: job.2)
        }
        try state.throwIfFailed()
    }

    /// The block's drops before are the writer's to put in (`WriterState.write`): 0 here.
    private func encodeHere(_ batch: EventBatch, dictionaries: TraceDictionaries, sequence: UInt64) -> EncodedBlock {
        // Moved out and back: a copy left in the property would make every buffer copy on write.
        var encoder = callerEncoder ?? BlockEncoder(writing: options.blockEncoding)
        callerEncoder = nil
        defer { callerEncoder = encoder }
        let sorted = encoder.sortedByTime(batch)
        var body = ByteWriter(capacity: batch.payloadBytes.count / 2 + 64 * batch.count)
        var entry = IndexEntry(kind: .block, segment: 0, offset: 0, recordLength: 0)
        encoder.encode(sorted, dictionaries: dictionaries, sequence: sequence, droppedBefore: 0,
                       into: &body, entry: &entry)
        return EncodedBlock(sorted: sorted, body: body.bytes, entry: entry)
    }
}

/// A block the caller encoded (CaptureWriter.seal): its events in time order (for the summary),
/// its body, and the index facts of its events; the writer appends it.
struct EncodedBlock: Sendable {
    var sorted: EventBatch
    var body: [UInt8]
    var entry: IndexEntry
}

/// The writer's file state; used from one thread at a time (the writer's queue).
final class WriterState: @unchecked Sendable {
    let directory: String
    let options: CaptureWriter.Options
    var meta: CaptureMeta
    var statistics = CaptureWriter.Statistics()
    private var failure: CaptureError?
    private let lock = NSLock()

    private var segmentNumber = 0
    private var segment: FileDescriptor?
    private var index: FileDescriptor?
    private var segmentSize: Int64 = 0
    private var cursor = DictionaryRecord.Cursor()
    /// The writer's own copy of the caller's dictionaries, grown by deltas (only this queue touches it).
    private var dictionaries = TraceDictionaries()
    private var encoder: BlockEncoder
    private var summarizer = BlockSummarizer()
    private var record = ByteWriter(capacity: 1 << 20)
    private var lastSync = ContinuousClock.now
    private var dirty = false
    private var droppedSoFar: UInt64 = 0
    private var liveSegments: [(number: Int, bytes: Int64)] = []
    /// The last block sequence written, and what the open segment holds so far (for its seal).
    private var lastSequence: UInt64 = 0
    private var segmentFirstSequence: UInt64 = 1
    private var segmentBlocks = 0
    private var segmentEvents = 0
    private var segmentRecords = 0

    init(directory: String, meta: CaptureMeta, options: CaptureWriter.Options) {
        self.directory = directory
        self.meta = meta
        self.options = options
        encoder = BlockEncoder(writing: options.blockEncoding)
    }

    func throwIfFailed() throws {
        lock.lock()
        defer { lock.unlock() }
        if let failure { throw failure }
    }

    private func fail(_ error: Error) {
        lock.lock()
        defer { lock.unlock() }
        if failure == nil {
            failure = (error as? CaptureError) ?? CaptureError(.io, "writing the capture failed: \(error)")
        }
    }

    /// `encoded`: the block as the caller encoded it (CaptureWriter.seal), to be appended as it is.
    func write(block batch: EventBatch, delta: DictionaryDelta, sequence: UInt64, encoded: EncodedBlock? = nil) {
        delta.apply(to: &dictionaries)
        do {
            if segment == nil { try openSegment(dictionaries: dictionaries) }
            if let delta = DictionaryRecord.encode(dictionaries, from: &cursor) {
                try writeRecord(.dictionary, body: delta)
            }
            let sorted: EventBatch
            var entry: IndexEntry
            beginRecord(.block)
            if let encoded {
                sorted = encoded.sorted
                entry = encoded.entry
                record.bytes.append(contentsOf: encoded.body)
                record.patchU64(droppedSoFar, at: Format.recordHeaderSize + BlockEncoder.droppedBeforeOffset)
            } else {
                sorted = encoder.sortedByTime(batch)
                entry = IndexEntry(kind: .block, segment: UInt32(segmentNumber), offset: 0, recordLength: 0)
                encoder.encode(sorted, dictionaries: dictionaries, sequence: sequence, droppedBefore: droppedSoFar,
                               into: &record, entry: &entry)
            }
            summarizer.append(sorted, sequence: sequence, to: &record, entry: &entry)
            endRecord()
            entry = try append(entry)
            droppedSoFar &+= UInt64(entry.drops)
            statistics.events += batch.count
            statistics.blocks += 1
            lastSequence = sequence
            segmentBlocks += 1
            segmentEvents += batch.count
            try syncIfDue()
            if segmentSize >= Int64(options.segmentBytes) { try closeSegment(final: false) }
        } catch {
            fail(error)
        }
    }

    private func beginRecord(_ type: Format.RecordType) {
        record.bytes.removeAll(keepingCapacity: true)
        record.u32(Format.recordMagic)
        record.u8(type.rawValue); record.u8(0); record.u16(0)
        record.u32(0)
    }

    private func endRecord() {
        let bodyLength = record.bytes.count - Format.recordHeaderSize
        record.patchU32(UInt32(bodyLength), at: 8)
        let crc = record.bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[4...])) }
        record.u32(crc)
        record.u32(UInt32(bodyLength))
    }

    private func writeRecord(_ type: Format.RecordType, body: [UInt8]) throws {
        beginRecord(type)
        record.bytes.append(contentsOf: body)
        endRecord()
        let kind = IndexEntry.RecordKind(rawValue: type.rawValue) ?? .meta
        _ = try append(IndexEntry(kind: kind, segment: UInt32(segmentNumber), offset: 0, recordLength: 0))
    }

    /// Appends `record` to the segment and its index entry to the index.
    private func append(_ entry: IndexEntry) throws -> IndexEntry {
        guard let segment, let index else { throw CaptureError(.io, "no segment open") }
        let offset = segmentSize
        let path = directory + "/" + Format.segmentName(segmentNumber)
        try record.bytes.withUnsafeBytes { try SegmentIO.writeAll(segment, $0, path: path) }
        segmentSize += Int64(record.bytes.count)
        statistics.bytesWritten += Int64(record.bytes.count)
        if let last = liveSegments.indices.last { liveSegments[last].bytes = segmentSize }
        dirty = true
        var e = entry
        e.segment = UInt32(segmentNumber)
        e.offset = UInt64(offset)
        e.recordLength = UInt32(record.bytes.count)
        e.recordCRC = record.bytes.withUnsafeBytes { raw in
            var c = ByteCursor(raw, offset: raw.count - Format.recordTrailerSize)
            return c.u32() ?? 0
        }
        segmentRecords += 1
        let encoded = e.encoded()
        try encoded.withUnsafeBytes {
            try SegmentIO.writeAll(index, $0, path: directory + "/" + Format.indexName(segmentNumber))
        }
        return e
    }

    private func openSegment(dictionaries: TraceDictionaries) throws {
        segmentNumber += 1
        let path = directory + "/" + Format.segmentName(segmentNumber)
        let fd = try SegmentIO.create(path)
        let indexFD: FileDescriptor
        do {
            indexFD = try SegmentIO.create(directory + "/" + Format.indexName(segmentNumber))
        } catch {
            try? fd.close()
            throw error
        }
        segment = fd
        index = indexFD
        var header = ByteWriter(capacity: Format.segmentHeaderSize)
        header.bytes.append(contentsOf: Format.segmentMagic)
        header.u32(Format.version)
        header.u32(UInt32(segmentNumber))
        header.bytes.append(contentsOf: meta.captureIDBytes)
        segmentFirstSequence = lastSequence + 1
        summarizer.startSegment()
        segmentBlocks = 0
        segmentEvents = 0
        segmentRecords = 0
        header.u64(segmentFirstSequence)
        header.u64(UInt64(statistics.events))
        try header.bytes.withUnsafeBytes { try SegmentIO.writeAll(fd, $0, path: path) }
        var indexHeader = ByteWriter(capacity: Format.indexHeaderSize)
        indexHeader.bytes.append(contentsOf: Format.indexMagic)
        indexHeader.u32(Format.indexVersion)
        indexHeader.u32(UInt32(Format.indexEntrySize))
        indexHeader.bytes.append(contentsOf: meta.captureIDBytes)
        try indexHeader.bytes.withUnsafeBytes {
            try SegmentIO.writeAll(indexFD, $0, path: directory + "/" + Format.indexName(segmentNumber))
        }
        segmentSize = Int64(Format.segmentHeaderSize)
        statistics.segments += 1
        liveSegments.append((segmentNumber, segmentSize))
        try writeMeta()
        // A full dictionary snapshot, so this segment reads on its own once older ones are pruned.
        var fresh = DictionaryRecord.Cursor()
        if let snapshot = DictionaryRecord.encode(dictionaries, from: &fresh) {
            try writeRecord(.dictionary, body: snapshot)
        }
        cursor = fresh
        pruneIfNeeded()
    }

    private func writeMeta() throws {
        let json = (try? JSONEncoder().encode(meta)) ?? Data("{}".utf8)
        try writeRecord(.meta, body: Array(json))
    }

    /// Seals the open segment (its last record says what it holds, and whether the capture ends
    /// here), syncs and closes it.
    private func closeSegment(final: Bool) throws {
        guard segment != nil else { return }
        var body = ByteWriter(capacity: Format.sealBodySize)
        body.u32(UInt32(segmentNumber))
        body.u8(final ? 1 : 0); body.u8(0); body.u16(0)
        body.u32(UInt32(segmentBlocks))
        body.u32(UInt32(segmentRecords))
        body.u64(UInt64(segmentEvents))
        body.u64(segmentFirstSequence)
        body.u64(lastSequence)
        try writeRecord(.seal, body: body.bytes)
        dirty = true
        try sync()
        try? segment?.close()
        try? index?.close()
        segment = nil
        index = nil
    }

    private func pruneIfNeeded() {
        guard let retain = options.retainBytes else { return }
        var total = liveSegments.reduce(Int64(0)) { $0 + $1.bytes }
        while liveSegments.count > 1, total > Int64(retain) {
            let oldest = liveSegments.removeFirst()
            total -= oldest.bytes
            // The index goes first: a segment without its index is rebuilt, an index without its segment is junk.
            unlink(directory + "/" + Format.indexName(oldest.number))
            unlink(directory + "/" + Format.segmentName(oldest.number))
            statistics.segmentsDeleted += 1
        }
    }

    func syncIfDue() throws {
        if dirty, ContinuousClock.now - lastSync >= options.syncInterval { try sync() }
    }

    func sync() throws {
        guard dirty else { return }
        if let segment { try SegmentIO.sync(segment, path: directory + "/" + Format.segmentName(segmentNumber)) }
        if let index { try SegmentIO.sync(index, path: directory + "/" + Format.indexName(segmentNumber)) }
        lastSync = .now
        dirty = false
    }

    func finish(meta: CaptureMeta, delta: DictionaryDelta) throws {
        try throwIfFailed()
        delta.apply(to: &dictionaries)
        self.meta = meta
        do {
            if segment == nil { try openSegment(dictionaries: dictionaries) }
            if let delta = DictionaryRecord.encode(dictionaries, from: &cursor) {
                try writeRecord(.dictionary, body: delta)
            }
            try writeMeta()
            try closeSegment(final: true)
            SegmentIO.syncDirectory(directory)
        } catch {
            fail(error)
        }
        try throwIfFailed()
    }
}
