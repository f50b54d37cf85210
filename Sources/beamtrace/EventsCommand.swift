// `beamtrace events CAPTURE [filters] [--limit] [--json]`: the events in time order, dbg-like.
import ArgumentParser
import BeamTerm
import CaptureStore
import Foundation
import TraceModel

struct EventsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "events", abstract: "List a capture's events in time order.")

    @Argument(help: "The capture directory.") var capture: String
    @Option(help: "From this time: nanoseconds, or +N[ns|us|ms|s] after the first event.") var from: String?
    @Option(help: "Up to this time (inclusive).") var to: String?
    @Option(help: "Only these nodes.") var node: [String] = []
    @Option(help: "Only these processes: <0.80.0> or a registered name.") var pid: [String] = []
    @Option(help: "Only these functions: mod, mod:fun or mod:fun/arity.") var mfa: [String] = []
    @Option(help: "Only these kinds (OTP tag names, comma-separated).") var kind: [String] = []
    @Option(help: "Stop after this many events.") var limit: Int?
    @Flag(help: "One JSON object per line.") var json = false

    func run() throws {
        do {
            let reader = try CaptureReader(opening: capture)
            let start = reader.blocks.map(\.timeMin).min()
            let query = try EventQuery.parse(reader: reader, start: start, from: from, to: to, nodes: node, pids: pid,
                                             functions: mfa, kinds: kind)
            let d = reader.dictionaries
            var printed = 0
            let max = limit ?? .max
            var out = ""
            try reader.forEach(matching: query) { event, payload in
                guard printed < max else { return false }
                printed += 1
                if json {
                    let terms = Payload.terms(payload, flags: event.flags)?.map { $0.erlangText() }
                    var object: [String: Any] = [
                        "time": event.time, "node": d.nodeName(event.node), "pid": d.processText(event.pid),
                        "kind": event.kind.otpName, "value": event.value,
                    ]
                    if event.mfa != 0 { object["mfa"] = d.functionText(event.mfa) }
                    if event.peer != 0 { object["peer"] = d.processText(event.peer) }
                    if let terms { object["payload"] = terms } else if !payload.isEmpty { object["payload_truncated"] = true }
                    let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
                    out += String(decoding: data, as: UTF8.self)
                } else {
                    out += EventText.line(event, payload: payload, dictionaries: d)
                }
                out += "\n"
                if out.utf8.count > 1 << 16 {
                    FileHandle.standardOutput.write(Data(out.utf8))
                    out = ""
                }
                return printed < max
            }
            FileHandle.standardOutput.write(Data(out.utf8))
            for problem in reader.problems { FileHandle.standardError.write(Data("warning: \(problem)\n".utf8)) }
        } catch let error as ValidationError {
            throw error
        } catch {
            throw ValidationError("\(error)")
        }
    }
}
