// What `beamtrace info` reports: totals by kind, node and function, processes, time range, drops —
// from the block summaries the index points at (a small read per block), or by decoding every
// event when the capture cannot be counted that way.
import SystemPackage
import TraceModel

public struct CaptureSummary: Sendable, Equatable {
    public var events = 0
    public var kinds: [EventKind: Int] = [:]
    /// call, return_from and exception_from events per function.
    public var callsByFunction: [FunctionID: Int] = [:]
    public var startTime: Int64?
    public var endTime: Int64?
    public var drops: Int64 = 0
    public var processesSeen = ProcessSet()
    public var nodesSeen = Set<NodeID>()
    /// Events by node id.
    public var eventsByNode: [NodeID: Int] = [:]
}

extension CaptureReader {
    /// Scans the whole capture once and totals it.
    public func summary() throws -> CaptureSummary {
        var s = CaptureSummary()
        var t = Tally(dictionaries)
        var events = 0, drops: Int64 = 0
        var start: Int64?, end: Int64?
        try forEach { event, _ in
            events += 1
            t.kindCounts[Int(event.kind.rawValue)] += 1
            let mfa = Int(event.mfa)
            if mfa != 0, mfa < t.calls.count,
               event.kind == .call || event.kind == .returnFrom || event.kind == .exceptionFrom { t.calls[mfa] += 1 }
            if event.kind == .drop { drops += event.value }
            if Int(event.pid) < t.processSeen.count { t.processSeen[Int(event.pid)] = true }
            if Int(event.node) < t.nodeEvents.count { t.nodeEvents[Int(event.node)] += 1 }
            if !event.flags.contains(.noTimestamp) || event.kind != .drop {
                if start == nil { start = event.time }
                end = event.time
            }
            return true
        }
        s.events = events
        s.drops = drops
        s.startTime = start
        s.endTime = end
        t.fill(&s)
        return s
    }

    /// The same totals as `summary()` from the block summaries alone (one small read per block),
    /// or why they cannot be used: the capture has problems (then only every event tells), or its
    /// blocks were written without summaries. Each summary is checked against its index entry.
    public func indexSummary() -> (summary: CaptureSummary?, why: String?) {
        guard problems.isEmpty else { return (nil, "the capture has problems (listed above)") }
        guard blocks.allSatisfy(\.hasSummary) else {
            return (nil, "its blocks carry no summaries (written by a beamtrace before format 2 block summaries)")
        }
        var s = CaptureSummary()
        var t = Tally(dictionaries)
        var tail: [UInt8] = []
        var start: Int64?, end: Int64?
        for block in blocks {
            guard let fd = descriptors[Int(block.segment)] else { return (nil, "segment \(block.segment) is not open") }
            // One read: usually the whole summary and the trailer; a long summary takes a second.
            let trailer = Format.recordTrailerSize
            let bodyLength = Int(block.recordLength) - Format.recordOverhead
            var want = min(4096, bodyLength) + trailer
            var summary: BlockSummary?
            for _ in 0..<2 {
                let at = Int64(block.offset) + Int64(block.recordLength) - Int64(want)
                guard (try? SegmentIO.read(fd, at: at, count: want, into: &tail)) == want else { break }
                let (whole, fits) = tail.withUnsafeBytes { raw -> (Int?, Bool) in
                    let body = UnsafeRawBufferPointer(rebasing: raw[0..<(want - trailer)])
                    guard let whole = BlockSummary.length(atEndOf: body) else { return (nil, false) }
                    if whole > body.count { return (whole, false) }
                    summary = BlockSummary.split(UnsafeRawBufferPointer(rebasing: body[(body.count - whole)...]),
                                                 prefix: 0).summary
                    return (whole, true)
                }
                if fits { break }
                guard let whole, whole <= bodyLength - Format.blockHeaderSize else { break }
                want = whole + trailer
            }
            guard let summary, summary.facts.sameBlockFacts(block) else {
                return (nil, "the summary of block \(block.sequence) (segment \(block.segment)) cannot be read or "
                        + "disagrees with its index entry")
            }
            s.events += Int(block.count)
            s.drops += summary.dropTotal
            for (kind, count) in summary.kindCounts where kind < 64 { t.kindCounts[Int(kind)] += Int(count) }
            for (node, count) in summary.nodeCounts where Int(node) < t.nodeEvents.count { t.nodeEvents[Int(node)] += Int(count) }
            for (function, count) in summary.calls where Int(function) < t.calls.count { t.calls[Int(function)] += Int(count) }
            for pid in summary.newProcesses where Int(pid) < t.processSeen.count { t.processSeen[Int(pid)] = true }
            if let first = summary.firstTime { start = min(start ?? first, first) }
            if let last = summary.lastTime { end = max(end ?? last, last) }
        }
        s.startTime = start
        s.endTime = end
        t.fill(&s)
        return (s, nil)
    }
}

/// Counts by id in flat tables (instead of sets: the full scan runs this once per event), turned
/// into a summary's maps at the end.
private struct Tally {
    var kindCounts = [Int](repeating: 0, count: 64)
    var calls: [Int]
    var processSeen: [Bool]
    var nodeEvents: [Int]

    init(_ dictionaries: TraceDictionaries) {
        calls = [Int](repeating: 0, count: dictionaries.functions.count)
        processSeen = [Bool](repeating: false, count: dictionaries.processes.count)
        nodeEvents = [Int](repeating: 0, count: dictionaries.nodes.count)
    }

    func fill(_ s: inout CaptureSummary) {
        for kind in EventKind.allCases where kindCounts[Int(kind.rawValue)] > 0 { s.kinds[kind] = kindCounts[Int(kind.rawValue)] }
        for (id, count) in calls.enumerated() where count > 0 { s.callsByFunction[FunctionID(id)] = count }
        s.processesSeen = ProcessSet(flags: processSeen)
        for (id, count) in nodeEvents.enumerated() where count > 0 && id != 0 {
            s.nodesSeen.insert(NodeID(id))
            s.eventsByNode[NodeID(id)] = count
        }
    }
}

/// Process ids of a capture as one bit each (ids are dense from 1): a million processes take 122 KiB,
/// are built from the scan's flags a word at a time and compared word by word, where a Set<ProcessID>
/// hashed and inserted each id (about 40% of `info --verify` at a million processes).
public struct ProcessSet: Sendable, Equatable {
    /// Bit `id % 64` of word `id / 64`; no trailing zero words, so equal sets have equal words.
    private var words: [UInt64] = []
    public private(set) var count = 0

    public init() {}

    /// The ids whose flag is set (index = id), 0 excepted.
    init(flags: [Bool]) {
        var words = [UInt64](repeating: 0, count: (flags.count + 63) / 64)
        var count = 0
        for (id, seen) in flags.enumerated() where seen && id != 0 {
            words[id >> 6] |= 1 << UInt64(id & 63)
            count += 1
        }
        while words.last == 0 { words.removeLast() }
        self.words = words
        self.count = count
    }

    public var isEmpty: Bool { count == 0 }

    public func contains(_ id: ProcessID) -> Bool {
        let word = Int(id >> 6)
        return word < words.count && words[word] >> UInt64(id & 63) & 1 != 0
    }

    public mutating func insert(_ id: ProcessID) {
        let word = Int(id >> 6)
        if word >= words.count { words += [UInt64](repeating: 0, count: word + 1 - words.count) }
        let bit: UInt64 = 1 << UInt64(id & 63)
        if words[word] & bit == 0 {
            words[word] |= bit
            count += 1
        }
    }
}
