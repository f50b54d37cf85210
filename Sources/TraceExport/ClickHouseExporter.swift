// `beamtrace export CAPTURE --format clickhouse --url http://HOST:8123`: the capture's events (one
// read of the segments) and its call spans (the analysis stream), then its processes and functions,
// inserted as RowBinary in batches over ClickHouse's HTTP interface (docs/CLICKHOUSE.md).
//
// Exactly once: every row carries its batch number. A batch whose insert failed in a way that may
// have landed it (a broken connection, a timeout, a busy server) is counted on the server before it
// is sent again: all there means done, none means send again, part of it (a Distributed insert that
// reached one shard) is deleted first. Exporting a capture again first drops its partition in every
// table on every shard, so it replaces the capture instead of adding its rows a second time. At the
// end every table's count of the capture is checked against the rows sent; an export that fails
// midway (or whose counts disagree) drops what it had inserted the same way and says what had landed;
// so does one interrupted (SIGINT): it stops at the next batch, waits for the one being sent, removes
// what landed and says so, and that rows of an earlier export of the capture were dropped when it began.
import CaptureStore
import Foundation
import TraceAnalysis
import TraceModel

public struct ClickHouseExportOptions: Sendable {
    /// Where to insert; with a cluster, every shard's HTTP interface (inserts go through the first).
    public var endpoints: [HTTPEndpoint]
    public var schema = ClickHouseSchema()
    /// Create the database and tables when missing.
    public var create = false
    /// Rows per insert.
    public var batchRows = 100_000
    /// Tries per batch after the first (with backoff from `retryDelay` seconds, doubling).
    public var retries = 5
    public var retryDelay = 0.25
    /// Seconds to wait for the server on any one request.
    public var timeout = 120.0
    /// Keep call arguments and return values in the spans table.
    public var arguments = true
    /// The replayed events (time window, nodes, processes).
    public var query: EventQuery = .all
    /// Only spans of these functions (every event is still exported).
    public var functions = FunctionPatterns([])
    /// Asked at every batch (and every 65,536 events read): the reason to stop now (`SIGINT`), or nil.
    /// An export told to stop removes what it had inserted, as one that fails midway.
    public var interruption: (@Sendable () -> String?)?

    public init(endpoints: [HTTPEndpoint]) { self.endpoints = endpoints }
}

public struct ClickHouseExportSummary: Sendable {
    public var capture = ""
    public var captureDate = ""
    public var events = 0
    public var spans = 0
    /// Points of the queue-length series (`queues`).
    public var queuePoints = 0
    public var processes = 0
    public var functions = 0
    public var batches = 0
    /// Batches sent again after a failure that did not land them.
    public var resent = 0
    /// Batches found on the server after a failure (not sent again).
    public var foundLanded = 0
    /// Batches that landed in part and were deleted before being sent again.
    public var partialDeleted = 0
    /// RowBinary bytes sent (first tries).
    public var bytes: Int64 = 0
}

public enum ClickHouseExporter {
    public static func export(_ reader: CaptureReader, options: ClickHouseExportOptions,
                              progress: (any ProgressReporter)? = nil) throws -> ClickHouseExportSummary {
        guard let first = options.endpoints.first else {
            throw ClickHouseError(message: "no ClickHouse URL given", retryable: false)
        }
        let schema = options.schema
        let capture = reader.meta.captureID
        let day = CaptureDay(createdAt: reader.meta.createdAt)
        let shards = options.endpoints.map { ClickHouseConnection($0, timeout: options.timeout) }
        defer { shards.forEach { $0.close() } }
        try prepare(shards, schema: schema, options: options)
        // What an earlier export left of the capture is dropped next: said if this one does not finish.
        var earlier = 0
        for table in ClickHouseSchema.tables {
            let text = try shards[0].execute("SELECT count() FROM \(schema.qualified(table)) WHERE capture = "
                                             + ClickHouseSQL.literal(capture))
            earlier += Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        }
        if let reason = options.interruption?() {
            throw ClickHouseError(message: "interrupted by \(reason) before anything was changed in ClickHouse",
                                  retryable: false)
        }
        for shard in shards {
            for table in ClickHouseSchema.tables {
                try shard.execute(schema.dropCapture(table, capture: capture, date: day.text))
            }
        }

        let inserter = ClickHouseConnection(first, timeout: options.timeout)
        if schema.cluster != nil { inserter.settings = [("insert_distributed_sync", "1")] }
        defer { inserter.close() }
        let sink = BatchSink(inserter: inserter, shards: shards, schema: schema, capture: capture, options: options)
        var summary = ClickHouseExportSummary()
        summary.capture = capture
        summary.captureDate = day.text
        do {
            try insert(reader, into: sink, options: options, day: day, summary: &summary, progress: progress)
        } catch {
            sink.drain()
            throw removeAfterFailure(error, sink: sink, shards: shards, schema: schema, capture: capture, day: day,
                                     earlierRows: earlier)
        }
        summary.batches = sink.stats.batches
        summary.resent = sink.stats.resent
        summary.foundLanded = sink.stats.foundLanded
        summary.partialDeleted = sink.stats.partialDeleted
        summary.bytes = sink.stats.bytes
        return summary
    }

    /// Every row of the capture into `sink`'s tables, waiting until the last batch has landed.
    static func insert(_ reader: CaptureReader, into sink: BatchSink, options: ClickHouseExportOptions, day: CaptureDay,
                       summary: inout ClickHouseExportSummary, progress: (any ProgressReporter)?) throws {
        let capture = reader.meta.captureID
        let d = reader.dictionaries
        let context = StreamContext(dictionaries: d, meta: reader.meta, startTime: 0, endTime: 0, eventsToRead: 0)
        let rows = RowPrefix(capture: capture, day: day.days)
        let text = ExportText(context, termWidth: 4096)

        // Events: one read of the segments.
        let total = reader.blocks.filter { $0.mayMatch(options.query) }.reduce(Int64(0)) { $0 + Int64($1.count) }
        var eventsPerProcess = [UInt64](repeating: 0, count: d.processes.count + 1)
        do {
            var meter = ProgressMeter(progress, task: "export clickhouse events", total: total, unit: "events")
            defer { meter.finish() }
            let names = EncodedNames(d, text: text)
            let events = sink.table(ClickHouseSchema.events)
            var seq: UInt64 = 0
            try reader.forEach(matching: options.query) { event, payload in
                meter.advance()
                var w = events.begin()
                rows.write(&w, batch: events.batch)
                w.uint64(seq)
                w.raw(names.node(text.node(of: event.pid, event.node)))
                w.raw(names.process(event.pid))
                w.raw(names.label(event.pid))
                w.int64(event.time)
                w.raw(names.kind(event.kind))
                w.raw(names.function(event.mfa))
                w.raw(names.process(event.peer))
                w.int64(event.value)
                let terms = StreamPayload(bytes: payload, flags: event.flags)
                w.string((event.kind == .call ? text.arguments(terms) : text.term(terms)) ?? "")
                try events.end(w)
                seq += 1
                if seq & 0xFFFF == 0 { try sink.check() }
                if Int(event.pid) < eventsPerProcess.count { eventsPerProcess[Int(event.pid)] += 1 }
                return true
            }
            try events.flush()
            summary.events = Int(seq)
        }

        // Spans: the analysis stream.
        let spans = SpanRows(sink.table(ClickHouseSchema.spans), rows: rows, text: text, arguments: options.arguments,
                             names: EncodedNames(d, text: text))
        let target: any AnalysisStreamConsumer = options.functions.isEmpty ? spans
            : SpanFilter(spans, functions: options.functions, dictionaries: d)
        let analysis = try AnalysisStream.run(reader, analysis: AnalysisOptions(query: options.query, latency: .none),
                                              into: target, progress: progress, task: "export clickhouse spans")
        if let error = spans.error { throw error }
        try spans.table.flush()
        summary.spans = spans.count

        // The queue series exactly as `queues` gives them: sampled, else estimated from sends and callbacks.
        let queues = sink.table(ClickHouseSchema.queues)
        for report in analysis.queueReports() {
            let node = RowBinaryWriter.encodedString(report.node), pid = RowBinaryWriter.encodedString(report.pid)
            for (index, point) in report.series.enumerated() where point.count == 2 {
                var w = queues.begin()
                rows.write(&w, batch: queues.batch)
                w.raw(node)
                w.raw(pid)
                w.uint32(UInt32(clamping: index))
                w.int64(point[0])
                w.int64(point[1])
                w.uint8(report.estimated ? 1 : 0)
                try queues.end(w)
                summary.queuePoints += 1
            }
        }
        try queues.flush()

        // The dimension tables.
        let processes = sink.table(ClickHouseSchema.processes)
        for id in 1..<max(1, d.processes.count) {
            let pid = ProcessID(id)
            guard let entry = d.process(pid) else { continue }
            var w = processes.begin()
            rows.write(&w, batch: processes.batch)
            w.string(text.node(of: pid, 0) == 0 ? "" : d.nodeName(text.node(of: pid, 0)))
            w.string(d.processText(pid))
            w.string(d.registeredNameText(pid) ?? "")
            w.string(entry.initialCall == 0 ? "" : d.functionText(entry.initialCall))
            w.string(text.process(pid))
            w.uint64(id < eventsPerProcess.count ? eventsPerProcess[id] : 0)
            try processes.end(w)
            summary.processes += 1
        }
        try processes.flush()
        let functions = sink.table(ClickHouseSchema.functions)
        let traced = Set(d.tracedFunctions)
        for id in 1..<max(1, d.functions.count) {
            let mfa = FunctionID(id)
            guard let entry = d.function(mfa) else { continue }
            var w = functions.begin()
            rows.write(&w, batch: functions.batch)
            w.string(d.functionText(mfa))
            w.string(d.atom(entry.module))
            w.string(d.atom(entry.function))
            w.uint16(UInt16(clamping: entry.arity))
            w.uint8(traced.contains(mfa) ? 1 : 0)
            try functions.end(w)
            summary.functions += 1
        }
        try functions.flush()
        try sink.finish()
        try verify(sink, capture: capture)
    }

    /// What the server holds of the capture, table by table, against the rows that landed: a request
    /// cut short at a row boundary is taken by the server as a shorter insert, and said done.
    static func verify(_ sink: BatchSink, capture: String) throws {
        let landed = sink.stats.landed
        for table in ClickHouseSchema.tables {
            let name = sink.schema.qualified(table)
            let text = try sink.inserter.execute("SELECT count() FROM \(name) WHERE capture = "
                                                 + ClickHouseSQL.literal(capture))
                .trimmingCharacters(in: .whitespacesAndNewlines)
            let sent = landed[table.name] ?? 0
            guard Int(text) == sent else {
                throw ClickHouseError(message: "ClickHouse at \(sink.inserter.endpoint) holds \(text) rows of the "
                                      + "capture in \(name) where \(sent) were sent and acknowledged (a request cut "
                                      + "short on the way?)", retryable: false)
            }
        }
    }

    /// After a failure midway: drops the capture's partitions again on every shard (what had landed of
    /// it, acknowledged or not), and says what the server had acknowledged and whether it is gone.
    static func removeAfterFailure(_ error: Error, sink: BatchSink, shards: [ClickHouseConnection],
                                   schema: ClickHouseSchema, capture: String, day: CaptureDay,
                                   earlierRows: Int) -> ClickHouseError {
        let landed = sink.stats.landed
        let nouns = ["events": "events", "spans": "spans", "queues": "queue points", "processes": "processes",
                     "functions": "functions"]
        let counts = ClickHouseSchema.tables.map { "\(landed[$0.name] ?? 0) \(nouns[$0.name] ?? $0.name)" }
        let what = counts.dropLast().joined(separator: ", ") + " and " + (counts.last ?? "")
        let reason = (error as? ClickHouseError)?.message ?? "\(error)"
        var message = "\(reason); ClickHouse had acknowledged \(what) of capture \(capture)"
        do {
            for shard in shards {
                for table in ClickHouseSchema.tables {
                    try shard.execute(schema.dropCapture(table, capture: capture, date: day.text))
                }
            }
            var left = 0
            for table in ClickHouseSchema.tables {
                let text = try shards[0].execute("SELECT count() FROM \(schema.qualified(table)) WHERE capture = "
                                                 + ClickHouseSQL.literal(capture))
                left += Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 1
            }
            if left > 0 { throw ClickHouseError(message: "\(left) rows are still there", retryable: false) }
            message += "; they were removed again (the capture's partitions dropped on every server), so the capture "
                + "is not in ClickHouse: export it again"
        } catch {
            let why = (error as? ClickHouseError)?.message ?? "\(error)"
            message += ", and they stay there: removing them failed (\(why)); export the capture again to replace them"
                + " (or drop them yourself\(shards.count > 1 ? ", on every server" : ""): "
                + ClickHouseSchema.tables.map { schema.dropCapture($0, capture: capture, date: day.text) }
                    .joined(separator: "; ") + ")"
        }
        if earlierRows > 0 {
            message += "; the \(earlierRows) rows an earlier export of the capture had left were dropped when this one "
                + "began, and are not restored"
        }
        return ClickHouseError(message: message, serverCode: (error as? ClickHouseError)?.serverCode ?? 0,
                               retryable: false)
    }

    /// Checks every server answers; creates what is missing (`create`) or says what is.
    static func prepare(_ shards: [ClickHouseConnection], schema: ClickHouseSchema,
                        options: ClickHouseExportOptions) throws {
        for shard in shards {
            if options.create {
                try shard.execute("CREATE DATABASE IF NOT EXISTS \(ClickHouseSQL.name(schema.database))")
                for table in ClickHouseSchema.tables {
                    try shard.execute(schema.createStorage(table))
                    if let distributed = schema.createDistributed(table) { try shard.execute(distributed) }
                }
            }
            for table in ClickHouseSchema.tables {
                for name in Set([schema.storage(table), schema.qualified(table)]) {
                    let exists = try shard.execute("EXISTS TABLE \(name)").trimmingCharacters(in: .whitespacesAndNewlines)
                    if exists != "1" {
                        throw ClickHouseError(message: "table \(name) does not exist in ClickHouse at \(shard.endpoint): "
                                              + "run with --create (docs/CLICKHOUSE.md has the schema)", retryable: false)
                    }
                }
            }
        }
        if let cluster = schema.cluster, let first = shards.first {
            let listed = try first.execute("SELECT count() FROM system.clusters WHERE cluster = "
                                           + ClickHouseSQL.literal(cluster)).trimmingCharacters(in: .whitespacesAndNewlines)
            guard let count = Int(listed), count > 0 else {
                throw ClickHouseError(message: "ClickHouse at \(first.endpoint) has no cluster \(cluster) in remote_servers",
                                      retryable: false)
            }
            guard count <= shards.count else {
                throw ClickHouseError(message: "cluster \(cluster) has \(count) servers but \(shards.count) --url given: "
                                      + "give every shard's HTTP URL so an export again can replace the capture on all of them",
                                      retryable: false)
            }
        }
    }
}

/// The capture's day (UTC) from its meta's `createdAt`: the first part of the partition key.
struct CaptureDay {
    var days: UInt16
    var text: String

    init(createdAt: String) {
        let parsed = ISO8601DateFormatter().date(from: createdAt) ?? Date(timeIntervalSince1970: 0)
        let seconds = max(0, parsed.timeIntervalSince1970)
        days = UInt16(clamping: Int(seconds / 86_400))
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd"
        text = formatter.string(from: Date(timeIntervalSince1970: Double(days) * 86_400))
    }
}

/// capture, capture_date and batch: the first columns of every table.
struct RowPrefix {
    let capture: [UInt8]
    let day: UInt16

    init(capture: String, day: UInt16) {
        self.capture = RowBinaryWriter.encodedString(capture)
        self.day = day
    }

    @inline(__always)
    func write(_ w: inout RowBinaryWriter, batch: UInt32) {
        w.raw(capture)
        w.uint16(day)
        w.uint32(batch)
    }
}

/// Names as RowBinary strings, encoded once per id.
final class EncodedNames {
    let dictionaries: TraceDictionaries
    let text: ExportText
    private var nodes: [[UInt8]?]
    private var processes: [[UInt8]?]
    private var labels: [[UInt8]?]
    private var functions: [[UInt8]?]
    private var kinds: [[UInt8]?] = Array(repeating: nil, count: 256)
    static let empty = RowBinaryWriter.encodedString("")

    init(_ dictionaries: TraceDictionaries, text: ExportText) {
        self.dictionaries = dictionaries
        self.text = text
        nodes = Array(repeating: nil, count: dictionaries.nodes.count + 1)
        processes = Array(repeating: nil, count: dictionaries.processes.count + 1)
        labels = Array(repeating: nil, count: dictionaries.processes.count + 1)
        functions = Array(repeating: nil, count: dictionaries.functions.count + 1)
    }

    @inline(__always)
    private func cached(_ cache: inout [[UInt8]?], _ id: Int, _ make: () -> String) -> [UInt8] {
        guard id < cache.count else { return RowBinaryWriter.encodedString(make()) }
        if let bytes = cache[id] { return bytes }
        let bytes = RowBinaryWriter.encodedString(make())
        cache[id] = bytes
        return bytes
    }

    func node(_ id: NodeID) -> [UInt8] {
        id == 0 ? Self.empty : cached(&nodes, Int(id)) { dictionaries.nodeName(id) }
    }
    func process(_ id: ProcessID) -> [UInt8] {
        id == 0 ? Self.empty : cached(&processes, Int(id)) { dictionaries.processText(id) }
    }
    func label(_ id: ProcessID) -> [UInt8] {
        id == 0 ? Self.empty : cached(&labels, Int(id)) { dictionaries.nameText(id) ?? "" }
    }
    func function(_ id: FunctionID) -> [UInt8] {
        id == 0 ? Self.empty : cached(&functions, Int(id)) { dictionaries.functionText(id) }
    }
    func kind(_ kind: EventKind) -> [UInt8] { cached(&kinds, Int(kind.rawValue)) { kind.otpName } }
}

/// The spans of the stream as rows; arguments wait with their open span.
final class SpanRows: AnalysisStreamConsumer {
    let table: BatchTable
    let rows: RowPrefix
    let text: ExportText
    let names: EncodedNames
    let arguments: Bool
    private var openArguments: [Int: String] = [:]
    private(set) var count = 0
    private(set) var error: Error?

    init(_ table: BatchTable, rows: RowPrefix, text: ExportText, arguments: Bool, names: EncodedNames) {
        self.table = table
        self.rows = rows
        self.text = text
        self.arguments = arguments
        self.names = names
    }

    func spanBegan(_ span: Span, arguments payload: StreamPayload) {
        if arguments, let text = text.arguments(payload) { openArguments[span.id] = text }
    }

    func spanEnded(_ span: Span, result: StreamPayload) {
        let argumentText = openArguments.removeValue(forKey: span.id) ?? ""
        guard error == nil else { return }
        var w = table.begin()
        rows.write(&w, batch: table.batch)
        w.raw(names.node(text.node(of: span.pid, span.node)))
        w.raw(names.process(span.pid))
        w.uint64(UInt64(max(0, span.id)))
        w.int64(Int64(span.parent))
        w.uint16(UInt16(clamping: span.depth))
        w.raw(names.function(span.mfa))
        w.int64(span.start)
        w.int64(span.end)
        w.int64(span.total)
        w.int64(span.selfTime)
        w.string(span.ending.rawValue)
        w.uint8(span.startKnown ? 1 : 0)
        w.uint8(span.isMeasured ? 1 : 0)
        let outcome = text.term(result) ?? ""
        w.string(span.ending == .exception ? outcome : "")
        w.string(argumentText)
        w.string(span.ending == .exception || !arguments ? "" : outcome)
        do {
            try table.end(w)
            count += 1
        } catch {
            self.error = error
        }
    }
}
