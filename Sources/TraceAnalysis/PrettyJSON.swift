// JSON written byte by byte as Foundation's JSONEncoder writes it with `[.prettyPrinted, .sortedKeys,
// .withoutEscapingSlashes]` (what every `--json` prints), without the encoder's tree of boxed values: a
// report of 50,000 rows goes out in a few milliseconds. The caller writes keys in sorted (UTF-8) order;
// numbers print as the encoder prints them (a Double's `description` without a trailing `.0`).
import BeamTerm

public struct PrettyJSON: ~Copyable {
    public private(set) var buffer: TextBuffer
    private var indent = 0
    /// No element yet in the innermost open container.
    private var first = true
    /// Where full buffers go (nil: everything stays in `buffer`).
    private let drain: ((UnsafeRawBufferPointer) -> Void)?
    static let drainSize = 1 << 16

    public init(capacity: Int = 1 << 16, drain: ((UnsafeRawBufferPointer) -> Void)? = nil) {
        buffer = TextBuffer(capacity: max(capacity, drain == nil ? 64 : Self.drainSize * 2))
        self.drain = drain
    }

    /// Hands what is written so far to the drain once it holds enough (call between elements).
    public mutating func drainIfFull() {
        guard let drain, buffer.count >= Self.drainSize else { return }
        buffer.withUnsafeBytes { drain($0) }
        buffer.removeAll()
    }

    /// Hands everything written to the drain.
    public mutating func finish() {
        guard let drain, !buffer.isEmpty else { return }
        buffer.withUnsafeBytes { drain($0) }
        buffer.removeAll()
    }

    /// Appends what another writer laid out (rows written on another thread), as it is.
    public mutating func append(laidOut other: borrowing PrettyJSON) {
        other.buffer.withUnsafeBytes { buffer.append(bytes: $0) }
    }

    /// Drops what is written (a side writer reused from batch to batch; no drain).
    public mutating func removeAll() { buffer.removeAll() }

    /// A newline after the top-level value (as `printJSON` ends its output).
    public mutating func newline() { buffer.append(10) }

    /// The text written (without a drain).
    public var text: String { buffer.string() }

    // MARK: containers

    public mutating func beginObject() { open(123) }
    public mutating func endObject() { close(125) }
    public mutating func beginArray() { open(91) }
    public mutating func endArray() { close(93) }

    /// `"key" : ` as the next member of the open object (keys in sorted order).
    public mutating func key(_ name: StaticString) {
        element()
        buffer.append(34)
        buffer.append(name)
        buffer.append("\" : ")
    }

    /// A key that is not a constant (escaped).
    public mutating func key(string name: String) {
        element()
        appendString(name)
        buffer.append(" : ")
    }

    /// Starts the next element of the open array (values written after it).
    public mutating func element() {
        if first {
            first = false
        } else {
            buffer.append(44, 10)
        }
        writeIndent()
    }

    private mutating func open(_ bracket: UInt8) {
        buffer.append(bracket, 10)
        indent += 1
        first = true
    }

    private mutating func close(_ bracket: UInt8) {
        // The encoder writes an empty container as its brackets around an empty line.
        buffer.append(10)
        indent -= 1
        writeIndent()
        buffer.append(bracket)
        first = false
    }

    private mutating func writeIndent() {
        for _ in 0..<indent { buffer.append(32, 32) }
    }

    // MARK: values

    public mutating func value(_ text: String) { appendString(text) }

    /// A string value from its UTF-8 bytes.
    public mutating func value(utf8 bytes: UnsafeRawBufferPointer) { appendString(bytes.bindMemory(to: UInt8.self)) }

    /// Text the caller lays out as the encoder would at the current depth (newlines, indents, keys),
    /// for rows of many members written at once.
    public mutating func fragment(_ text: StaticString) { buffer.append(text) }

    public mutating func value(_ number: Int) { NumberText.append(Int64(number), to: &buffer) }

    public mutating func value(_ number: Int64) { NumberText.append(number, to: &buffer) }

    public mutating func value(_ flag: Bool) { flag ? buffer.append("true") : buffer.append("false") }

    public mutating func value(_ number: Double) { DoubleText.appendJSON(number, to: &buffer) }

    public mutating func null() { buffer.append("null") }

    /// `"key" : value` shorthands.
    public mutating func member(_ name: StaticString, _ text: String) { key(name); value(text) }
    public mutating func member(_ name: StaticString, _ number: Int) { key(name); value(number) }
    public mutating func member(_ name: StaticString, _ number: Double) { key(name); value(number) }
    public mutating func member(_ name: StaticString, _ flag: Bool) { key(name); value(flag) }
    /// A string member from its UTF-8 bytes.
    public mutating func member(_ name: StaticString, utf8 bytes: UnsafeRawBufferPointer) {
        key(name)
        appendString(bytes.bindMemory(to: UInt8.self))
    }

    private static let hex: StaticString = "0123456789abcdef"

    /// A string as the encoder escapes it: `"`, `\`, and control characters (`\b \f \n \r \t`, the
    /// rest as `\u00XX`); `/` and everything beyond ASCII as they are.
    private mutating func appendString(_ text: String) {
        var text = text
        text.withUTF8 { appendString($0) }
    }

    private mutating func appendString(_ bytes: UnsafeBufferPointer<UInt8>) {
        buffer.append(34)
        var clean = 0
        for (i, byte) in bytes.enumerated() where byte == 34 || byte == 92 || byte < 32 {
            if i > clean { buffer.append(bytes: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[clean..<i]))) }
            clean = i + 1
            switch byte {
            case 34: buffer.append(92, 34)
            case 92: buffer.append(92, 92)
            case 8: buffer.append(92, 98)
            case 12: buffer.append(92, 102)
            case 10: buffer.append(92, 110)
            case 13: buffer.append(92, 114)
            case 9: buffer.append(92, 116)
            default:
                buffer.append("\\u00")
                buffer.append(Self.hex.utf8Start[Int(byte >> 4)], Self.hex.utf8Start[Int(byte & 15)])
            }
        }
        if bytes.count > clean { buffer.append(bytes: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[clean...]))) }

        buffer.append(34)
    }
}

/// Doubles as reports print them.
public enum DoubleText {
    /// As JSONEncoder writes a Double: its `description` (the shortest text that reads back as the
    /// same value), without a trailing `.0`. Microseconds made from whole nanoseconds (`ns / 1000`,
    /// most numbers of a report) print from the integer: the shortest text of such a value is the
    /// decimal of ns / 1000 itself while doubles near it are closer together than 0.001.
    public static func appendJSON(_ value: Double, to out: inout TextBuffer) {
        if let ns = wholeNanoseconds(value) {
            appendThousandths(ns, to: &out)
            return
        }
        // The description's bytes, `.0` dropped by looking at its last two (hasSuffix compares
        // Characters, and removeLast makes the string unique first).
        var text = value.description
        text.withUTF8 { bytes in
            var n = bytes.count
            if n >= 2 && bytes[n - 2] == 46 && bytes[n - 1] == 48 { n -= 2 }
            out.append(bytes: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[0..<n])))
        }
    }

    /// The n with `Double(n) / 1000 == value` for microseconds made from whole nanoseconds below
    /// 10^15 (11.6 days; above that, doubles are too far apart for the shortcuts here); nil otherwise.
    @inline(__always)
    static func wholeNanoseconds(_ value: Double) -> UInt64? {
        guard value.sign == .plus, value < 1e12 else { return nil }
        let scaled = (value * 1000).rounded()
        let ns = UInt64(scaled)
        return Double(ns) / 1000 == value ? ns : nil
    }

    /// `ns / 1000` in decimal without trailing zeros (`1.5`, `0.001`, `12`, `0`): its length worked out
    /// first, then written straight into the buffer (a capacity check and a division by a variable per
    /// digit were 150 instructions a number, 5% of `latency --json` over 50,000 functions).
    static func appendThousandths(_ ns: UInt64, to out: inout TextBuffer) {
        let whole = ns / 1000, thousandths = ns % 1000
        var digits = 1
        var limit: UInt64 = 10
        while digits < 20 && whole >= limit {
            digits += 1
            limit = limit &* 10
        }
        let fractionDigits = thousandths == 0 ? 0 : thousandths % 10 != 0 ? 3 : thousandths % 100 != 0 ? 2 : 1
        out.appendUninitialized(digits + (fractionDigits == 0 ? 0 : 1 + fractionDigits)) { p in
            _ = NumberText.write(whole, endingAt: p + digits)
            guard fractionDigits > 0 else { return }
            p[digits] = 46
            p[digits + 1] = 48 + UInt8(truncatingIfNeeded: thousandths / 100)
            if fractionDigits > 1 { p[digits + 2] = 48 + UInt8(truncatingIfNeeded: thousandths / 10 % 10) }
            if fractionDigits > 2 { p[digits + 3] = 48 + UInt8(truncatingIfNeeded: thousandths % 10) }
        }
    }
}
