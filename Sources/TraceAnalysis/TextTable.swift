// The readable tables the analysis commands print (`latency`: a row per function, 50,000 rows for a
// module of generated functions), built in one byte arena instead of a String per cell: the first
// column padded on the right, the others on the left, two spaces between, widths in characters.
// Durations print as `%.1fµs`, `%.2fms` or `%.2fs` print them, digits made from the integer.
import BeamTerm
import Foundation

public struct TextTable: ~Copyable {
    private let columns: Int
    private var arena = TextBuffer(capacity: 1 << 16)
    /// Where each cell ends in the arena, row after row.
    private var ends: [Int] = []
    /// Each cell's width in characters, or -1 for a first-column cell that is not ASCII (padded as
    /// `String.padding(toLength:withPad:startingAt:)` pads it).
    private var cellWidths: [Int] = []
    private var widths: [Int]

    /// With `headerRow` false, a table of rows only (widths from the header all the same): the part of
    /// a long table laid out on another thread, written after the first part with `continuing`.
    public init(header: [String], headerRow: Bool = true) {
        columns = header.count
        widths = header.map(\.count)
        self.headerRow = headerRow
        if headerRow { for name in header { add(name) } }
    }

    private let headerRow: Bool

    public var rowCount: Int { ends.count / max(columns, 1) - (headerRow ? 1 : 0) }

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
        let column = ends.count % columns
        ends.append(arena.count)
        if column == 0 && !ascii {
            cellWidths.append(-1)
            widths[0] = max(widths[0], arena.string(from: start).count)
        } else {
            cellWidths.append(width)
            widths[column] = max(widths[column], width)
        }
    }

    /// Every line, header first, joined by newlines (no newline after the last); `continuing`: a newline
    /// before the first line too (the part after another).
    public func write(into out: inout TextBuffer, continuing: Bool = false) {
        arena.withUnsafeBytes { raw in
            var start = 0
            for index in ends.indices {
                let column = index % columns
                let end = ends[index]
                let cell = UnsafeRawBufferPointer(rebasing: raw[start..<end])
                if column == 0 {
                    if index > 0 || continuing { out.append(10) }
                    if cellWidths[index] < 0 {
                        let text = String(decoding: cell, as: UTF8.self)
                        out.append(utf8: text.padding(toLength: widths[0], withPad: " ", startingAt: 0))
                    } else {
                        out.append(bytes: cell)
                        spaces(widths[0] - cellWidths[index], &out)
                    }
                } else {
                    out.append(32, 32)
                    spaces(widths[column] - cellWidths[index], &out)
                    out.append(bytes: cell)
                }
                start = end
            }
        }
    }

    private func spaces(_ n: Int, _ out: inout TextBuffer) {
        for _ in 0..<max(0, n) { out.append(32) }
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
                let start = out.count
                NumberText.appendDigits(rounded / scale, to: &out)
                out.append(46)
                let fraction = rounded % scale
                if digits == 2 { out.append(UInt8(48 + fraction / 10)) }
                out.append(UInt8(48 + fraction % 10))
                out.append(suffix)
                // µ is two bytes and one character.
                return out.count - start - (suffix.utf8CodeUnitCount == 3 ? 1 : 0)
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
