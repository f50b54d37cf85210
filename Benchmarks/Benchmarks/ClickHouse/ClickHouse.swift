// ClickHouse export throughput: the Export benchmark's capture of a real OTP trace (>= 5M events;
// run that benchmark first, it makes $BEAMTRACE_BENCH_DIR/export.btrace) exported into a real
// clickhouse-server on loopback (its own config and data directory, stopped at the end), side by side
// with the server's own ingest of the same rows: `clickhouse-client --query 'INSERT ... FORMAT
// RowBinary'` reading the exported events and spans back from files. Run:
//   swift package --package-path Benchmarks benchmark --target ClickHouse
// Rows/s = rows / wall clock of one iteration; RowBinary bytes per row are printed.
import Benchmark
import CaptureStore
import Foundation
import TestSupport
import TraceExport

enum ClickHouseBench {
    static let directory = ProcessInfo.processInfo.environment["BEAMTRACE_BENCH_DIR"] ?? "/tmp/beamtrace-bench"
    static var capture: String { directory + "/export.btrace" }

    static func shell(_ command: String) throws {
        try Shell.run("/bin/sh", ["-c", command], timeout: 600)
    }
}

let benchmarks: @Sendable () -> Void = {
    guard FileManager.default.fileExists(atPath: ClickHouseBench.capture),
          let reader = try? CaptureReader(opening: ClickHouseBench.capture) else {
        print("no \(ClickHouseBench.capture): run `swift package --package-path Benchmarks benchmark --target Export` first")
        return
    }
    let server: ClickHouseServer
    do {
        server = try ClickHouseServer()
    } catch {
        print("cannot start clickhouse-server: \(error)")
        return
    }
    let events = reader.blocks.reduce(0) { $0 + Int($1.count) }
    print("clickhouse capture: \(events) events, server on \(server.url)")
    guard let endpoint = try? HTTPEndpoint(parsing: server.url, defaultPort: 8123) else { return }
    var options = ClickHouseExportOptions(endpoints: [endpoint])
    options.create = true

    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .peakMemoryResident],
        timeUnits: .milliseconds,
        maxDuration: .seconds(120),
        maxIterations: 3
    )

    Benchmark("beamtrace export clickhouse (events and spans, RowBinary over HTTP)") { _ in
        guard let reader = try? CaptureReader(opening: ClickHouseBench.capture) else { return }
        do {
            let summary = try ClickHouseExporter.export(reader, options: options)
            let rows = summary.events + summary.spans
            print(String(format: "clickhouse: %d events + %d spans, %lld bytes, %.1f bytes/row", summary.events,
                         summary.spans, summary.bytes, Double(summary.bytes) / Double(max(1, rows))))
        } catch {
            print("export failed: \(error)")
        }
    }

    // The same rows as files, inserted by the server's own client into empty copies of the tables.
    let files = ["events", "spans"].map { (table: $0, file: ClickHouseBench.directory + "/clickhouse-\($0).rowbinary") }
    do {
        _ = try ClickHouseExporter.export(reader, options: options)
        for (table, file) in files {
            try server.query("CREATE TABLE IF NOT EXISTS \(table)_copy AS \(table)")
            try ClickHouseBench.shell("clickhouse-client --port \(server.tcpPort) --query 'SELECT * FROM \(table) "
                                      + "FORMAT RowBinary' > \(file)")
        }
    } catch {
        print("cannot prepare the RowBinary files: \(error)")
    }
    Benchmark("clickhouse-client INSERT ... FORMAT RowBinary of the same rows from files") { _ in
        for (table, file) in files {
            try? server.query("TRUNCATE TABLE \(table)_copy")
            try? ClickHouseBench.shell("clickhouse-client --port \(server.tcpPort) --query 'INSERT INTO \(table)_copy "
                                       + "FORMAT RowBinary' < \(file)")
        }
    }
}
