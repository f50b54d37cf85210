// Encoding a batch of events as one block body (columns, each LZ4-compressed on its own) and
// decoding it back. The batch must already be in time order. Blocks are written in encoding 2
// (Format.BlockEncoding); encoding 0 and 1 blocks, as earlier captures hold them, still decode.
import TraceModel

struct BlockEncoder {
    /// Encoding 2; encoding 1 only where a test checks that readers still expand it.
    let encoding: Format.BlockEncoding
    var columns: [ByteWriter]
    var compressed: [UInt8] = []
    var permutation: [Int32] = []
    var sorted = EventBatch()
    var pids = PayloadPids()
    /// The stored payloads and their marks (column 12, encoding 2), written through pointers.
    let payloadBuffers = EncodedPayloads()
    var payloadIntegers: [Int64] = []
    /// Per event of the block being encoded, a hash of its payload bytes (0: none, or one that
    /// is never copied from): the search for an equal recent payload compares bytes only where
    /// the hashes agree.
    var payloadHashes: [UInt64] = []
    /// The events of the block being encoded chained by payload hash, for `recentCopy`.
    var copyChains = CopyChains()
    var contexts = PayloadIntegers()
    /// The fixed-width columns of the block being encoded, written through pointers.
    let fixed = ColumnBuffers()

    init(writing encoding: Format.BlockEncoding = .marked) {
        self.encoding = encoding == .shaped ? .shaped : .marked
        columns = Array(repeating: ByteWriter(capacity: 1 << 16), count: self.encoding.columnCount)
    }

    /// Sorts the batch by time (stable) into `sorted`; returns it (or the input when already in order).
    /// Trace messages arrive nearly in order (a few late by some events): the order is found by
    /// insertion, and by a full sort only when that would move too much; then each column is
    /// gathered in that order through pointers.
    mutating func sortedByTime(_ batch: EventBatch) -> EventBatch {
        let n = batch.count
        var inOrder = true
        batch.times.withUnsafeBufferPointer { times in
            var i = 1
            while i < times.count {
                if times[i] < times[i - 1] { inOrder = false; break }
                i += 1
            }
        }
        if inOrder { return batch }
        permutation.removeAll(keepingCapacity: true)
        permutation.append(contentsOf: 0..<Int32(truncatingIfNeeded: n))
        batch.times.withUnsafeBufferPointer { times in
            permutation.withUnsafeMutableBufferPointer { order in
                if !Self.insertionSort(order, by: times, moves: 8 * n) {
                    // Far out of order: a full sort (ties in arrival order, whatever the insertion left).
                    order.sort { a, b in
                        let ta = times[Int(a)], tb = times[Int(b)]
                        return ta != tb ? ta < tb : a < b
                    }
                }
            }
        }
        sorted.removeAll()
        permutation.withUnsafeBufferPointer { order in
            Self.gather(batch.times, order, into: &sorted.times, zero: 0)
            Self.gather(batch.nodes, order, into: &sorted.nodes, zero: 0)
            Self.gather(batch.pids, order, into: &sorted.pids, zero: 0)
            Self.gather(batch.kinds, order, into: &sorted.kinds, zero: .call)
            Self.gather(batch.flags, order, into: &sorted.flags, zero: [])
            Self.gather(batch.mfas, order, into: &sorted.mfas, zero: 0)
            Self.gather(batch.peers, order, into: &sorted.peers, zero: 0)
            Self.gather(batch.values, order, into: &sorted.values, zero: 0)
            sorted.payloadEnds.append(contentsOf: repeatElement(0, count: n))
            sorted.payloadBytes.append(contentsOf: repeatElement(0, count: batch.payloadBytes.count))
            batch.payloadEnds.withUnsafeBufferPointer { ends in
                batch.payloadBytes.withUnsafeBytes { source in
                    sorted.payloadEnds.withUnsafeMutableBufferPointer { sortedEnds in
                        sorted.payloadBytes.withUnsafeMutableBytes { target in
                            guard let from = source.baseAddress, let to = target.baseAddress else { return }
                            var end = 0
                            for k in 0..<n {
                                let i = Int(order[k])
                                let start = i == 0 ? 0 : Int(ends[i - 1])
                                let length = Int(ends[i]) - start
                                if length > 0 { (to + end).copyMemory(from: from + start, byteCount: length) }
                                end += length
                                sortedEnds[k] = UInt32(truncatingIfNeeded: end)
                            }
                        }
                    }
                }
            }
        }
        return sorted
    }

    /// Where a block body's header holds the drops before it (after sequence, times and count):
    /// the writer puts it there in a block its caller encoded (CaptureWriter.seal), whose drops
    /// before only the writer knows.
    static let droppedBeforeOffset = 28

    /// Sorts `order` by `times` (stable) by insertion; false, leaving `order` a permutation still,
    /// when that took more than `moves` moves.
    static func insertionSort(_ order: UnsafeMutableBufferPointer<Int32>, by times: UnsafeBufferPointer<Int64>,
                              moves: Int) -> Bool {
        var budget = moves
        var k = 1
        while k < order.count {
            let p = order[k]
            let t = times[Int(p)]
            var j = k
            while j > 0 && times[Int(order[j - 1])] > t {
                order[j] = order[j - 1]
                j -= 1
                budget -= 1
            }
            order[j] = p
            if budget < 0 { return false }
            k += 1
        }
        return true
    }

    /// `target` = `source` in the order `order` (one column of a sorted batch).
    @inline(__always)
    static func gather<T>(_ source: [T], _ order: UnsafeBufferPointer<Int32>, into target: inout [T], zero: T) {
        target.removeAll(keepingCapacity: true)
        target.append(contentsOf: repeatElement(zero, count: order.count))
        source.withUnsafeBufferPointer { s in
            target.withUnsafeMutableBufferPointer { t in
                for k in 0..<order.count { t[k] = s[Int(order[k])] }
            }
        }
    }

    /// Encodes `batch` (time-ordered) as a block body and fills the block's index facts.
    mutating func encode(_ batch: EventBatch, dictionaries: TraceDictionaries, sequence: UInt64, droppedBefore: UInt64,
                         into out: inout ByteWriter, entry: inout IndexEntry) {
        var storedPayload = payloadBuffers.payload
        var payloadMarks = payloadBuffers.marks
        storedPayload.count = 0
        payloadMarks.count = 0
        // The buffers may have grown: the class keeps their pointers for the next block.
        defer {
            payloadBuffers.payload = storedPayload
            payloadBuffers.marks = payloadMarks
        }
        contexts.reset()
        for i in 0..<columns.count { columns[i].bytes.removeAll(keepingCapacity: true) }
        let n = batch.count
        // Every column but the payload's two is at most one varint (10 bytes) per event: reserved
        // once, written through pointers (no per-byte append checks).
        fixed.reserve(events: n)
        let w = fixed.pointers
        let timeMin = batch.times.first ?? 0
        let timeMax = batch.times.last ?? 0
        var pidMin = UInt32.max, pidMax: UInt32 = 0
        var kinds: UInt64 = 0, nodes: UInt64 = 0, maxQueue: UInt32 = 0, drops: UInt64 = 0
        var previousPayloadEnd: UInt32 = 0
        payloadIntegers.removeAll(keepingCapacity: true)
        payloadHashes.removeAll(keepingCapacity: true)
        payloadHashes.reserveCapacity(n)
        copyChains.reset(events: n)
        batch.withColumns { b in
            // The columns that depend on one field each, a loop apiece (the writer stays in registers).
            // Sorted: a time delta is small and never negative; its low byte is noise, the rest repeats.
            fixed.bytes(0, n) { i in UInt8(truncatingIfNeeded: b.times[i] &- (i == 0 ? timeMin : b.times[i - 1])) }
            fixed.varints(10, n) { i in UInt64(bitPattern: b.times[i] &- (i == 0 ? timeMin : b.times[i - 1])) >> 8 }
            fixed.varints(1, n) { i in UInt64(b.nodes[i]) }
            fixed.varints(2, n) { i in UInt64(b.pids[i]) }
            fixed.bytes(3, n) { i in b.kinds[i].rawValue }
            fixed.varints(5, n) { i in UInt64(b.mfas[i]) }
            fixed.varints(6, n) { i in UInt64(b.peers[i]) }
            fixed.varints(7, n) { i in zigzag(b.values[i]) }
            // The block's index facts.
            var lastFunction: FunctionID = 0
            for i in 0..<n {
                let pid = b.pids[i], kind = b.kinds[i], mfa = b.mfas[i]
                if pid < pidMin { pidMin = pid }
                if pid > pidMax { pidMax = pid }
                kinds |= 1 << UInt64(kind.rawValue)
                nodes |= 1 << UInt64(b.nodes[i] & 63)
                // The function filter's bits for a function already added are set: runs of one function skip it.
                if mfa != 0 && mfa != lastFunction {
                    entry.addFunction(mfa)
                    lastFunction = mfa
                }
                if kind == .sample, b.values[i] > 0 { maxQueue = max(maxQueue, UInt32(clamping: b.values[i])) }
                if kind == .drop { drops &+= UInt64(max(b.values[i], 0)) }
            }
            // Flags, payload lengths, payload bytes and their integers.
            for i in 0..<n {
                let flags = b.flags[i]
                var storedFlags = flags.rawValue & 0x7F
                let end = b.payloadEnds[i]
                let before = storedPayload.count
                var hash: UInt64 = 0
                if end > previousPayloadEnd {
                    let integersBefore = payloadIntegers.count
                    let truncated = flags.contains(.payloadTruncated)
                    let payload = UnsafeRawBufferPointer(rebasing: b.payloadBytes[Int(previousPayloadEnd)..<Int(end)])
                    var replaced = false
                    var copied = false
                    if payload.count > 3 {
                        let h = Self.hash(payload)
                        // A truncated payload is never copied from (its bytes are not the whole term).
                        if !truncated { hash = h }
                        // A payload equal to a recent one (a message seen in its send and its
                        // receive): 0xF3 + events back (1...PayloadPids.copyReach).
                        if let distance = Self.recentCopy(of: payload, hash: h, at: i, in: b, hashes: payloadHashes,
                                                          chains: copyChains) {
                            storedPayload.reserve(2)
                            storedPayload.put(PayloadPids.copyTag, at: 0)
                            storedPayload.put(UInt8(distance), at: 1)
                            storedPayload.count += 2
                            replaced = true
                            copied = true
                        }
                    }
                    if !copied {
                        if truncated {
                            if let base = payload.baseAddress { storedPayload.append(base, count: payload.count) }
                        } else {
                            replaced = pids.encode(payload, dictionaries, into: &storedPayload,
                                                   integers: &payloadIntegers, marks: &payloadMarks)
                        }
                    }
                    if replaced {
                        storedFlags |= PayloadPids.storedFlag
                        if payloadIntegers.count > integersBefore {
                            let kind = b.kinds[i]
                            contexts.begin(pid: b.pids[i], kind: kind.rawValue, mfa: b.mfas[i])
                            for k in integersBefore..<payloadIntegers.count {
                                let v = payloadIntegers[k]
                                columns[11].varint(zigzag(v &- contexts.predicted))
                                contexts.record(v)
                            }
                        }
                    }
                }
                payloadHashes.append(hash)
                copyChains.add(i, hash: hash)
                fixed.u8(4, storedFlags, w)
                fixed.varint(8, UInt64(storedPayload.count - before), w)
                previousPayloadEnd = end
            }
        }
        entry.count = UInt32(n)
        entry.sequence = sequence
        entry.timeMin = timeMin
        entry.timeMax = timeMax
        entry.pidMin = n == 0 ? 0 : pidMin
        entry.pidMax = pidMax
        entry.kinds = kinds
        entry.nodes = nodes
        entry.maxQueueLength = maxQueue
        entry.drops = UInt32(clamping: drops)

        out.u64(sequence)
        out.i64(timeMin)
        out.i64(timeMax)
        out.u32(UInt32(n))
        // At `droppedBeforeOffset` of the body.
        out.u64(droppedBefore)
        out.u8(UInt8(columns.count)); out.u8(encoding.rawValue); out.u16(0)
        let directoryStart = out.bytes.count
        for _ in 0..<columns.count {
            out.u8(0); out.u8(0); out.u16(0); out.u32(0); out.u32(0)
        }
        for c in 0..<columns.count {
            let entryOffset = directoryStart + c * Format.columnEntrySize
            let stored: (Format.Codec, Int) = {
                if c == Format.Column.payloadBytes.rawValue {
                    return appendCompressed(storedPayload.bytes(), into: &out)
                }
                if c == Format.Column.payloadMarks.rawValue {
                    return appendCompressed(payloadMarks.bytes(), into: &out)
                }
                if c == Format.Column.payloadIntegers.rawValue {
                    return columns[c].bytes.withUnsafeBytes { appendCompressed($0, into: &out) }
                }
                return appendCompressed(fixed.bytes(c), into: &out)
            }()
            let rawLength = c == Format.Column.payloadBytes.rawValue ? storedPayload.count
                : c == Format.Column.payloadMarks.rawValue ? payloadMarks.count
                : c == Format.Column.payloadIntegers.rawValue ? columns[c].bytes.count : fixed.bytes(c).count
            out.bytes[entryOffset] = stored.0.rawValue
            out.patchU32(UInt32(rawLength), at: entryOffset + 4)
            out.patchU32(UInt32(stored.1), at: entryOffset + 8)
        }
    }

    /// How many events back (1...`PayloadPids.copyReach`) the same payload bytes appeared, if they did: the nearest
    /// earlier event whose payload hash is `hash` and whose bytes are equal (truncated payloads
    /// have hash 0 in `payloadHashes` and are in no chain, since `hash` is never 0). Only the
    /// events of `hash`'s chain are looked at, nearest first. (Static: a method would copy the
    /// whole encoder per event to call it from the encoding loop.)
    static func recentCopy(of payload: UnsafeRawBufferPointer, hash: UInt64, at i: Int, in b: EventBatchColumns,
                           hashes payloadHashes: [UInt64], chains copyChains: CopyChains) -> Int? {
        guard let base = b.payloadBytes.baseAddress, let p = payload.baseAddress else { return nil }
        return payloadHashes.withUnsafeBufferPointer { hashes -> Int? in
            var j = copyChains.latest(hash)
            while j >= 0 && i - j <= PayloadPids.copyReach {
                if hashes[j] == hash {
                    let start = b.payloadStart(j)
                    let end = Int(b.payloadEnds[j])
                    if end - start == payload.count, memcmpBytes(base + start, p, payload.count) { return i - j }
                }
                j = copyChains.before(j)
            }
            return nil
        }
    }

    /// A hash of a payload's bytes and length, never 0.
    @inline(__always) static func hash(_ payload: UnsafeRawBufferPointer) -> UInt64 { ByteHash.of(payload) | 1 }

    private mutating func appendCompressed(_ raw: UnsafeRawBufferPointer, into out: inout ByteWriter) -> (Format.Codec, Int) {
        guard raw.count > 32 else {
            out.bytes.append(contentsOf: raw)
            return (.raw, raw.count)
        }
        let bound = LZ4.compressBound(raw.count)
        if compressed.count < bound { compressed = Array(repeating: 0, count: bound) }
        let size = compressed.withUnsafeMutableBytes { LZ4.compress(raw, into: $0) }
        if size <= 0 || size >= raw.count {
            out.bytes.append(contentsOf: raw)
            return (.raw, raw.count)
        }
        out.bytes.append(contentsOf: compressed[0..<size])
        return (.lz4, size)
    }
}

/// The events of a block chained by payload hash: per bucket of hashes the latest event, per
/// event the one before it in its bucket. A search for an equal recent payload walks one chain,
/// nearest first, instead of comparing the hashes of every event within reach.
struct CopyChains {
    static let bucketBits = 12
    private var latestInBucket = [Int32](repeating: -1, count: 1 << bucketBits)
    private var previous: [Int32] = []

    @inline(__always) private static func bucket(_ hash: UInt64) -> Int {
        // The lowest bit of a payload hash is always set: the bits above it.
        Int(truncatingIfNeeded: hash >> 1) & ((1 << bucketBits) - 1)
    }

    mutating func reset(events: Int) {
        latestInBucket.withUnsafeMutableBufferPointer { $0.update(repeating: -1) }
        previous.removeAll(keepingCapacity: true)
        previous.reserveCapacity(events)
    }

    /// Event `i` (the next one), with its payload hash (0: in no chain).
    @inline(__always) mutating func add(_ i: Int, hash: UInt64) {
        guard hash != 0 else {
            previous.append(-1)
            return
        }
        let bucket = Self.bucket(hash)
        previous.append(latestInBucket[bucket])
        latestInBucket[bucket] = Int32(truncatingIfNeeded: i)
    }

    /// The latest event added whose hash shares `hash`'s bucket (-1: none).
    @inline(__always) func latest(_ hash: UInt64) -> Int { Int(latestInBucket[Self.bucket(hash)]) }

    /// The event before `j` in its bucket (-1: none).
    @inline(__always) func before(_ j: Int) -> Int { Int(previous[j]) }
}

/// The encoder's payload and marks buffers (a class, so that copies of the encoder never free
/// them twice; copies share them, as they share `ColumnBuffers`: one writer encodes at a time).
final class EncodedPayloads {
    var payload = PayloadSink()
    var marks = PayloadSink(capacity: 1 << 12)

    deinit {
        payload.release()
        marks.release()
    }
}

/// The encoder's columns other than the payload's, each reserved for a block's worst case (one
/// 10-byte varint per event) and written through a pointer; `counts` says how much is written.
final class ColumnBuffers {
    static let columns = Format.maxColumnCount
    private(set) var pointers: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>>
    private var counts: UnsafeMutablePointer<Int>
    private var capacity = 0

    init() {
        pointers = .allocate(capacity: Self.columns)
        counts = .allocate(capacity: Self.columns)
        counts.initialize(repeating: 0, count: Self.columns)
        for c in 0..<Self.columns { (pointers + c).initialize(to: .allocate(capacity: 1)) }
    }

    deinit {
        for c in 0..<Self.columns { pointers[c].deallocate() }
        pointers.deallocate()
        counts.deallocate()
    }

    /// Empties every column and makes room for `events` events.
    func reserve(events: Int) {
        let needed = max(16, events * 10)
        if needed > capacity {
            for c in 0..<Self.columns {
                pointers[c].deallocate()
                pointers[c] = .allocate(capacity: needed)
            }
            capacity = needed
        }
        for c in 0..<Self.columns { counts[c] = 0 }
    }

    @inline(__always) func u8(_ column: Int, _ v: UInt8, _ w: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>>) {
        w[column][counts[column]] = v
        counts[column] += 1
    }

    @inline(__always)
    func varint(_ column: Int, _ value: UInt64, _ w: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>>) {
        let p = w[column]
        var k = counts[column]
        var v = value
        while v >= 0x80 {
            p[k] = UInt8(truncatingIfNeeded: v) | 0x80
            v >>= 7
            k += 1
        }
        p[k] = UInt8(v)
        counts[column] = k + 1
    }

    /// Writes column `column` as one varint per event `0..<n`, `value(i)` (a pass of its own:
    /// the position stays in a register).
    @inline(__always) func varints(_ column: Int, _ n: Int, _ value: (Int) -> UInt64) {
        let p = pointers[column]
        var k = counts[column]
        for i in 0..<n {
            var v = value(i)
            while v >= 0x80 {
                p[k] = UInt8(truncatingIfNeeded: v) | 0x80
                v >>= 7
                k += 1
            }
            p[k] = UInt8(truncatingIfNeeded: v)
            k += 1
        }
        counts[column] = k
    }

    /// Writes column `column` as one byte per event `0..<n`, `value(i)`.
    @inline(__always) func bytes(_ column: Int, _ n: Int, _ value: (Int) -> UInt8) {
        let p = pointers[column] + counts[column]
        for i in 0..<n { p[i] = value(i) }
        counts[column] += n
    }

    func bytes(_ column: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: pointers[column], count: counts[column])
    }
}

/// Facts from a block body's header.
struct BlockHeader {
    var sequence: UInt64
    var timeMin: Int64
    var timeMax: Int64
    var count: Int
    var droppedBefore: UInt64
}

struct BlockDecoder {
    var scratch: [[UInt8]] = Array(repeating: [], count: Format.maxColumnCount)
    var pids = PayloadPids()
    /// Per event of the block being decoded: its payload was walked, not expanded.
    private var walked: [Bool] = []
    /// Where payloads are expanded (kept from block to block).
    private var output = PayloadOutput()
    /// The integer column's contexts (encoding 1), kept from block to block and reset at each.
    private var integerContexts = PayloadIntegers()
    /// Each byte's kind (nil: no kind has that raw value).
    private static let kindsByRawValue: [EventKind?] = (0...255).map { EventKind(rawValue: UInt8($0)) }
    /// `decodePayloads`' signal (inside its loop) that a copy reads a walked payload.
    private static let needsEveryPayload = "needs every payload"

    static func header(_ body: UnsafeRawBufferPointer) -> BlockHeader? {
        var c = ByteCursor(body)
        guard let sequence = c.u64(), let timeMin = c.i64(), let timeMax = c.i64(), let count = c.u32(),
              let dropped = c.u64() else { return nil }
        return BlockHeader(sequence: sequence, timeMin: timeMin, timeMax: timeMax, count: Int(count), droppedBefore: dropped)
    }

    /// Decodes a block body into `batch` (replacing its contents); a message saying what is wrong otherwise.
    /// With `reading` less than `.all`, columns the pass does not read are left undecoded (zeros,
    /// empty payloads; see `EventColumns`). With `payloadsInBatch` false the payload bytes are not
    /// copied into `batch.payloadBytes` (left empty): they are `payloads`, until the next decode.
    mutating func decode(_ body: UnsafeRawBufferPointer, dictionaries: TraceDictionaries, into batch: inout EventBatch,
                         reading columns: EventColumns = .all, payloadsInBatch: Bool = true) -> String? {
        // A copied decoder gets buffers of its own here, before anything else holds them.
        if !isKnownUniquelyReferenced(&output) { output = PayloadOutput() }
        pids.prepareForDecoding()
        integerContexts.ownTable()
        output.sink.count = 0
        let failure: String?
        switch decodeColumns(body, dictionaries: dictionaries, into: &batch, reading: columns) {
        case .decoded: failure = nil
        case .failed(let why): failure = why
        case .needsEveryPayload:
            // A payload read copies one that was walked, not expanded: rare; expand them all.
            var every = columns
            every.payloadKinds = ~0
            switch decodeColumns(body, dictionaries: dictionaries, into: &batch, reading: every) {
            case .decoded:
                failure = nil
                Self.keepPayloads(of: columns, kinds: batch.kinds, ends: &batch.payloadEnds, in: &output.sink)
            case .failed(let why): failure = why
            case .needsEveryPayload: failure = "a payload copy reads a payload that was not expanded"
            }
        }
        if failure == nil && payloadsInBatch { batch.payloadBytes.append(contentsOf: output.sink.bytes()) }
        return failure
    }

    /// The payload bytes of the last block decoded with `payloadsInBatch` false (its events'
    /// `payloadEnds` index them), valid until the next decode.
    var payloads: UnsafeRawBufferPointer { output.sink.bytes() }

    /// Empties the payloads of kinds `columns` does not read, moving the others down in place.
    private static func keepPayloads(of columns: EventColumns, kinds: [EventKind], ends: inout [UInt32],
                                     in sink: inout PayloadSink) {
        var kept = 0
        var start = 0
        let base = sink.base
        ends.withUnsafeMutableBufferPointer { ends in
            for i in 0..<ends.count {
                let end = Int(ends[i])
                if columns.wantsPayload(kinds[i].rawValue), end > start {
                    if kept != start { (base + kept).copyMemory(from: base + start, byteCount: end - start) }
                    kept += end - start
                }
                start = end
                ends[i] = UInt32(kept)
            }
        }
        sink.count = kept
    }

    private enum Outcome {
        case decoded
        case failed(String)
        case needsEveryPayload
    }

    private mutating func decodeColumns(_ body: UnsafeRawBufferPointer, dictionaries: TraceDictionaries,
                                        into batch: inout EventBatch, reading wanted: EventColumns) -> Outcome {
        guard let header = Self.header(body) else { return .failed("block header cut short") }
        var c = ByteCursor(body, offset: 36)
        guard let columnCount = c.u8(), let encodingByte = c.u8(), c.bytes(2) != nil else {
            return .failed("block header cut short")
        }
        guard let encoding = Format.BlockEncoding(rawValue: encodingByte) else {
            return .failed("block has unknown encoding \(encodingByte) (written by a newer beamtrace?)")
        }
        guard Int(columnCount) == encoding.columnCount else {
            return .failed("block has \(columnCount) columns where encoding \(encodingByte) has \(encoding.columnCount)")
        }
        let n = header.count
        guard n <= 1 << 24 else { return .failed("block claims \(n) events") }
        // (codec, raw length, stored length, offset of the stored bytes)
        var directory: [(UInt8, Int, Int, Int)] = []
        directory.reserveCapacity(encoding.columnCount)
        for _ in 0..<encoding.columnCount {
            guard let codec = c.u8(), c.bytes(3) != nil, let raw = c.u32(), let stored = c.u32() else {
                return .failed("block column directory cut short")
            }
            directory.append((codec, Int(raw), Int(stored), 0))
        }
        var dataOffset = c.offset
        for index in directory.indices {
            guard directory[index].1 <= 1 << 30, dataOffset + directory[index].2 <= body.count else {
                return .failed("column \(index) runs past the block")
            }
            directory[index].3 = dataOffset
            dataOffset += directory[index].2
        }
        // Decompresses column `index` into its scratch array (a bit of `loaded` says it was).
        var loaded: UInt32 = 0
        func load(_ index: Int) -> String? {
            let (codec, raw, stored, offset) = directory[index]
            let source = UnsafeRawBufferPointer(rebasing: body[offset..<(offset + stored)])
            if scratch[index].count < raw { scratch[index] = Array(repeating: 0, count: raw) }
            if codec == Format.Codec.raw.rawValue {
                guard raw == stored else { return "raw column \(index) has inconsistent lengths" }
                scratch[index].withUnsafeMutableBytes { $0.baseAddress.map { _ = memcpyRaw($0, source) } }
            } else if codec == Format.Codec.lz4.rawValue {
                let ok = scratch[index].withUnsafeMutableBytes {
                    LZ4.decompress(source, into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<raw]))
                }
                guard ok else { return "column \(index) does not decompress" }
            } else {
                return "column \(index) has unknown codec \(codec)"
            }
            loaded |= 1 << UInt32(index)
            return nil
        }
        let kindColumn = Format.Column.kind.rawValue
        if let failure = load(kindColumn) { return .failed(failure) }
        // Which payloads this pass reads, from the block's own kinds (not the index: it is checked,
        // but a block's own bytes are the truth).
        var kindsPresent: UInt64 = 0
        scratch[kindColumn].withUnsafeBytes { kinds in
            for i in 0..<min(n, directory[kindColumn].1) { kindsPresent |= 1 << UInt64(kinds[i] & 63) }
        }
        let payloads = kindsPresent & wanted.payloadKinds != 0
        let payloadColumns: UInt32 = 1 << UInt32(Format.Column.payloadLength.rawValue)
            | 1 << UInt32(Format.Column.payloadBytes.rawValue) | 1 << UInt32(Format.Column.payloadIntegers.rawValue)
            | 1 << UInt32(Format.Column.payloadMarks.rawValue)
        for index in directory.indices where index != kindColumn {
            if !payloads && payloadColumns >> UInt32(index) & 1 != 0 { continue }
            if !wanted.peers && index == Format.Column.peer.rawValue { continue }
            if let failure = load(index) { return .failed(failure) }
        }
        for index in directory.indices where loaded >> UInt32(index) & 1 == 0 { directory[index].1 = 0 }
        batch.removeAll()
        batch.reserveCapacity(n)
        return withColumns(directory) { cols -> Outcome in
            guard cols[3].count == n, cols[4].count == n else { return .failed("kind or flag column has the wrong length") }
            // Column by column into pre-sized arrays: tight loops, no per-element append checks.
            func fill<T>(_ array: inout [T], _ zero: T, _ body: (UnsafeMutableBufferPointer<T>) -> Bool) -> Bool {
                array.removeAll(keepingCapacity: true)
                array.append(contentsOf: repeatElement(zero, count: n))
                return array.withUnsafeMutableBufferPointer { body($0) }
            }
            func varints(_ column: UnsafeRawBufferPointer, _ out: UnsafeMutableBufferPointer<UInt32>) -> Bool {
                readVarintColumn(column, n) { i, v in
                    out[i] = UInt32(truncatingIfNeeded: v)
                    return v <= UInt64(UInt32.max)
                }
            }
            let timeMin = header.timeMin
            guard fill(&batch.times, 0, { out in
                var t = timeMin
                if encoding == .plain {
                    var c = ByteCursor(cols[0])
                    for i in 0..<n {
                        guard let v = c.varint() else { return false }
                        t &+= unzigzag(v)
                        out[i] = t
                    }
                    return c.remaining == 0
                }
                let low = cols[0]
                guard low.count == n else { return false }
                return readVarintColumn(cols[10], n) { i, h in
                    t &+= Int64(bitPattern: h << 8 | UInt64(low[i]))
                    out[i] = t
                    return true
                }
            }) else { return .failed("time column does not decode") }
            guard fill(&batch.nodes, 0, { varints(cols[1], $0) }) else { return .failed("node column does not decode") }
            guard fill(&batch.pids, 0, { varints(cols[2], $0) }) else { return .failed("pid column does not decode") }
            guard fill(&batch.mfas, 0, { varints(cols[5], $0) }) else { return .failed("mfa column does not decode") }
            guard fill(&batch.peers, 0, { wanted.peers ? varints(cols[6], $0) : true }) else {
                return .failed("peer column does not decode")
            }
            guard fill(&batch.values, 0, { out in
                readVarintColumn(cols[7], n) { i, v in
                    out[i] = unzigzag(v)
                    return true
                }
            }) else { return .failed("value column does not decode") }
            guard fill(&batch.kinds, .call, { out in
                // Through a table of the kinds by raw value (the enum's own initializer is a call per event).
                Self.kindsByRawValue.withUnsafeBufferPointer { kinds in
                    let raw = cols[3]
                    for i in 0..<n {
                        guard let kind = kinds[Int(raw[i])] else { return false }
                        out[i] = kind
                    }
                    return true
                }
            }) else { return .failed("kind column holds an unknown kind") }
            let storedFlagBytes = cols[4]
            guard fill(&batch.flags, [], { out in
                for i in 0..<n { out[i] = EventFlags(rawValue: storedFlagBytes[i] & 0x7F) }
                return true
            }) else { return .failed("flag column does not decode") }
            guard payloads else {
                batch.payloadEnds.removeAll(keepingCapacity: true)
                batch.payloadEnds.append(contentsOf: repeatElement(0, count: n))
                return .decoded
            }
            return decodePayloads(cols, n: n, encoding: encoding, storedFlagBytes: storedFlagBytes,
                                  dictionaries: dictionaries, into: &batch, reading: wanted)
        }
    }

    /// Payloads: lengths, then bytes (expanding compacted ones; walking, not expanding, those of
    /// kinds the pass does not read).
    private mutating func decodePayloads(_ cols: [UnsafeRawBufferPointer], n: Int, encoding: Format.BlockEncoding,
                                         storedFlagBytes: UnsafeRawBufferPointer, dictionaries: TraceDictionaries,
                                         into batch: inout EventBatch, reading wanted: EventColumns) -> Outcome {
        var payloadLength = ByteCursor(cols[8])
        var payloadEnd = 0
        let storedPayload = cols[9]
        let payloadTotal = storedPayload.count
        var integers = encoding == .plain ? StoredIntegers.inline
            : StoredIntegers(column: ByteCursor(cols[11]), contexts: integerContexts)
        // Encoding 2: where each compacted payload's codes are (nil: walk the terms to find them).
        let marked = encoding == .marked
        var marks = ByteCursor(marked ? cols[Format.Column.payloadMarks.rawValue] : UnsafeRawBufferPointer(start: nil, count: 0))
        let every = wanted.payloadKinds == ~0
        // Expanded payloads go through a pointer into the decoder's own buffer (`decode` copies it
        // into the batch once, or the merge reads it there); the ends and the walked marks are
        // written into pre-sized arrays.
        var out = output.sink
        out.count = 0
        defer { output.sink = out }
        batch.payloadEnds.removeAll(keepingCapacity: true)
        batch.payloadEnds.append(contentsOf: repeatElement(0, count: n))
        walked.removeAll(keepingCapacity: true)
        walked.append(contentsOf: repeatElement(false, count: every ? 0 : n))
        let pidColumn = batch.pids, mfaColumn = batch.mfas
        let kindBytes = cols[3]
        let failure: String? = batch.payloadEnds.withUnsafeMutableBufferPointer { ends in
            walked.withUnsafeMutableBufferPointer { walked in
                pidColumn.withUnsafeBufferPointer { pidColumn in
                    mfaColumn.withUnsafeBufferPointer { mfaColumn in
                        for i in 0..<n {
                            guard let pl = payloadLength.varint(), pl <= UInt64(payloadTotal - payloadEnd) else {
                                return "payload lengths exceed the payload column"
                            }
                            let payloadStart = payloadEnd
                            payloadEnd += Int(pl)
                            if pl > 0, let storedBase = storedPayload.baseAddress {
                                let stored = UnsafeRawBufferPointer(rebasing: storedPayload[payloadStart..<payloadEnd])
                                let storedFlags = storedFlagBytes[i]
                                let expand = every || wanted.wantsPayload(kindBytes[i])
                                if !expand { walked[i] = true }
                                if storedFlags & PayloadPids.storedFlag == 0 {
                                    if expand { out.append(storedBase + payloadStart, count: Int(pl)) }
                                } else if pl == 2, stored[0] == PayloadPids.copyTag {
                                    let distance = Int(stored[1])
                                    guard distance >= 1, distance <= i else {
                                        return "event \(i): a payload copy reaches before the block"
                                    }
                                    let j = i - distance
                                    if expand {
                                        if !every && walked[j] { return Self.needsEveryPayload }
                                        let start = j == 0 ? 0 : Int(ends[j - 1])
                                        let length = Int(ends[j]) - start
                                        // Room first: growing moves the buffer the copy reads from.
                                        out.reserve(length)
                                        out.append(out.base + start, count: length)
                                    }
                                } else {
                                    if encoding != .plain {
                                        integers.expect(pid: pidColumn[i], kind: kindBytes[i], mfa: mfaColumn[i])
                                    }
                                    let expanded = marked
                                        ? pids.decode(stored, dictionaries, into: &out, integers: &integers,
                                                      marks: &marks, expand: expand)
                                        : pids.decode(stored, dictionaries, into: &out, integers: &integers, expand: expand)
                                    guard expanded else {
                                        return "event \(i): a compacted payload does not expand (a pid not in the "
                                            + "dictionaries, or the integer column is short)"
                                    }
                                }
                            }
                            ends[i] = UInt32(truncatingIfNeeded: out.count)
                        }
                        return nil
                    }
                }
            }
        }
        if let failure {
            if failure == Self.needsEveryPayload { return .needsEveryPayload }
            return .failed(failure)
        }
        guard payloadEnd == payloadTotal else {
            return .failed("payload column has \(payloadTotal - payloadEnd) extra bytes")
        }
        if let rest = integers.column?.remaining, rest != 0 { return .failed("integer column has \(rest) extra bytes") }
        if marks.remaining != 0 { return .failed("mark column has \(marks.remaining) extra bytes") }
        return .decoded
    }

    private func withColumns<R>(_ directory: [(UInt8, Int, Int, Int)], _ body: ([UnsafeRawBufferPointer]) -> R) -> R {
        // Ten nested borrows, flattened: the scratch arrays are not mutated while `body` runs.
        var pointers: [UnsafeRawBufferPointer] = []
        pointers.reserveCapacity(directory.count)
        func go(_ i: Int) -> R {
            if i == directory.count { return body(pointers) }
            return scratch[i].withUnsafeBytes { raw in
                pointers.append(UnsafeRawBufferPointer(rebasing: raw[0..<directory[i].1]))
                return go(i + 1)
            }
        }
        return go(0)
    }
}

/// The decoder's payload buffer, freed with the decoder.
final class PayloadOutput {
    var sink = PayloadSink()
    deinit { sink.release() }
}

@discardableResult
func memcpyRaw(_ destination: UnsafeMutableRawPointer, _ source: UnsafeRawBufferPointer) -> Int {
    if let base = source.baseAddress, source.count > 0 { destination.copyMemory(from: base, byteCount: source.count) }
    return source.count
}

@inline(__always) func memcmpBytes(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ n: Int) -> Bool {
    var i = 0
    while i + 8 <= n {
        if a.loadUnaligned(fromByteOffset: i, as: UInt64.self) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) { return false }
        i += 8
    }
    if i < n && n >= 8 {
        // The last bytes as one word that overlaps the ones compared already.
        return a.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
            == b.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
    }
    while i < n {
        if a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) { return false }
        i += 1
    }
    return true
}
