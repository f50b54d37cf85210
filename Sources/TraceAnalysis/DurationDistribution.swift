// The durations of one function (nanoseconds): exact values while there are few (a function seen
// a handful of times costs a few hundred bytes, not a histogram), then a log-linear histogram of
// 3 significant digits whose 4 KiB regions (one per power of two) are allocated only where values
// fall. Count, min, max and mean are exact in both; percentiles are exact while the values are.
public struct DurationDistribution: Sendable {
    /// Values kept exactly before a histogram is worth it (2 × 96 × 8 B stays under 2 KiB per function).
    public static let exactLimit = 96

    private var exact: [UInt64] = []
    private var histogram = RegionHistogram()
    private var spilled = false
    public private(set) var totalCount = 0
    /// Exact smallest and largest values (0 when empty).
    public private(set) var min: UInt64 = 0
    public private(set) var max: UInt64 = 0
    private var sum: Double = 0

    public init() {}

    /// A distribution recorded elsewhere (LatencyStats' arena): its exact values in recording order
    /// while `count` is within the limit, its buckets after.
    init(exact: [UInt64], histogram: RegionHistogram, count: Int, min: UInt64, max: UInt64, sum: Double) {
        spilled = count > Self.exactLimit
        self.exact = spilled ? [] : exact
        self.histogram = histogram
        totalCount = count
        self.min = min
        self.max = max
        self.sum = sum
    }

    /// The 1-based rank of percentile `p` among `count` values (HdrHistogram's rule).
    static func rank(_ p: Double, count: Int) -> Int {
        if p <= 0 { return 1 }
        if p >= 100 { return count }
        let requested = Swift.min(Swift.max(p.nextDown, 0), 100)
        return Swift.min(count, Swift.max(1, Int((requested * Double(count) / 100).rounded(.up))))
    }

    public mutating func record(_ value: UInt64) {
        if totalCount == 0 {
            min = value
            max = value
        } else {
            if value < min { min = value }
            if value > max { max = value }
        }
        totalCount += 1
        sum += Double(value)
        if spilled {
            histogram.record(value)
            return
        }
        if exact.count < Self.exactLimit {
            // Grow by hand in three steps (16, 48, then the limit): one allocation for a function
            // seen a few times, and no doubling past the limit, which would waste half its memory.
            if exact.count == exact.capacity {
                exact.reserveCapacity(exact.count < 16 ? 16 : exact.count < 48 ? 48 : Self.exactLimit)
            }
            exact.append(value)
            return
        }
        for v in exact { histogram.record(v) }
        histogram.record(value)
        spilled = true
        exact = []
    }

    /// True while every value is kept exactly.
    public var isExact: Bool { !spilled }

    /// The values themselves while the distribution is exact, in recording order; empty after.
    public var exactValues: [UInt64] { exact }

    public var mean: Double { totalCount == 0 ? 0 : sum / Double(totalCount) }

    /// The value at percentile `p` (0...100): the smallest value that at least p% of the values
    /// are at or below (HdrHistogram's rule). 0 when empty.
    public func valueAtPercentile(_ p: Double) -> UInt64 { percentiles([p])[0] }

    /// Several percentiles in one pass (one sort, or one walk of the histogram).
    public func percentiles(_ ps: [Double]) -> [UInt64] {
        var scratch: [UInt64] = []
        return percentiles(ps, scratch: &scratch)
    }

    /// The same, sorting exact values in `scratch` (reused across calls: no allocation per call).
    public func percentiles(_ ps: [Double], scratch: inout [UInt64]) -> [UInt64] {
        var result = [UInt64](repeating: 0, count: ps.count)
        result.withUnsafeMutableBufferPointer { percentiles(ps, scratch: &scratch, into: $0) }
        return result
    }

    /// The same into `out` (one value per percentile): nothing allocated while the values are exact.
    public func percentiles(_ ps: [Double], scratch: inout [UInt64], into out: UnsafeMutableBufferPointer<UInt64>) {
        guard totalCount > 0 else {
            for i in ps.indices { out[i] = 0 }
            return
        }
        func rank(_ p: Double) -> Int { Self.rank(p, count: totalCount) }
        if spilled {
            for (i, value) in histogram.values(atRanks: ps.map(rank)).enumerated() {
                out[i] = Swift.min(Swift.max(value, min), max)
            }
            return
        }
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: exact)
        scratch.sort()
        for i in ps.indices { out[i] = scratch[rank(ps[i]) - 1] }
    }

    /// How many values fall in `range` (exact while the values are; in buckets, those whose
    /// bucket's highest value is in it).
    public func count(within range: ClosedRange<UInt64>) -> UInt64 {
        if spilled { return histogram.count(within: range) }
        return UInt64(exact.reduce(0) { $0 + (range.contains($1) ? 1 : 0) })
    }

    /// Bytes held beyond the struct itself (for the memory benchmarks and tests).
    public var heapBytes: Int { exact.capacity * 8 + histogram.heapBytes }
}

/// Log-linear buckets: region 0 holds 0..<1024 exactly, region r ≥ 1 holds [1024·2^(r-1), 1024·2^r)
/// in 1024 buckets of width 2^(r-1) (so every value keeps 3 significant digits, as HdrHistogram
/// with 3 digits). Regions are allocated on first use; counts saturate instead of trapping.
struct RegionHistogram: Sendable {
    static let slots = 1024
    private var regions: [[UInt32]] = []

    mutating func record(_ value: UInt64) {
        let width = 64 - value.leadingZeroBitCount
        let region: Int, slot: Int
        if width <= 10 {
            region = 0
            slot = Int(value)
        } else {
            region = width - 10
            slot = Int(truncatingIfNeeded: value >> UInt64(width - 11)) - Self.slots
        }
        if region >= regions.count { regions.append(contentsOf: repeatElement([], count: region - regions.count + 1)) }
        if regions[region].isEmpty { regions[region] = [UInt32](repeating: 0, count: Self.slots) }
        regions[region].withUnsafeMutableBufferPointer { counts in
            if counts[slot] != .max { counts[slot] += 1 }
        }
    }

    /// The highest value of each bucket where the running count reaches each rank (ranks ascending or not).
    func values(atRanks ranks: [Int]) -> [UInt64] {
        let order = ranks.indices.sorted { ranks[$0] < ranks[$1] }
        var result = [UInt64](repeating: 0, count: ranks.count)
        var next = 0
        var running = 0
        for region in regions.indices where !regions[region].isEmpty {
            let counts = regions[region]
            for slot in 0..<Self.slots where counts[slot] != 0 {
                running += Int(counts[slot])
                while next < order.count, running >= ranks[order[next]] {
                    result[order[next]] = Self.highestValue(region: region, slot: slot)
                    next += 1
                }
                if next == order.count { return result }
            }
        }
        // Saturated counts can leave ranks unreached: they belong to the last value.
        while next < order.count {
            result[order[next]] = .max
            next += 1
        }
        return result
    }

    func count(within range: ClosedRange<UInt64>) -> UInt64 {
        var total: UInt64 = 0
        for region in regions.indices where !regions[region].isEmpty {
            let counts = regions[region]
            for slot in 0..<Self.slots where counts[slot] != 0 && range.contains(Self.highestValue(region: region, slot: slot)) {
                total += UInt64(counts[slot])
            }
        }
        return total
    }

    static func highestValue(region: Int, slot: Int) -> UInt64 {
        guard region > 0 else { return UInt64(slot) }
        let shift = UInt64(region - 1)
        return (UInt64(slot + slots) << shift) + (1 << shift) - 1
    }

    var heapBytes: Int { regions.count * 8 + regions.reduce(0) { $0 + $1.capacity * 4 } }
}
