// One fixed-width (120-byte) index entry per record: where it is and, for blocks, what it can
// contain, so queries skip blocks without reading them. An entry carries the CRC-32C of the record
// it describes and its own, so a reader can check it before believing it.
import TraceModel

public struct IndexEntry: Sendable, Hashable {
    public enum RecordKind: UInt8, Sendable { case meta = 1, dictionary = 2, block = 3, seal = 4 }
    public var kind: RecordKind
    /// The record's flags byte (its header's byte 5; `Format.RecordFlag`). 0 in entries written
    /// before block summaries, whose records all have flags 0.
    public var recordFlags: UInt8 = 0
    public var segment: UInt32
    /// Offset of the record (its "BTRC" magic) in the segment file.
    public var offset: UInt64
    /// Whole record length, framing included.
    public var recordLength: UInt32
    public var count: UInt32 = 0
    public var sequence: UInt64 = 0
    public var timeMin: Int64 = 0
    public var timeMax: Int64 = 0
    public var pidMin: UInt32 = 0
    public var pidMax: UInt32 = 0
    public var kinds: UInt64 = 0
    public var functionFilter: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    public var nodes: UInt64 = 0
    /// Largest `sample` value (queue length) in the block.
    public var maxQueueLength: UInt32 = 0
    /// Trace messages lost (drop events' counts) within the block.
    public var drops: UInt32 = 0
    /// The CRC-32C stored in the record's trailer (index version 2; 0 in version 1 entries).
    public var recordCRC: UInt32 = 0

    public init(kind: RecordKind, segment: UInt32, offset: UInt64, recordLength: UInt32) {
        self.kind = kind
        self.segment = segment
        self.offset = offset
        self.recordLength = recordLength
    }

    public static func == (a: IndexEntry, b: IndexEntry) -> Bool { a.encoded() == b.encoded() }

    /// The block record ends with a `BlockSummary`.
    var hasSummary: Bool { kind == .block && recordFlags & Format.RecordFlag.summary != 0 }
    public func hash(into hasher: inout Hasher) { hasher.combine(encoded()) }

    @inline(__always) static func functionBits(_ id: FunctionID) -> (Int, Int) {
        let a = Int((id &* 0x9E37_79B1) >> 24) & 255
        let b = Int((id &* 0x85EB_CA77) >> 16) & 255
        return (a, b)
    }

    mutating func addFunction(_ id: FunctionID) {
        let (a, b) = Self.functionBits(id)
        setBit(a)
        setBit(b)
    }

    private mutating func setBit(_ bit: Int) {
        let mask = UInt64(1) << UInt64(bit & 63)
        switch bit >> 6 {
        case 0: functionFilter.0 |= mask
        case 1: functionFilter.1 |= mask
        case 2: functionFilter.2 |= mask
        default: functionFilter.3 |= mask
        }
    }

    func testBit(_ bit: Int) -> Bool {
        let mask = UInt64(1) << UInt64(bit & 63)
        switch bit >> 6 {
        case 0: return functionFilter.0 & mask != 0
        case 1: return functionFilter.1 & mask != 0
        case 2: return functionFilter.2 & mask != 0
        default: return functionFilter.3 & mask != 0
        }
    }

    public func mayContain(function id: FunctionID) -> Bool {
        let (a, b) = Self.functionBits(id)
        return testBit(a) && testBit(b)
    }

    /// False when no event of the block can match the query.
    public func mayMatch(_ query: EventQuery) -> Bool {
        guard kind == .block else { return false }
        if let from = query.from, timeMax < from { return false }
        if let to = query.to, timeMin > to { return false }
        if let kindsWanted = query.kinds {
            var mask: UInt64 = 0
            for k in kindsWanted { mask |= 1 << UInt64(k.rawValue) }
            if kinds & mask == 0 { return false }
        }
        if let pids = query.pids, !pids.contains(where: { $0 >= pidMin && $0 <= pidMax }) { return false }
        if let nodesWanted = query.nodes, !nodesWanted.contains(where: { nodes & (1 << UInt64($0 & 63)) != 0 }) { return false }
        if let functions = query.functions, !functions.contains(where: { mayContain(function: $0) }) { return false }
        return true
    }

    func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: Format.indexEntrySize)
        w.u8(kind.rawValue); w.u8(recordFlags); w.u16(0)
        w.u32(segment)
        w.u64(offset)
        w.u32(recordLength)
        w.u32(count)
        w.u64(sequence)
        w.i64(timeMin)
        w.i64(timeMax)
        w.u32(pidMin)
        w.u32(pidMax)
        w.u64(kinds)
        w.u64(functionFilter.0); w.u64(functionFilter.1); w.u64(functionFilter.2); w.u64(functionFilter.3)
        w.u64(nodes)
        w.u32(maxQueueLength)
        w.u32(drops)
        w.u32(recordCRC)
        w.u32(CRC32C.checksum(w.bytes))
        return w.bytes
    }

    /// The facts of a decoded block, as the writer's encoder records them.
    mutating func describe(_ batch: EventBatch, sequence: UInt64) {
        let n = batch.count
        var pidMin = UInt32.max, pidMax: UInt32 = 0
        var kinds: UInt64 = 0, nodes: UInt64 = 0, maxQueue: UInt32 = 0, drops: UInt64 = 0
        functionFilter = (0, 0, 0, 0)
        for i in 0..<n {
            let pid = batch.pids[i], kind = batch.kinds[i], mfa = batch.mfas[i], value = batch.values[i]
            if pid < pidMin { pidMin = pid }
            if pid > pidMax { pidMax = pid }
            kinds |= 1 << UInt64(kind.rawValue)
            nodes |= 1 << UInt64(batch.nodes[i] & 63)
            if mfa != 0 { addFunction(mfa) }
            if kind == .sample, value > 0 { maxQueue = max(maxQueue, UInt32(clamping: value)) }
            if kind == .drop { drops &+= UInt64(max(value, 0)) }
        }
        count = UInt32(n)
        self.sequence = sequence
        timeMin = batch.times.first ?? 0
        timeMax = batch.times.last ?? 0
        self.pidMin = n == 0 ? 0 : pidMin
        self.pidMax = pidMax
        self.kinds = kinds
        self.nodes = nodes
        maxQueueLength = maxQueue
        self.drops = UInt32(clamping: drops)
    }

    /// Why a version-2 entry's own CRC fails, if it does (`raw` is the whole 120-byte entry).
    static func checksumFailure(_ raw: UnsafeRawBufferPointer) -> Bool {
        guard raw.count == Format.indexEntrySize else { return true }
        var c = ByteCursor(raw, offset: Format.indexEntrySize - 4)
        return c.u32() != CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<(Format.indexEntrySize - 4)]))
    }

    /// Decodes one entry (112 bytes in index version 1, 120 in version 2; the CRC is not checked here).
    static func decode(_ c: inout ByteCursor, version: UInt32 = Format.indexVersion) -> IndexEntry? {
        guard let kindRaw = c.u8(), let kind = RecordKind(rawValue: kindRaw), let flags = c.u8(), c.u16() != nil,
              let segment = c.u32(), let offset = c.u64(), let length = c.u32(), let count = c.u32(),
              let sequence = c.u64(), let timeMin = c.i64(), let timeMax = c.i64(), let pidMin = c.u32(),
              let pidMax = c.u32(), let kinds = c.u64(), let f0 = c.u64(), let f1 = c.u64(), let f2 = c.u64(),
              let f3 = c.u64(), let nodes = c.u64(), let maxQueue = c.u32(), let drops = c.u32()
        else { return nil }
        var e = IndexEntry(kind: kind, segment: segment, offset: offset, recordLength: length)
        e.recordFlags = version >= 2 ? flags : 0
        e.count = count
        e.sequence = sequence
        e.timeMin = timeMin
        e.timeMax = timeMax
        e.pidMin = pidMin
        e.pidMax = pidMax
        e.kinds = kinds
        e.functionFilter = (f0, f1, f2, f3)
        e.nodes = nodes
        e.maxQueueLength = maxQueue
        e.drops = drops
        if version >= 2 {
            guard let crc = c.u32(), c.u32() != nil else { return nil }
            e.recordCRC = crc
        }
        return e
    }
}
