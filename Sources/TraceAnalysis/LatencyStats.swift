// Per-function latency (nanoseconds): total and self time of measured spans in a
// DurationDistribution each (exact values while few, then 3-significant-digit log-linear buckets),
// counts of returns and exceptions, and for diffs a bounded random sample of durations for
// significance tests between captures. Exceptions are counted by reason (class and the reason's
// head), so contention shows as what it is. Nothing here costs more than a few hundred bytes per
// function until the function has data worth a histogram.
import BeamTerm
import TraceModel

public struct LatencyKey: Sendable, Hashable {
    public var mfa: FunctionID
    /// 0 unless grouping by process or node.
    public var group: UInt32
    public init(mfa: FunctionID, group: UInt32 = 0) {
        self.mfa = mfa
        self.group = group
    }
}

/// One key's statistics as a value with everything in it (what `LatencyStats.functions` and `forEach`
/// hand out, made from the recorded entry on each call: the replay keeps them flatter, see
/// `LatencyEntry`).
public struct FunctionLatency: Sendable {
    public internal(set) var calls: Int = 0
    public internal(set) var returned: Int = 0
    public internal(set) var exceptions: Int = 0
    /// Spans that ended without a measurable end (unwound, gap, exit, unfinished).
    public internal(set) var unmeasured: Int = 0
    public internal(set) var total = DurationDistribution()
    public internal(set) var selfTime = DurationDistribution()
    /// Durations sampled beyond the exact ones (reservoir), only when the stats keep a sample.
    var reservoir: [Int64] = []
    /// Exceptions by reason head (`exit {aborted,{cyclic,...}}`); at most `reasonLimit` distinct
    /// heads, the rest under "other".
    public internal(set) var exceptionReasons: [String: Int] = [:]
    static let reasonLimit = 20
    static let sampleLimit = 20_000
    /// Bytes the replay held for this key (its share of the exact-value arena, its buckets, sample
    /// and reasons), for the memory benchmarks and tests.
    public internal(set) var heapBytes: Int = 0

    /// Up to `sampleLimit` durations of total time for rank tests: every one while the
    /// distribution is exact, then a reservoir sample (when the stats keep one; empty otherwise).
    public var sample: [Int64] {
        total.isExact ? total.exactValues.map { Int64(clamping: $0) } : reservoir
    }

    /// Microseconds at a percentile of total time.
    public func percentileMicros(_ p: Double) -> Double {
        total.totalCount == 0 ? 0 : Double(total.valueAtPercentile(p)) / 1000
    }
}

/// One key's statistics as the replay records them, side by side with the others in one array (no
/// object per function: 50,000 of them, each behind a pointer and a reference count, were a tenth of
/// `latency` on a module of generated functions). Its exact durations are not in it but in the
/// stats' `ExactArena`, total and self time of a span side by side in one word: a function seen ten
/// times costs one chunk of 128 bytes there, not two arrays of its own (352 bytes with malloc's
/// headers, written at random as spans close: most of what 50,000 functions cost beyond 4).
struct LatencyEntry {
    var calls = 0, returned = 0, exceptions = 0
    /// Measured spans: durations recorded in both distributions.
    var measured = 0
    var totalMin: UInt64 = 0, totalMax: UInt64 = 0, totalSum: Double = 0
    var selfMin: UInt64 = 0, selfMax: UInt64 = 0, selfSum: Double = 0
    /// Arena slot of each exact chunk (`ExactArena.chunkSizes`), valid as far as `measured` reached.
    var chunks: (UInt32, UInt32, UInt32) = (0, 0, 0)
    /// Buckets, once past `DurationDistribution.exactLimit` durations (empty before).
    var totalBuckets = RegionHistogram(), selfBuckets = RegionHistogram()
    var reservoir: [Int64] = []
    var exceptionReasons: [String: Int] = [:]

    var isExact: Bool { measured <= DurationDistribution.exactLimit }

    /// Arena slot of exact value `i` (0-based, below `measured` and the limit).
    func slot(_ i: Int) -> Int {
        i < ExactArena.chunkStarts[1] ? Int(chunks.0) + i
            : i < ExactArena.chunkStarts[2] ? Int(chunks.1) + i - ExactArena.chunkStarts[1]
            : Int(chunks.2) + i - ExactArena.chunkStarts[2]
    }

    mutating func countException(_ reason: String) {
        if exceptionReasons[reason] != nil || exceptionReasons.count < FunctionLatency.reasonLimit {
            exceptionReasons[reason, default: 0] += 1
        } else {
            exceptionReasons["other", default: 0] += 1
        }
    }

    mutating func record(_ span: Span, keepsSample: Bool, arena: inout ExactArena, rng: inout SplitMix) {
        calls += 1
        switch span.ending {
        case .returned: returned += 1
        case .exception: exceptions += 1
        default: break
        }
        guard span.isMeasured else { return }
        let duration = UInt64(max(0, span.total)), selfTime = UInt64(max(0, span.selfTime))
        if measured == 0 {
            totalMin = duration
            totalMax = duration
            selfMin = selfTime
            selfMax = selfTime
        } else {
            if duration < totalMin { totalMin = duration }
            if duration > totalMax { totalMax = duration }
            if selfTime < selfMin { selfMin = selfTime }
            if selfTime > selfMax { selfMax = selfTime }
        }
        totalSum += Double(duration)
        selfSum += Double(selfTime)
        let n = measured
        measured += 1
        if n < DurationDistribution.exactLimit {
            switch n {
            case ExactArena.chunkStarts[0]: chunks.0 = arena.allocate(ExactArena.chunkSizes[0])
            case ExactArena.chunkStarts[1]: chunks.1 = arena.allocate(ExactArena.chunkSizes[1])
            case ExactArena.chunkStarts[2]: chunks.2 = arena.allocate(ExactArena.chunkSizes[2])
            default: break
            }
            arena.store(total: duration, self: selfTime, at: slot(n))
            return
        }
        if n == DurationDistribution.exactLimit {
            // The exact values go into buckets; they seed the reservoir.
            if keepsSample { reservoir.reserveCapacity(n + 1) }
            for i in 0..<n {
                let s = slot(i), t = arena.total(at: s)
                totalBuckets.record(t)
                selfBuckets.record(arena.selfTime(at: s))
                if keepsSample { reservoir.append(Int64(clamping: t)) }
            }
        }
        totalBuckets.record(duration)
        selfBuckets.record(selfTime)
        guard keepsSample else { return }
        if reservoir.count < FunctionLatency.sampleLimit {
            reservoir.append(Int64(clamping: duration))
        } else {
            let slot = Int(rng.next() % UInt64(measured))
            if slot < FunctionLatency.sampleLimit { reservoir[slot] = Int64(clamping: duration) }
        }
    }
}

/// Every key's exact durations: (total, self) pairs of 32-bit nanoseconds in one word each, in chunks
/// of 16, 32 and 48 words (a key's first 16 spans, the next 32, the last 48 before its buckets) carved
/// from slabs that never move (no copy as they grow; a slab's pages are touched only as chunks fill
/// it). A duration of 2^32 - 1 ns (4.29 s) or more keeps its 32 bits all ones and its exact value in
/// `wide`, so every value stays exact.
struct ExactArena {
    static let chunkSizes = [16, 32, 48]
    static let chunkStarts = [0, 16, 48]
    static let slabShift = 16
    static let slabSlots = 1 << slabShift
    private var slabs: [[UInt64]] = []
    /// The next free slot (slab << slabShift | offset).
    private var next = 0
    /// Exact values of the words whose half is all ones, by slot << 1 | (0 total, 1 self).
    private var wide: [Int: UInt64] = [:]
    private(set) var slotsUsed = 0

    mutating func allocate(_ size: Int) -> UInt32 {
        if slabs.isEmpty || (next & (Self.slabSlots - 1)) + size > Self.slabSlots || next >> Self.slabShift >= slabs.count {
            next = slabs.count << Self.slabShift
            // Uninitialized: a slot is read only once written, and untouched pages cost nothing.
            slabs.append([UInt64](unsafeUninitializedCapacity: Self.slabSlots) { _, count in count = Self.slabSlots })
        }
        let start = next
        next += size
        slotsUsed += size
        return UInt32(truncatingIfNeeded: start)
    }

    mutating func store(total: UInt64, self selfTime: UInt64, at slot: Int) {
        let low: UInt64 = total < 0xFFFF_FFFF ? total : 0xFFFF_FFFF
        let high: UInt64 = selfTime < 0xFFFF_FFFF ? selfTime : 0xFFFF_FFFF
        if low == 0xFFFF_FFFF { wide[slot << 1] = total }
        if high == 0xFFFF_FFFF { wide[slot << 1 | 1] = selfTime }
        slabs[slot >> Self.slabShift][slot & (Self.slabSlots - 1)] = high << 32 | low
    }

    func total(at slot: Int) -> UInt64 {
        let low = slabs[slot >> Self.slabShift][slot & (Self.slabSlots - 1)] & 0xFFFF_FFFF
        return low == 0xFFFF_FFFF ? wide[slot << 1] ?? low : low
    }

    func selfTime(at slot: Int) -> UInt64 {
        let high = slabs[slot >> Self.slabShift][slot & (Self.slabSlots - 1)] >> 32
        return high == 0xFFFF_FFFF ? wide[slot << 1 | 1] ?? high : high
    }
}

public struct LatencyStats: Sendable {
    public enum Grouping: String, Sendable, CaseIterable {
        case function, process, node
    }

    /// What a replay keeps of latency: nothing (hang, queues, timelines), the distributions
    /// (percentiles), or the distributions and a sample of durations for significance tests (diff).
    public enum Detail: Sendable {
        case none, percentiles, percentilesAndSample
    }

    public var grouping: Grouping
    public let detail: Detail
    /// Every key's statistics, in the order keys were first seen, and their keys.
    private(set) var entries: [LatencyEntry] = []
    private var keys: [LatencyKey] = []
    private var arena = ExactArena()
    /// By function id when grouping by function, the entry's index + 1 (0: none yet; no hashing on
    /// the hot path).
    private var byFunction: [Int32] = []
    /// The entry's index by key when grouping by process or node.
    private var grouped: [LatencyKey: Int32] = [:]
    private var lastEntry: (key: LatencyKey, index: Int)?
    private var rng = SplitMix(seed: 0x5EED)

    /// `functionCount`: how many functions the capture names, if known (grouping by function reserves
    /// room for that many keys: untouched until used, and no copy of every key as the array doubles).
    public init(grouping: Grouping = .function, detail: Detail = .percentilesAndSample, functionCount: Int = 0) {
        self.grouping = grouping
        self.detail = detail
        if grouping == .function && detail != .none && functionCount > 0 {
            entries.reserveCapacity(functionCount)
            keys.reserveCapacity(functionCount)
            byFunction.reserveCapacity(functionCount + 1)
        }
    }

    /// Every key with its statistics (built on each call: iterate it once).
    public var functions: [LatencyKey: FunctionLatency] {
        var result: [LatencyKey: FunctionLatency] = [:]
        result.reserveCapacity(entries.count)
        forEach { key, entry in result[key] = entry }
        return result
    }

    /// Calls `body` for every key with its statistics (by function id when grouping by function, in
    /// no particular order otherwise), without building the dictionary `functions` returns.
    public func forEach(_ body: (LatencyKey, FunctionLatency) -> Void) {
        forEachIndex { index in body(keys[index], statistics(index)) }
    }

    /// Calls `body` with every key's index in `forEach`'s order.
    func forEachIndex(_ body: (Int) -> Void) {
        guard grouping == .function else {
            for index in entries.indices { body(index) }
            return
        }
        for slot in byFunction where slot != 0 { body(Int(slot) - 1) }
    }

    /// How many keys have statistics.
    public var count: Int { entries.count }

    func key(_ index: Int) -> LatencyKey { keys[index] }

    /// Percentiles of key `index`'s total time (or self time) into `out`, as `DurationDistribution`
    /// gives them: nothing allocated while the values are exact (sorted in `scratch`).
    func percentiles(_ index: Int, selfTime: Bool, _ ps: [Double], scratch: inout [UInt64],
                     into out: UnsafeMutableBufferPointer<UInt64>) {
        var ranks = PercentileRanks(ps)
        percentiles(index, selfTime: selfTime, &ranks, scratch: &scratch, into: out)
    }

    /// The same with the percentiles' ranks kept in `ranks` while the count repeats.
    func percentiles(_ index: Int, selfTime: Bool, _ ranks: inout PercentileRanks, scratch: inout [UInt64],
                     into out: UnsafeMutableBufferPointer<UInt64>) {
        let measured = entries[index].measured
        guard measured > 0 else {
            for i in ranks.ps.indices { out[i] = 0 }
            return
        }
        let ranks = ranks.ranks(among: measured)
        if !entries[index].isExact {
            let low = selfTime ? entries[index].selfMin : entries[index].totalMin
            let high = selfTime ? entries[index].selfMax : entries[index].totalMax
            let values = selfTime ? entries[index].selfBuckets.values(atRanks: ranks)
                : entries[index].totalBuckets.values(atRanks: ranks)
            for (i, value) in values.enumerated() { out[i] = Swift.min(Swift.max(value, low), high) }
            return
        }
        // At most `exactLimit` values, copied out of the arena into `scratch` (sized once, written in
        // place: no uniqueness check per value) and sorted there: an insertion sort beats the general
        // sort's set-up.
        let limit = DurationDistribution.exactLimit
        if scratch.count < limit { scratch = [UInt64](repeating: 0, count: limit) }
        let chunks = entries[index].chunks
        scratch.withUnsafeMutableBufferPointer { all in
            let values = UnsafeMutableBufferPointer(rebasing: all[0..<measured])
            for i in values.indices {
                let slot = i < ExactArena.chunkStarts[1] ? Int(chunks.0) + i
                    : i < ExactArena.chunkStarts[2] ? Int(chunks.1) + i - ExactArena.chunkStarts[1]
                    : Int(chunks.2) + i - ExactArena.chunkStarts[2]
                values[i] = selfTime ? arena.selfTime(at: slot) : arena.total(at: slot)
            }
            for i in values.indices.dropFirst() {
                let value = values[i]
                var j = i
                while j > 0 && values[j - 1] > value {
                    values[j] = values[j - 1]
                    j -= 1
                }
                values[j] = value
            }
        }
        for i in ranks.indices { out[i] = scratch[ranks[i] - 1] }
    }

    /// Key `index`'s exact values in recording order (replacing what `values` held).
    private func exactValues(_ index: Int, selfTime: Bool, into values: inout [UInt64]) {
        values.removeAll(keepingCapacity: true)
        guard entries[index].isExact else { return }
        for i in 0..<entries[index].measured {
            let slot = entries[index].slot(i)
            values.append(selfTime ? arena.selfTime(at: slot) : arena.total(at: slot))
        }
    }

    /// Key `index`'s statistics as one value (its exact durations copied out of the arena).
    func statistics(_ index: Int) -> FunctionLatency {
        let entry = entries[index]
        var totals: [UInt64] = [], selfTimes: [UInt64] = []
        exactValues(index, selfTime: false, into: &totals)
        exactValues(index, selfTime: true, into: &selfTimes)
        var result = FunctionLatency()
        result.calls = entry.calls
        result.returned = entry.returned
        result.exceptions = entry.exceptions
        result.unmeasured = entry.calls - entry.returned - entry.exceptions
        result.total = DurationDistribution(exact: totals, histogram: entry.totalBuckets, count: entry.measured,
                                            min: entry.totalMin, max: entry.totalMax, sum: entry.totalSum)
        result.selfTime = DurationDistribution(exact: selfTimes, histogram: entry.selfBuckets, count: entry.measured,
                                               min: entry.selfMin, max: entry.selfMax, sum: entry.selfSum)
        result.reservoir = entry.reservoir
        result.exceptionReasons = entry.exceptionReasons
        let arenaSlots = entry.measured == 0 ? 0 : ExactArena.chunkSizes.indices
            .filter { ExactArena.chunkStarts[$0] < entry.measured }.reduce(0) { $0 + ExactArena.chunkSizes[$1] }
        result.heapBytes = arenaSlots * 8 + entry.totalBuckets.heapBytes + entry.selfBuckets.heapBytes
            + entry.reservoir.capacity * 8 + entry.exceptionReasons.count * 48
        return result
    }

    public mutating func record(_ span: Span, exceptionReason: String? = nil) {
        if detail == .none { return }
        let index: Int
        switch grouping {
        case .function:
            let id = Int(span.mfa)
            if id >= byFunction.count {
                byFunction.append(contentsOf: repeatElement(0, count: id - byFunction.count + 1))
            }
            if byFunction[id] != 0 {
                index = Int(byFunction[id]) - 1
            } else {
                index = addEntry(LatencyKey(mfa: span.mfa))
                byFunction[id] = Int32(index + 1)
            }
        case .process, .node:
            let key = LatencyKey(mfa: span.mfa, group: grouping == .process ? span.pid : span.node)
            if let last = lastEntry, last.key == key {
                index = last.index
            } else if let existing = grouped[key] {
                index = Int(existing)
                lastEntry = (key, index)
            } else {
                index = addEntry(key)
                grouped[key] = Int32(index)
                lastEntry = (key, index)
            }
        }
        entries[index].record(span, keepsSample: detail == .percentilesAndSample, arena: &arena, rng: &rng)
        if let exceptionReason { entries[index].countException(exceptionReason) }
    }

    private mutating func addEntry(_ key: LatencyKey) -> Int {
        entries.append(LatencyEntry())
        keys.append(key)
        return entries.count - 1
    }
}

/// The ranks of some percentiles among `count` values, worked out again only when the count changes
/// (a report's rows mostly share it: every function of a generated module is called as often).
struct PercentileRanks {
    let ps: [Double]
    private var count = -1
    private var ranks: [Int]

    init(_ ps: [Double]) {
        self.ps = ps
        ranks = [Int](repeating: 1, count: ps.count)
    }

    mutating func ranks(among count: Int) -> [Int] {
        if count != self.count {
            for i in ps.indices { ranks[i] = DurationDistribution.rank(ps[i], count: count) }
            self.count = count
        }
        return ranks
    }
}

/// A small seeded generator (reservoir sampling, bootstrap) so results repeat.
public struct SplitMix: RandomNumberGenerator, Sendable {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The head of an `exception_from`'s `{Class, Reason}`: the class and the reason's tags, so that
/// `{aborted,{cyclic,Node,Oid,Op}}` from every transaction groups as `exit {aborted,{cyclic,…}}`.
enum ExceptionReasons {
    static func head(_ payload: UnsafeRawBufferPointer, flags: EventFlags) -> String {
        guard case .tuple(let pair)? = Payload.terms(payload, flags: flags)?.first, pair.count == 2,
              let kind = pair[0].atomValue?.name else { return flags.contains(.payloadTruncated) ? "(reason cut)" : "(unknown)" }
        return kind + " " + head(pair[1], depth: 3)
    }

    /// A tuple keeps its first element and, when that is a tag (an atom) and the second a tuple,
    /// the second's head; the rest is `…`. Other terms print short.
    static func head(_ term: Term, depth: Int) -> String {
        switch term {
        case .tuple(let elements):
            guard let first = elements.first else { return "{}" }
            guard depth > 0 else { return "{…}" }
            var parts = [head(first, depth: depth - 1)]
            if elements.count > 1, case .atom = first, case .tuple = elements[1] {
                parts.append(head(elements[1], depth: depth - 1))
            }
            return "{" + parts.joined(separator: ",") + (elements.count > parts.count ? ",…" : "") + "}"
        case .atom, .integer:
            return term.erlangText()
        default:
            return term.erlangText(ErlangPrintOptions(maxDepth: 1, maxWidth: 24))
        }
    }
}
