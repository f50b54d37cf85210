// `beamtrace info CAPTURE [--json]`: totals by kind and function, nodes, processes, time range, size.
import ArgumentParser
import CaptureStore
import Foundation
import TraceModel

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "info", abstract: "Summarize a capture.")

    @Argument(help: "The capture directory.") var capture: String
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let reader: CaptureReader
        let summary: CaptureSummary
        do {
            reader = try CaptureReader(opening: capture)
            summary = try reader.summary()
        } catch {
            throw CLIError("\(error)")
        }
        let d = reader.dictionaries
        for problem in reader.problems { FileHandle.standardError.write(Data("warning: \(problem)\n".utf8)) }
        var functions: [String: Int] = [:]
        for (id, count) in summary.callsByFunction { functions[d.functionText(id), default: 0] += count }
        let nodes = summary.nodesSeen.sorted().map { d.nodeName($0) }
        if json {
            var kinds: [String: Int] = [:]
            for (kind, count) in summary.kinds { kinds[kind.otpName] = count }
            let object: [String: Any] = [
                "events": summary.events,
                "kinds": kinds,
                "nodes": nodes,
                "start_ns": summary.startTime.map { $0 as Any } ?? NSNull(),
                "end_ns": summary.endTime.map { $0 as Any } ?? NSNull(),
                "processes": summary.processesSeen.count,
                "functions": functions,
                "bytes_on_disk": reader.bytesOnDisk,
                "bytes_per_event": summary.events > 0 ? Double(reader.bytesOnDisk) / Double(summary.events) : 0,
                "drops": summary.drops,
                "blocks": reader.blocks.count,
                "segments": reader.segmentNumbers.count,
                "time_base": reader.meta.timeBase,
                "recovered_bytes_cut": reader.bytesCut,
                "problems": reader.problems.map { $0.fields as [String: Any] },
                "sealed": reader.isSealed,
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("capture      \(capture)")
        print("events       \(summary.events)")
        print("time         \(summary.startTime.map(String.init) ?? "-") .. \(summary.endTime.map(String.init) ?? "-") ns (\(reader.meta.timeBase))")
        print("nodes        \(nodes.joined(separator: ", "))")
        print("processes    \(summary.processesSeen.count)")
        print("functions    \(functions.count)")
        print("on disk      \(reader.bytesOnDisk) bytes in \(reader.segmentNumbers.count) segment(s), \(reader.blocks.count) block(s)"
              + (summary.events > 0 ? String(format: ", %.2f bytes/event", Double(reader.bytesOnDisk) / Double(summary.events)) : ""))
        print("drops        \(summary.drops)")
        if reader.bytesCut > 0 { print("recovered    cut \(reader.bytesCut) bytes of torn tail") }
        print("by kind:")
        for (kind, count) in summary.kinds.sorted(by: { $0.value > $1.value }) { print("  \(kind.otpName.padding(toLength: 30, withPad: " ", startingAt: 0)) \(count)") }
        print("by function:")
        for (name, count) in functions.sorted(by: { $0.value > $1.value }).prefix(50) {
            print("  \(name.padding(toLength: 40, withPad: " ", startingAt: 0)) \(count)")
        }
    }
}
