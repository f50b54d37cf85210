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
            for i in order {
                json.element()
                writeRow(i, raw, into: &json)
                json.drainIfFull()
            }
        }
        json.endArray()
        json.endObject()
    }

    private func writeRow(_ i: Int, _ raw: UnsafeRawBufferPointer, into json: inout PrettyJSON) {
        let n = numbers[i]
        json.beginObject()
        json.member("calls", n.calls)
        json.key("exception_reasons")
        json.beginArray()
        for reason in reasons[i] ?? [] {
            json.element()
            json.beginObject()
            json.member("count", reason.count)
            json.member("reason", reason.reason)
            json.endObject()
        }
        json.endArray()
        json.member("exceptions", n.exceptions)
        if grouped { json.member("group", utf8: UnsafeRawBufferPointer(rebasing: raw[mfaEnds[i]..<nameStarts[i + 1]])) }
        json.member("max_us", n.max)
        json.member("mean_us", n.mean)
        json.member("mfa", utf8: UnsafeRawBufferPointer(rebasing: raw[nameStarts[i]..<mfaEnds[i]]))
        json.member("min_us", n.min)
        json.member("p50_us", n.p50)
        json.member("p90_us", n.p90)
        json.member("p999_us", n.p999)
        json.member("p99_us", n.p99)
        json.member("returned", n.returned)
        json.member("self_p50_us", n.selfP50)
        json.member("unmeasured", n.unmeasured)
        json.endObject()
    }

    /// The table (`function @ group` when grouping), a newline, then up to five reasons per row that
    /// has exceptions; a line saying so when no call was measured.
    public func writeText(into out: inout TextBuffer) {
        if order.isEmpty {
            out.append("no measured calls (record without --calls-only, so calls have their return_from)")
        } else {
            var table = TextTable(header: ["function", "calls", "exc", "p50", "p90", "p99", "p99.9", "max", "self p50"])
            names.withUnsafeBytes { raw in
                for i in order {
                    let n = numbers[i]
                    table.add(bytes: UnsafeRawBufferPointer(rebasing: raw[nameStarts[i]..<mfaEnds[i]]),
                              group: grouped ? UnsafeRawBufferPointer(rebasing: raw[mfaEnds[i]..<nameStarts[i + 1]]) : nil)
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
