// One fixed-width (112-byte) index entry per record: where it is and, for blocks, what it can
// contain, so queries skip blocks without reading them.
import TraceModel

public struct IndexEntry: Sendable, Hashable {
    public enum RecordKind: UInt8, Sendable { case meta = 1, dictionary = 2, block = 3 }
    public var kind: RecordKind
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

    public init(kind: RecordKind, segment: UInt32, offset: UInt64, recordLength: UInt32) {
        self.kind = kind
        self.segment = segment
        self.offset = offset
        self.recordLength = recordLength
    }

    public static func == (a: IndexEntry, b: IndexEntry) -> Bool { a.encoded() == b.encoded() }
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
        w.u8(kind.rawValue); w.u8(0); w.u16(0)
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
        return w.bytes
    }

    static func decode(_ c: inout ByteCursor) -> IndexEntry? {
        guard let kindRaw = c.u8(), let kind = RecordKind(rawValue: kindRaw), c.bytes(3) != nil,
              let segment = c.u32(), let offset = c.u64(), let length = c.u32(), let count = c.u32(),
              let sequence = c.u64(), let timeMin = c.i64(), let timeMax = c.i64(), let pidMin = c.u32(),
              let pidMax = c.u32(), let kinds = c.u64(), let f0 = c.u64(), let f1 = c.u64(), let f2 = c.u64(),
              let f3 = c.u64(), let nodes = c.u64(), let maxQueue = c.u32(), let drops = c.u32()
        else { return nil }
        var e = IndexEntry(kind: kind, segment: segment, offset: offset, recordLength: length)
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
        return e
    }
}
