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

    /// Appends `quotedProcess(pid)` (no copy of the cached bytes' array on the way).
    @inline(__always)
    func appendQuotedProcess(_ pid: ProcessID, to out: inout [UInt8]) {
        let index = Int(pid)
        if index < processCache.count, processCache[index] != nil {
            processCache[index]?.withUnsafeBytes { out.append(contentsOf: $0) }
            return
        }
        out.append(contentsOf: quotedProcess(pid))
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

    /// Appends `arguments(payload)` as UTF-8; false, with nothing appended, when none were recorded.
    @inline(__always)
    func appendArguments(_ payload: StreamPayload, to out: inout [UInt8]) -> Bool {
        guard !payload.isEmpty, var text = arguments(payload) else { return false }
        text.withUTF8 { out.append(contentsOf: $0) }
        return true
    }

    /// Appends `term(payload)` as UTF-8; false, with nothing appended, when the payload is empty.
    @inline(__always)
    func appendTerm(_ payload: StreamPayload, to out: inout [UInt8]) -> Bool {
        guard !payload.isEmpty, var text = term(payload) else { return false }
        text.withUTF8 { out.append(contentsOf: $0) }
        return true
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

    /// Appends UTF-8 `text` as a JSON string literal, quotes included (the same escapes as `quoted`).
    static func appendQuoted(_ text: [UInt8], to out: inout [UInt8]) {
        out.append(34)
        var i = 0
        let n = text.count
        while i < n {
            let c = text[i]
            switch c {
            case 34: out.append(92); out.append(34)
            case 92: out.append(92); out.append(92)
            case 10: out.append(92); out.append(110)
            case 13: out.append(92); out.append(114)
            case 9: out.append(92); out.append(116)
            case 0..<0x20:
                appendEscape(UInt32(c), to: &out)
            case 0xE2 where i + 2 < n && text[i + 1] == 0x80 && (text[i + 2] == 0xA8 || text[i + 2] == 0xA9):
                appendEscape(text[i + 2] == 0xA8 ? 0x2028 : 0x2029, to: &out)
                i += 2
            default:
                out.append(c)
            }
            i += 1
        }
        out.append(34)
    }

    private static func appendEscape(_ scalar: UInt32, to out: inout [UInt8]) {
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        out.append(contentsOf: [92, 117])
        for shift in stride(from: 12, through: 0, by: -4) { out.append(hex[Int((scalar >> UInt32(shift)) & 0xF)]) }
    }
}
