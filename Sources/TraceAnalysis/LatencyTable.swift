// The rows `latency` prints, kept flat: the numbers of each row in one array of plain values, the
// names (`mod:fun/arity`, then the group) in one byte arena written straight from the atoms, and the
// printed order as row indices. No String, array or object per row: 50,000 functions make 50,000
// rows, and building, sorting, printing and freeing a struct of strings per row was a third of the
// command. `latencyReport` (the Codable rows other reports and tests read) is made from the same table.
import BeamTerm
import Foundation
import TraceModel

public struct LatencyTable: ~Copyable {
    struct Numbers {
        var calls: Int, returned: Int, exceptions: Int, unmeasured: Int
        var min: Double, mean: Double, p50: Double, p90: Double, p99: Double, p999: Double, max: Double
        var selfP50: Double
    }

    var numbers: [Numbers] = []
    var keys: [LatencyKey] = []
    /// Row i's function text is `names[nameStarts[i] ..< mfaEnds[i]]`, its group's follows up to
    /// `nameStarts[i + 1]` (one more start than rows closes the last).
    var names = TextBuffer(capacity: 1 << 16)
    var nameStarts: [Int] = [0]
    var mfaEnds: [Int] = []
    /// Whether row i's function and group texts are all ASCII (compared as bytes when both are).
    var ascii: [Bool] = []
    /// Exceptions by reason head, most frequent first, for the rows that have any.
    var reasons: [Int: [ReasonCount]] = [:]
    let grouped: Bool
    /// Row indices in printed order.
    public private(set) var order: [Int] = []

    public var count: Int { numbers.count }

    init(grouped: Bool) {
        self.grouped = grouped
    }

    // MARK: building

    /// Ends the name of the row being added (its function text is written from `start` on).
    mutating func endFunctionText() { mfaEnds.append(names.count) }

    /// Drops the name written from `start` on (a row the filter did not take).
    mutating func dropName(from start: Int) { names.truncate(to: start) }

    mutating func addRow(_ key: LatencyKey, _ row: Numbers, reasons rowReasons: [ReasonCount]) {
        addRow(key, precomputedRow: numbers.count, reasons: rowReasons)
        numbers.append(row)
    }

    /// Adds row `row` (the next one) whose numbers the caller puts in `numbers` itself once all rows are in.
    mutating func addRow(_ key: LatencyKey, precomputedRow row: Int, reasons rowReasons: [ReasonCount]) {
        let start = nameStarts[nameStarts.count - 1]
        let end = names.count
        let isASCII = names.withUnsafeBytes { raw in !raw[start..<end].contains { $0 >= 0x80 } }
        if !rowReasons.isEmpty { reasons[row] = rowReasons }
        keys.append(key)
        ascii.append(isASCII)
        nameStarts.append(end)
    }

    /// Orders the rows by a column, largest first, ties by name (function, then group), as String's
    /// `<` orders them; `mfa` orders by name alone.
    mutating func sort(by column: String, parallelFrom: Int = parallelRows) {
        let byName = column == "mfa"
        // Sorted as plain keys (the column, 8 bytes of an ASCII function text after the start that all
        // ASCII texts share, `bt_f50000:` in a generated module) with the row: the names are read only
        // when both of those tie.
        var keys: [SortKey] = []
        keys.reserveCapacity(numbers.count)
        // The column picked once, not per row (a String compare per row).
        let pick: (Numbers) -> Double = switch column {
        case "p50": { $0.p50 }
        case "p90": { $0.p90 }
        case "max": { $0.max }
        case "mean": { $0.mean }
        case "calls": { Double($0.calls) }
        case "mfa": { _ in 0 }
        default: { $0.p99 }
        }
        names.withUnsafeBytes { raw in
            let shared = sharedStart(raw)
            for (i, row) in numbers.enumerated() {
                let prefix = ascii[i] ? Self.prefix(raw, nameStarts[i] + shared, mfaEnds[i]) : 0
                keys.append(SortKey(value: pick(row), prefix: prefix, row: Int32(truncatingIfNeeded: i),
                                    ascii: ascii[i]))
            }
            let names = NameOrder(ascii: ascii, nameStarts: nameStarts, mfaEnds: mfaEnds, grouped: grouped, raw: raw)
            let less: (SortKey, SortKey) -> Bool = { a, b in
                if a.value != b.value { return a.value > b.value }
                if a.prefix != b.prefix, a.ascii && b.ascii { return a.prefix < b.prefix }
                return byName ? names.mfaPrecedes(Int(a.row), Int(b.row)) : names.precedes(Int(a.row), Int(b.row))
            }
            guard keys.count >= Swift.max(2, parallelFrom) else {
                keys.sort(by: less)
                return
            }
            // Two halves sorted at once, then merged (the left's first on a tie, as one stable sort
            // keeps them): the comparisons of 50,000 rows were 7% of `latency --json`, on one core.
            let n = keys.count, half = n / 2
            var merged: [SortKey] = []
            merged.reserveCapacity(n)
            keys.withUnsafeMutableBufferPointer { all in
                var left = UnsafeMutableBufferPointer(rebasing: all[0..<half])
                var right = UnsafeMutableBufferPointer(rebasing: all[half..<n])
                bothAtOnce({ left.sort(by: less) }, { right.sort(by: less) })
                var i = 0, j = half
                while i < half && j < n {
                    if less(all[j], all[i]) {
                        merged.append(all[j])
                        j += 1
                    } else {
                        merged.append(all[i])
                        i += 1
                    }
                }
                merged.append(contentsOf: all[i..<half])
                merged.append(contentsOf: all[j..<n])
            }
            keys = merged
        }
        order = keys.map { Int($0.row) }
    }

    /// 24 bytes, everything a comparison reads before a tie of names (no lookup by row).
    private struct SortKey {
        var value: Double
        /// 8 bytes of the function text from the shared start on, big-endian, zero-padded (texts hold
        /// no zero byte).
        var prefix: UInt64
        var row: Int32
        /// Whether the row's texts are all ASCII (`prefix` orders it only then).
        var ascii: Bool
    }

    /// How many bytes every ASCII row's function text starts with (texts equal up to there order as
    /// the rest orders them).
    private func sharedStart(_ raw: UnsafeRawBufferPointer) -> Int {
        guard let first = ascii.firstIndex(of: true) else { return 0 }
        var shared = mfaEnds[first] - nameStarts[first]
        for i in numbers.indices where ascii[i] && shared > 0 {
            let start = nameStarts[i], other = nameStarts[first]
            var k = 0
            let n = Swift.min(shared, mfaEnds[i] - start)
            while k < n && raw[start + k] == raw[other + k] { k += 1 }
            shared = k
        }
        return shared
    }

    private static func prefix(_ raw: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> UInt64 {
        var value: UInt64 = 0
        for k in 0..<8 { value = value << 8 | UInt64(start + k < end ? raw[start + k] : 0) }
        return value
    }

    /// How rows order by name (function text, then group), as String's `<` orders them: the arena's
    /// bytes compared when both rows are ASCII. A copy of what it reads, for the two sorting threads.
    private struct NameOrder {
        let ascii: [Bool], nameStarts: [Int], mfaEnds: [Int]
        let grouped: Bool
        let raw: UnsafeRawBufferPointer

        func mfaPrecedes(_ i: Int, _ j: Int) -> Bool {
            guard ascii[i] && ascii[j] else { return mfaText(i) < mfaText(j) }
            return LatencyTable.compare(raw, nameStarts[i], mfaEnds[i], nameStarts[j], mfaEnds[j]) < 0
        }

        func precedes(_ i: Int, _ j: Int) -> Bool {
            guard ascii[i] && ascii[j] else { return (mfaText(i), groupText(i)) < (mfaText(j), groupText(j)) }
            let byMFA = LatencyTable.compare(raw, nameStarts[i], mfaEnds[i], nameStarts[j], mfaEnds[j])
            if byMFA != 0 { return byMFA < 0 }
            return LatencyTable.compare(raw, mfaEnds[i], nameStarts[i + 1], mfaEnds[j], nameStarts[j + 1]) < 0
        }

        private func mfaText(_ row: Int) -> String {
            String(decoding: raw[nameStarts[row]..<mfaEnds[row]], as: UTF8.self)
        }

        /// "" when not grouping (as `groupText(_:) ?? ""`).
        private func groupText(_ row: Int) -> String {
            grouped ? String(decoding: raw[mfaEnds[row]..<nameStarts[row + 1]], as: UTF8.self) : ""
        }
    }

    /// Lexicographic order of two ranges of the arena: negative, 0 or positive.
    fileprivate static func compare(_ raw: UnsafeRawBufferPointer, _ a: Int, _ aEnd: Int, _ b: Int, _ bEnd: Int) -> Int {
        let n = Swift.min(aEnd - a, bEnd - b)
        if n > 0, let base = raw.baseAddress {
            let c = memcmp(base + a, base + b, n)
            if c != 0 { return Int(c) }
        }
        return (aEnd - a) - (bEnd - b)
    }

    // MARK: reading

    func mfaText(_ row: Int) -> String { names.withUnsafeBytes { text($0, nameStarts[row], mfaEnds[row]) } }

    func groupText(_ row: Int) -> String? {
        grouped ? names.withUnsafeBytes { text($0, mfaEnds[row], nameStarts[row + 1]) } : nil
    }

    private func text(_ raw: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> String {
        String(decoding: raw[start..<end], as: UTF8.self)
    }

    /// The row as the Codable report has it, named by `mfa` and `group` (the reference texts).
    func row(_ i: Int, mfa: String, group: String?) -> LatencyRow {
        let n = numbers[i]
        return LatencyRow(
            mfa: mfa, group: group, calls: n.calls, returned: n.returned, exceptions: n.exceptions,
            unmeasured: n.unmeasured, minMicros: n.min, meanMicros: n.mean, p50Micros: n.p50, p90Micros: n.p90,
            p99Micros: n.p99, p999Micros: n.p999, maxMicros: n.max, selfP50Micros: n.selfP50,
            exceptionReasons: reasons[i] ?? [])
    }
}

extension CaptureAnalysis {
    /// The latency rows in printed order (see `latencyReport`, the same rows as Codable values).
    public func latencyTable(sortBy: String = "p99", mfaFilter: ((String) -> Bool)? = nil) -> LatencyTable {
        latencyTable(sortBy: sortBy, mfaFilter: mfaFilter, parallelFrom: LatencyTable.parallelRows)
    }

    /// The same, the rows' numbers worked out and sorted on two threads from `parallelFrom` rows on (the
    /// tests take that path on a small capture).
    func latencyTable(sortBy: String, mfaFilter: ((String) -> Bool)?, parallelFrom: Int) -> LatencyTable {
        var table = LatencyTable(grouped: latency.grouping != .function)
        table.keys.reserveCapacity(latency.count)
        var writer = FunctionTextWriter(dictionaries)
        var numbers = RowNumbers()
        // One copy of the stats for the whole walk (each read of the analysis's property copied them,
        // retaining every array they hold: two copies per row were 4% of the command).
        let latency = self.latency
        // Many rows and no filter: their numbers (the percentiles, most of a row's cost) worked out on
        // two threads first, the decoder's core being idle by now; the names then in one walk.
        var indices: [Int32] = []
        indices.reserveCapacity(latency.count)
        latency.forEachIndex { indices.append(Int32(truncatingIfNeeded: $0)) }
        var precomputed: [LatencyTable.Numbers] = []
        if mfaFilter == nil && !indices.isEmpty && indices.count >= parallelFrom {
            let n = indices.count
            precomputed = [LatencyTable.Numbers](unsafeUninitializedCapacity: n) { buffer, initialized in
                guard let base = buffer.baseAddress else { return }
                indices.withUnsafeBufferPointer { indices in
                    func fill(_ range: Range<Int>) {
                        var numbers = RowNumbers()
                        for k in range { (base + k).initialize(to: numbers.of(Int(indices[k]), in: latency)) }
                    }
                    bothAtOnce({ fill(0..<n / 2) }, { fill(n / 2..<n) })
                }
                initialized = n
            }
        } else {
            table.numbers.reserveCapacity(latency.count)
        }
        for (position, index32) in indices.enumerated() {
            let index = Int(index32)
            let key = latency.key(index)
            let start = table.names.count
            writer.append(key.mfa, to: &table.names)
            if let mfaFilter, !mfaFilter(table.names.string(from: start)) {
                table.dropName(from: start)
                continue
            }
            table.endFunctionText()
            switch latency.grouping {
            case .function: break
            case .process: table.names.append(utf8: processText(key.group))
            case .node: table.names.append(utf8: nodeText(key.group))
            }
            let reasons: [ReasonCount] = latency.entries[index].exceptionReasons.isEmpty ? []
                : latency.entries[index].exceptionReasons
                .sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
                .map { ReasonCount(reason: $0.key, count: $0.value) }
            if precomputed.isEmpty {
                table.addRow(key, numbers.of(index, in: latency), reasons: reasons)
            } else {
                table.addRow(key, precomputedRow: position, reasons: reasons)
            }
        }
        // Every row was taken (no filter), in the order its numbers were worked out.
        if !precomputed.isEmpty { table.numbers = precomputed }
        table.sort(by: sortBy, parallelFrom: parallelFrom)
        return table
    }
}

/// Works out a row's numbers, with the buffers and percentile ranks it reuses from row to row (one per
/// thread).
struct RowNumbers {
    var scratch: [UInt64] = []
    var p = [UInt64](repeating: 0, count: CaptureAnalysis.reportPercentiles.count), selfP50 = [UInt64(0)]
    var reportRanks = PercentileRanks(CaptureAnalysis.reportPercentiles)
    var medianRank = PercentileRanks(CaptureAnalysis.medianOnly)

    mutating func of(_ index: Int, in latency: LatencyStats) -> LatencyTable.Numbers {
        // One sort (or one walk of the buckets) for every percentile, into buffers reused from row
        // to row; min, max and mean are exact.
        p.withUnsafeMutableBufferPointer {
            latency.percentiles(index, selfTime: false, &reportRanks, scratch: &scratch, into: $0)
        }
        selfP50.withUnsafeMutableBufferPointer {
            latency.percentiles(index, selfTime: true, &medianRank, scratch: &scratch, into: $0)
        }
        // Plain fields read in place (no copy of the entry and the arrays it holds).
        let calls = latency.entries[index].calls, returned = latency.entries[index].returned
        let exceptions = latency.entries[index].exceptions, measured = latency.entries[index].measured
        let mean = measured == 0 ? 0 : latency.entries[index].totalSum / Double(measured)
        return LatencyTable.Numbers(
            calls: calls, returned: returned, exceptions: exceptions, unmeasured: calls - returned - exceptions,
            min: Double(latency.entries[index].totalMin) / 1000, mean: mean / 1000, p50: Double(p[0]) / 1000,
            p90: Double(p[1]) / 1000, p99: Double(p[2]) / 1000, p999: Double(p[3]) / 1000,
            max: Double(latency.entries[index].totalMax) / 1000, selfP50: Double(selfP50[0]) / 1000)
    }
}
