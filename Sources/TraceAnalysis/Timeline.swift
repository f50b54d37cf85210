// `timeline`: the first spans of a replay (in the order they started, at least a minimum duration)
// collected from the stream in memory bounded by the limit, as the documented JSON report and as
// an indented call tree per process.
import Foundation
import TraceModel

public struct TimelineSpan: Sendable, Codable, Hashable {
    /// The span's number in start order (`Span.id`); `parent` names another span's `id`.
    public var id: Int
    public var pid: String
    public var name: String?
    public var mfa: String
    public var startNs: Int64
    public var endNs: Int64
    public var totalUs: Double
    public var selfUs: Double
    public var depth: Int
    public var parent: Int
    public var ending: String
    public var startKnown: Bool

    enum CodingKeys: String, CodingKey {
        case id, pid, name, mfa, depth, parent, ending
        case startNs = "start_ns", endNs = "end_ns", totalUs = "total_us", selfUs = "self_us", startKnown = "start_known"
    }
}

public struct TimelineReport: Sendable, Codable {
    public var spans: [TimelineSpan]
}

/// Keeps the first `limit` spans (by start) lasting at least `minimumDuration`.
public final class TimelineCollector: AnalysisStreamConsumer {
    public let minimumDuration: Int64
    public let limit: Int
    private var kept: [Int: Span] = [:]
    /// The largest id kept while full: later spans cannot make it in.
    private var cutoff = Int.max
    public private(set) var context: StreamContext?

    public init(minimumDuration: Int64 = 0, limit: Int = 10_000) {
        self.minimumDuration = minimumDuration
        self.limit = max(0, limit)
    }

    public func begin(_ context: StreamContext) { self.context = context }

    public func spanEnded(_ span: Span, result: StreamPayload) {
        guard span.total >= minimumDuration, limit > 0 else { return }
        // A span whose start is unknown is numbered when it closes; it still sorts by its start.
        let key = span.id
        guard key < cutoff || !span.startKnown else { return }
        kept[key] = span
        if kept.count > limit, let worst = kept.keys.max() {
            kept[worst] = nil
            cutoff = min(cutoff, worst)
        }
    }

    /// The kept spans in start order.
    public var spans: [Span] { kept.values.sorted { ($0.start, $0.id) < ($1.start, $1.id) } }

    public func report() -> TimelineReport {
        guard let context else { return TimelineReport(spans: []) }
        return TimelineReport(spans: kept.values.sorted { $0.id < $1.id }.map { span in
            TimelineSpan(id: span.id, pid: context.dictionaries.processText(span.pid), name: context.name(of: span.pid),
                         mfa: context.dictionaries.functionText(span.mfa), startNs: span.start, endNs: span.end,
                         totalUs: Double(span.total) / 1000, selfUs: Double(span.selfTime) / 1000,
                         depth: span.depth, parent: span.parent, ending: span.ending.rawValue,
                         startKnown: span.startKnown)
        })
    }

    /// The call tree per process exactly as the spans' parents give it (the JSON's tree): roots and
    /// children in start order, indented by their place in the tree; a parent not kept makes its
    /// child a root. `windowed`: the replay started at --from, not at the capture's start.
    public func text(base: Int64, windowed: Bool) -> String {
        guard let context else { return "no traced calls" }
        let all = kept
        var children: [Int: [Span]] = [:]
        var roots: [ProcessID: [Span]] = [:]
        for span in all.values {
            if span.parent >= 0, all[span.parent] != nil {
                children[span.parent, default: []].append(span)
            } else {
                roots[span.pid, default: []].append(span)
            }
        }
        let order = { (a: Span, b: Span) in (a.start, a.id) < (b.start, b.id) }
        var out = ""
        func write(_ span: Span, level: Int) {
            var line = String(repeating: "  ", count: level + 1) + context.dictionaries.functionText(span.mfa) + "  "
                + Durations.text(span.total)
            if span.selfTime != span.total { line += " (self " + Durations.text(span.selfTime) + ")" }
            line += "  at +" + Durations.text(span.start - base)
            if !span.startKnown { line += windowed ? "  [started before --from]" : "  [started before the capture]" }
            if span.ending != .returned { line += "  [\(span.ending.rawValue)]" }
            out += line + "\n"
            for child in (children[span.id] ?? []).sorted(by: order) { write(child, level: level + 1) }
        }
        for pid in roots.keys.sorted() {
            out += "\n" + context.label(of: pid) + "\n"
            for root in (roots[pid] ?? []).sorted(by: order) { write(root, level: 0) }
        }
        return out.isEmpty ? "no traced calls" : out.trimmingCharacters(in: .newlines)
    }
}
