// Names and values as exports show them: functions as `mod:fun/arity`, processes as their pid with
// their registered name or initial call, arguments and return values in Erlang syntax (cut short),
// and JSON string escaping.
import BeamTerm
import Foundation
import TraceAnalysis
import TraceModel

final class ExportText {
    let context: StreamContext
    @exclusivity(unchecked) private var functionCache: [String?]
    @exclusivity(unchecked) private var processCache: [[UInt8]?]
    /// The node of each process of the dictionaries (0 if unknown).
    let nodes: [NodeID]
    /// Longest printed term (arguments, return values, messages).
    var termWidth = 120

    init(_ context: StreamContext) {
        self.context = context
        functionCache = Array(repeating: nil, count: context.dictionaries.functions.count)
        processCache = Array(repeating: nil, count: context.dictionaries.processes.count)
        nodes = context.dictionaries.processes.map { $0.identity.node }
    }

    /// The node of a process, else `fallback`.
    @inline(__always)
    func node(of pid: ProcessID, _ fallback: NodeID) -> NodeID {
        let index = Int(pid)
        return index < nodes.count && nodes[index] != 0 ? nodes[index] : fallback
    }

    /// `process(pid)` as a quoted JSON string, cached.
    func quotedProcess(_ pid: ProcessID) -> [UInt8] {
        let index = Int(pid)
        if index < processCache.count, let cached = processCache[index] { return cached }
        let quoted = JSONText.quotedBytes(process(pid))
        if index < processCache.count { processCache[index] = quoted }
        return quoted
    }

    func function(_ id: FunctionID) -> String {
        let index = Int(id)
        if index < functionCache.count, let text = functionCache[index] { return text }
        let text = context.dictionaries.functionText(id)
        if index < functionCache.count { functionCache[index] = text }
        return text
    }

    /// `<0.85.0> sink`, `<0.90.0> demo:producer/1`, or the pid alone.
    func process(_ pid: ProcessID) -> String {
        context.dictionaries.processText(pid) + (context.name(of: pid).map { " " + $0 } ?? "")
    }

    func node(_ node: NodeID) -> String { node == 0 ? "session" : context.dictionaries.nodeName(node) }

    /// A call's arguments as `(1,foo,"bar")`; nil when none were recorded.
    func arguments(_ payload: StreamPayload) -> String? {
        guard !payload.isEmpty else { return nil }
        if payload.flags.contains(.payloadTruncated) { return "<<truncated \(payload.bytes.count) bytes>>" }
        guard let term = Payload.terms(payload.bytes, flags: payload.flags)?.first else { return nil }
        let options = ErlangPrintOptions(maxDepth: 8, maxWidth: termWidth)
        if let elements = term.listElements {
            return "(" + elements.map { $0.erlangText(options) }.joined(separator: ",") + ")"
        }
        return term.erlangText(options)
    }

    /// The payload's first term (a return value, a message, an exit reason).
    func term(_ payload: StreamPayload) -> String? {
        guard !payload.isEmpty else { return nil }
        if payload.flags.contains(.payloadTruncated) { return "<<truncated \(payload.bytes.count) bytes>>" }
        guard let term = Payload.terms(payload.bytes, flags: payload.flags)?.first else { return nil }
        return term.erlangText(ErlangPrintOptions(maxDepth: 8, maxWidth: termWidth))
    }

    /// What a counter track is called: `message_queue_len <0.85.0> sink`, `memory_total`.
    func counterName(_ counter: StreamCounter) -> String {
        counter.pid == 0 ? counter.kind.rawValue
            : counter.kind.rawValue + (counter.estimated ? " (estimated) " : " ") + process(counter.pid)
    }
}

enum JSONText {
    /// `text` as a JSON string literal, quotes included.
    static func quoted(_ text: String) -> String {
        var out = "\""
        out.reserveCapacity(text.utf8.count + 2)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x2028 || scalar.value == 0x2029 {
                    out += String(format: "\\u%04x", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    static func quotedBytes(_ text: String) -> [UInt8] { Array(quoted(text).utf8) }
}
