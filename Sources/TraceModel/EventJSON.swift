// Events as JSON, one object per line, written byte by byte into a reused buffer (no
// JSONSerialization, no String per event): `kind`, `mfa`, `node`, `payload` (the terms as
// `EventPrinter` prints them), `payload_truncated`, `peer`, `pid`, `name`, `time` (ns), `time_text`
// and `value`. What repeats from event to event is printed once and copied after that: the head
// `{"kind":…,"mfa":…,"node":…` by kind, function and node, and `,"peer":…,"pid":…,"name":…` by
// the two processes. Terms are printed straight into the output and escaped in place.
import BeamTerm

public struct EventJSON {
    private var heads = HeadCache()
    private var processes = HeadCache()
    private var scratch: [UInt8] = []
    /// The printed sign and digits of the last time's magnitude / 10^6: consecutive times share them.
    private var timeHigh: UInt64 = 0
    private var timeNegative = false
    private var timePrefix: (UInt64, UInt64, UInt64) = (0, 0, 0)
    private var timePrefixLength = 0

    public init() {}

    /// Appends the object (without its newline).
    public mutating func write(_ event: TraceEvent, payload: UnsafeRawBufferPointer, printer: inout EventPrinter,
                               into buffer: inout TextBuffer) {
        writeJSON(event, payload: payload, printer: &printer, into: &buffer)
    }

    /// `write` into an array.
    public mutating func write(_ event: TraceEvent, payload: UnsafeRawBufferPointer, printer: inout EventPrinter,
                               into buffer: inout [UInt8]) {
        var text = TextBuffer(capacity: 512)
        writeJSON(event, payload: payload, printer: &printer, into: &text)
        text.withUnsafeBytes { buffer.append(contentsOf: $0) }
    }

    private mutating func writeJSON(_ event: TraceEvent, payload: UnsafeRawBufferPointer, printer: inout EventPrinter,
                                    into buffer: inout TextBuffer) {
        let head = HeadCache.Key(a: UInt32(event.kind.rawValue) + 1, b: event.mfa, c: UInt32(event.node))
        if !heads.append(head, &buffer) {
            let start = buffer.count
            buffer.append("{\"kind\":\"")
            buffer.append(utf8: event.kind.otpName)
            buffer.append(34)
            if event.mfa != 0 {
                buffer.append(",\"mfa\":")
                Self.appendString(printer.function(event.mfa), to: &buffer)
            }
            buffer.append(",\"node\":")
            Self.appendString(printer.dictionaries.nodeName(event.node), to: &buffer)
            heads.store(head, from: start, of: buffer)
        }
        if event.flags.contains(.payloadTruncated) {
            if let terms = printer.terms(payload, flags: event.flags) {
                buffer.append(",\"payload\":[")
                for i in 0..<terms.count {
                    if i > 0 { buffer.append(44) }
                    buffer.append(34)
                    let start = buffer.count
                    switch terms {
                    case .raw(let bytes, let starts):
                        var offset = starts[i]
                        if !printer.writeTerm(bytes, offset: &offset, into: &buffer) { buffer.truncate(to: start) }
                    case .decoded(let decoded):
                        buffer.append(utf8: printer.term(decoded[i]))
                    }
                    escape(&buffer, from: start)
                    buffer.append(34)
                }
                buffer.append(93)
                buffer.append(",\"payload_truncated\":true")
            } else if !payload.isEmpty {
                buffer.append(",\"payload_truncated\":true")
            }
        } else if !payload.isEmpty {
            writeRawTerms(payload, printer: &printer, into: &buffer)
        } else {
            buffer.append(",\"payload\":[]")
        }
        // `c` is never 0: the pid plus one (an absurd pid of UInt32.max wraps to 0 and is never cached).
        let who = HeadCache.Key(a: event.peer, b: event.pid, c: event.pid &+ 1)
        if who.c == 0 || !processes.append(who, &buffer) {
            let start = buffer.count
            if event.peer != 0 {
                buffer.append(",\"peer\":")
                Self.appendString(printer.process(event.peer), to: &buffer)
            }
            buffer.append(",\"pid\":")
            Self.appendString(printer.process(event.pid), to: &buffer)
            if let entry = printer.dictionaries.process(event.pid), entry.registeredName != 0 {
                buffer.append(",\"name\":")
                Self.appendString(printer.dictionaries.atom(entry.registeredName), to: &buffer)
            }
            buffer.append(",\"time\":")
            if who.c != 0 { processes.store(who, from: start, of: buffer) }
        }
        appendTime(event.time, to: &buffer)
        buffer.append(",\"time_text\":\"")
        printer.time.writeInstant(event.time, into: &buffer)  // digits, signs, dates: nothing to escape
        buffer.append("\",\"value\":")
        NumberText.append(event.value, to: &buffer)
        buffer.append(125)
    }

    /// `,"payload":[...]` printed term after term; when the payload is not whole terms, no payload
    /// but `,"payload_truncated":true` (a term that is whole but does not print is `""`).
    private mutating func writeRawTerms(_ bytes: UnsafeRawBufferPointer, printer: inout EventPrinter,
                                        into buffer: inout TextBuffer) {
        let mark = buffer.count
        buffer.append(",\"payload\":[")
        var offset = 0
        var first = true
        while offset < bytes.count {
            if !first { buffer.append(44) }
            first = false
            buffer.append(34)
            let start = buffer.count
            var end = offset
            if printer.writeTerm(bytes, offset: &end, into: &buffer) {
                offset = end
                escape(&buffer, from: start)
            } else {
                buffer.truncate(to: start)
                var skip = TermCursor(bytes, offset: offset)
                guard skip.skipTerm() else {
                    buffer.truncate(to: mark)
                    buffer.append(",\"payload_truncated\":true")
                    return
                }
                offset = skip.offset
            }
            buffer.append(34)
        }
        buffer.append(93)
    }

    /// `NumberText.append(time)`, the leading digits copied from the last time when they are the same.
    private mutating func appendTime(_ time: Int64, to buffer: inout TextBuffer) {
        let magnitude = time.magnitude
        let high = magnitude / 1_000_000
        guard high > 0 else {
            NumberText.append(time, to: &buffer)
            return
        }
        if high != timeHigh || (time < 0) != timeNegative || timePrefixLength == 0 {
            timeHigh = high
            timeNegative = time < 0
            withUnsafeMutableBytes(of: &timePrefix) { raw in
                guard let base = raw.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
                // At most 14 digits and a sign: they end at byte 16 of the 24.
                var n = NumberText.write(high, endingAt: base + 16)
                if time < 0 { base[15 - n] = 45; n += 1 }
                timePrefixLength = n
            }
        }
        withUnsafeBytes(of: timePrefix) { raw in
            buffer.append(bytes: UnsafeRawBufferPointer(rebasing: raw[(16 - timePrefixLength)..<16]))
        }
        let low = UInt32(truncatingIfNeeded: magnitude % 1_000_000)
        buffer.appendUninitialized(6) { NumberText.writeSix(low, at: $0) }
    }

    /// Escapes, in place, the text written from `start` on as the inside of a JSON string.
    private mutating func escape(_ buffer: inout TextBuffer, from start: Int) {
        var clean = true
        buffer.withUnsafeBytes { raw in
            for i in start..<raw.count {
                let b = raw[i]
                if b == 34 || b == 92 || b < 32 { clean = false; break }
            }
        }
        if clean { return }
        scratch.removeAll(keepingCapacity: true)
        buffer.withUnsafeBytes { scratch.append(contentsOf: UnsafeRawBufferPointer(rebasing: $0[start...])) }
        buffer.truncate(to: start)
        Self.appendEscaped(scratch, to: &buffer)
    }

    private static let hex: StaticString = "0123456789abcdef"

    private static func appendString(_ text: String, to buffer: inout TextBuffer) {
        buffer.append(34)
        appendEscaped(Array(text.utf8), to: &buffer)
        buffer.append(34)
    }

    private static func appendEscaped(_ text: [UInt8], to buffer: inout TextBuffer) {
        for byte in text {
            switch byte {
            case 34: buffer.append(92, 34)
            case 92: buffer.append(92, 92)
            case 10: buffer.append(92, 110)
            case 13: buffer.append(92, 114)
            case 9: buffer.append(92, 116)
            case 0..<32:
                buffer.append("\\u00")
                buffer.append(hex.utf8Start[Int(byte >> 4)], hex.utf8Start[Int(byte & 15)])
            default: buffer.append(byte)
            }
        }
    }
}
