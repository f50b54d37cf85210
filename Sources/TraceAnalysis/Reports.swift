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

    /// The latency rows as Codable values, in printed order (the table's rows, named by `functionText`).
    public func latencyReport(sortBy: String = "p99", mfaFilter: ((String) -> Bool)? = nil) -> LatencyReport {
        let table = latencyTable(sortBy: sortBy, mfaFilter: mfaFilter)
        return LatencyReport(functions: table.order.map { i in
            let key = table.keys[i]
            let group: String? = switch latency.grouping {
            case .function: nil
            case .process: processText(key.group)
            case .node: nodeText(key.group)
            }
            return table.row(i, mfa: functionText(key.mfa), group: group)
        })
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
