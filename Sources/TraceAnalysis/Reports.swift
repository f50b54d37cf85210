// The analyses as plain Codable reports: what `--json` prints and what the text tables show.
import Foundation
import TraceModel

public struct LatencyRow: Sendable, Codable {
    public var mfa: String
    public var group: String?
    public var calls: Int
    public var returned: Int
    public var exceptions: Int
    public var unmeasured: Int
    public var minMicros: Double
    public var meanMicros: Double
    public var p50Micros: Double
    public var p90Micros: Double
    public var p99Micros: Double
    public var p999Micros: Double
    public var maxMicros: Double
    public var selfP50Micros: Double
    /// Exceptions by reason head, most frequent first.
    public var exceptionReasons: [ReasonCount]

    enum CodingKeys: String, CodingKey {
        case mfa, group, calls, returned, exceptions, unmeasured
        case exceptionReasons = "exception_reasons"
        case minMicros = "min_us", meanMicros = "mean_us", p50Micros = "p50_us", p90Micros = "p90_us"
        case p99Micros = "p99_us", p999Micros = "p999_us", maxMicros = "max_us", selfP50Micros = "self_p50_us"
    }
}

public struct ReasonCount: Sendable, Codable {
    /// Class and the reason's head: `exit {aborted,{cyclic,...}}`.
    public var reason: String
    public var count: Int
}

public struct LatencyReport: Sendable, Codable {
    public var functions: [LatencyRow]
}

extension CaptureAnalysis {
    static let reportPercentiles: [Double] = [50, 90, 99, 99.9]
    static let medianOnly: [Double] = [50]

    public func latencyReport(sortBy: String = "p99", mfaFilter: ((String) -> Bool)? = nil) -> LatencyReport {
        var rows: [LatencyRow] = []
        rows.reserveCapacity(latency.count)
        var scratch: [UInt64] = []
        var p = [UInt64](repeating: 0, count: Self.reportPercentiles.count), selfP50 = [UInt64(0)]
        latency.forEach { key, stats in
            let mfa = functionText(key.mfa)
            if let mfaFilter, !mfaFilter(mfa) { return }
            let group: String?
            switch latency.grouping {
            case .function: group = nil
            case .process: group = processText(key.group)
            case .node: group = nodeText(key.group)
            }
            // One sort (or one walk of the buckets) for every percentile, into buffers reused from row
            // to row; min, max and mean are exact.
            p.withUnsafeMutableBufferPointer { stats.total.percentiles(Self.reportPercentiles, scratch: &scratch, into: $0) }
            selfP50.withUnsafeMutableBufferPointer {
                stats.selfTime.percentiles(Self.medianOnly, scratch: &scratch, into: $0)
            }
            let reasons: [ReasonCount] = stats.exceptionReasons.isEmpty ? [] : stats.exceptionReasons
                .sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
                .map { ReasonCount(reason: $0.key, count: $0.value) }
            let h = stats.total
            rows.append(LatencyRow(
                mfa: mfa, group: group, calls: stats.calls, returned: stats.returned, exceptions: stats.exceptions,
                unmeasured: stats.unmeasured, minMicros: Double(h.min) / 1000, meanMicros: h.mean / 1000,
                p50Micros: Double(p[0]) / 1000, p90Micros: Double(p[1]) / 1000, p99Micros: Double(p[2]) / 1000,
                p999Micros: Double(p[3]) / 1000, maxMicros: Double(h.max) / 1000,
                selfP50Micros: Double(selfP50[0]) / 1000, exceptionReasons: reasons))
        }
        // Sorted by index with the sort column read once per row: moving the rows themselves (strings
        // and arrays) costs a retain and a release per move. Ties go by name, compared as bytes.
        let column: [Double] = rows.map { row in
            switch sortBy {
            case "p50": row.p50Micros
            case "p90": row.p90Micros
            case "max": row.maxMicros
            case "mean": row.meanMicros
            case "calls": Double(row.calls)
            case "mfa": 0
            default: row.p99Micros
            }
        }
        let names = RowNames(rows)
        let byName = sortBy == "mfa"
        let order = rows.indices.sorted { i, j in
            if byName { return names.mfaPrecedes(i, j, rows) }
            let (x, y) = (column[i], column[j])
            return x != y ? x > y : names.precedes(i, j, rows)
        }
        return LatencyReport(functions: order.map { rows[$0] })
    }

    /// Queue growth for every process with a series, largest end length first.
    public func queueReports(top: Int = .max) -> [QueueGrowthReport] {
        var reports: [QueueGrowthReport] = []
        for pid in queues.processes {
            guard let (series, estimated) = queues.series(for: pid) else { continue }
            let points = series.points
            guard let last = points.last else { continue }
            let maxLength = points.map(\.length).max() ?? 0
            // Sampled only because it waited in a call (or was called by one that did): no queue.
            if maxLength == 0 && !estimated { continue }
            let fit = GrowthFit.growthWindow(points)
            // A queue that stopped changing long before the end is frozen, not growing; a slope of
            // less than a message a second, or a rise of fewer than 10 messages, is no growth.
            let frozen = GrowthFit.finalRun(points).map { captureEnd - $0.since >= HangThresholds.stuck(duration) } ?? false
            let rise = last.length - points[fit.startIndex].length
            let growing = last.length >= 10 && fit.slopePerSecond >= 1 && rise >= 10 && fit.fit >= 0.5
                && Double(last.length) >= 0.5 * Double(maxLength) && !frozen
            let senders = (queues.estimate(pid)?.senders ?? [:]).sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
                .prefix(5).map { SenderCount(pid: processText($0.key), name: nameText($0.key), messages: $0.value) }
            var activity: [String] = []
            if let mfa = queues.lastSampleFunction[pid] {
                let state = lastSample[pid]?.status == "waiting" ? "blocked in a receive in " : "running "
                activity.append(state + functionText(mfa) + " (current_function in the last samples)")
            }
            for open in (openAtEnd[pid] ?? []).suffix(3) {
                activity.append("inside " + functionText(open.mfa) + " for " + Durations.text(captureEnd - open.start))
            }
            if let busiest = busiestActivity(of: pid) { activity.append(busiest) }
            let toTarget: Double? = growing && fit.slopePerSecond > 0
                ? max(0, Double(options.queueTarget - last.length) / fit.slopePerSecond) : nil
            let node = dictionaries.process(pid).map { nodeText($0.identity.node) } ?? ""
            reports.append(QueueGrowthReport(
                processID: pid, pid: processText(pid), node: node, name: nameText(pid), maxLength: maxLength, endLength: last.length,
                slopePerSecond: fit.slopePerSecond, fit: fit.fit,
                growingSince: growing ? points[fit.startIndex].time : nil, growing: growing, estimated: estimated,
                secondsToTarget: toTarget, targetLength: options.queueTarget, topSenders: Array(senders),
                ownerActivity: activity, series: points.map { [$0.time, $0.length] }))
        }
        reports.sort { ($0.growing ? 1 : 0, $0.endLength, $0.maxLength) > ($1.growing ? 1 : 0, $1.endLength, $1.maxLength) }
        return Array(reports.prefix(top))
    }
}

/// When waiting becomes "stuck": long for the capture, and long in absolute terms.
public enum HangThresholds {
    /// A wait (a call, a frozen queue) this old at the end of a capture of `duration` is stuck:
    /// 20% of the capture, at least 0.5 s, at most 5 s (gen_server's default call timeout).
    public static func stuck(_ duration: Int64) -> Int64 {
        min(5_000_000_000, max(500_000_000, duration / 5))
    }
}

public enum Durations {
    /// `1.23 ms`, `4.5 s`, `820 µs`, `312 ns` (TraceModel's DurationText: one way to print durations).
    public static func text(_ ns: Int64) -> String { DurationText.text(ns) }

    /// Parses `250ms`, `1.5s`, `30us`, `100ns`, `2m`; a bare number is nanoseconds.
    public static func parse(_ text: String) -> Int64? {
        let units: [(String, Double)] = [("ns", 1), ("us", 1e3), ("µs", 1e3), ("ms", 1e6), ("s", 1e9), ("min", 60e9), ("m", 60e9)]
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            guard let number = Double(text.dropLast(suffix.count)) else { return nil }
            return Int64(number * factor)
        }
        return Int64(text)
    }
}

/// The rows' names (function, then group) in one byte arena, compared as String's `<` compares them:
/// byte by byte when both are ASCII (the order of their scalars), through String otherwise.
struct RowNames {
    private var bytes: [UInt8] = []
    /// Per row: where its function's text starts, where it ends (its group's text follows up to the
    /// next row's start), and whether both are ASCII.
    private var starts: [Int] = []
    private var mfaEnds: [Int] = []
    private var ascii: [Bool] = []

    init(_ rows: [LatencyRow]) {
        starts.reserveCapacity(rows.count + 1)
        mfaEnds.reserveCapacity(rows.count)
        ascii.reserveCapacity(rows.count)
        for row in rows {
            starts.append(bytes.count)
            bytes.append(contentsOf: row.mfa.utf8)
            mfaEnds.append(bytes.count)
            if let group = row.group { bytes.append(contentsOf: group.utf8) }
            ascii.append(!bytes[starts[starts.count - 1]...].contains { $0 >= 0x80 })
        }
        starts.append(bytes.count)
    }

    /// `rows[i].mfa < rows[j].mfa`.
    func mfaPrecedes(_ i: Int, _ j: Int, _ rows: [LatencyRow]) -> Bool {
        guard ascii[i] && ascii[j] else { return rows[i].mfa < rows[j].mfa }
        return compare(starts[i], mfaEnds[i], starts[j], mfaEnds[j]) < 0
    }

    /// `(rows[i].mfa, rows[i].group ?? "") < (rows[j].mfa, rows[j].group ?? "")`.
    func precedes(_ i: Int, _ j: Int, _ rows: [LatencyRow]) -> Bool {
        guard ascii[i] && ascii[j] else {
            return (rows[i].mfa, rows[i].group ?? "") < (rows[j].mfa, rows[j].group ?? "")
        }
        let byMFA = compare(starts[i], mfaEnds[i], starts[j], mfaEnds[j])
        if byMFA != 0 { return byMFA < 0 }
        return compare(mfaEnds[i], starts[i + 1], mfaEnds[j], starts[j + 1]) < 0
    }

    /// Lexicographic order of two ranges of `bytes`: negative, 0 or positive.
    private func compare(_ a: Int, _ aEnd: Int, _ b: Int, _ bEnd: Int) -> Int {
        bytes.withUnsafeBufferPointer { raw in
            let n = Swift.min(aEnd - a, bEnd - b)
            if n > 0, let base = raw.baseAddress {
                let c = memcmp(base + a, base + b, n)
                if c != 0 { return Int(c) }
            }
            return (aEnd - a) - (bEnd - b)
        }
    }
}
