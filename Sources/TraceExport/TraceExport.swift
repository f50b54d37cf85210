// Exports of a capture, one format per file of this module: Perfetto protobuf, Chrome JSON, folded
// stacks, speedscope, CSV. Each streams the analysis (TraceAnalysis.AnalysisStream) into its
// writer; this is the one entry point the CLI calls.
import CaptureStore
import Foundation
import TraceAnalysis
import TraceModel

public enum ExportFormat: String, Sendable, CaseIterable {
    case perfetto, chrome, folded, speedscope, csv
    /// The latency table as CSV.
    case latencyCSV = "latency-csv"
}

public struct ExportOptions: Sendable {
    public var format: ExportFormat
    /// The events replayed (time window, nodes, processes).
    public var query: EventQuery = .all
    /// Only these functions' spans (patterns as for `--exclude`); empty for all.
    public var functions = FunctionPatterns([])
    /// Annotate slices with arguments and return values (perfetto, chrome).
    public var arguments = true
    /// Folded stacks: one tree for all processes.
    public var merged = false
    /// Folded stacks: leave out calls of these functions and what they call.
    public var exclude = FunctionPatterns([])

    public init(format: ExportFormat) { self.format = format }
}

public struct ExportSummary: Sendable {
    public var stats: ExportStats
    public var events: Int
    public var warnings: [String] = []
}

public enum TraceExporter {
    /// Exports `reader` to `path` ("-": standard output).
    public static func export(_ reader: CaptureReader, options: ExportOptions, to path: String,
                              progress: (any ProgressReporter)? = nil) throws -> ExportSummary {
        let out = try ExportOutput(path: path)
        do {
            let summary = try export(reader, options: options, to: out, progress: progress)
            try out.finish()
            return summary
        } catch {
            out.abandon()
            throw error
        }
    }

    public static func export(_ reader: CaptureReader, options: ExportOptions, to out: ExportOutput,
                              progress: (any ProgressReporter)? = nil) throws -> ExportSummary {
        let task = "export " + options.format.rawValue
        switch options.format {
        case .csv:
            let stats = try CSVExporter.events(reader, query: options.query, to: out, progress: progress)
            return ExportSummary(stats: stats, events: stats.instants)
        case .latencyCSV:
            let analysis = try AnalysisStream.run(reader, analysis: AnalysisOptions(query: options.query, latency: .percentiles),
                                                  into: SpanFilter(nil, functions: options.functions,
                                                                   dictionaries: reader.dictionaries),
                                                  progress: progress, task: task)
            let filter = options.functions
            let report = analysis.latencyReport(mfaFilter: filter.isEmpty ? nil : { filter.matches($0) })
            return ExportSummary(stats: CSVExporter.latency(report, to: out), events: analysis.events)
        case .perfetto:
            var perfettoOptions = PerfettoExporter.Options()
            perfettoOptions.arguments = options.arguments
            let exporter = PerfettoExporter(output: out, options: perfettoOptions)
            let analysis = try stream(reader, options, exporter, progress: progress, task: task)
            return ExportSummary(stats: exporter.stats, events: analysis.events)
        case .chrome:
            var chromeOptions = ChromeTraceExporter.Options()
            chromeOptions.arguments = options.arguments
            let exporter = ChromeTraceExporter(output: out, options: chromeOptions)
            let analysis = try stream(reader, options, exporter, progress: progress, task: task)
            var summary = ExportSummary(stats: exporter.stats, events: analysis.events)
            if exporter.stats.bytes > ChromeTraceExporter.largeFileBytes {
                summary.warnings.append("the Chrome JSON is \(exporter.stats.bytes >> 20) MiB: chrome://tracing struggles past "
                    + "~200 MiB; --format perfetto writes the same timeline far smaller, for ui.perfetto.dev")
            }
            return summary
        case .folded:
            var foldedOptions = FoldedStacksExporter.Options()
            foldedOptions.merged = options.merged
            foldedOptions.exclude = options.exclude
            let exporter = FoldedStacksExporter(output: out, options: foldedOptions)
            let analysis = try stream(reader, options, exporter, progress: progress, task: task)
            return ExportSummary(stats: exporter.stats, events: analysis.events)
        case .speedscope:
            let exporter = SpeedscopeExporter(output: out)
            let analysis = try stream(reader, options, exporter, progress: progress, task: task)
            if let error = exporter.error { throw error }
            return ExportSummary(stats: exporter.stats, events: analysis.events)
        }
    }

    static func stream(_ reader: CaptureReader, _ options: ExportOptions, _ consumer: any AnalysisStreamConsumer,
                       progress: (any ProgressReporter)?, task: String) throws -> CaptureAnalysis {
        let filtered: any AnalysisStreamConsumer = options.functions.isEmpty ? consumer
            : SpanFilter(consumer, functions: options.functions, dictionaries: reader.dictionaries)
        // The exporter encodes and writes on a thread of its own while the analysis goes on.
        let pipeline = PipelinedConsumer.possible ? PipelinedConsumer(filtered) : nil
        // No exporter reads latency or the gen calls' waiting model: the pass leaves both out.
        var analysis = AnalysisOptions(query: options.query, latency: .none)
        analysis.followCalls = false
        do {
            return try AnalysisStream.run(reader, analysis: analysis, into: pipeline ?? filtered, progress: progress,
                                          task: task)
        } catch {
            pipeline?.stop()
            throw error
        }
    }
}

/// Passes on only the spans of matching functions (and every instant and counter).
final class SpanFilter: AnalysisStreamConsumer {
    let next: (any AnalysisStreamConsumer)?
    let keep: [Bool]

    init(_ next: (any AnalysisStreamConsumer)?, functions: FunctionPatterns, dictionaries: TraceDictionaries) {
        self.next = next
        keep = functions.isEmpty ? [] : functions.table(dictionaries)
    }

    private func kept(_ span: Span) -> Bool { keep.isEmpty || (Int(span.mfa) < keep.count && keep[Int(span.mfa)]) }

    func begin(_ context: StreamContext) { next?.begin(context) }
    func spanBegan(_ span: Span, arguments: StreamPayload) { if kept(span) { next?.spanBegan(span, arguments: arguments) } }
    func spanEnded(_ span: Span, result: StreamPayload) { if kept(span) { next?.spanEnded(span, result: result) } }
    func instant(_ instant: StreamInstant, payload: StreamPayload) { next?.instant(instant, payload: payload) }
    func counter(_ counter: StreamCounter) { next?.counter(counter) }
    func end(_ analysis: CaptureAnalysis) { next?.end(analysis) }
}
