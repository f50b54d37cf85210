// Per-function latency in HdrHistograms (nanoseconds, 3 significant digits, so 1 µs to 1 h keep
// 3 digits): total and self time of measured spans, counts of returns and exceptions, and a
// bounded random sample of durations for significance tests between captures. Exceptions are
// counted by reason (class and the reason's head), so contention shows as what it is.
import BeamTerm
import Histogram
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
    @exclusivity(unchecked) public var total = FunctionLatency.makeHistogram()
    @exclusivity(unchecked) public var selfTime = FunctionLatency.makeHistogram()
    /// Up to `sampleLimit` durations (reservoir sample) for rank tests.
    @exclusivity(unchecked) public var sample: [Int64] = []
    @exclusivity(unchecked) var seen: Int = 0
    /// Exceptions by reason head (`exit {aborted,{cyclic,...}}`); at most `reasonLimit` distinct
    /// heads, the rest under "other".
    @exclusivity(unchecked) public var exceptionReasons: [String: Int] = [:]
    static let reasonLimit = 20

    func countException(_ reason: String) {
        if exceptionReasons[reason] != nil || exceptionReasons.count < Self.reasonLimit {
            exceptionReasons[reason, default: 0] += 1
        } else {
            exceptionReasons["other", default: 0] += 1
        }
    }

    static func makeHistogram() -> Histogram<UInt64> {
        var histogram = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 1_000_000,
                                          numberOfSignificantValueDigits: .three)
        histogram.autoResize = true
        return histogram
    }

    static let sampleLimit = 20_000

    func record(_ span: Span, rng: inout SplitMix) {
        calls += 1
        switch span.ending {
        case .returned: returned += 1
        case .exception: exceptions += 1
        default: unmeasured += 1
        }
        guard span.isMeasured else { return }
        let duration = UInt64(max(0, span.total))
        _ = total.record(duration)
        _ = selfTime.record(UInt64(max(0, span.selfTime)))
        seen += 1
        if sample.count < Self.sampleLimit {
            sample.append(Int64(duration))
        } else {
            let slot = Int(rng.next() % UInt64(seen))
            if slot < Self.sampleLimit { sample[slot] = Int64(duration) }
        }
    }

    /// Microseconds at a percentile of total time.
    public func percentileMicros(_ p: Double) -> Double {
        total.totalCount == 0 ? 0 : Double(total.valueAtPercentile(p)) / 1000
    }
}

public struct LatencyStats: Sendable {
    public enum Grouping: String, Sendable, CaseIterable {
        case function, process, node
    }

    public var grouping: Grouping
    public private(set) var functions: [LatencyKey: FunctionLatency] = [:]
    private var lastEntry: (key: LatencyKey, entry: FunctionLatency)?
    private var rng = SplitMix(seed: 0x5EED)

    public init(grouping: Grouping = .function) {
        self.grouping = grouping
    }

    public mutating func record(_ span: Span, exceptionReason: String? = nil) {
        let group: UInt32
        switch grouping {
        case .function: group = 0
        case .process: group = span.pid
        case .node: group = span.node
        }
        let key = LatencyKey(mfa: span.mfa, group: group)
        let entry: FunctionLatency
        if let last = lastEntry, last.key == key {
            entry = last.entry
        } else {
            entry = functions[key] ?? FunctionLatency()
            functions[key] = entry
            lastEntry = (key, entry)
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
