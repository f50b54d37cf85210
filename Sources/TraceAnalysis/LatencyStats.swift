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

/// One key's statistics, a value: LatencyStats keeps them side by side in one array and records a
/// span in place (no object per function: 50,000 of them, each behind a pointer and a reference count,
/// were a tenth of `latency` on a module of generated functions).
public struct FunctionLatency: Sendable {
    public internal(set) var calls: Int = 0
    public internal(set) var returned: Int = 0
    public internal(set) var exceptions: Int = 0
    /// Spans that ended without a measurable end (unwound, gap, exit, unfinished).
    public internal(set) var unmeasured: Int = 0
    public private(set) var total = DurationDistribution()
    public private(set) var selfTime = DurationDistribution()
    /// Durations sampled beyond the exact ones (reservoir), only when the stats keep a sample.
    var reservoir: [Int64] = []
    let keepsSample: Bool
    /// Exceptions by reason head (`exit {aborted,{cyclic,...}}`); at most `reasonLimit` distinct
    /// heads, the rest under "other".
    public internal(set) var exceptionReasons: [String: Int] = [:]
    static let reasonLimit = 20

    init(keepsSample: Bool) {
        self.keepsSample = keepsSample
    }

    mutating func countException(_ reason: String) {
        if exceptionReasons[reason] != nil || exceptionReasons.count < Self.reasonLimit {
            exceptionReasons[reason, default: 0] += 1
        } else {
            exceptionReasons["other", default: 0] += 1
        }
    }

    static let sampleLimit = 20_000

    /// Up to `sampleLimit` durations of total time for rank tests: every one while the
    /// distribution is exact, then a reservoir sample (when the stats keep one; empty otherwise).
    public var sample: [Int64] {
        total.isExact ? total.exactValues.map { Int64(clamping: $0) } : reservoir
    }

    mutating func record(_ span: Span, rng: inout SplitMix) {
        calls += 1
        switch span.ending {
        case .returned: returned += 1
        case .exception: exceptions += 1
        default: unmeasured += 1
        }
        guard span.isMeasured else { return }
        let duration = UInt64(max(0, span.total))
        if keepsSample, total.isExact, total.totalCount == DurationDistribution.exactLimit {
            // The exact values are about to go into buckets: they seed the reservoir.
            reservoir = total.exactValues.map { Int64(clamping: $0) }
        }
        total.record(duration)
        selfTime.record(UInt64(max(0, span.selfTime)))
        guard keepsSample, !total.isExact else { return }
        if reservoir.count < Self.sampleLimit {
            reservoir.append(Int64(clamping: duration))
        } else {
            let slot = Int(rng.next() % UInt64(total.totalCount))
            if slot < Self.sampleLimit { reservoir[slot] = Int64(clamping: duration) }
        }
    }

    /// Microseconds at a percentile of total time.
    public func percentileMicros(_ p: Double) -> Double {
        total.totalCount == 0 ? 0 : Double(total.valueAtPercentile(p)) / 1000
    }

    /// Bytes this function's statistics hold on the heap (distributions, sample, reasons).
    public var heapBytes: Int {
        total.heapBytes + selfTime.heapBytes + reservoir.capacity * 8 + exceptionReasons.count * 48
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
    private var entries: [FunctionLatency] = []
    private var keys: [LatencyKey] = []
    /// By function id when grouping by function, the entry's index + 1 (0: none yet; no hashing on
    /// the hot path).
    private var byFunction: [Int32] = []
    /// The entry's index by key when grouping by process or node.
    private var grouped: [LatencyKey: Int32] = [:]
    private var lastEntry: (key: LatencyKey, index: Int)?
    private var rng = SplitMix(seed: 0x5EED)

    public init(grouping: Grouping = .function, detail: Detail = .percentilesAndSample) {
        self.grouping = grouping
        self.detail = detail
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
        guard grouping == .function else {
            for index in entries.indices { body(keys[index], entries[index]) }
            return
        }
        for slot in byFunction where slot != 0 {
            let index = Int(slot) - 1
            body(keys[index], entries[index])
        }
    }

    /// How many keys have statistics.
    public var count: Int { entries.count }

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
        entries[index].record(span, rng: &rng)
        if let exceptionReason { entries[index].countException(exceptionReason) }
    }

    private mutating func addEntry(_ key: LatencyKey) -> Int {
        entries.append(FunctionLatency(keepsSample: detail == .percentilesAndSample))
        keys.append(key)
        return entries.count - 1
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
