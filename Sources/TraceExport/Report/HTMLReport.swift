// `beamtrace report`: one self-contained HTML file to attach to a review — what was recorded, the
// hang verdict and suspects, queue growth, latency histograms and percentiles of the top functions,
// the busiest processes over time and, with a second capture, the before/after comparison with
// significant changes highlighted. No scripts, fonts or images from anywhere: inline CSS and SVG
// only. It summarises rather than embeds, so its size does not grow with the capture. Numbers carry
// `data-check`/`data-value` attributes holding exactly what the CLI's JSON says.
import CaptureStore
import Foundation
import TraceAnalysis
import TraceModel

public struct ReportOptions: Sendable {
    /// Functions, queues and processes shown.
    public var topFunctions = 8
    public var topQueues = 4
    public var topProcesses = 12
    public init() {}
}

public enum HTMLReport {
    public struct Input {
        public var path: String
        public var reader: CaptureReader
        public init(path: String, reader: CaptureReader) {
            self.path = path
            self.reader = reader
        }
    }

    /// Replays `capture` (and `other`, the capture to compare it with) and returns the page.
    public static func build(_ capture: Input, vs other: Input? = nil, options: ReportOptions = ReportOptions(),
                             progress: (any ProgressReporter)? = nil) throws -> String {
        let collector = ReportCollector()
        let analysis = try AnalysisStream.run(capture.reader, into: collector, progress: progress, task: "report")
        var page = Page()
        page.head(title: "beamtrace report: " + (capture.path as NSString).lastPathComponent)
        page.recorded(capture, analysis)
        page.hang(analysis.hangReport())
        if let other {
            let after = try AnalysisStream.run(other.reader, into: ReportCollector(), progress: progress,
                                               task: "report " + (other.path as NSString).lastPathComponent)
            page.comparison(CaptureDiff.compare(before: analysis, after: after), before: capture.path, after: other.path,
                            afterAnalysis: after)
        }
        page.queues(analysis.queueReports(top: options.topQueues), origin: analysis.startTime)
        page.latency(analysis, top: options.topFunctions)
        page.timeline(collector, analysis, top: options.topProcesses)
        page.foot()
        return page.html
    }
}

struct Page {
    var html = ""

    static func e(_ text: String) -> String { HTML.escape(text) }

    static func micros(_ value: Double) -> String {
        if value >= 1_000_000 { return String(format: "%.2f s", value / 1_000_000) }
        if value >= 1000 { return String(format: "%.2f ms", value / 1000) }
        return String(format: "%.1f µs", value)
    }

    static func pct(_ value: Double?) -> String { value.map { String(format: "%+.1f%%", $0) } ?? "–" }

    /// A number the tests read back: shown as `text`, exact in `data-value`.
    static func checked(_ check: String, _ value: String, _ text: String, extra: String = "") -> String {
        "<span data-check=\"\(e(check))\" data-value=\"\(e(value))\"\(extra)>\(e(text))</span>"
    }

    mutating func head(title: String) {
        html += """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(Self.e(title))</title>
            <style>
            :root { color-scheme: light dark; --bg: #ffffff; --fg: #1d2329; --muted: #5c6670; --line: #d6dbe0;
              --accent: #2f6fb5; --bar: #4a8ad4; --lane: #eef1f4; --bad: #b42318; --bad-bg: #fde8e6;
              --good: #1a7f37; --good-bg: #e3f6e8; --card: #f6f8fa; }
            @media (prefers-color-scheme: dark) {
              :root { --bg: #14181c; --fg: #e4e8ec; --muted: #9aa5b1; --line: #38414a; --accent: #7fb2f0;
                --bar: #5d9be0; --lane: #232a31; --bad: #ff8a80; --bad-bg: #3d1d1a; --good: #6fdc8c;
                --good-bg: #15331f; --card: #1b2127; }
            }
            body { background: var(--bg); color: var(--fg); font: 14px/1.45 system-ui, -apple-system, "Segoe UI",
              sans-serif; margin: 0 auto; max-width: 1000px; padding: 24px; }
            h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px;
              border-bottom: 1px solid var(--line); padding-bottom: 4px; } h3 { font-size: 14px; margin: 16px 0 4px; }
            .muted { color: var(--muted); } code, .mono { font-family: ui-monospace, Menlo, Consolas, monospace;
              font-size: 12.5px; }
            table { border-collapse: collapse; width: 100%; margin: 6px 0; font-variant-numeric: tabular-nums; }
            th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
            td.n, th.n { text-align: right; white-space: nowrap; }
            .verdict { background: var(--card); border-left: 4px solid var(--accent); padding: 10px 14px; }
            .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: 8px; }
            .fact { background: var(--card); padding: 8px 10px; border-radius: 6px; }
            .fact b { display: block; font-size: 18px; }
            tr.regression td { background: var(--bad-bg); } tr.regression td.change { color: var(--bad); font-weight: 600; }
            tr.improvement td { background: var(--good-bg); } tr.improvement td.change { color: var(--good); font-weight: 600; }
            svg.chart { width: 100%; height: auto; display: block; }
            svg .axis { stroke: var(--line); fill: none; } svg .series { stroke: var(--accent); fill: none; stroke-width: 1.6; }
            svg .bar { fill: var(--bar); } svg .tick, svg .lane-label { fill: var(--muted); font-size: 11px;
              font-family: system-ui, sans-serif; } svg .lane { fill: var(--lane); } svg .busy { fill: var(--bar); }
            .two { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
            @media (max-width: 800px) { .two { grid-template-columns: 1fr; } }
            </style></head><body>
            <h1>\(Self.e(title))</h1>

            """
    }

    mutating func recorded(_ input: HTMLReport.Input, _ analysis: CaptureAnalysis) {
        let meta = input.reader.meta
        let nodes = meta.nodes.isEmpty ? "–" : meta.nodes.map { $0.name + ($0.otpRelease.map { " (OTP \($0))" } ?? "") }
            .joined(separator: ", ")
        html += "<p class=\"muted\">capture <code>\(Self.e(input.path))</code> · id \(Self.e(meta.captureID)) · "
            + "created \(Self.e(meta.createdAt))</p>\n<h2>What was recorded</h2>\n<div class=\"grid\">\n"
        func fact(_ label: String, _ body: String) { html += "<div class=\"fact\"><span class=\"muted\">\(label)</span><b>\(body)</b></div>\n" }
        fact("events", Self.checked("events", String(analysis.events), String(analysis.events)))
        fact("duration", Self.checked("duration-s", String(Double(analysis.duration) / 1e9),
                                      TraceAnalysis.Durations.text(analysis.duration)))
        fact("nodes", Self.e(nodes))
        fact("dropped trace messages", Self.checked("drops", String(analysis.drops), String(analysis.drops)))
        fact("stop reason", Self.e(meta.stopReason ?? "–"))
        fact("time base", Self.e(meta.timeBase))
        html += "</div>\n"
        if let command = Self.command(meta.session) {
            html += "<p>recorded with <code>\(Self.e(command))</code></p>\n"
        } else if !meta.sources.isEmpty {
            html += "<p>imported from <code>\(Self.e(meta.sources.prefix(5).joined(separator: " ")))</code>"
                + (meta.sources.count > 5 ? " and \(meta.sources.count - 5) more" : "") + "</p>\n"
        }
        let problems = input.reader.problems
        if !problems.isEmpty {
            html += "<p class=\"muted\">damage found while reading (skipped, the rest is reported): "
                + Self.e(problems.prefix(5).map { "\($0)" }.joined(separator: "; ")) + "</p>\n"
        }
    }

    /// The command line a recording stored in its session record.
    static func command(_ session: String?) -> String? {
        guard let session, let data = session.data(using: .utf8),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let words = object["command"] as? [String], !words.isEmpty else { return nil }
        return words.map { $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " ")
    }

    mutating func hang(_ report: HangReport) {
        html += "<h2>Hang diagnosis</h2>\n<div class=\"verdict\" data-check=\"verdict\">\(Self.e(report.verdict))</div>\n"
        guard !report.suspects.isEmpty else {
            html += "<p>" + Self.checked("top-suspect", "none", "No suspect.") + "</p>\n"
            return
        }
        html += "<table><tr><th>#</th><th>suspect</th><th>reason</th><th class=\"n\">score</th><th>why</th></tr>\n"
        for (i, s) in report.suspects.prefix(10).enumerated() {
            let who = s.pid + (s.name.map { " (\($0))" } ?? "") + " on " + s.node
            let cell = i == 0 ? Self.checked("top-suspect", s.pid, who) : Self.e(who)
            html += "<tr><td>\(i + 1)</td><td class=\"mono\">\(cell)</td><td>\(Self.e(s.reason.rawValue))</td>"
                + "<td class=\"n\">\(String(format: "%.1f", s.score))</td><td>\(Self.e(s.summary))</td></tr>\n"
        }
        html += "</table>\n"
    }

    mutating func comparison(_ diff: DiffReport, before: String, after: String, afterAnalysis: CaptureAnalysis) {
        html += "<h2>Before and after</h2>\n<p>Before: <code>\(Self.e(before))</code>; after: <code>\(Self.e(after))</code> "
            + "(\(Self.checked("after-events", String(afterAnalysis.events), String(afterAnalysis.events))) events).</p>\n"
        html += "<p data-check=\"diff-summary\">\(Self.e(diff.summary))</p>\n"
        html += "<table><tr><th>function</th><th class=\"n\">calls</th><th class=\"n\">calls'</th><th class=\"n\">p50</th>"
            + "<th class=\"n\">p50'</th><th class=\"n\">Δp50</th><th class=\"n\">p99</th><th class=\"n\">p99'</th>"
            + "<th class=\"n\">Δp99</th><th class=\"n\">p</th><th>significant</th></tr>\n"
        let regressions = Set(diff.regressions), improvements = Set(diff.improvements)
        for f in diff.functions {
            let kind = regressions.contains(f.mfa) || (f.significant && (f.effect ?? 0) > 0 && !improvements.contains(f.mfa))
                ? "regression" : (improvements.contains(f.mfa) || (f.significant && (f.effect ?? 0) < 0) ? "improvement" : "")
            let mfa = " data-mfa=\"\(Self.e(f.mfa))\""
            html += "<tr class=\"\(kind)\"><td class=\"mono\">\(Self.e(f.mfa))</td>"
            html += "<td class=\"n\">\(f.before.map { "\($0.calls)" } ?? "–")</td><td class=\"n\">\(f.after.map { "\($0.calls)" } ?? "–")</td>"
            html += "<td class=\"n\">\(f.before.map { Self.micros($0.p50Micros) } ?? "–")</td>"
            html += "<td class=\"n\">\(f.after.map { Self.micros($0.p50Micros) } ?? "–")</td>"
            html += "<td class=\"n change\">" + Self.checked("p50-change", f.p50ChangePct.map { String($0) } ?? "", Self.pct(f.p50ChangePct),
                                                              extra: mfa) + "</td>"
            html += "<td class=\"n\">\(f.before.map { Self.micros($0.p99Micros) } ?? "–")</td>"
            html += "<td class=\"n\">\(f.after.map { Self.micros($0.p99Micros) } ?? "–")</td>"
            html += "<td class=\"n change\">" + Self.checked("p99-change", f.p99ChangePct.map { String($0) } ?? "", Self.pct(f.p99ChangePct),
                                                              extra: mfa) + "</td>"
            html += "<td class=\"n\">\(f.pValue.map { String(format: "%.2g", $0) } ?? "–")</td>"
            html += "<td>" + Self.checked("significant", String(f.significant), f.significant ? (kind.isEmpty ? "yes" : kind) : "no",
                                          extra: mfa) + "</td></tr>\n"
        }
        html += "</table>\n"
        if !diff.queues.isEmpty {
            html += "<h3>Queues</h3><table><tr><th>queue</th><th class=\"n\">max before</th><th class=\"n\">max after</th>"
                + "<th>growing before → after</th></tr>\n"
            for q in diff.queues {
                html += "<tr><td class=\"mono\">\(Self.e(q.name))</td><td class=\"n\">\(q.beforeMaxLength.map(String.init) ?? "–")</td>"
                    + "<td class=\"n\">\(q.afterMaxLength.map(String.init) ?? "–")</td>"
                    + "<td>\(q.beforeGrowing ? "yes" : "no") → \(q.afterGrowing ? "yes" : "no")</td></tr>\n"
            }
            html += "</table>\n"
        }
    }

    mutating func queues(_ reports: [QueueGrowthReport], origin: Int64) {
        html += "<h2>Message queues</h2>\n"
        guard !reports.isEmpty else {
            html += "<p class=\"muted\">No queue data (record samples, or trace send/receive and gen_server callbacks).</p>\n"
            return
        }
        html += "<div class=\"two\">\n"
        for q in reports {
            let who = q.pid + (q.name.map { " (\($0))" } ?? "")
            html += "<div><h3 class=\"mono\">\(Self.e(who))</h3><p class=\"muted\">max \(q.maxLength), end \(q.endLength), "
                + String(format: "%.1f", q.slopePerSecond) + " msg/s" + (q.growing ? ", <b>growing</b>" : "")
                + (q.estimated ? " (estimated)" : " (sampled)") + "</p>\n"
            html += SVGCharts.line(q.series.compactMap { $0.count == 2 ? ($0[0], $0[1]) : nil }, origin: origin,
                                   label: "message queue length of " + who) + "</div>\n"
        }
        html += "</div>\n"
    }

    mutating func latency(_ analysis: CaptureAnalysis, top: Int) {
        html += "<h2>Latency of the top functions</h2>\n"
        let rows = analysis.latencyReport(sortBy: "calls").functions.filter { $0.returned + $0.exceptions > 0 }.prefix(top)
        guard !rows.isEmpty else {
            html += "<p class=\"muted\">No measured calls (trace calls with a return_trace match spec).</p>\n"
            return
        }
        html += "<table><tr><th>function</th><th class=\"n\">calls</th><th class=\"n\">exc</th><th class=\"n\">p50</th>"
            + "<th class=\"n\">p90</th><th class=\"n\">p99</th><th class=\"n\">p99.9</th><th class=\"n\">max</th></tr>\n"
        for row in rows {
            let mfa = " data-mfa=\"\(Self.e(row.mfa))\""
            html += "<tr><td class=\"mono\">\(Self.e(row.mfa))</td><td class=\"n\">\(row.calls)</td><td class=\"n\">\(row.exceptions)</td>"
                + "<td class=\"n\">\(Self.checked("p50", String(row.p50Micros), Self.micros(row.p50Micros), extra: mfa))</td>"
                + "<td class=\"n\">\(Self.micros(row.p90Micros))</td>"
                + "<td class=\"n\">\(Self.checked("p99", String(row.p99Micros), Self.micros(row.p99Micros), extra: mfa))</td>"
                + "<td class=\"n\">\(Self.micros(row.p999Micros))</td><td class=\"n\">\(Self.micros(row.maxMicros))</td></tr>\n"
        }
        html += "</table>\n<div class=\"two\">\n"
        let byText = Dictionary(analysis.latency.functions.map { (analysis.functionText($0.key.mfa), $0.value) },
                                uniquingKeysWith: { a, _ in a })
        for row in rows {
            guard let stats = byText[row.mfa] else { continue }
            html += "<div><h3 class=\"mono\">\(Self.e(row.mfa))</h3>"
                + SVGCharts.logHistogram(Self.buckets(stats.total), label: "durations of " + row.mfa) + "</div>\n"
        }
        html += "</div>\n"
    }

    /// Counts in buckets √2 apart from the smallest to the largest duration.
    static func buckets(_ histogram: DurationDistribution) -> [(lowNs: UInt64, count: UInt64)] {
        guard histogram.totalCount > 0 else { return [] }
        let low = max(1, histogram.min), high = max(low, histogram.max)
        var result: [(UInt64, UInt64)] = []
        var edge = pow(2, floor(log2(Double(low)) * 2) / 2)
        while edge <= Double(high) && result.count < 80 {
            let next = edge * 2.0.squareRoot()
            let from = UInt64(edge), to = max(UInt64(edge), UInt64(next) - 1)
            result.append((from, histogram.count(within: from...to)))
            edge = next
        }
        return result
    }

    mutating func timeline(_ collector: ReportCollector, _ analysis: CaptureAnalysis, top: Int) {
        html += "<h2>Busiest processes over time</h2>\n"
        let busiest = collector.busiest(top)
        guard !busiest.isEmpty, let context = collector.context else {
            html += "<p class=\"muted\">No traced calls.</p>\n"
            return
        }
        html += "<p class=\"muted\">Time in outermost traced calls, \(ReportCollector.columns) columns of "
            + TraceAnalysis.Durations.text(Int64(collector.bucketNs)) + "; darker is busier. "
            + "Export a full timeline with <code>beamtrace export CAPTURE --format perfetto</code>.</p>\n"
        let rows = busiest.map { (label: context.label(of: $0.pid), buckets: $0.lane) }
        html += SVGCharts.lanes(rows, bucketNs: collector.bucketNs, origin: analysis.startTime, start: collector.start)
        html += "<table><tr><th>process</th><th class=\"n\">in traced calls</th><th class=\"n\">messages sent</th></tr>\n"
        for entry in busiest {
            html += "<tr><td class=\"mono\">\(Self.e(context.label(of: entry.pid)))</td>"
                + "<td class=\"n\">\(TraceAnalysis.Durations.text(entry.busyNs))</td>"
                + "<td class=\"n\">\(collector.messages[entry.pid] ?? 0)</td></tr>\n"
        }
        html += "</table>\n"
    }

    mutating func foot() {
        html += "<p class=\"muted\">Made by beamtrace report. Durations are from OTP's trace timestamps; "
            + "percentiles exact for a function's first 96 calls, then to 3 significant digits.</p>\n</body></html>\n"
    }
}
