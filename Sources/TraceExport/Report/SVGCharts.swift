// Inline SVG charts for the HTML report, drawn from numbers only (no scripts, no fonts, no
// images): a line chart of a series over time, a log-scale histogram of durations, and activity
// lanes of the busiest processes. Colours come from the page's CSS variables, so one drawing reads
// on light and dark backgrounds.
import Foundation
import TraceAnalysis

enum SVGCharts {
    static func escape(_ text: String) -> String { HTML.escape(text) }

    static func number(_ value: Double) -> String { String(format: "%.1f", value) }

    /// A line chart of (time ns, value) points; x in seconds from `origin`.
    static func line(_ points: [(Int64, Int64)], origin: Int64, label: String, width: Int = 560, height: Int = 170) -> String {
        let left = 56.0, right = 12.0, top = 12.0, bottom = 30.0
        let w = Double(width) - left - right, h = Double(height) - top - bottom
        guard let first = points.first, let last = points.last else { return "" }
        let x0 = first.0, x1 = max(last.0, first.0 + 1)
        let maxValue = max(1, points.map(\.1).max() ?? 1)
        // Downsample to at most ~2 points per pixel column: keep each column's max.
        var columns: [Int: Int64] = [:]
        for p in points {
            let column = Int(Double(p.0 - x0) / Double(x1 - x0) * w)
            columns[column] = max(columns[column] ?? .min, p.1)
        }
        let path = columns.keys.sorted().enumerated().map { i, column -> String in
            let value = columns[column] ?? 0
            let x = left + Double(column)
            let y = top + h - Double(value) / Double(maxValue) * h
            return (i == 0 ? "M" : "L") + number(x) + " " + number(y)
        }.joined(separator: " ")
        var svg = "<svg class=\"chart\" viewBox=\"0 0 \(width) \(height)\" role=\"img\" aria-label=\"\(escape(label))\">"
        svg += axes(left: left, top: top, w: w, h: h)
        svg += "<path class=\"series\" d=\"\(path)\"/>"
        svg += "<text class=\"tick\" x=\"\(number(left - 6))\" y=\"\(number(top + 4))\" text-anchor=\"end\">\(maxValue)</text>"
        svg += "<text class=\"tick\" x=\"\(number(left - 6))\" y=\"\(number(top + h))\" text-anchor=\"end\">0</text>"
        let startS = Double(x0 - origin) / 1e9, endS = Double(x1 - origin) / 1e9
        svg += "<text class=\"tick\" x=\"\(number(left))\" y=\"\(number(top + h + 18))\">+\(String(format: "%.2f", startS)) s</text>"
        svg += "<text class=\"tick\" x=\"\(number(left + w))\" y=\"\(number(top + h + 18))\" text-anchor=\"end\">+\(String(format: "%.2f", endS)) s</text>"
        return svg + "</svg>"
    }

    /// A histogram with logarithmic buckets (√2 apart) of durations in ns; `counts` per bucket start.
    static func logHistogram(_ buckets: [(lowNs: UInt64, count: UInt64)], label: String, width: Int = 560,
                             height: Int = 150) -> String {
        guard !buckets.isEmpty else { return "" }
        let left = 46.0, right = 12.0, top = 10.0, bottom = 30.0
        let w = Double(width) - left - right, h = Double(height) - top - bottom
        let maxCount = Double(buckets.map(\.count).max() ?? 1)
        let barWidth = w / Double(buckets.count)
        var svg = "<svg class=\"chart\" viewBox=\"0 0 \(width) \(height)\" role=\"img\" aria-label=\"\(escape(label))\">"
        svg += axes(left: left, top: top, w: w, h: h)
        for (i, bucket) in buckets.enumerated() where bucket.count > 0 {
            // Counts on a log scale too, so a tail of a few calls stays visible next to thousands.
            let fraction = log10(Double(bucket.count) + 1) / log10(maxCount + 1)
            let barHeight = max(1, fraction * h)
            svg += "<rect class=\"bar\" x=\"\(number(left + Double(i) * barWidth + 0.5))\" y=\"\(number(top + h - barHeight))\" "
                + "width=\"\(number(max(1, barWidth - 1)))\" height=\"\(number(barHeight))\">"
                + "<title>\(Durations.text(Int64(bucket.lowNs))): \(bucket.count)</title></rect>"
        }
        let ticks = Swift.min(5, buckets.count)
        for t in 0..<ticks {
            let i = t * (buckets.count - 1) / Swift.max(1, ticks - 1)
            let x = left + (Double(i) + 0.5) * barWidth
            svg += "<text class=\"tick\" x=\"\(number(x))\" y=\"\(number(top + h + 18))\" text-anchor=\"middle\">"
                + "\(Durations.text(Int64(buckets[i].lowNs)))</text>"
        }
        svg += "<text class=\"tick\" x=\"\(number(left - 6))\" y=\"\(number(top + 8))\" text-anchor=\"end\">\(Int(maxCount))</text>"
        return svg + "</svg>"
    }

    /// One lane per process: each column shaded by how busy (in traced calls) it was then.
    static func lanes(_ rows: [(label: String, buckets: [Float])], bucketNs: Double, origin: Int64, start: Int64,
                      width: Int = 900) -> String {
        guard let columns = rows.first?.buckets.count, columns > 0 else { return "" }
        let left = 220.0, right = 12.0, laneHeight = 18.0, top = 6.0
        let w = Double(width) - left - right
        let height = Int(top + Double(rows.count) * (laneHeight + 4) + 28)
        let columnWidth = w / Double(columns)
        var svg = "<svg class=\"chart lanes\" viewBox=\"0 0 \(width) \(height)\" role=\"img\" aria-label=\"busiest processes over time\">"
        for (r, row) in rows.enumerated() {
            let y = top + Double(r) * (laneHeight + 4)
            svg += "<text class=\"lane-label\" x=\"\(number(left - 8))\" y=\"\(number(y + 13))\" text-anchor=\"end\">\(escape(row.label))</text>"
            svg += "<rect class=\"lane\" x=\"\(number(left))\" y=\"\(number(y))\" width=\"\(number(w))\" height=\"\(number(laneHeight))\"/>"
            for (c, busy) in row.buckets.enumerated() where busy > 0 {
                let share = Swift.min(1, Double(busy) / bucketNs)
                svg += "<rect class=\"busy\" x=\"\(number(left + Double(c) * columnWidth))\" y=\"\(number(y))\" "
                    + "width=\"\(number(columnWidth + 0.3))\" height=\"\(number(laneHeight))\" fill-opacity=\"\(String(format: "%.2f", 0.15 + 0.85 * share))\"/>"
            }
        }
        let y = top + Double(rows.count) * (laneHeight + 4) + 14
        let startS = Double(start - origin) / 1e9, endS = startS + bucketNs * Double(columns) / 1e9
        svg += "<text class=\"tick\" x=\"\(number(left))\" y=\"\(number(y))\">+\(String(format: "%.2f", startS)) s</text>"
        svg += "<text class=\"tick\" x=\"\(number(left + w))\" y=\"\(number(y))\" text-anchor=\"end\">+\(String(format: "%.2f", endS)) s</text>"
        return svg + "</svg>"
    }

    private static func axes(left: Double, top: Double, w: Double, h: Double) -> String {
        "<path class=\"axis\" d=\"M\(number(left)) \(number(top)) L\(number(left)) \(number(top + h)) L\(number(left + w)) \(number(top + h))\"/>"
    }
}

enum HTML {
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }
}
