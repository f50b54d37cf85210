// Replay commands: timeline, latency, queues, hang, diff, state. Each parses, runs TraceAnalysis
// and prints a readable table or, with --json, the report as documented in docs/ANALYSIS.md.
import ArgumentParser
import BeamTerm
import CaptureStore
import Foundation
import TraceAnalysis
import TraceModel

struct WindowOptions: ParsableArguments {
    @Option(help: ArgumentHelp("From this instant: \(InstantArgument.help).", valueName: "instant")) var from: String?
    @Option(help: ArgumentHelp("Up to this instant (inclusive).", valueName: "instant")) var to: String?
    @Option(help: "Only events of these nodes (name@host); with it, <0.N.S> pids mean that node's processes.")
    var node: [String] = []
    @Flag(help: "Print JSON.") var json = false
    @OptionGroup var times: TimeOptions
    @OptionGroup var syntax: SyntaxOptions
}

enum AnalysisIO {
    /// Opens a capture; with `syntax`, its reports print in Elixir syntax when asked or when the
    /// capture is of Elixir modules.
    static func open(_ capture: String, syntax: SyntaxOptions? = nil) throws -> CaptureReader {
        do {
            let reader = try CaptureReader(opening: capture)
            if let syntax { reader.elixirSyntax = syntax.useElixir(reader.dictionaries) }
            warn(reader.problems)
            return reader
        } catch {
            throw CLIError("cannot open capture \(capture): \(error)")
        }
    }

    /// Replays the capture. Damage found while reading (a corrupt block is skipped, the rest stays
    /// readable) is reported on stderr, so a result from a damaged capture never looks complete.
    static func analyze(_ reader: CaptureReader, _ options: AnalysisOptions = AnalysisOptions()) throws -> CaptureAnalysis {
        let known = reader.problems.count
        defer { warn(reader.problems.dropFirst(known)) }
        do {
            return try CaptureAnalysis.run(reader, options: options)
        } catch {
            throw CLIError("reading \(reader.directory) failed: \(error)")
        }
    }

    /// Replays the capture into a stream consumer (see `analyze` for damage).
    static func stream(_ reader: CaptureReader, _ options: AnalysisOptions, into consumer: any AnalysisStreamConsumer,
                       task: String = "replay") throws -> CaptureAnalysis {
        let known = reader.problems.count
        defer { warn(reader.problems.dropFirst(known)) }
        do {
            return try AnalysisStream.run(reader, analysis: options, into: consumer, progress: TerminalProgress.standardError,
                                          task: task)
        } catch {
            throw CLIError("reading \(reader.directory) failed: \(error)")
        }
    }

    static func warn(_ problems: some Sequence<CaptureProblem>) {
        for line in CaptureProblem.warningLines(problems) {
            FileHandle.standardError.write(Data("warning: \(line)\n".utf8))
        }
    }

    /// The window and filters as an `EventQuery`. Unknown nodes, processes and functions are usage
    /// errors listing what the capture has.
    static func query(_ reader: CaptureReader, _ window: WindowOptions, pids: [String] = [], mfas: [String] = []) throws -> EventQuery {
        do {
            return try EventQuery.parse(reader: reader, start: reader.blocks.map(\.timeMin).min(), from: window.from,
                                        to: window.to, nodes: window.node, pids: pids, functions: mfas, kinds: [])
        } catch let error as CaptureError where error.code == .invalidArgument {
            throw ValidationError(error.message)
        } catch {
            throw CLIError("\(error)")
        }
    }

    /// What to say when a replay saw no event: an empty capture, or a window or filter that
    /// holds none of its events (with where its events are, so the next try hits them).
    static func noEvents(_ reader: CaptureReader) -> String {
        let total = reader.blocks.reduce(0) { $0 + Int($1.count) }
        guard total > 0, let first = reader.blocks.map(\.timeMin).min(), let last = reader.blocks.map(\.timeMax).max() else {
            return "no events in this window: the capture is empty"
        }
        return "no events in this window: the capture's \(total) events span +0 ns to +\(Durations.text(last - first)) "
            + "(\(first) to \(last) ns); check --from/--to and the filters"
    }

    static func printJSON<T: Encodable>(_ value: T) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        FileHandle.standardOutput.write(try encoder.encode(value))
        FileHandle.standardOutput.write(Data("\n".utf8))
    }

    /// Writes all of `bytes` to stdout (stops quietly when stdout is closed, as a pipe into head).
    static func writeStandardOutput(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress else { return }
        var done = 0
        while done < bytes.count {
            let n = Foundation.write(1, base + done, bytes.count - done)
            if n > 0 {
                done += n
            } else if n < 0 && errno == EINTR {
                continue
            } else {
                return
            }
        }
    }

    static func table(_ header: [String], _ rows: [[String]]) -> String {
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

    static func micros(_ value: Double) -> String {
        if value >= 1_000_000 { return String(format: "%.2fs", value / 1_000_000) }
        if value >= 1000 { return String(format: "%.2fms", value / 1000) }
        return String(format: "%.1fµs", value)
    }
}

struct TimelineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "timeline",
                                                    abstract: "Indented call tree per process, with durations.")
    @Argument(help: "The capture directory.") var capture: String
    @Option(help: "Only this process (<0.80.0>, <node@host.80.0>).") var pid: [String] = []
    @Option(help: "Only this registered name (MyApp.Worker for Elixir's).") var name: [String] = []
    @Option(help: "Hide calls shorter than this (e.g. 1ms, 250us).") var minDuration: String?
    @Option(help: "Print at most this many spans.") var limit = 10_000
    @OptionGroup var window: WindowOptions

    func run() throws {
        let reader = try AnalysisIO.open(capture, syntax: window.syntax)
        let query = try AnalysisIO.query(reader, window, pids: pid + name)
        var minimum: Int64 = 0
        if let minDuration {
            do {
                minimum = try DurationText.parse(minDuration)
            } catch {
                throw ValidationError("--min-duration: \(error.description)")
            }
        }
        let collector = TimelineCollector(minimumDuration: minimum, limit: limit)
        let analysis = try AnalysisIO.stream(reader, AnalysisOptions(query: query, latency: .none), into: collector)
        if window.json {
            try AnalysisIO.printJSON(collector.report())
            return
        }
        if analysis.events == 0 { print(AnalysisIO.noEvents(reader)); return }
        print(collector.text(base: analysis.startTime, windowed: window.from != nil))
    }
}

struct LatencyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "latency",
                                                    abstract: "Per-function latency percentiles.")
    @Argument(help: "The capture directory.") var capture: String
    enum By: String, ExpressibleByArgument, CaseIterable { case process, node }
    enum Sort: String, ExpressibleByArgument, CaseIterable { case p50, p90, p99, max, mean, calls, mfa }

    @Option(help: ArgumentHelp("Only these functions: \(FunctionMatcher.help).", valueName: "function"))
    var mfa: [String] = []
    @Option(help: "Group by process or node as well as function.") var by: By?
    @Option(help: "Sort by this column.") var sort: Sort = .p99
    @OptionGroup var window: WindowOptions

    func run() throws {
        let reader = try AnalysisIO.open(capture, syntax: window.syntax)
        let grouping: LatencyStats.Grouping = switch by {
        case .process: .process
        case .node: .node
        case nil: .function
        }
        // Unknown functions fail here, listing the capture's.
        _ = try AnalysisIO.query(reader, window, mfas: mfa)
        let matchers = try mfa.map { text in
            do { return try FunctionMatcher(parsing: text) } catch { throw ValidationError("\(error)") }
        }
        let query = try AnalysisIO.query(reader, window)
        var options = AnalysisOptions(grouping: grouping, query: query, latency: .percentiles)
        options.followCalls = false  // percentiles need no waiting model
        options.trackProcesses = false  // nor queues or samples: no payloads but exceptions' are read
        let analysis = try AnalysisIO.analyze(reader, options)
        // The rows flat, named straight from the atoms, written as JSONEncoder and the String table
        // wrote them (50,000 rows for as many functions).
        let table = analysis.latencyTable(sortBy: sort.rawValue, mfaFilter: matchers.isEmpty ? nil : { text in
            matchers.contains { $0.matches(printed: text) }
        })
        if window.json {
            var json = PrettyJSON(drain: AnalysisIO.writeStandardOutput)
            table.writeJSON(into: &json)
            json.newline()
            json.finish()
            return
        }
        if analysis.events == 0 { print(AnalysisIO.noEvents(reader)); return }
        var out = TextBuffer()
        table.writeText(into: &out, drain: AnalysisIO.writeStandardOutput)
        out.withUnsafeBytes { AnalysisIO.writeStandardOutput($0) }
    }
}

struct QueuesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "queues",
                                                    abstract: "Message-queue growth per process.")
    @Argument(help: "The capture directory.") var capture: String
    @Option(help: "Show the N longest queues.") var top = 20
    @Option(help: "Queue length for the time-to-reach estimate.") var target: Int64 = 100_000
    @OptionGroup var window: WindowOptions

    func run() throws {
        let reader = try AnalysisIO.open(capture, syntax: window.syntax)
        let query = try AnalysisIO.query(reader, window)
        var options = AnalysisOptions(query: query, queueTarget: target, latency: .none)
        options.followCalls = false  // queue series need no waiting model
        let analysis = try AnalysisIO.analyze(reader, options)
        let reports = analysis.queueReports(top: top)
        if window.json { try AnalysisIO.printJSON(QueuesReport(processes: reports)); return }
        if analysis.events == 0 { print(AnalysisIO.noEvents(reader)); return }
        let rows = reports.map { q in
            [q.pid + (q.name.map { " (\($0))" } ?? ""), "\(q.maxLength)", "\(q.endLength)",
             String(format: "%.1f/s", q.slopePerSecond), String(format: "%.2f", q.fit), q.growing ? "yes" : "no",
             q.estimated ? "estimated" : "sampled"]
        }
        print(rows.isEmpty ? "no queue data (record samples, or trace send/receive and gen_server callbacks)"
              : AnalysisIO.table(["process", "max", "end", "slope", "fit", "growing", "source"], rows))
    }
}

struct QueuesReport: Codable { var processes: [QueueGrowthReport] }

struct HangCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "hang",
                                                    abstract: "Diagnose a hang: ranked suspects with evidence and a verdict.")
    @Argument(help: "The capture directory.") var capture: String
    @Option(help: "Show at most N suspects.") var top = 10
    @OptionGroup var window: WindowOptions

    func run() throws {
        let reader = try AnalysisIO.open(capture, syntax: window.syntax)
        let query = try AnalysisIO.query(reader, window)
        let analysis = try AnalysisIO.analyze(reader, AnalysisOptions(query: query, latency: .none))
        var report = analysis.hangReport()
        report.suspects = Array(report.suspects.prefix(top))
        if window.json { try AnalysisIO.printJSON(report); return }
        if analysis.events == 0 { print("Verdict: " + AnalysisIO.noEvents(reader) + "."); return }
        let time = window.times.text(for: reader)
        var out = "Verdict: " + report.verdict + "\n"
        if !report.suspects.isEmpty {
            out += "\nSuspects:\n"
            for (i, s) in report.suspects.enumerated() {
                out += String(format: "%2d. %@ %@%@ on %@  score %.1f\n", i + 1, s.reason.rawValue, s.pid,
                              s.name.map { " (\($0))" } ?? "", s.node, s.score)
                out += "      \(s.summary)\n"
                for key in s.evidence.keys.sorted() {
                    // Instants (`…_since_ns`, `…_at_ns`) in the time people read.
                    if key.hasSuffix("_ns"), !key.hasPrefix("duration"), case .int(let ns)? = s.evidence[key],
                       key.contains("since") || key.contains("_at") {
                        out += "      \(key.dropLast(3)): \(time.instant(Int64(ns)))\n"
                        continue
                    }
                    out += "      \(key): \(Self.text(s.evidence[key]))\n"
                }
            }
        }
        print(out, terminator: "")
    }

    static func text(_ value: JSONValue?) -> String {
        switch value {
        case .string(let s)?: return s
        case .number(let d)?: return String(format: "%.4g", d)
        case .int(let i)?: return String(i)
        case .bool(let b)?: return String(b)
        case .array(let a)?: return a.map { text($0) }.joined(separator: "; ")
        case .object(let o)?: return o.keys.sorted().map { "\($0)=\(text(o[$0]))" }.joined(separator: ", ")
        case nil: return ""
        }
    }
}

struct DiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "diff",
                                                    abstract: "Compare two captures: latency per function, queue growth.")
    @Argument(help: "The capture before the change.") var before: String
    @Argument(help: "The capture after the change.") var after: String
    @Option(help: "Exit non-zero when a function's chosen percentile got worse by more than PCT and the change is significant.")
    var failOnRegression: Double?
    @Option(help: "The percentile --fail-on-regression looks at.") var percentile: Double = 99
    @Flag(help: "Print JSON.") var json = false
    @OptionGroup var syntax: SyntaxOptions

    func run() throws {
        let beforeReader = try AnalysisIO.open(before, syntax: syntax)
        let afterReader = try AnalysisIO.open(after, syntax: syntax)
        // Latency and queues only: no waiting model.
        var options = AnalysisOptions()
        options.followCalls = false
        let b = try AnalysisIO.analyze(beforeReader, options)
        let a = try AnalysisIO.analyze(afterReader, options)
        if !json {
            for (analysis, reader, path) in [(b, beforeReader, before), (a, afterReader, after)] where analysis.events == 0 {
                print("\(path): " + AnalysisIO.noEvents(reader))
            }
        }
        let report = CaptureDiff.compare(before: b, after: a, percentile: percentile,
                                         regressionThresholdPct: failOnRegression)
        if json {
            try AnalysisIO.printJSON(report)
        } else {
            func pct(_ v: Double?) -> String { v.map { String(format: "%+.1f%%", $0) } ?? "-" }
            var rows: [[String]] = []
            for f in report.functions {
                var row: [String] = [f.mfa]
                row.append(f.before.map { "\($0.calls)" } ?? "-")
                row.append(f.after.map { "\($0.calls)" } ?? "-")
                row.append(f.before.map { AnalysisIO.micros($0.p50Micros) } ?? "-")
                row.append(f.after.map { AnalysisIO.micros($0.p50Micros) } ?? "-")
                row.append(pct(f.p50ChangePct))
                row.append(f.before.map { AnalysisIO.micros($0.p99Micros) } ?? "-")
                row.append(f.after.map { AnalysisIO.micros($0.p99Micros) } ?? "-")
                row.append(pct(f.p99ChangePct))
                row.append(f.pValue.map { String(format: "%.2g", $0) } ?? "-")
                row.append(f.significant ? "yes" : "no")
                rows.append(row)
            }
            print(AnalysisIO.table(["function", "calls", "calls'", "p50", "p50'", "Δp50", "p99", "p99'", "Δp99", "p",
                                    "significant"], rows))
            print("\n" + report.summary)
        }
        if failOnRegression != nil, !report.regressions.isEmpty {
            FileHandle.standardError.write(Data("regression: \(report.regressions.joined(separator: ", "))\n".utf8))
            throw ExitCode(3)
        }
    }
}

struct StateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "state",
                                                    abstract: "Every process's call stack and queue length at an instant.")
    @Argument(help: "The capture directory.") var capture: String
    @Option(help: ArgumentHelp("The instant: \(InstantArgument.help).", valueName: "instant")) var at: String
    @Flag(help: "Print JSON.") var json = false
    @OptionGroup var times: TimeOptions
    @OptionGroup var syntax: SyntaxOptions

    func run() throws {
        let reader = try AnalysisIO.open(capture, syntax: syntax)
        let time: Int64
        do {
            time = try EventQuery.parse(reader: reader, start: reader.blocks.map(\.timeMin).min(), from: nil, to: at,
                                        nodes: [], pids: [], functions: [], kinds: []).to ?? 0
        } catch let error as CaptureError where error.code == .invalidArgument {
            throw ValidationError("--at: \(error.message)")
        } catch {
            throw CLIError("\(error)")
        }
        let known = reader.problems.count
        let report: StateReport
        do {
            report = try StateAtTime.state(reader, at: time)
        } catch {
            throw CLIError("reading \(capture) failed: \(error)")
        }
        AnalysisIO.warn(reader.problems.dropFirst(known))
        if json { try AnalysisIO.printJSON(report); return }
        if report.eventsReplayed == 0 && report.processes.isEmpty { print(AnalysisIO.noEvents(reader)); return }
        let clock = times.text(for: reader)
        var out = "state at \(clock.instant(report.atNs)) (replayed \(report.eventsReplayed) events from "
            + "\(clock.instant(report.replayedFromNs)))\n"
        for p in report.processes {
            out += "\n\(p.pid)" + (p.name.map { " (\($0))" } ?? "") + " on \(p.node)"
            if let q = p.queueLength { out += "  queue \(q)" + (p.queueEstimated ? " (estimated)" : "") }
            out += "\n"
            for (depth, frame) in p.stack.enumerated() {
                out += String(repeating: "  ", count: depth + 1) + frame.mfa + " since " + Durations.text(report.atNs - frame.sinceNs) + " ago\n"
            }
        }
        print(out, terminator: "")
    }
}
