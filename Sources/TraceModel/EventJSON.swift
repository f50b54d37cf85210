// Events as JSON, one object per line, written byte by byte into a reused buffer (no
// JSONSerialization, no String per event): `kind`, `mfa`, `node`, `payload` (the terms as
// `EventPrinter` prints them), `payload_truncated`, `peer`, `pid`, `name`, `time` (ns), `time_text`
// and `value`. Dictionary entries are escaped once per id.
import BeamTerm

public struct EventJSON {
    private var processJSON: [[UInt8]?] = []
    private var nameJSON: [[UInt8]?] = []
    private var functionJSON: [[UInt8]?] = []
    private var nodeJSON: [[UInt8]?] = []
    private var scratch: [UInt8] = []

    public init() {}

    /// Appends the object (without its newline).
    public mutating func write(_ event: TraceEvent, payload: UnsafeRawBufferPointer, printer: inout EventPrinter,
                               into buffer: inout [UInt8]) {
        writeJSON(event, payload: payload, printer: &printer, into: &buffer)
    }

    @inline(__always)
    private static func hit(_ cache: [[UInt8]?], _ key: UInt32, into buffer: inout [UInt8]) -> Bool {
        let i = Int(key)
        guard i < cache.count, let bytes = cache[i] else { return false }
        buffer.append(contentsOf: bytes)
        return true
    }

    private static func store(_ cache: inout [[UInt8]?], _ key: UInt32, _ text: String, into buffer: inout [UInt8]) {
        let i = Int(key)
        var bytes: [UInt8] = []
        appendString(text.utf8, to: &bytes)
        if i < 1 << 24 {
            if i >= cache.count { cache.append(contentsOf: repeatElement(nil, count: i + 1 - cache.count)) }
            cache[i] = bytes
        }
        buffer.append(contentsOf: bytes)
    }

    private mutating func writeJSON(_ event: TraceEvent, payload: UnsafeRawBufferPointer, printer: inout EventPrinter,
                                    into buffer: inout [UInt8]) {
        buffer.append(contentsOf: "{\"kind\":\"".utf8)
        buffer.append(contentsOf: event.kind.otpName.utf8)
        buffer.append(34)
        if event.mfa != 0 {
            buffer.append(contentsOf: ",\"mfa\":".utf8)
            if !Self.hit(functionJSON, event.mfa, into: &buffer) {
                Self.store(&functionJSON, event.mfa, printer.function(event.mfa), into: &buffer)
            }
        }
        buffer.append(contentsOf: ",\"node\":".utf8)
        if !Self.hit(nodeJSON, UInt32(event.node), into: &buffer) {
            Self.store(&nodeJSON, UInt32(event.node), printer.dictionaries.nodeName(event.node), into: &buffer)
        }
        if let terms = printer.terms(payload, flags: event.flags) {
            buffer.append(contentsOf: ",\"payload\":[".utf8)
            for i in 0..<terms.count {
                if i > 0 { buffer.append(44) }
                scratch.removeAll(keepingCapacity: true)
                switch terms {
                case .raw(let bytes, let starts):
                    var offset = starts[i]
                    if !printer.writeTerm(bytes, offset: &offset, into: &scratch) { scratch.removeAll() }
                case .decoded(let decoded):
                    scratch.append(contentsOf: printer.term(decoded[i]).utf8)
                }
                Self.appendString(scratch, to: &buffer)
            }
            buffer.append(93)
            if event.flags.contains(.payloadTruncated) {
                buffer.append(contentsOf: ",\"payload_truncated\":true".utf8)
            }
        } else if !payload.isEmpty {
            buffer.append(contentsOf: ",\"payload_truncated\":true".utf8)
        }
        if event.peer != 0 {
            buffer.append(contentsOf: ",\"peer\":".utf8)
            if !Self.hit(processJSON, event.peer, into: &buffer) {
                Self.store(&processJSON, event.peer, printer.process(event.peer), into: &buffer)
            }
        }
        buffer.append(contentsOf: ",\"pid\":".utf8)
        if !Self.hit(processJSON, event.pid, into: &buffer) {
            Self.store(&processJSON, event.pid, printer.process(event.pid), into: &buffer)
        }
        if let entry = printer.dictionaries.process(event.pid), entry.registeredName != 0 {
            buffer.append(contentsOf: ",\"name\":".utf8)
            if !Self.hit(nameJSON, event.pid, into: &buffer) {
                Self.store(&nameJSON, event.pid, printer.dictionaries.atom(entry.registeredName), into: &buffer)
            }
        }
        buffer.append(contentsOf: ",\"time\":".utf8)
        NumberText.append(event.time, to: &buffer)
        buffer.append(contentsOf: ",\"time_text\":\"".utf8)
        printer.time.writeInstant(event.time, into: &buffer)  // digits, signs, dates: nothing to escape
        buffer.append(contentsOf: "\",\"value\":".utf8)
        NumberText.append(event.value, to: &buffer)
        buffer.append(125)
    }

    private static let hex = Array("0123456789abcdef".utf8)

    private static func appendString(_ text: some Sequence<UInt8>, to buffer: inout [UInt8]) {
        buffer.append(34)
        for byte in text {
            switch byte {
            case 34: buffer.append(92); buffer.append(34)
            case 92: buffer.append(92); buffer.append(92)
            case 10: buffer.append(92); buffer.append(110)
            case 13: buffer.append(92); buffer.append(114)
            case 9: buffer.append(92); buffer.append(116)
            case 0..<32:
                buffer.append(contentsOf: [92, 117, 48, 48, hex[Int(byte >> 4)], hex[Int(byte & 15)]])
            default: buffer.append(byte)
            }
        }
        buffer.append(34)
    }
}
