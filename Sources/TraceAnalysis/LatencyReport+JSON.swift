// `latency --json` written straight into bytes (PrettyJSON), the same text JSONEncoder makes of a
// LatencyReport: keys in sorted order, `group` only when grouping.
import BeamTerm

extension LatencyReport {
    /// The report as JSONEncoder with `[.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]` writes it.
    public func writeJSON(into json: inout PrettyJSON) {
        json.beginObject()
        json.key("functions")
        json.beginArray()
        for row in functions {
            json.element()
            row.writeJSON(into: &json)
            json.drainIfFull()
        }
        json.endArray()
        json.endObject()
    }
}

extension LatencyRow {
    func writeJSON(into json: inout PrettyJSON) {
        json.beginObject()
        json.member("calls", calls)
        json.key("exception_reasons")
        json.beginArray()
        for reason in exceptionReasons {
            json.element()
            json.beginObject()
            json.member("count", reason.count)
            json.member("reason", reason.reason)
            json.endObject()
        }
        json.endArray()
        json.member("exceptions", exceptions)
        if let group { json.member("group", group) }
        json.member("max_us", maxMicros)
        json.member("mean_us", meanMicros)
        json.member("mfa", mfa)
        json.member("min_us", minMicros)
        json.member("p50_us", p50Micros)
        json.member("p90_us", p90Micros)
        json.member("p999_us", p999Micros)
        json.member("p99_us", p99Micros)
        json.member("returned", returned)
        json.member("self_p50_us", selfP50Micros)
        json.member("unmeasured", unmeasured)
        json.endObject()
    }
}
