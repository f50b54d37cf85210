// `latency` output written byte by byte (PrettyJSON, TextTable, DurationCell) against what Foundation
// makes of the same report: JSONEncoder for `--json`, String(format:) and String padding for the table,
// on awkward values and on a real OTP trace with exceptions, through the command itself.
import BeamTerm
import CaptureStore
import Foundation
import Testing
import TestSupport
@testable import TraceAnalysis
import TraceModel

@Suite("latency output without JSONEncoder")
struct ReportOutputTests {
    static func encoderJSON<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func ourJSON(_ report: LatencyReport) -> String {
        var json = PrettyJSON()
        report.writeJSON(into: &json)
        return json.text
    }

    /// The table as the commands printed it with Strings (the reference: Foundation pads and formats).
    static func stringTable(_ header: [String], _ rows: [[String]]) -> String {
        var widths = header.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, cell in
                i == 0 ? cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: max(0, widths[i] - cell.count)) + cell
            }.joined(separator: "  ")
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }

    static func row(_ mfa: String, group: String?, values: [Double], reasons: [ReasonCount]) -> LatencyRow {
        LatencyRow(mfa: mfa, group: group, calls: 12, returned: 10, exceptions: reasons.reduce(0) { $0 + $1.count },
                   unmeasured: 2, minMicros: values[0], meanMicros: values[1], p50Micros: values[2],
                   p90Micros: values[3], p99Micros: values[4], p999Micros: values[5], maxMicros: values[6],
                   selfP50Micros: values[7], exceptionReasons: reasons)
    }

    @Test("the JSON is JSONEncoder's, byte for byte: escapes, groups, empty lists, every kind of number")
    func jsonAgainstEncoder() throws {
        var rng = SplitMix(seed: 11)
        func micros() -> Double {
            switch rng.next() % 6 {
            case 0: return Double(rng.next() % 1000) / 1000
            case 1: return Double(rng.next() % 10_000_000) / 1000
            case 2: return Double(rng.next() % 1_000_000_000_000_000) / 1000  // beyond the integer shortcut
            case 3: return Double(rng.next() % 10_000_000_000_000_000_000) / 1000
            case 4: return Double(rng.next() % 1_000_000_007) / 7_000  // means: any double
            default: return [0, 1, 1e-7, 2.5e-5, 1e16, 1e21, 0.1 + 0.2, 123_456.5, 5e-324][Int(rng.next() % 9)]
            }
        }
        let names = ["m:f/1", "'a b':'c\"d'/2", "back\\slash:x/0", "path/like:f/3", "tab\there:f/1", "\u{8}\u{c}\n\r:f/0",
                     "\u{1}\u{1f}\u{7f}:f/1", "é→😀:f/1", "Elixir.Mod.fun/2", ""]
        var rows: [LatencyRow] = []
        for i in 0..<2_000 {
            let reasons = i % 3 == 0 ? [] : (0..<Int(rng.next() % 3 + 1)).map {
                ReasonCount(reason: "exit {aborted,{cyclic,…}} \"\($0)\"", count: Int(rng.next() % 100))
            }
            rows.append(Self.row(names[i % names.count], group: i % 2 == 0 ? nil : "<0.\(i).0> \"q\"",
                                 values: (0..<8).map { _ in micros() }, reasons: reasons))
        }
        for report in [LatencyReport(functions: rows), LatencyReport(functions: []), LatencyReport(functions: [rows[1]])] {
            #expect(Self.ourJSON(report) == (try Self.encoderJSON(report)))
        }
    }

    @Test("microseconds made from whole nanoseconds print as their description does")
    func thousandthsAgainstDescription() {
        var rng = SplitMix(seed: 5)
        var checked = 0
        for i in 0..<300_000 {
            let ns: UInt64 = switch i % 4 {
            case 0: rng.next() % 1000
            case 1: rng.next() % 10_000_000
            case 2: rng.next() % 1_000_000_000_000
            default: rng.next() % 1_000_000_000_000_000
            }
            let value = Double(ns) / 1000
            var out = TextBuffer(capacity: 64)
            DoubleText.appendJSON(value, to: &out)
            var expected = value.description
            if expected.hasSuffix(".0") { expected.removeLast(2) }
            if out.string() != expected {
                Issue.record("\(ns) ns: \(out.string()), description \(expected)")
                return
            }
            checked += DoubleText.wholeNanoseconds(value) == nil ? 0 : 1
        }
        #expect(checked == 300_000)  // every one went through the integer shortcut
    }

    @Test("duration cells are String(format:)'s, ties and units included")
    func durationCellsAgainstFormat() {
        var rng = SplitMix(seed: 9)
        var values: [Double] = [0, 0.05, 0.15, 0.25, 999.95, 999.96, 1000, 999_999.995, 1_000_000, 1e12, 1e15, 2e16,
                                0.1 + 0.2, 5e-324, 1234.5678, 999_999_999_999.999, 123_456_789_012.345, 4_294_967_296.001]
        for unit: UInt64 in [100, 10_000, 10_000_000] {
            for _ in 0..<8_000 {
                // Around ties (n % unit == unit / 2) and anywhere.
                let base = rng.next() % 200_000 * unit
                values.append(Double(base + unit / 2) / 1000)
                values.append(Double(base + unit / 2 + rng.next() % 3 - 1) / 1000)
                values.append(Double(rng.next() % (unit * 100_000)) / 1000)
            }
        }
        for value in values {
            var out = TextBuffer(capacity: 64)
            let width = DurationCell.append(micros: value, to: &out)
            let expected = DurationCell.formatted(micros: value)
            if out.string() != expected || width != expected.count {
                Issue.record("\(value) µs: \(out.string()) (\(width)), String(format:) \(expected)")
                return
            }
        }
    }

    @Test("the table pads as String padding does, names beyond ASCII included")
    func tableAgainstStrings() {
        let header = ["function", "calls", "exc", "p50"]
        let names = ["m:f/1", "é:f/1", "e\u{301}:f/1", "😀:g/2", "a_much_longer_name:handle_call/3", "µ:f/0"]
        var rows: [[String]] = []
        var table = TextTable(header: header)
        for (i, name) in (names + names.reversed()).enumerated() {
            let micros = Double(i * 1_234_567 % 100_000_000) / 1000
            rows.append([name, "\(i * 37)", "\(i % 3)", DurationCell.formatted(micros: micros)])
            table.add(name)
            table.add(i * 37)
            table.add(i % 3)
            table.add(micros: micros)
        }
        var out = TextBuffer()
        table.write(into: &out)
        #expect(out.string() == Self.stringTable(header, rows))
        #expect(table.rowCount == rows.count)
    }

    @Test("beamtrace latency prints JSONEncoder's JSON and the String table, on a real trace with exceptions, for its options")
    func commandOutput() throws {
        let run = try Workload.run("stacks(DIR)")
        defer { try? FileManager.default.removeItem(at: run.directory) }
        let cli = try #require(BuiltProducts.executable("beamtrace"), "the beamtrace executable was not built")
        let all = try CaptureAnalysis.run(CaptureReader(opening: run.capture), options: AnalysisOptions(latency: .percentiles))
        // A function of the trace for --mfa (`mod:fun`, any arity): the filter keeps its rows and no other.
        let names = all.latencyReport().functions.map(\.mfa)
        let function = try #require(names.first.map { String($0.prefix { $0 != "/" }) })
        #expect(names.contains { !$0.hasPrefix(function + "/") })
        let cases: [(LatencyStats.Grouping, String, Bool, [String])] = [
            (.function, "p99", false, []), (.process, "p99", false, ["--by", "process"]),
            (.node, "calls", false, ["--by", "node", "--sort", "calls"]), (.function, "mfa", false, ["--sort", "mfa"]),
            (.process, "mean", true, ["--by", "process", "--sort", "mean", "--elixir"]),
            (.function, "max", false, ["--mfa", function, "--sort", "max"]),
        ]
        for (grouping, sort, elixir, arguments) in cases {
            let reader = try CaptureReader(opening: run.capture)
            reader.elixirSyntax = elixir
            let analysis = try CaptureAnalysis.run(reader, options: AnalysisOptions(grouping: grouping, latency: .percentiles))
            let filter: ((String) -> Bool)? = arguments.contains("--mfa") ? { text in
                (try? FunctionMatcher(parsing: function))?.matches(printed: text) ?? false
            } : nil
            let report = analysis.latencyReport(sortBy: sort, mfaFilter: filter)
            #expect(report.functions.contains { !$0.exceptionReasons.isEmpty } || filter != nil)
            #expect(!report.functions.isEmpty)
            if filter != nil { #expect(report.functions.allSatisfy { $0.mfa.hasPrefix(function + "/") }) }
            let json = try Shell.run(cli, ["latency", run.capture, "--json"] + arguments)
            #expect(json == (try Self.encoderJSON(report)) + "\n", "\(arguments)")
            let text = try Shell.run(cli, ["latency", run.capture] + arguments)
            let rows = report.functions.map { row in
                [row.mfa + (row.group.map { " @ \($0)" } ?? ""), "\(row.calls)", "\(row.exceptions)"]
                    + [row.p50Micros, row.p90Micros, row.p99Micros, row.p999Micros, row.maxMicros, row.selfP50Micros]
                    .map(DurationCell.formatted(micros:))
            }
            var expected = Self.stringTable(["function", "calls", "exc", "p50", "p90", "p99", "p99.9", "max", "self p50"],
                                            rows) + "\n"
            if report.functions.contains(where: { !$0.exceptionReasons.isEmpty }) { expected += "\nexceptions by reason:\n" }
            for row in report.functions {
                for reason in row.exceptionReasons.prefix(5) {
                    expected += "  " + row.mfa + (row.group.map { " @ \($0)" } ?? "") + "  \(reason.reason)  x\(reason.count)\n"
                }
            }
            #expect(text == expected, "\(arguments)")
        }
    }

    @Test("latency laid out on two threads (rows' numbers, sort, JSON and text) is JSONEncoder's and String's, byte for byte, on a real trace")
    func twoThreadJSON() throws {
        let run = try Workload.run("stacks(DIR)")
        defer { try? FileManager.default.removeItem(at: run.directory) }
        for grouping in [LatencyStats.Grouping.function, .process] {
            let analysis = try CaptureAnalysis.run(CaptureReader(opening: run.capture),
                                                   options: AnalysisOptions(grouping: grouping, latency: .percentiles))
            let report = analysis.latencyReport()
            #expect(report.functions.count >= 4, "\(grouping)")
            // Sorted on two threads (halves merged), every column: the same order as one sort.
            for column in ["p99", "p50", "mfa", "calls", "mean", "max"] {
                let one = analysis.latencyTable(sortBy: column, mfaFilter: nil, parallelFrom: .max)
                let two = analysis.latencyTable(sortBy: column, mfaFilter: nil, parallelFrom: 1)
                #expect(one.order.map { one.mfaText($0) + (one.groupText($0) ?? "") }
                        == two.order.map { two.mfaText($0) + (two.groupText($0) ?? "") }, "\(grouping) \(column)")
                #expect(Set(two.order) == Set(0..<two.count))
            }
            #expect(report.functions.contains { !$0.exceptionReasons.isEmpty }, "\(grouping)")
            let expected = try Self.encoderJSON(report)
            // From the first row on, in rounds of 1 and 2 rows per thread: every row goes through the
            // second thread's writer or this one's, the first and last rounds short.
            for batch in [1, 2, 3] {
                let table = analysis.latencyTable(sortBy: "p99", mfaFilter: nil, parallelFrom: 1)
                var json = PrettyJSON()
                table.writeJSON(into: &json, parallelFrom: 1, batch: batch)
                #expect(json.text == expected, "\(grouping) batch \(batch)")
            }
            // Drained as it goes, the bytes are the same.
            let table = analysis.latencyTable(sortBy: "p99", mfaFilter: nil, parallelFrom: 1)
            var drained: [UInt8] = []
            var json = PrettyJSON(capacity: 0, drain: { drained.append(contentsOf: $0) })
            table.writeJSON(into: &json, parallelFrom: 1, batch: 2)
            json.finish()
            #expect(String(decoding: drained, as: UTF8.self) == expected, "\(grouping) drained")

            // The text table, its halves laid out and written on two threads (widths shared): the
            // table String formatting makes of the report's rows.
            let rows = report.functions.map { row in
                [row.mfa + (row.group.map { " @ \($0)" } ?? ""), "\(row.calls)", "\(row.exceptions)"]
                    + [row.p50Micros, row.p90Micros, row.p99Micros, row.p999Micros, row.maxMicros, row.selfP50Micros]
                    .map(DurationCell.formatted(micros:))
            }
            let text = Self.stringTable(["function", "calls", "exc", "p50", "p90", "p99", "p99.9", "max", "self p50"], rows)
            for parallelFrom in [1, 2, 3, Int.max] {
                var out = TextBuffer()
                table.writeTable(into: &out, parallelFrom: parallelFrom)
                #expect(out.string() == text, "\(grouping) text from \(parallelFrom) rows on two threads")
                // Drained line by line as it is written (the command's way), the rest left in the buffer.
                var drained: [UInt8] = []
                var rest = TextBuffer()
                table.writeTable(into: &rest, parallelFrom: parallelFrom, drain: { drained.append(contentsOf: $0) },
                                 drainSize: 1)
                #expect(!drained.isEmpty)
                #expect(String(decoding: drained, as: UTF8.self) + rest.string() == text, "\(grouping) drained")
            }
        }
    }
}
