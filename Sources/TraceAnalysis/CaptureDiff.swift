// `beamtrace diff BEFORE AFTER`: per function, calls and percentiles before and after, the change,
// and whether it is significant: a Mann–Whitney U test over the two duration samples (normal
// approximation with tie correction) together with an effect size, so a large capture does not
// call a 1% wobble significant. `--fail-on-regression` uses it as a CI gate.
import Foundation

public struct DiffSide: Sendable, Codable {
    public var calls: Int
    public var p50Micros: Double
    public var p90Micros: Double
    public var p99Micros: Double
    public var maxMicros: Double

    enum CodingKeys: String, CodingKey {
        case calls
        case p50Micros = "p50_us", p90Micros = "p90_us", p99Micros = "p99_us", maxMicros = "max_us"
    }
}

public struct FunctionDiff: Sendable, Codable {
    public var mfa: String
    public var before: DiffSide?
    public var after: DiffSide?
    public var p50ChangePct: Double?
    public var p90ChangePct: Double?
    public var p99ChangePct: Double?
    public var maxChangePct: Double?
    public var callsChangePct: Double?
    public var pValue: Double?
    /// P(after > before) − P(after < before): −1 much faster … +1 much slower.
    public var effect: Double?
    public var significant: Bool

    enum CodingKeys: String, CodingKey {
        case mfa, before, after, significant, effect
        case p50ChangePct = "p50_change_pct", p90ChangePct = "p90_change_pct", p99ChangePct = "p99_change_pct"
        case maxChangePct = "max_change_pct", callsChangePct = "calls_change_pct", pValue = "p_value"
    }
}

public struct QueueDiff: Sendable, Codable {
    public var name: String
    public var beforeMaxLength: Int64?
    public var afterMaxLength: Int64?
    public var beforeSlopePerSecond: Double?
    public var afterSlopePerSecond: Double?
    public var beforeGrowing: Bool
    public var afterGrowing: Bool

    enum CodingKeys: String, CodingKey {
        case name
        case beforeMaxLength = "before_max_len", afterMaxLength = "after_max_len"
        case beforeSlopePerSecond = "before_slope_per_s", afterSlopePerSecond = "after_slope_per_s"
        case beforeGrowing = "before_growing", afterGrowing = "after_growing"
    }
}

public struct DiffReport: Sendable, Codable {
    public var functions: [FunctionDiff]
    public var regressions: [String]
    public var improvements: [String]
    public var onlyBefore: [String]
    public var onlyAfter: [String]
    public var queues: [QueueDiff]
    public var summary: String

    enum CodingKeys: String, CodingKey {
        case functions, regressions, improvements, queues, summary
        case onlyBefore = "only_before", onlyAfter = "only_after"
    }
}

public enum CaptureDiff {
    /// p-value below which a change may be significant.
    public static let alpha = 0.01
    /// |effect| at or above which a change may be significant (about a 10-point shift in P(slower)).
    public static let minimumEffect = 0.1
    /// A change must also move the median by at least this fraction: tightly clustered durations
    /// make rank tests flag shifts of a few hundred nanoseconds nobody cares about, and tails are
    /// where a loaded machine's scheduling noise lives.
    public static let minimumRelativeShift = 0.05

    public static func compare(before: CaptureAnalysis, after: CaptureAnalysis, percentile: Double = 99,
                               regressionThresholdPct: Double? = nil) -> DiffReport {
        func byName(_ analysis: CaptureAnalysis) -> [String: FunctionLatency] {
            var result: [String: FunctionLatency] = [:]
            for (key, value) in analysis.latency.functions { result[analysis.functionText(key.mfa)] = value }
            return result
        }
        let b = byName(before), a = byName(after)
        var functions: [FunctionDiff] = []
        var regressions: [String] = [], improvements: [String] = []
        for mfa in Set(b.keys).union(a.keys).sorted() {
            let x = b[mfa], y = a[mfa]
            var diff = FunctionDiff(mfa: mfa, before: x.map(side), after: y.map(side), significant: false)
            if let x, let y {
                diff.p50ChangePct = change(x.percentileMicros(50), y.percentileMicros(50))
                diff.p90ChangePct = change(x.percentileMicros(90), y.percentileMicros(90))
                diff.p99ChangePct = change(x.percentileMicros(99), y.percentileMicros(99))
                diff.maxChangePct = change(Double(x.total.max), Double(y.total.max))
                diff.callsChangePct = change(Double(x.calls), Double(y.calls))
                if let test = MannWhitney.test(x.sample, y.sample) {
                    diff.pValue = test.pValue
                    diff.effect = test.effect
                    let shift = abs(diff.p50ChangePct ?? 0) / 100
                    diff.significant = test.pValue < alpha && abs(test.effect) >= minimumEffect
                        && shift >= minimumRelativeShift
                }
                let chosen = change(x.percentileMicros(percentile), y.percentileMicros(percentile))
                if diff.significant, let effect = diff.effect {
                    let threshold = regressionThresholdPct ?? 0
                    if effect > 0, let chosen, chosen > threshold { regressions.append(mfa) }
                    if effect < 0, let chosen, chosen < -threshold { improvements.append(mfa) }
                }
            }
            functions.append(diff)
        }
        let onlyBefore = functions.filter { $0.after == nil }.map(\.mfa)
        let onlyAfter = functions.filter { $0.before == nil }.map(\.mfa)
        let queues = queueDiffs(before: before, after: after)
        var summary = "\(functions.count) functions compared: \(regressions.count) significant regression(s)"
        if !regressions.isEmpty { summary += " (\(regressions.joined(separator: ", ")))" }
        summary += ", \(improvements.count) significant improvement(s)"
        if !improvements.isEmpty { summary += " (\(improvements.joined(separator: ", ")))" }
        if !onlyBefore.isEmpty { summary += ", \(onlyBefore.count) only before" }
        if !onlyAfter.isEmpty { summary += ", \(onlyAfter.count) only after" }
        let newlyGrowing = queues.filter { $0.afterGrowing && !$0.beforeGrowing }.map(\.name)
        let fixed = queues.filter { $0.beforeGrowing && !$0.afterGrowing }.map(\.name)
        if !newlyGrowing.isEmpty { summary += "; queues now growing: \(newlyGrowing.joined(separator: ", "))" }
        if !fixed.isEmpty { summary += "; queues no longer growing: \(fixed.joined(separator: ", "))" }
        return DiffReport(functions: functions, regressions: regressions, improvements: improvements,
                          onlyBefore: onlyBefore, onlyAfter: onlyAfter, queues: queues, summary: summary + ".")
    }

    static func side(_ f: FunctionLatency) -> DiffSide {
        DiffSide(calls: f.calls, p50Micros: f.percentileMicros(50), p90Micros: f.percentileMicros(90),
                 p99Micros: f.percentileMicros(99), maxMicros: Double(f.total.max) / 1000)
    }

    static func change(_ before: Double, _ after: Double) -> Double? {
        guard before > 0 else { return nil }
        return ((after - before) / before * 1000).rounded() / 10
    }

    /// Queues matched by registered name (pids differ between runs), else by pid text.
    static func queueDiffs(before: CaptureAnalysis, after: CaptureAnalysis) -> [QueueDiff] {
        let b = Dictionary(before.queueReports().map { ($0.name ?? $0.pid, $0) }, uniquingKeysWith: { x, _ in x })
        let a = Dictionary(after.queueReports().map { ($0.name ?? $0.pid, $0) }, uniquingKeysWith: { x, _ in x })
        return Set(b.keys).union(a.keys).sorted().map { name in
            QueueDiff(name: name, beforeMaxLength: b[name]?.maxLength, afterMaxLength: a[name]?.maxLength,
                      beforeSlopePerSecond: b[name]?.slopePerSecond, afterSlopePerSecond: a[name]?.slopePerSecond,
                      beforeGrowing: b[name]?.growing ?? false, afterGrowing: a[name]?.growing ?? false)
        }
    }
}

/// Mann–Whitney U (Wilcoxon rank-sum) test, two-sided, normal approximation with tie correction.
public enum MannWhitney {
    public struct Result: Sendable {
        public var u: Double
        public var pValue: Double
        /// P(y > x) − P(y < x), from U.
        public var effect: Double
    }

    public static func test(_ x: [Int64], _ y: [Int64]) -> Result? {
        let n1 = x.count, n2 = y.count
        guard n1 >= 3, n2 >= 3 else { return nil }
        var all = x.map { ($0, 0) } + y.map { ($0, 1) }
        all.sort { $0.0 < $1.0 }
        var rankSumY = 0.0
        var tieTerm = 0.0
        var i = 0
        while i < all.count {
            var j = i
            while j + 1 < all.count && all[j + 1].0 == all[i].0 { j += 1 }
            let rank = Double(i + j + 2) / 2  // ranks are 1-based
            let t = Double(j - i + 1)
            if t > 1 { tieTerm += t * t * t - t }
            for k in i...j where all[k].1 == 1 { rankSumY += rank }
            i = j + 1
        }
        let m1 = Double(n1), m2 = Double(n2), n = m1 + m2
        let uY = rankSumY - m2 * (m2 + 1) / 2
        let mean = m1 * m2 / 2
        let variance = m1 * m2 / 12 * ((n + 1) - tieTerm / (n * (n - 1)))
        guard variance > 0 else { return Result(u: uY, pValue: 1, effect: 0) }
        let z = (uY - mean - (uY > mean ? 0.5 : uY < mean ? -0.5 : 0)) / variance.squareRoot()
        let p = min(1, erfc(abs(z) / 2.0.squareRoot()))
        return Result(u: uY, pValue: p, effect: 2 * uY / (m1 * m2) - 1)
    }
}
