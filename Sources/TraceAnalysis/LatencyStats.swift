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

/// A class so recording a span updates it in place.
public final class FunctionLatency: @unchecked Sendable {
    @exclusivity(unchecked) public var calls: Int = 0
    @exclusivity(unchecked) public var returned: Int = 0
    @exclusivity(unchecked) public var exceptions: Int = 0
    /// Spans that ended without a measurable end (unwound, gap, exit, unfinished).
    @exclusivity(unchecked) public var unmeasured: Int = 0
    // Hot-path properties of a class: only this type mutates them, one span at a time, so the
    // runtime's dynamic exclusivity checks are skipped.
    @exclusivity(unchecked) public private(set) var total = DurationDistribution()
    @exclusivity(unchecked) public private(set) var selfTime = DurationDistribution()
    /// Durations sampled beyond the exact ones (reservoir), only when the stats keep a sample.
    @exclusivity(unchecked) var reservoir: [Int64] = []
    let keepsSample: Bool
    /// Exceptions by reason head (`exit {aborted,{cyclic,...}}`); at most `reasonLimit` distinct
    /// heads, the rest under "other".
    @exclusivity(unchecked) public var exceptionReasons: [String: Int] = [:]
    static let reasonLimit = 20

    init(keepsSample: Bool) {
        self.keepsSample = keepsSample
    }

    func countException(_ reason: String) {
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

    func record(_ span: Span, rng: inout SplitMix) {
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
    /// By function id when grouping by function (no hashing on the hot path).
    private var byFunction: [FunctionLatency?] = []
    private var grouped: [LatencyKey: FunctionLatency] = [:]
    private var lastEntry: (key: LatencyKey, entry: FunctionLatency)?
    private var rng = SplitMix(seed: 0x5EED)

    public init(grouping: Grouping = .function, detail: Detail = .percentilesAndSample) {
        self.grouping = grouping
        self.detail = detail
    }

    /// Every key with its statistics (built on each call: iterate it once).
    public var functions: [LatencyKey: FunctionLatency] {
        guard grouping == .function else { return grouped }
        var result: [LatencyKey: FunctionLatency] = [:]
        result.reserveCapacity(byFunction.count)
        for (mfa, entry) in byFunction.enumerated() {
            if let entry { result[LatencyKey(mfa: FunctionID(mfa))] = entry }
        }
        return result
    }

    /// Calls `body` for every key with its statistics (in no particular order), without building
    /// the dictionary `functions` returns.
    public func forEach(_ body: (LatencyKey, FunctionLatency) -> Void) {
        guard grouping == .function else {
            for (key, entry) in grouped { body(key, entry) }
            return
        }
        for (mfa, entry) in byFunction.enumerated() {
            if let entry { body(LatencyKey(mfa: FunctionID(mfa)), entry) }
        }
    }

    /// How many keys have statistics.
    public var count: Int { grouping == .function ? byFunction.reduce(0) { $0 + ($1 == nil ? 0 : 1) } : grouped.count }

    public mutating func record(_ span: Span, exceptionReason: String? = nil) {
        if detail == .none { return }
        let entry: FunctionLatency
        switch grouping {
        case .function:
            let index = Int(span.mfa)
            if index >= byFunction.count {
                byFunction.append(contentsOf: repeatElement(nil, count: index - byFunction.count + 1))
            }
            if let existing = byFunction[index] {
                entry = existing
            } else {
                entry = FunctionLatency(keepsSample: detail == .percentilesAndSample)
                byFunction[index] = entry
            }
        case .process, .node:
            let key = LatencyKey(mfa: span.mfa, group: grouping == .process ? span.pid : span.node)
            if let last = lastEntry, last.key == key {
                entry = last.entry
            } else if let existing = grouped[key] {
                entry = existing
                lastEntry = (key, entry)
            } else {
                entry = FunctionLatency(keepsSample: detail == .percentilesAndSample)
                grouped[key] = entry
                lastEntry = (key, entry)
            }
        }
        entry.record(span, rng: &rng)
        if let exceptionReason { entry.countException(exceptionReason) }
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
