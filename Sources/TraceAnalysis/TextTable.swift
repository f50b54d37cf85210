// The readable tables the analysis commands print (`latency`: a row per function, 50,000 rows for a
// module of generated functions), built in one byte arena instead of a String per cell: the first
// column padded on the right, the others on the left, two spaces between, widths in characters.
// Durations print as `%.1fµs`, `%.2fms` or `%.2fs` print them, digits made from the integer.
import BeamTerm
import Foundation

public struct TextTable: ~Copyable {
    private let columns: Int
    private var arena = TextBuffer(capacity: 1 << 16)
    /// Each cell's length in the arena (cells follow each other, row after row) and its width in
    /// characters (-1 for a first-column cell that is not ASCII, padded as
    /// `String.padding(toLength:withPad:startingAt:)` pads it): 8 bytes a cell.
    private struct Cell {
        var length: UInt32
        var width: Int32
    }
    private var cells: [Cell] = []
    /// The column the next cell goes in.
    private var column = 0
    private var widths: [Int]

    /// With `headerRow` false, a table of rows only (widths from the header all the same): the part of
    /// a long table laid out on another thread, written after the first part with `continuing`.
    /// `rows`: how many rows will be added, if known (room for their cells is reserved once).
    public init(header: [String], headerRow: Bool = true, rows: Int = 0) {
        columns = header.count
        widths = header.map(\.count)
        self.headerRow = headerRow
        cells.reserveCapacity((rows + 1) * header.count)
        if headerRow { for name in header { add(name) } }
    }

    private let headerRow: Bool

    public var rowCount: Int { cells.count / max(columns, 1) - (headerRow ? 1 : 0) }

    /// Each column's width so far, in characters.
    public var columnWidths: [Int] { widths }

    /// Widens the columns to at least `other`'s (two parts of one table, padded alike).
    public mutating func widen(to other: [Int]) {
        for i in widths.indices where i < other.count { widths[i] = max(widths[i], other[i]) }
    }

    public mutating func add(_ text: String) {
        let start = arena.count
        arena.append(utf8: text)
        var ascii = true
        arena.withUnsafeBytes { raw in
            for i in start..<raw.count where raw[i] >= 0x80 { ascii = false; break }
        }
        finishCell(from: start, width: ascii ? arena.count - start : text.count, ascii: ascii)
    }

    /// A cell of UTF-8 bytes; with `group`, `bytes @ group` (how grouped rows name themselves).
    public mutating func add(bytes: UnsafeRawBufferPointer, group: UnsafeRawBufferPointer? = nil) {
        let start = arena.count
        arena.append(bytes: bytes)
        if let group {
            arena.append(" @ ")
            arena.append(bytes: group)
        }
        var ascii = true
        arena.withUnsafeBytes { raw in
            for i in start..<raw.count where raw[i] >= 0x80 { ascii = false; break }
        }
        finishCell(from: start, width: ascii ? arena.count - start : arena.string(from: start).count, ascii: ascii)
    }

    public mutating func add(_ number: Int) {
        let start = arena.count
        NumberText.append(Int64(number), to: &arena)
        finishCell(from: start, width: arena.count - start, ascii: true)
    }

    /// Microseconds as `%.1fµs`, `%.2fms` or `%.2fs` (from a millisecond and a second on).
    public mutating func add(micros value: Double) {
        let start = arena.count
        let width = DurationCell.append(micros: value, to: &arena)
        finishCell(from: start, width: width, ascii: true)
    }

    /// `ascii`: `width` counts the cell's characters (false only for text with bytes beyond ASCII).
    private mutating func finishCell(from start: Int, width: Int, ascii: Bool) {
        let column = self.column
        self.column = column + 1 == columns ? 0 : column + 1
        // A cell is one name or number: far below 4 GiB and 2^31 characters.
        let length = UInt32(truncatingIfNeeded: arena.count - start)
        if column == 0 && !ascii {
            cells.append(Cell(length: length, width: -1))
            widths[0] = max(widths[0], arena.string(from: start).count)
        } else {
            cells.append(Cell(length: length, width: Int32(truncatingIfNeeded: width)))
            // Written only when it widens (a write checks the array is not shared).
            if width > widths[column] { widths[column] = width }
        }
    }

    /// Every line, header first, joined by newlines (no newline after the last); `continuing`: a newline
    /// before the first line too (the part after another). With `drain`, what is written is handed to it
    /// once it holds `drainSize` bytes, at the end of a line (the buffer then stays small instead of
    /// holding the table).
    public func write(into out: inout TextBuffer, continuing: Bool = false,
                      drain: ((UnsafeRawBufferPointer) -> Void)? = nil, drainSize: Int = 1 << 20) {
        arena.withUnsafeBytes { raw in
            var start = 0
            var column = 0
            for (index, cell) in cells.enumerated() {
                let end = start + Int(cell.length)
                let bytes = UnsafeRawBufferPointer(rebasing: raw[start..<end])
                if column == 0 {
                    if let drain, out.count >= drainSize {
                        out.withUnsafeBytes { drain($0) }
                        out.removeAll()
                    }
                    if index > 0 || continuing { out.append(10) }
                    if cell.width < 0 {
                        let text = String(decoding: bytes, as: UTF8.self)
                        out.append(utf8: text.padding(toLength: widths[0], withPad: " ", startingAt: 0))
                    } else {
                        out.append(bytes: bytes)
                        spaces(widths[0] - Int(cell.width), &out)
                    }
                } else {
                    spaces(2 + widths[column] - Int(cell.width), &out)
                    out.append(bytes: bytes)
                }
                start = end
                column = column + 1 == columns ? 0 : column + 1
            }
        }
    }

    /// `n` spaces (none for n <= 0), one capacity check for all of them.
    private func spaces(_ n: Int, _ out: inout TextBuffer) {
        guard n > 0 else { return }
        out.appendUninitialized(n) { $0.initialize(repeating: 32, count: n) }
    }
}

/// Durations in microseconds as the tables print them.
public enum DurationCell {
    /// `String(format: "%.1fµs")` below a millisecond, `"%.2fms"` of value / 1000 below a second,
    /// `"%.2fs"` of value / 10^6 above; returns the width in characters. Microseconds made from whole
    /// nanoseconds are rounded from the integer (far from a tie, the double's error cannot change a
    /// digit); ties and other values go through `String(format:)`, which rounds the exact binary value.
    @discardableResult
    public static func append(micros value: Double, to out: inout TextBuffer) -> Int {
        if let ns = DoubleText.wholeNanoseconds(value) {
            let (unit, digits, suffix): (UInt64, Int, StaticString) =
                value >= 1_000_000 ? (10_000_000, 2, "s") : value >= 1000 ? (10_000, 2, "ms") : (100, 1, "µs")
            if ns % unit != unit / 2 {
                let rounded = (ns + unit / 2) / unit
                let scale: UInt64 = digits == 2 ? 100 : 10
                let fraction = rounded % scale
                // The cell laid out backwards in 32 bytes on the stack, then appended at once: the
                // integer (under 10^13 here) before `.`, the fraction's digits and the unit.
                var scratch: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
                return withUnsafeMutableBytes(of: &scratch) { raw -> Int in
                    guard let base = raw.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return 0 }
                    let end = base + raw.count
                    let suffixLength = suffix.utf8CodeUnitCount
                    var p = end - suffixLength
                    p.update(from: suffix.utf8Start, count: suffixLength)
                    p -= 1
                    p.pointee = UInt8(48 + fraction % 10)
                    if digits == 2 {
                        p -= 1
                        p.pointee = UInt8(48 + fraction / 10)
                    }
                    p -= 1
                    p.pointee = 46
                    p -= NumberText.write(rounded / scale, endingAt: p)
                    let length = end - p
                    out.append(bytes: UnsafeRawBufferPointer(start: p, count: length))
                    // µ is two bytes and one character.
                    return length - (suffixLength == 3 ? 1 : 0)
                }
            }
        }
        let text = formatted(micros: value)
        out.append(utf8: text)
        return text.count
    }

    /// The same through `String(format:)`.
    public static func formatted(micros value: Double) -> String {
        if value >= 1_000_000 { return String(format: "%.2fs", value / 1_000_000) }
        if value >= 1000 { return String(format: "%.2fms", value / 1000) }
        return String(format: "%.1fµs", value)
    }
}
