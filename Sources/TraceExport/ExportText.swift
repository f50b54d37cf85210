// Names and values as exports show them: functions as `mod:fun/arity`, processes as their pid with
// their registered name or initial call, arguments and return values in Erlang syntax (cut short),
// and JSON string escaping. A payload the capture kept cut (`--payload-limit`) prints as the cut
// term, as `events` prints it: `(1,[2,3|...],...)`, `{a,{b,...}}`.
import BeamTerm
import CaptureStore
import Foundation
import TraceAnalysis
import TraceModel

final class ExportText {
    @exclusivity(unchecked) private(set) var context: StreamContext
    @exclusivity(unchecked) private var functionCache: [String?]
    @exclusivity(unchecked) private var processCache: [[UInt8]?]
    /// The node of each process of the dictionaries (0 if unknown).
    @exclusivity(unchecked) private(set) var nodes: [NodeID]

    /// `termWidth`: longest printed term (arguments, return values, messages).
    init(_ context: StreamContext = .empty, termWidth: Int = 120) {
        self.context = context
        functionCache = Array(repeating: nil, count: context.dictionaries.functions.count)
        processCache = Array(repeating: nil, count: context.dictionaries.processes.count)
        nodes = context.dictionaries.processes.map { $0.identity.node }
        writer = ErlangTermWriter(options: ErlangPrintOptions(maxDepth: 8, maxWidth: termWidth))
    }

    /// Starts over on `context` (an exporter makes its text once, as a `let`: its hot calls then
    /// cost no retain, and the term writer is not copied per term).
    func begin(_ context: StreamContext) {
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
        var bytes: [UInt8] = []
        return appendArguments(payload, to: &bytes) ? String(decoding: bytes, as: UTF8.self) : nil
    }

    /// The payload's first term (a return value, a message, an exit reason).
    func term(_ payload: StreamPayload) -> String? {
        var bytes: [UInt8] = []
        return appendTerm(payload, to: &bytes) ? String(decoding: bytes, as: UTF8.self) : nil
    }

    /// Prints terms straight from their ETF bytes (BeamTerm's ErlangTermWriter): no Term, no String.
    private let writer: ErlangTermWriter

    @inline(__always)
    private static func append(_ text: String, to out: inout [UInt8]) {
        var text = text
        text.withUTF8 { out.append(contentsOf: $0) }
    }

    /// The terms a payload holds: the payload itself, or for a cut one the terms after its
    /// `0xF4, Depth` header (nil when nothing of them was kept, depth 0). An older capture's
    /// byte-cut payload is `.bytesCut`.
    private enum Kept {
        case terms(UnsafeRawBufferPointer)
        case nothing
        case bytesCut(Int)
    }

    private static func kept(_ payload: StreamPayload) -> Kept {
        guard payload.flags.contains(.payloadTruncated) else { return .terms(payload.bytes) }
        let bytes = payload.bytes
        guard bytes.count >= 2, bytes[0] == Payload.cutTag else { return .bytesCut(bytes.count) }
        return bytes.count == 2 ? .nothing : .terms(UnsafeRawBufferPointer(rebasing: bytes[2...]))
    }

    /// Appends `arguments(payload)` as UTF-8 (each argument cut to `termWidth`); false, with
    /// nothing appended, when none were recorded.
    func appendArguments(_ payload: StreamPayload, to out: inout [UInt8]) -> Bool {
        guard !payload.isEmpty else { return false }
        let bytes: UnsafeRawBufferPointer
        switch Self.kept(payload) {
        case .terms(let terms): bytes = terms
        case .nothing:
            out.append(contentsOf: "(...)".utf8)
            return true
        case .bytesCut(let count):
            Self.append("<<\(count) bytes, cut>>", to: &out)
            return true
        }
        var cursor = TermCursor(bytes)
        let start = out.count
        switch cursor.peek() {
        case ExternalTag.nil:
            out.append(contentsOf: [40, 41])  // ()
            return true
        case ExternalTag.string:
            // A list of small integers, as STRING_EXT carries it.
            _ = cursor.u8()
            guard let n = cursor.u16(), cursor.remaining >= n else { return false }
            out.append(UInt8(ascii: "("))
            for k in 0..<n {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                NumberText.append(Int64(bytes[cursor.offset + k]), to: &out)
            }
            out.append(UInt8(ascii: ")"))
            return true
        case ExternalTag.list:
            guard let n = cursor.listHeader() else { return false }
            var offset = cursor.offset
            out.append(UInt8(ascii: "("))
            for k in 0..<n {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                guard writer.write(bytes, offset: &offset, into: &out) else {
                    out.removeSubrange(start...)
                    return false
                }
            }
            if offset < bytes.count, bytes[offset] == ExternalTag.nil {
                out.append(UInt8(ascii: ")"))
                return true
            }
            // A cut argument list ends in `...`: `(1,2,...)`.
            let tail = TermCursor(bytes, offset: offset)
            if tail.isAtom("$beamtrace_cut") {
                out.append(contentsOf: n > 0 ? Array(",...)".utf8) : Array("...)".utf8))
                return true
            }
            // An improper list prints as the term it is.
            out.removeSubrange(start...)
        default:
            // A list cut to depth 1 keeps nothing but its mark: `(...)`.
            if cursor.isAtom("$beamtrace_cut") {
                out.append(contentsOf: "(...)".utf8)
                return true
            }
        }
        var offset = 0
        return writer.write(bytes, offset: &offset, into: &out)
    }

    /// Appends `term(payload)` as UTF-8; false, with nothing appended, when there is none.
    func appendTerm(_ payload: StreamPayload, to out: inout [UInt8]) -> Bool {
        guard !payload.isEmpty else { return false }
        switch Self.kept(payload) {
        case .terms(let bytes):
            var offset = 0
            return writer.write(bytes, offset: &offset, into: &out)
        case .nothing:
            out.append(contentsOf: "...".utf8)
            return true
        case .bytesCut(let count):
            Self.append("<<\(count) bytes, cut>>", to: &out)
            return true
        }
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

extension StreamContext {
    /// Before `begin`: nothing known.
    static var empty: StreamContext {
        StreamContext(dictionaries: TraceDictionaries(), meta: CaptureMeta(), startTime: 0, endTime: 0, eventsToRead: 0)
    }
}
