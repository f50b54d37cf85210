// `beamtrace export CAPTURE --format F -o OUT`: timelines for Perfetto and Chrome, flame graphs
// (folded stacks, speedscope) and CSV, streamed by TraceExport.
import ArgumentParser
import CaptureStore
import Foundation
import TraceAnalysis
import TraceExport
import TraceModel

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export a capture: perfetto, chrome (JSON), folded, speedscope, csv, latency-csv; clickhouse, otlp.",
        discussion: """
            perfetto and chrome open in ui.perfetto.dev (chrome also in chrome://tracing); folded goes to \
            flamegraph.pl, inferno or speedscope; speedscope to speedscope.app. Memory stays flat for any \
            capture size. clickhouse inserts into ClickHouse tables over HTTP (--url, docs/CLICKHOUSE.md); \
            otlp sends call spans to an OpenTelemetry collector over OTLP/HTTP (--endpoint).
            """)

    @Argument(help: "The capture directory.") var capture: String
    @Option(help: "perfetto, chrome, folded, speedscope, csv, latency-csv, clickhouse or otlp.") var format: String
    @Option(name: .shortAndLong, help: "The file to write (- for standard output); not for clickhouse and otlp.")
    var output: String?
    @Option(help: "From this time: nanoseconds, or +N[ns|us|ms|s] after the first event.") var from: String?
    @Option(help: "Up to this time (inclusive).") var to: String?
    @Option(help: "Only this node (repeatable).") var node: [String] = []
    @Option(help: "Only this process: <0.80.0> or a registered name (repeatable).") var pid: [String] = []
    @Option(help: "Only spans of these functions: mod:fun/arity, Mod.fun/arity, Mod, or * wildcards (repeatable).")
    var mfa: [String] = []
    @Option(help: "Only the N processes with the most events.") var top: Int?
    @Option(help: "folded: leave out calls of these functions and what they call (repeatable).") var exclude: [String] = []
    @Flag(help: "folded: one tree for all processes instead of one per process.") var merged = false
    @Flag(help: "perfetto, chrome, clickhouse, otlp: leave out arguments and return values.") var noArgs = false
    @OptionGroup(title: "clickhouse and otlp") var network: NetworkExportOptions

    func validate() throws {
        if let network = NetworkFormat(rawValue: format) {
            try self.network.validate(network)
            if output != nil { throw ValidationError("--format \(format) sends to a server: no -o") }
        } else if ExportFormat(rawValue: format) != nil {
            if output == nil { throw ValidationError("--format \(format) needs -o FILE (- for standard output)") }
            if network.anyGiven { throw ValidationError("--url, --endpoint, --create and the like are for clickhouse and otlp") }
        } else {
            throw ValidationError("--format takes " + (ExportFormat.allCases.map(\.rawValue) + NetworkFormat.allCases.map(\.rawValue))
                .joined(separator: ", "))
        }
        if let top, top < 1 { throw ValidationError("--top must be at least 1") }
    }

    func run() throws {
        let networkFormat = NetworkFormat(rawValue: format)
        guard let format = ExportFormat(rawValue: format) ?? (networkFormat != nil ? .csv : nil) else { return }
        let reader = try AnalysisIO.open(capture)
        var query: EventQuery
        do {
            query = try EventQuery.parse(reader: reader, start: reader.blocks.map(\.timeMin).min(), from: from, to: to,
                                         nodes: node, pids: pid, functions: [], kinds: [])
        } catch let error as CaptureError where error.code == .invalidArgument {
            throw ValidationError(error.message)
        } catch {
            throw CLIError("\(error)")
        }
        // Filters never lie: a function pattern that selects nothing is an error listing what the capture has.
        let d = reader.dictionaries
        for (option, patterns) in [("--mfa", FunctionPatterns(mfa)), ("--exclude", FunctionPatterns(exclude))] {
            if let pattern = patterns.unmatched(d).first {
                let known = d.tracedFunctions.map { d.functionText($0) }
                throw ValidationError("\(option) \(pattern) matches no function in \(capture) (it has: "
                                      + Closest.listing(known, to: pattern) + ")")
            }
        }
        if !pid.isEmpty, query.pids?.isEmpty ?? true { throw CLIError("no process \(pid.joined(separator: ", ")) in \(capture)") }
        if let top {
            var counts: [ProcessID: Int] = [:]
            do {
                try reader.forEach(matching: query) { event, _ in
                    if event.pid != 0 { counts[event.pid, default: 0] += 1 }
                    return true
                }
            } catch {
                throw CLIError("reading \(capture) failed: \(error)")
            }
            let busiest = counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(top)
            query.pids = Set(busiest.map(\.key))
        }
        var options = ExportOptions(format: format)
        options.query = query
        options.functions = FunctionPatterns(mfa)
        options.exclude = FunctionPatterns(exclude)
        options.merged = merged
        options.arguments = !noArgs
        if let networkFormat { return try runNetwork(networkFormat, reader: reader, options: options) }
        guard let output else { return }
        let known = reader.problems.count
        let summary: ExportSummary
        do {
            summary = try TraceExporter.export(reader, options: options, to: output, progress: TerminalProgress.standardError)
        } catch {
            AnalysisIO.warn(reader.problems.dropFirst(known))
            throw CLIError("export to \(output) failed (nothing written): \(error)")
        }
        AnalysisIO.warn(reader.problems.dropFirst(known))
        for warning in summary.warnings { FileHandle.standardError.write(Data("warning: \(warning)\n".utf8)) }
        if output != "-" {
            let s = summary.stats
            FileHandle.standardError.write(Data(("exported \(summary.events) events to \(output) (\(format.rawValue), "
                + "\(s.bytes) bytes: \(s.slices) slices, \(s.instants) instants, \(s.counters) counters, "
                + "\(s.flowsEnded) flows)\n").utf8))
        }
    }
}
