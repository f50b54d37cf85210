// `beamtrace export --format clickhouse|otlp`: the exports that go to a server instead of a file
// (docs/CLICKHOUSE.md, docs/EXPORT.md). Parsing and printing only; the work is in TraceExport.
import ArgumentParser
import CaptureStore
import Foundation
import TraceExport

/// Formats whose destination is a server.
enum NetworkFormat: String, CaseIterable {
    case clickhouse, otlp
}

struct NetworkExportOptions: ParsableArguments {
    @Option(help: ArgumentHelp("clickhouse: a server's HTTP interface, http://[USER[:PASSWORD]@]HOST:8123 (repeatable: "
                               + "with --cluster, every shard's; inserts go through the first).", valueName: "url"))
    var url: [String] = []
    @Option(help: "clickhouse: the database (default: default).") var database = "default"
    @Option(help: "clickhouse: a prefix for the table names (bt_ gives bt_events, bt_spans, ...).") var tablePrefix = ""
    @Flag(help: "clickhouse: create the database and tables when missing.") var create = false
    @Option(help: ArgumentHelp("clickhouse: a cluster of the servers' remote_servers: tables are Distributed over "
                               + "<table>_local on each shard.", valueName: "name"))
    var cluster: String?
    @Option(help: "clickhouse: rows per insert (default 100000); otlp: spans per request (default 2000).")
    var batch: Int?
    @Option(help: "clickhouse, otlp: tries after the first when a request fails in a way that may pass (default 5).")
    var retries = 5
    @Option(help: "otlp: the collector's OTLP/HTTP endpoint, http://HOST:4318 (spans go to /v1/traces).")
    var endpoint: String?

    func validate(_ format: NetworkFormat) throws {
        if let batch, batch < 1 { throw ValidationError("--batch must be at least 1") }
        if retries < 0 { throw ValidationError("--retries cannot be negative") }
        switch format {
        case .clickhouse:
            guard !url.isEmpty else { throw ValidationError("--format clickhouse needs --url http://HOST:8123") }
            if endpoint != nil { throw ValidationError("--endpoint is for --format otlp; clickhouse takes --url") }
        case .otlp:
            guard endpoint != nil else { throw ValidationError("--format otlp needs --endpoint http://HOST:4318") }
            if !url.isEmpty { throw ValidationError("--url is for --format clickhouse; otlp takes --endpoint") }
        }
    }

    /// True when any option of these was given (they make no sense with a file format).
    var anyGiven: Bool {
        !url.isEmpty || endpoint != nil || create || cluster != nil || batch != nil || !tablePrefix.isEmpty
            || database != "default"
    }
}

extension ExportCommand {
    func runNetwork(_ format: NetworkFormat, reader: CaptureReader, options: ExportOptions) throws {
        switch format {
        case .clickhouse:
            var endpoints: [HTTPEndpoint] = []
            for text in network.url {
                do {
                    endpoints.append(try HTTPEndpoint(parsing: text, defaultPort: 8123))
                } catch {
                    throw ValidationError("--url \(HTTPEndpoint.redacted(text)): \(error)")
                }
            }
            var exportOptions = ClickHouseExportOptions(endpoints: endpoints)
            exportOptions.schema = ClickHouseSchema(database: network.database, prefix: network.tablePrefix,
                                                    cluster: network.cluster)
            exportOptions.create = network.create
            exportOptions.retries = network.retries
            if let batch = network.batch { exportOptions.batchRows = batch }
            exportOptions.arguments = options.arguments
            exportOptions.query = options.query
            exportOptions.functions = options.functions
            // SIGINT/SIGTERM: the export stops at its next batch and removes what it inserted (exit 130); a
            // second one ends the process at once, saying what may be left.
            let interrupted = InterruptFlag()
            exportOptions.interruption = { interrupted.reason }
            let capture = reader.meta.captureID
            signal(SIGINT, SIG_IGN)
            signal(SIGTERM, SIG_IGN)
            var sources: [any DispatchSourceSignal] = []
            for (number, name) in [(SIGINT, "SIGINT"), (SIGTERM, "SIGTERM")] {
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler {
                    guard interrupted.set(name) else {
                        FileHandle.standardError.write(Data(("export to ClickHouse interrupted again (\(name)): stopped "
                            + "at once, so rows of capture \(capture) may be left in ClickHouse: export it again to "
                            + "replace them, or drop its partition in each table (docs/CLICKHOUSE.md)\n").utf8))
                        Foundation.exit(130)
                    }
                    FileHandle.standardError.write(Data(("\n\(name): stopping the export and removing what it "
                        + "inserted (again to stop at once)\n").utf8))
                }
                source.resume()
                sources.append(source)
            }
            defer {
                sources.forEach { $0.cancel() }
                signal(SIGINT, SIG_DFL)
                signal(SIGTERM, SIG_DFL)
            }
            let known = reader.problems.count
            let summary: ClickHouseExportSummary
            do {
                summary = try ClickHouseExporter.export(reader, options: exportOptions, progress: TerminalProgress.standardError)
            } catch {
                AnalysisIO.warn(reader.problems.dropFirst(known))
                if let reason = interrupted.reason {
                    printError("export to ClickHouse interrupted (\(reason)): \(error)")
                    throw ExitCode(130)
                }
                throw CLIError("export to ClickHouse failed: \(error)")
            }
            AnalysisIO.warn(reader.problems.dropFirst(known))
            var retried = ""
            if summary.foundLanded + summary.resent + summary.partialDeleted > 0 {
                retried = "; after failures \(summary.foundLanded) batches were found landed, \(summary.resent) sent again, "
                    + "\(summary.partialDeleted) partial ones deleted first"
            }
            FileHandle.standardError.write(Data((
                "exported capture \(summary.capture) (\(summary.captureDate)) to ClickHouse at \(endpoints[0]): "
                + "\(summary.events) events, \(summary.spans) spans, \(summary.queuePoints) queue points, "
                + "\(summary.processes) processes, "
                + "\(summary.functions) functions in \(summary.batches) batches (\(summary.bytes) bytes)\(retried)\n").utf8))
        case .otlp:
            let endpoint: HTTPEndpoint
            do {
                endpoint = try HTTPEndpoint(parsing: network.endpoint ?? "", defaultPort: 4318)
            } catch {
                throw ValidationError("--endpoint \(HTTPEndpoint.redacted(network.endpoint ?? "")): \(error)")
            }
            var otlp = OTLPExportOptions(endpoint: endpoint)
            otlp.retries = network.retries
            if let batch = network.batch { otlp.batchSpans = batch }
            otlp.arguments = options.arguments
            otlp.query = options.query
            otlp.functions = options.functions
            let known = reader.problems.count
            let summary: OTLPExportSummary
            do {
                summary = try OTLPExporter.export(reader, options: otlp, progress: TerminalProgress.standardError)
            } catch {
                AnalysisIO.warn(reader.problems.dropFirst(known))
                throw CLIError("export to OTLP failed: \(error)")
            }
            AnalysisIO.warn(reader.problems.dropFirst(known))
            FileHandle.standardError.write(Data((
                "exported \(summary.spans) spans in \(summary.traces) traces to \(endpoint) over OTLP/HTTP "
                + "(\(summary.requests) requests, \(summary.bytes) bytes\(summary.retried > 0 ? ", \(summary.retried) retries" : ""))\n").utf8))
        }
    }
}

/// The first signal's name, set once from a signal handler's queue, read by the export.
final class InterruptFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var first: String?

    var reason: String? { lock.withLock { first } }

    /// Records `name`; false when a signal came before.
    func set(_ name: String) -> Bool {
        lock.withLock {
            guard first == nil else { return false }
            first = name
            return true
        }
    }
}
