// Latency distributions: exact while a function has few durations, 3-digit buckets after, checked
// against the durations of the capture's own call/return_from pairs and of a live workload's
// timing; and the memory a function costs before it has data worth a histogram.
import CaptureStore
import Foundation
import Testing
import TestSupport
@testable import TraceAnalysis
import TraceModel

@Suite("Latency distributions", .serialized)
struct LatencyDistributionTests {
    /// Durations of every call/return_from pair of `mfa` in the capture, straight from its events.
    static func pairedDurations(_ capture: String, mfa: String) throws -> [Int64] {
        let reader = try CaptureReader(opening: capture)
        var open: [ProcessID: [Int64]] = [:]
        var durations: [Int64] = []
        try reader.forEach(matching: .all) { event, _ in
            guard reader.dictionaries.functionText(event.mfa) == mfa else { return true }
            if event.kind == .call { open[event.pid, default: []].append(event.time) }
            if event.kind == .returnFrom, let start = open[event.pid]?.popLast() { durations.append(event.time - start) }
            return true
        }
        return durations.sorted()
    }

    /// The nearest-rank percentile (the smallest value at least p% of the values are at or below).
    static func nearestRank(_ sorted: [Int64], _ p: Double) -> Double {
        Double(sorted[max(0, min(sorted.count - 1, Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1))]) / 1000
    }

    @Test("few calls: percentiles equal the capture's own durations exactly and track the workload's timing",
          arguments: [40, 300])
    func workloadPercentiles(calls: Int) throws {
        let run = try Workload.run("latency(DIR, \(calls))")
        defer { try? FileManager.default.removeItem(at: run.directory) }
        let truth = Workload.integers(run.truth).sorted()
        #expect(truth.count == calls)
        let durations = try Self.pairedDurations(run.capture, mfa: "bt_workload:step/1")
        #expect(durations.count == calls)
        let analysis = try CaptureAnalysis.run(CaptureReader(opening: run.capture),
                                               options: AnalysisOptions(latency: .percentiles))
        let row = try #require(analysis.latencyReport().functions.first { $0.mfa == "bt_workload:step/1" })
        let exact = calls <= DurationDistribution.exactLimit
        for (ours, p) in [(row.p50Micros, 50.0), (row.p90Micros, 90), (row.p99Micros, 99), (row.p999Micros, 99.9)] {
            let theirs = Self.nearestRank(durations, p)
            // Exact values while few; 3 significant digits (within 0.1%) in buckets.
            #expect(exact ? ours == theirs : abs(ours - theirs) <= 0.001 * theirs, "p\(p): \(ours) µs, events \(theirs) µs")
            let workload = Double(truth[max(0, min(truth.count - 1, Int((p / 100 * Double(truth.count)).rounded(.up)) - 1))]) / 1000
            #expect(abs(ours - workload) <= max(0.05 * workload, 50), "p\(p): \(ours) µs, workload \(workload) µs")
        }
        #expect(row.minMicros == Double(durations.first ?? 0) / 1000)
        #expect(row.maxMicros == Double(durations.last ?? 0) / 1000)
        let mean = Double(durations.reduce(0, +)) / Double(durations.count) / 1000
        #expect(abs(row.meanMicros - mean) <= 1e-9 * mean)
    }

    @Test("buckets keep 3 significant digits from 1 ns to an hour; exact percentiles below the limit")
    func bucketsAgainstSortedValues() {
        var generator = SplitMix(seed: 7)
        for count in [1, 2, 10, DurationDistribution.exactLimit, DurationDistribution.exactLimit + 1, 5_000] {
            var d = DurationDistribution()
            var values: [UInt64] = []
            for _ in 0..<count {
                // Log-uniform over 1 ns ... 3.6e12 ns.
                let v = UInt64(exp(Double(generator.next() % 1_000_000) / 1_000_000 * log(3.6e12)))
                values.append(v)
                d.record(v)
            }
            values.sort()
            #expect(d.totalCount == count)
            #expect(d.min == values.first && d.max == values.last)
            let ps = [0.0, 1, 25, 50, 90, 99, 99.9, 100]
            for (p, ours) in zip(ps, d.percentiles(ps)) {
                let rank = p == 0 ? 1 : max(1, min(count, Int((p.nextDown / 100 * Double(count)).rounded(.up))))
                let theirs = values[rank - 1]
                if count <= DurationDistribution.exactLimit {
                    #expect(ours == theirs, "n=\(count) p\(p)")
                } else {
                    #expect(ours >= theirs && Double(ours - theirs) <= Double(theirs) / 1000 + 1, "n=\(count) p\(p): \(ours) vs \(theirs)")
                }
            }
        }
    }

    @Test("50,000 functions with 20 calls each hold at most 2 KiB per function; hang's replay keeps none")
    func memoryPerFunction() {
        var stats = LatencyStats(detail: .percentiles)
        var none = LatencyStats(detail: .none)
        for call in 0..<20 {
            for f in 1...50_000 {
                let span = Span(node: 1, pid: 1, mfa: FunctionID(f), start: Int64(call * 1000), end: Int64(call * 1000 + f),
                                ending: .returned, startKnown: true, depth: 0, parent: -1, selfTime: Int64(f))
                stats.record(span)
                none.record(span)
            }
        }
        let functions = stats.functions
        #expect(functions.count == 50_000)
        let largest = functions.values.map(\.heapBytes).max() ?? 0
        #expect(largest + 64 <= 2048, "largest function: \(largest) bytes")
        #expect(functions.values.allSatisfy { $0.total.totalCount == 20 && $0.total.isExact })
        #expect(none.functions.isEmpty)
    }

    @Test("--by process: 5,000 processes × 4 functions with 10 calls each hold at most 2 KiB per key")
    func memoryPerProcessKey() {
        var stats = LatencyStats(grouping: .process, detail: .percentiles)
        for call in 0..<10 {
            for pid in 1...5_000 {
                for f in 1...4 {
                    let span = Span(node: 1, pid: ProcessID(pid), mfa: FunctionID(f), start: Int64(call * 1000),
                                    end: Int64(call * 1000 + pid + f), ending: .returned, startKnown: true, depth: 0,
                                    parent: -1, selfTime: Int64(f))
                    stats.record(span)
                }
            }
        }
        let keys = stats.functions
        #expect(keys.count == 20_000)
        let largest = keys.values.map(\.heapBytes).max() ?? 0
        #expect(largest + 64 <= 2048, "largest key: \(largest) bytes")
        #expect(keys.values.allSatisfy { $0.total.totalCount == 10 && $0.total.isExact })
    }

    @Test("durations of 4.29 s and more stay exact in the 32-bit arena, before and after the buckets",
          arguments: [40, DurationDistribution.exactLimit + 20])
    func wideDurations(spans: Int) throws {
        var stats = LatencyStats(detail: .percentilesAndSample)
        var totals: [UInt64] = [], selfTimes: [UInt64] = []
        for i in 0..<spans {
            // Around 2^32 - 1 ns on both sides, some far above it (an hour), some small.
            let total: UInt64 = i % 5 == 0 ? UInt64(i + 1) * 1_000 : 4_294_967_295 - 2 + UInt64(i) * (i % 3 == 0 ? 1 : 1_000_003)
            let selfTime: UInt64 = i % 7 == 0 ? 3_600_000_000_000 + UInt64(i) : total / 2 + 4_294_967_295 * UInt64(i % 2)
            totals.append(total)
            selfTimes.append(selfTime)
            stats.record(Span(node: 1, pid: 1, mfa: 3, start: 0, end: Int64(total), ending: .returned, startKnown: true,
                              depth: 0, parent: -1, selfTime: Int64(selfTime)))
        }
        let f = try #require(stats.functions[LatencyKey(mfa: 3)])
        #expect(f.total.totalCount == spans && f.calls == spans && f.returned == spans && f.unmeasured == 0)
        #expect(f.total.min == totals.min() && f.total.max == totals.max())
        #expect(f.selfTime.min == selfTimes.min() && f.selfTime.max == selfTimes.max())
        #expect(f.total.mean == totals.reduce(0.0) { $0 + Double($1) } / Double(spans))
        let ps = [0.0, 10, 50, 90, 99, 99.9, 100]
        var scratch: [UInt64] = []
        var viaTable = [UInt64](repeating: 0, count: ps.count), selfViaTable = viaTable
        viaTable.withUnsafeMutableBufferPointer { stats.percentiles(0, selfTime: false, ps, scratch: &scratch, into: $0) }
        selfViaTable.withUnsafeMutableBufferPointer { stats.percentiles(0, selfTime: true, ps, scratch: &scratch, into: $0) }
        #expect(viaTable == f.total.percentiles(ps) && selfViaTable == f.selfTime.percentiles(ps))
        if spans <= DurationDistribution.exactLimit {
            #expect(f.total.exactValues == totals && f.selfTime.exactValues == selfTimes)
            #expect(f.sample == totals.map { Int64($0) })
            let sorted = totals.sorted(), selfSorted = selfTimes.sorted()
            for (i, p) in ps.enumerated() {
                let rank = p == 0 ? 1 : max(1, min(spans, Int((p.nextDown / 100 * Double(spans)).rounded(.up))))
                #expect(viaTable[i] == sorted[rank - 1] && selfViaTable[i] == selfSorted[rank - 1], "p\(p)")
            }
        } else {
            // Past the limit: the buckets hold every value (3 digits), the sample every duration so far.
            #expect(!f.total.isExact && f.sample == totals.map { Int64($0) })
            #expect(f.total.count(within: 0...UInt64.max) == UInt64(spans))
            var reference = DurationDistribution()
            for t in totals { reference.record(t) }
            #expect(f.total.percentiles(ps) == reference.percentiles(ps))
        }
    }
}
