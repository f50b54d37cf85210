// The summary a block record carries at the end of its body, under the block's CRC (record flag
// `summary`; docs/FORMAT.md "Block summary"): every fact its index entry states, so an entry is
// confirmed by a small read of the block it points at, and what `info` prints (events by kind and
// node, calls by function, processes new to the segment, time range, drops), so `info` reads no
// column. The block codec knows nothing of it: the columns end where the summary starts.
import TraceModel

struct BlockSummary: Sendable, Equatable {
    static let version: UInt8 = 1
    /// The fixed part at the very end of the body, its two length words included.
    static let fixedSize = 128

    /// The index facts (kind `.block`; segment, offset, length and record CRC are the framing's).
    var facts = IndexEntry(kind: .block, segment: 0, offset: 0, recordLength: 0)
    /// First and last time of the events that carry one (a drop record repeats the previous time).
    var firstTime: Int64?
    var lastTime: Int64?
    /// Sum of the drop events' counts.
    var dropTotal: Int64 = 0
    /// Events by kind raw value, by node id and (call, return_from, exception_from) by function id,
    /// each ascending by key, zero counts left out.
    var kindCounts: [(key: UInt32, count: UInt32)] = []
    var nodeCounts: [(key: UInt32, count: UInt32)] = []
    var calls: [(key: UInt32, count: UInt32)] = []
    /// Process ids (of traced processes, `pid` column) not seen earlier in this segment, ascending.
    var newProcesses: [UInt32] = []

    static func == (a: BlockSummary, b: BlockSummary) -> Bool {
        a.facts.sameBlockFacts(b.facts) && a.firstTime == b.firstTime && a.lastTime == b.lastTime
            && a.dropTotal == b.dropTotal && a.newProcesses == b.newProcesses
            && a.kindCounts.elementsEqual(b.kindCounts, by: ==) && a.nodeCounts.elementsEqual(b.nodeCounts, by: ==)
            && a.calls.elementsEqual(b.calls, by: ==)
    }

    // MARK: encoding

    func encode(into out: inout ByteWriter) {
        let start = out.bytes.count
        func pairs(_ list: [(key: UInt32, count: UInt32)]) {
            out.varint(UInt64(list.count))
            var previous: UInt32 = 0
            for (key, count) in list {
                out.varint(UInt64(key &- previous))
                out.varint(UInt64(count))
                previous = key
            }
        }
        pairs(kindCounts)
        pairs(nodeCounts)
        pairs(calls)
        out.varint(UInt64(newProcesses.count))
        var previous: UInt32 = 0
        for pid in newProcesses {
            out.varint(UInt64(pid &- previous))
            previous = pid
        }
        let variable = out.bytes.count - start
        let f = facts
        out.u8(Self.version); out.u8(firstTime == nil ? 0 : 1); out.u16(0)
        out.u32(f.count)
        out.u64(f.sequence)
        out.i64(f.timeMin)
        out.i64(f.timeMax)
        out.u32(f.pidMin)
        out.u32(f.pidMax)
        out.u64(f.kinds)
        out.u64(f.functionFilter.0); out.u64(f.functionFilter.1); out.u64(f.functionFilter.2); out.u64(f.functionFilter.3)
        out.u64(f.nodes)
        out.u32(f.maxQueueLength)
        out.u32(f.drops)
        out.i64(firstTime ?? 0)
        out.i64(lastTime ?? 0)
        out.i64(dropTotal)
        out.u32(UInt32(variable))
        out.u32(UInt32(variable + Self.fixedSize))
    }

    // MARK: decoding

    /// The summary's whole length, read from the last 4 bytes of a block body (or of its tail).
    static func length(atEndOf bytes: UnsafeRawBufferPointer) -> Int? {
        guard bytes.count >= 4 else { return nil }
        var c = ByteCursor(bytes, offset: bytes.count - 4)
        return c.u32().map(Int.init)
    }

    /// Decodes the fixed part from `tail`, the last `fixedSize` bytes of a block body.
    static func decodeFixed(_ tail: UnsafeRawBufferPointer) -> (summary: BlockSummary, variableLength: Int)? {
        guard tail.count == fixedSize else { return nil }
        var c = ByteCursor(tail)
        guard c.u8() == version, let flags = c.u8(), flags <= 1, c.u16() != nil, let count = c.u32(),
              let sequence = c.u64(), let timeMin = c.i64(), let timeMax = c.i64(), let pidMin = c.u32(),
              let pidMax = c.u32(), let kinds = c.u64(), let f0 = c.u64(), let f1 = c.u64(), let f2 = c.u64(),
              let f3 = c.u64(), let nodes = c.u64(), let maxQueue = c.u32(), let drops = c.u32(),
              let first = c.i64(), let last = c.i64(), let dropTotal = c.i64(), let variable = c.u32(),
              let whole = c.u32(), Int(whole) == Int(variable) + fixedSize else { return nil }
        var s = BlockSummary()
        s.facts.count = count
        s.facts.sequence = sequence
        s.facts.timeMin = timeMin
        s.facts.timeMax = timeMax
        s.facts.pidMin = pidMin
        s.facts.pidMax = pidMax
        s.facts.kinds = kinds
        s.facts.functionFilter = (f0, f1, f2, f3)
        s.facts.nodes = nodes
        s.facts.maxQueueLength = maxQueue
        s.facts.drops = drops
        if flags == 1 {
            s.firstTime = first
            s.lastTime = last
        }
        s.dropTotal = dropTotal
        return (s, Int(variable))
    }

    /// Fills the lists from the variable part; false when it does not decode exactly.
    mutating func decodeVariable(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var c = ByteCursor(bytes)
        func pairs() -> [(key: UInt32, count: UInt32)]? {
            guard let n = c.varint(), n <= UInt64(c.remaining) else { return nil }
            var list: [(key: UInt32, count: UInt32)] = []
            list.reserveCapacity(Int(n))
            var key: UInt64 = 0
            for i in 0..<Int(n) {
                guard let delta = c.varint(), let count = c.varint(), (i == 0 || delta > 0),
                      key + delta <= UInt64(UInt32.max), count > 0, count <= UInt64(UInt32.max) else { return nil }
                key += delta
                list.append((UInt32(key), UInt32(count)))
            }
            return list
        }
        guard let kinds = pairs(), let nodes = pairs(), let calls = pairs(),
              let n = c.varint(), n <= UInt64(c.remaining) else { return false }
        var pids: [UInt32] = []
        pids.reserveCapacity(Int(n))
        var pid: UInt64 = 0
        for i in 0..<Int(n) {
            guard let delta = c.varint(), (i == 0 || delta > 0), pid + delta <= UInt64(UInt32.max) else { return false }
            pid += delta
            pids.append(UInt32(pid))
        }
        guard c.remaining == 0 else { return false }
        kindCounts = kinds
        nodeCounts = nodes
        self.calls = calls
        newProcesses = pids
        return true
    }

    /// Where the columns of a body that carries a summary end (the summary's own length word, checked
    /// for range only), nil when it cannot be.
    static func columnsEnd(_ body: UnsafeRawBufferPointer) -> Int? {
        guard let whole = length(atEndOf: body), whole >= fixedSize, whole <= body.count - Format.blockHeaderSize else {
            return nil
        }
        return body.count - whole
    }

    /// A whole block body's summary and where its columns end, when the body carries one (a body
    /// whose summary does not decode: nil with `columnsEnd` 0).
    static func split(_ body: UnsafeRawBufferPointer,
                      prefix: Int = Format.blockHeaderSize) -> (summary: BlockSummary?, columnsEnd: Int) {
        guard let whole = length(atEndOf: body), whole >= fixedSize, whole <= body.count - prefix,
              let (fixed, variable) = decodeFixed(UnsafeRawBufferPointer(rebasing: body[(body.count - fixedSize)...]))
        else { return (nil, 0) }
        var summary = fixed
        let start = body.count - whole
        guard summary.decodeVariable(UnsafeRawBufferPointer(rebasing: body[start..<(start + variable)])) else { return (nil, 0) }
        return (summary, start)
    }
}

extension IndexEntry {
    /// The facts a block summary confirms: everything but the framing (segment, offset, length, CRC).
    func sameBlockFacts(_ other: IndexEntry) -> Bool {
        count == other.count && sequence == other.sequence && timeMin == other.timeMin && timeMax == other.timeMax
            && pidMin == other.pidMin && pidMax == other.pidMax && kinds == other.kinds
            && functionFilter == other.functionFilter && nodes == other.nodes
            && maxQueueLength == other.maxQueueLength && drops == other.drops
    }

    /// The first fact of `other` this entry disagrees with, in the words of docs/FORMAT.md.
    func firstDifference(from other: IndexEntry) -> String? {
        if count != other.count { return "gives \(count) events, the block has \(other.count)" }
        if sequence != other.sequence { return "gives sequence \(sequence), the block has \(other.sequence)" }
        if timeMin != other.timeMin || timeMax != other.timeMax { return "gives times the block does not have" }
        if pidMin != other.pidMin || pidMax != other.pidMax { return "gives a pid range the block does not have" }
        if kinds != other.kinds { return "gives event kinds the block does not have" }
        if functionFilter != other.functionFilter { return "gives a function filter the block does not have" }
        if nodes != other.nodes { return "gives nodes the block does not have" }
        if maxQueueLength != other.maxQueueLength { return "gives a max queue length the block does not have" }
        if drops != other.drops { return "gives drops the block does not have" }
        return nil
    }
}

/// Summarizes blocks as the writer seals them; remembers the processes seen in the open segment.
struct BlockSummarizer {
    private var seen: [UInt64] = []
    private var kinds = [UInt32](repeating: 0, count: 64)
    private var nodes: [UInt32] = []
    private var calls: [UInt32] = []
    private var touchedFunctions: [UInt32] = []

    /// A new segment: every process is new to it again (a segment reads on its own).
    mutating func startSegment() {
        seen.removeAll(keepingCapacity: true)
    }

    private mutating func isNew(_ pid: UInt32) -> Bool {
        let word = Int(pid >> 6), bit = UInt64(1) << UInt64(pid & 63)
        if word >= seen.count { seen.append(contentsOf: repeatElement(0, count: word + 1 - seen.count)) }
        if seen[word] & bit != 0 { return false }
        seen[word] |= bit
        return true
    }

    /// The summary of a time-ordered batch written as block `sequence`; `facts`, when given, are
    /// the block's index facts as its encoder found them (else they are worked out here).
    mutating func summarize(_ batch: EventBatch, sequence: UInt64, facts: IndexEntry? = nil) -> BlockSummary {
        var s = BlockSummary()
        if let facts { s.facts = facts } else { s.facts.describe(batch, sequence: sequence) }
        var newPids: [UInt32] = []
        var first: Int64?, last: Int64?
        var dropTotal: Int64 = 0
        batch.withColumns { b in
            for i in 0..<b.count {
                let kind = b.kinds[i], pid = b.pids[i], node = Int(b.nodes[i]), mfa = b.mfas[i]
                kinds[Int(kind.rawValue)] &+= 1
                if node >= nodes.count { nodes.append(contentsOf: repeatElement(0, count: node + 1 - nodes.count)) }
                nodes[node] &+= 1
                if mfa != 0 && (kind == .call || kind == .returnFrom || kind == .exceptionFrom) {
                    let f = Int(mfa)
                    if f >= calls.count { calls.append(contentsOf: repeatElement(0, count: f + 1 - calls.count)) }
                    if calls[f] == 0 { touchedFunctions.append(mfa) }
                    calls[f] &+= 1
                }
                if kind == .drop { dropTotal &+= b.values[i] }
                if !(kind == .drop && b.flags[i].contains(.noTimestamp)) {
                    let t = b.times[i]
                    if first == nil { first = t }
                    last = t
                }
                if pid != 0, isNew(pid) { newPids.append(pid) }
            }
        }
        s.firstTime = first
        s.lastTime = last
        s.dropTotal = dropTotal
        for k in 0..<kinds.count where kinds[k] > 0 {
            s.kindCounts.append((UInt32(k), kinds[k]))
            kinds[k] = 0
        }
        for n in 0..<nodes.count where nodes[n] > 0 {
            s.nodeCounts.append((UInt32(n), nodes[n]))
            nodes[n] = 0
        }
        touchedFunctions.sort()
        for f in touchedFunctions {
            s.calls.append((f, calls[Int(f)]))
            calls[Int(f)] = 0
        }
        touchedFunctions.removeAll(keepingCapacity: true)
        newPids.sort()
        s.newProcesses = newPids
        return s
    }

    /// Appends the summary of `batch` to the block record being built in `record` (after its
    /// columns), flags the record, and makes `entry`'s facts the summary's.
    mutating func append(_ batch: EventBatch, sequence: UInt64, to record: inout ByteWriter, entry: inout IndexEntry) {
        let summary = summarize(batch, sequence: sequence, facts: entry)
        summary.encode(into: &record)
        record.bytes[5] |= Format.RecordFlag.summary
        let framing = (entry.kind, entry.segment, entry.offset, entry.recordLength)
        entry = summary.facts
        (entry.kind, entry.segment, entry.offset, entry.recordLength) = framing
        entry.recordFlags = record.bytes[5]
    }
}
