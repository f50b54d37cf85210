// CSV (RFC 4180): the events of a capture one per row, and the latency table one function per
// row, for spreadsheets and pandas.
import CaptureStore
import Foundation
import TraceAnalysis
import TraceModel

public enum CSVExporter {
    static func field(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// `time_ns,node,pid,process,kind,mfa,peer,value,payload` for each event the query matches.
    public static func events(_ reader: CaptureReader, query: EventQuery, to out: ExportOutput,
                              progress: (any ProgressReporter)? = nil) throws -> ExportStats {
        let d = reader.dictionaries
        let total = reader.blocks.filter { $0.mayMatch(query) }.reduce(Int64(0)) { $0 + Int64($1.count) }
        var meter = ProgressMeter(progress, task: "export csv", total: total, unit: "events")
        defer { meter.finish() }
        let context = StreamContext(dictionaries: d, meta: reader.meta, startTime: 0, endTime: 0, eventsToRead: total)
        let text = ExportText(context)
        var functionNames: [String?] = Array(repeating: nil, count: d.functions.count + 1)
        var processNames: [String?] = Array(repeating: nil, count: d.processes.count + 1)
        func function(_ id: FunctionID) -> String {
            guard id != 0 else { return "" }
            if Int(id) < functionNames.count, let name = functionNames[Int(id)] { return name }
            let name = field(text.function(id))
            if Int(id) < functionNames.count { functionNames[Int(id)] = name }
            return name
        }
        func process(_ id: ProcessID) -> String {
            guard id != 0 else { return "" }
            if Int(id) < processNames.count, let name = processNames[Int(id)] { return name }
            let name = field(d.processText(id))
            if Int(id) < processNames.count { processNames[Int(id)] = name }
            return name
        }
        var stats = ExportStats()
        out.write("time_ns,node,pid,process,kind,mfa,peer,value,payload\n")
        try reader.forEach(matching: query) { event, payload in
            meter.advance()
            out.write(decimal: event.time)
            out.write(byte: UInt8(ascii: ","))
            out.write(event.node == 0 ? "" : field(d.nodeName(event.node)))
            out.write(byte: UInt8(ascii: ","))
            out.write(process(event.pid))
            out.write(byte: UInt8(ascii: ","))
            out.write(field(context.name(of: event.pid) ?? ""))
            out.write(byte: UInt8(ascii: ","))
            out.write(event.kind.otpName)
            out.write(byte: UInt8(ascii: ","))
            out.write(function(event.mfa))
            out.write(byte: UInt8(ascii: ","))
            out.write(process(event.peer))
            out.write(byte: UInt8(ascii: ","))
            out.write(decimal: event.value)
            out.write(byte: UInt8(ascii: ","))
            let terms = StreamPayload(bytes: payload, flags: event.flags)
            if let value = event.kind == .call ? text.arguments(terms) : text.term(terms) { out.write(field(value)) }
            out.write(byte: UInt8(ascii: "\n"))
            stats.instants += 1
            return true
        }

        stats.bytes = out.bytesWritten
        return stats
    }

    /// The latency table (`beamtrace latency --json`'s rows) as CSV.
    public static func latency(_ report: LatencyReport, to out: ExportOutput) -> ExportStats {
        out.write("mfa,group,calls,returned,exceptions,unmeasured,min_us,mean_us,p50_us,p90_us,p99_us,p999_us,max_us,self_p50_us\n")
        for row in report.functions {
            let cells: [String] = [field(row.mfa), field(row.group ?? ""), "\(row.calls)", "\(row.returned)",
                                   "\(row.exceptions)", "\(row.unmeasured)", "\(row.minMicros)", "\(row.meanMicros)",
                                   "\(row.p50Micros)", "\(row.p90Micros)", "\(row.p99Micros)", "\(row.p999Micros)",
                                   "\(row.maxMicros)", "\(row.selfP50Micros)"]
            out.write(cells.joined(separator: ",") + "\n")
        }
        var stats = ExportStats()
        stats.counters = report.functions.count
        stats.bytes = out.bytesWritten
        return stats
    }
}
