// `latency`'s two outputs written from the table: `--json` as JSONEncoder writes a LatencyReport
// (keys sorted, `group` only when grouping) and the text table with its exceptions by reason.
import BeamTerm
import TraceModel

extension LatencyTable {
    /// The report as JSONEncoder with `[.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]` writes it.
    public func writeJSON(into json: inout PrettyJSON) {
        writeJSON(into: &json, parallelFrom: Self.parallelRows, batch: Self.parallelBatch)
    }

    /// The same, on two threads from `parallelFrom` rows on, `batch` rows per thread and round (the tests
    /// take the two-thread path on a small table).
    func writeJSON(into json: inout PrettyJSON, parallelFrom: Int, batch: Int) {
        json.beginObject()
        json.key("functions")
        json.beginArray()
        names.withUnsafeBytes { raw in
            // Printed order is random in memory: each batch of rows is copied out first in a tight loop
            // (their cache misses overlap there), then written from the copies. Read row by row inside
            // the writing, two misses per row were an eighth of `latency --json` over 50,000 functions.
            if !order.isEmpty && order.count >= parallelFrom {
                writeRowsOnTwoThreads(raw, batch: Swift.max(1, batch), into: &json)
                return
            }
            forEachGathered { row in
                json.element()
                writeRow(row, raw, into: &json)
                json.drainIfFull()
            }
        }
        json.endArray()
        json.endObject()
    }

    /// From how many rows `--json` lays them out on two threads (fewer are not worth a second thread).
    static let parallelRows = 8192
    /// Rows each thread lays out per round.
    static let parallelBatch = 1024

    /// The rows after the first in rounds of two batches: this thread lays out one into `json` (and
    /// hands what is full to the drain, the previous round's second batch with it), another thread the
    /// next into a side writer appended after it. The same bytes as one thread writes; the report's
    /// wall time was the table built and written on one core while the decoder's core sat idle.
    private func writeRowsOnTwoThreads(_ raw: UnsafeRawBufferPointer, batch: Int, into json: inout PrettyJSON) {
        forEachGathered(from: 0, to: 1) { row in
            json.element()
            writeRow(row, raw, into: &json)
        }
        var side = PrettyJSON(capacity: batch * 512)
        var from = 1
        while from < order.count {
            let mid = Swift.min(from + batch, order.count)
            let to = Swift.min(mid + batch, order.count)
            side.removeAll()
            let start = from
            bothAtOnce({
                forEachGathered(from: start, to: mid) { row in
                    json.fragment(",\n    ")
                    writeRow(row, raw, into: &json)
                    json.drainIfFull()
                }
            }, {
                forEachGathered(from: mid, to: to) { row in
                    side.fragment(",\n    ")
                    writeRow(row, raw, into: &side)
                }
            })
            json.append(laidOut: side)
            from = to
        }
        json.drainIfFull()
    }

    static let gatherBatch = 64

    /// Every row in printed order (or those from `start` to `end`), copied out a batch at a time (see
    /// `writeJSON`).
    func forEachGathered(from start: Int = 0, to end: Int? = nil, _ body: (GatheredRow) -> Void) {
        var batch: [GatheredRow] = []
        batch.reserveCapacity(Self.gatherBatch)
        let end = end ?? order.count
        var from = start
        while from < end {
            let to = Swift.min(from + Self.gatherBatch, end)
            batch.removeAll(keepingCapacity: true)
            names.withUnsafeBytes { raw in
                for k in from..<to {
                    let i = order[k]
                    let start = nameStarts[i], end = nameStarts[i + 1]
                    // The name's first and last bytes read here too, so its cache lines come in with the
                    // other rows' (read only while writing, each name was a miss of its own).
                    let touched = start < end ? raw[start] ^ raw[end - 1] : 0
                    batch.append(GatheredRow(row: i, numbers: numbers[i], nameStart: start, mfaEnd: mfaEnds[i],
                                             groupEnd: end, touched: touched))
                }
            }
            for row in batch { body(row) }
            from = to
        }
    }

    /// A row's numbers and name ranges, copied out in printed order.
    struct GatheredRow {
        var row: Int
        var numbers: Numbers
        var nameStart: Int, mfaEnd: Int, groupEnd: Int
        /// The name's first and last bytes combined (read to bring its text into the cache; unused).
        var touched: UInt8
    }

    /// One row, members in sorted key order, laid out as the encoder lays out an object of the
    /// `functions` array (`writeJSON` opens exactly those two containers around it): fixed text between
    /// the values, one append each.
    private func writeRow(_ row: GatheredRow, _ raw: UnsafeRawBufferPointer, into json: inout PrettyJSON) {
        let n = row.numbers
        json.fragment("{\n      \"calls\" : ")
        json.value(n.calls)
        json.fragment(",\n      \"exception_reasons\" : [\n")
        if !reasons.isEmpty, let rowReasons = reasons[row.row] {
            for (k, reason) in rowReasons.enumerated() {
                json.fragment(k == 0 ? "        {\n          \"count\" : " : ",\n        {\n          \"count\" : ")
                json.value(reason.count)
                json.fragment(",\n          \"reason\" : ")
                json.value(reason.reason)
                json.fragment("\n        }")
            }
        }
        json.fragment("\n      ],\n      \"exceptions\" : ")
        json.value(n.exceptions)
        if grouped {
            json.fragment(",\n      \"group\" : ")
            json.value(utf8: UnsafeRawBufferPointer(rebasing: raw[row.mfaEnd..<row.groupEnd]))
        }
        json.fragment(",\n      \"max_us\" : ")
        json.value(n.max)
        json.fragment(",\n      \"mean_us\" : ")
        json.value(n.mean)
        json.fragment(",\n      \"mfa\" : ")
        json.value(utf8: UnsafeRawBufferPointer(rebasing: raw[row.nameStart..<row.mfaEnd]))
        json.fragment(",\n      \"min_us\" : ")
        json.value(n.min)
        json.fragment(",\n      \"p50_us\" : ")
        json.value(n.p50)
        json.fragment(",\n      \"p90_us\" : ")
        json.value(n.p90)
        json.fragment(",\n      \"p999_us\" : ")
        json.value(n.p999)
        json.fragment(",\n      \"p99_us\" : ")
        json.value(n.p99)
        json.fragment(",\n      \"returned\" : ")
        json.value(n.returned)
        json.fragment(",\n      \"self_p50_us\" : ")
        json.value(n.selfP50)
        json.fragment(",\n      \"unmeasured\" : ")
        json.value(n.unmeasured)
        json.fragment("\n    }")
    }

    static let textHeader = ["function", "calls", "exc", "p50", "p90", "p99", "p99.9", "max", "self p50"]

    /// The rows as a padded table; from `parallelFrom` rows on, the second half laid out and written on
    /// another thread (widths shared, the same bytes as one table: the 50,000 rows of a generated
    /// module were a serial fifth of `latency`).
    func writeTable(into out: inout TextBuffer, parallelFrom: Int, drain: ((UnsafeRawBufferPointer) -> Void)? = nil,
                    drainSize: Int = 1 << 20) {
        names.withUnsafeBytes { raw in
            func add(_ row: GatheredRow, to table: inout TextTable) {
                let n = row.numbers
                table.add(bytes: UnsafeRawBufferPointer(rebasing: raw[row.nameStart..<row.mfaEnd]),
                          group: grouped ? UnsafeRawBufferPointer(rebasing: raw[row.mfaEnd..<row.groupEnd]) : nil)
                table.add(n.calls)
                table.add(n.exceptions)
                table.add(micros: n.p50)
                table.add(micros: n.p90)
                table.add(micros: n.p99)
                table.add(micros: n.p999)
                table.add(micros: n.max)
                table.add(micros: n.selfP50)
            }
            let half = order.count / 2
            let split = order.count >= Swift.max(2, parallelFrom)
            var first = TextTable(header: Self.textHeader, rows: split ? half : order.count)
            guard split else {
                forEachGathered { add($0, to: &first) }
                first.write(into: &out, drain: drain, drainSize: drainSize)
                return
            }
            var second = TextTable(header: Self.textHeader, headerRow: false, rows: order.count - half)
            bothAtOnce({ forEachGathered(from: 0, to: half) { add($0, to: &first) } },
                       { forEachGathered(from: half, to: order.count) { add($0, to: &second) } })
            first.widen(to: second.columnWidths)
            second.widen(to: first.columnWidths)
            var side = TextBuffer(capacity: 1 << 16)
            bothAtOnce({ first.write(into: &out, drain: drain, drainSize: drainSize) }, { second.write(into: &side, continuing: true) })
            // Drained, the second half goes straight to the drain after the first (not copied into `out`).
            if let drain {
                out.withUnsafeBytes { drain($0) }
                out.removeAll()
                side.withUnsafeBytes { drain($0) }
            } else {
                side.withUnsafeBytes { out.append(bytes: $0) }
            }
        }
    }

    /// The table (`function @ group` when grouping), a newline, then up to five reasons per row that
    /// has exceptions; a line saying so when no call was measured. With `drain`, the table's lines are
    /// handed to it as they are written (the rest stays in `out`).
    public func writeText(into out: inout TextBuffer, drain: ((UnsafeRawBufferPointer) -> Void)? = nil) {
        if order.isEmpty {
            out.append("no measured calls (record without --calls-only, so calls have their return_from)")
        } else {
            writeTable(into: &out, parallelFrom: Self.parallelRows, drain: drain)
        }
        out.append(10)
        guard !reasons.isEmpty else { return }
        out.append("\nexceptions by reason:\n")
        for i in order {
            guard let rowReasons = reasons[i] else { continue }
            let name = mfaText(i) + (groupText(i).map { " @ \($0)" } ?? "")
            for reason in rowReasons.prefix(5) {
                out.append(utf8: "  " + name + "  \(reason.reason)  x\(reason.count)\n")
            }
        }
    }
}
