// `latency`'s two outputs written from the table: `--json` as JSONEncoder writes a LatencyReport
// (keys sorted, `group` only when grouping) and the text table with its exceptions by reason.
import BeamTerm
import TraceModel

extension LatencyTable {
    /// The report as JSONEncoder with `[.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]` writes it.
    public func writeJSON(into json: inout PrettyJSON) {
        json.beginObject()
        json.key("functions")
        json.beginArray()
        names.withUnsafeBytes { raw in
            // Printed order is random in memory: each batch of rows is copied out first in a tight loop
            // (their cache misses overlap there), then written from the copies. Read row by row inside
            // the writing, two misses per row were an eighth of `latency --json` over 50,000 functions.
            forEachGathered { row in
                json.element()
                writeRow(row, raw, into: &json)
                json.drainIfFull()
            }
        }
        json.endArray()
        json.endObject()
    }

    static let gatherBatch = 64

    /// Every row in printed order, copied out a batch at a time (see `writeJSON`).
    func forEachGathered(_ body: (GatheredRow) -> Void) {
        var batch: [GatheredRow] = []
        batch.reserveCapacity(Self.gatherBatch)
        var from = 0
        while from < order.count {
            let to = Swift.min(from + Self.gatherBatch, order.count)
            batch.removeAll(keepingCapacity: true)
            for k in from..<to {
                let i = order[k]
                batch.append(GatheredRow(row: i, numbers: numbers[i], nameStart: nameStarts[i], mfaEnd: mfaEnds[i],
                                         groupEnd: nameStarts[i + 1]))
            }
            for row in batch { body(row) }
            from = to
        }
    }

    /// A row's numbers and name ranges, copied out in printed order.
    struct GatheredRow {
        var row: Int
        var numbers: Numbers
        var nameStart: Int, mfaEnd: Int, groupEnd: Int
    }

    /// One row, members in sorted key order, laid out as the encoder lays out an object of the
    /// `functions` array (`writeJSON` opens exactly those two containers around it): fixed text between
    /// the values, one append each.
    private func writeRow(_ row: GatheredRow, _ raw: UnsafeRawBufferPointer, into json: inout PrettyJSON) {
        let n = row.numbers
        json.fragment("{\n      \"calls\" : ")
        json.value(n.calls)
        json.fragment(",\n      \"exception_reasons\" : [\n")
        if !reasons.isEmpty, let rowReasons = reasons[row.row] {
            for (k, reason) in rowReasons.enumerated() {
                json.fragment(k == 0 ? "        {\n          \"count\" : " : ",\n        {\n          \"count\" : ")
                json.value(reason.count)
                json.fragment(",\n          \"reason\" : ")
                json.value(reason.reason)
                json.fragment("\n        }")
            }
        }
        json.fragment("\n      ],\n      \"exceptions\" : ")
        json.value(n.exceptions)
        if grouped {
            json.fragment(",\n      \"group\" : ")
            json.value(utf8: UnsafeRawBufferPointer(rebasing: raw[row.mfaEnd..<row.groupEnd]))
        }
        json.fragment(",\n      \"max_us\" : ")
        json.value(n.max)
        json.fragment(",\n      \"mean_us\" : ")
        json.value(n.mean)
        json.fragment(",\n      \"mfa\" : ")
        json.value(utf8: UnsafeRawBufferPointer(rebasing: raw[row.nameStart..<row.mfaEnd]))
        json.fragment(",\n      \"min_us\" : ")
        json.value(n.min)
        json.fragment(",\n      \"p50_us\" : ")
        json.value(n.p50)
        json.fragment(",\n      \"p90_us\" : ")
        json.value(n.p90)
        json.fragment(",\n      \"p999_us\" : ")
        json.value(n.p999)
        json.fragment(",\n      \"p99_us\" : ")
        json.value(n.p99)
        json.fragment(",\n      \"returned\" : ")
        json.value(n.returned)
        json.fragment(",\n      \"self_p50_us\" : ")
        json.value(n.selfP50)
        json.fragment(",\n      \"unmeasured\" : ")
        json.value(n.unmeasured)
        json.fragment("\n    }")
    }

    /// The table (`function @ group` when grouping), a newline, then up to five reasons per row that
    /// has exceptions; a line saying so when no call was measured.
    public func writeText(into out: inout TextBuffer) {
        if order.isEmpty {
            out.append("no measured calls (record without --calls-only, so calls have their return_from)")
        } else {
            var table = TextTable(header: ["function", "calls", "exc", "p50", "p90", "p99", "p99.9", "max", "self p50"])
            names.withUnsafeBytes { raw in
                forEachGathered { row in
                    let n = row.numbers
                    table.add(bytes: UnsafeRawBufferPointer(rebasing: raw[row.nameStart..<row.mfaEnd]),
                              group: grouped ? UnsafeRawBufferPointer(rebasing: raw[row.mfaEnd..<row.groupEnd]) : nil)
                    table.add(n.calls)
                    table.add(n.exceptions)
                    table.add(micros: n.p50)
                    table.add(micros: n.p90)
                    table.add(micros: n.p99)
                    table.add(micros: n.p999)
                    table.add(micros: n.max)
                    table.add(micros: n.selfP50)
                }
            }
            table.write(into: &out)
        }
        out.append(10)
        guard !reasons.isEmpty else { return }
        out.append("\nexceptions by reason:\n")
        for i in order {
            guard let rowReasons = reasons[i] else { continue }
            let name = mfaText(i) + (groupText(i).map { " @ \($0)" } ?? "")
            for reason in rowReasons.prefix(5) {
                out.append(utf8: "  " + name + "  \(reason.reason)  x\(reason.count)\n")
            }
        }
    }
}
