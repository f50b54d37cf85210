// Batches of RowBinary rows on their way to ClickHouse: filled by the export while the previous
// batch is sent on a thread of its own (at most two waiting), each delivered exactly once (see
// ClickHouseExporter: a failed batch is counted on the server before it is sent again).
import Foundation

struct BatchStats: Sendable {
    var batches = 0
    var resent = 0
    var foundLanded = 0
    var partialDeleted = 0
    var bytes: Int64 = 0
    /// Rows known to have landed, per table name.
    var landed: [String: Int] = [:]
}

/// Sends batches in order on one thread; the first failure stops it and is thrown to the producer.
final class BatchSink: @unchecked Sendable {
    let inserter: ClickHouseConnection
    let shards: [ClickHouseConnection]
    let schema: ClickHouseSchema
    let capture: String
    let options: ClickHouseExportOptions
    private let queue = DispatchQueue(label: "beamtrace.clickhouse.send")
    private let slots = DispatchSemaphore(value: 2)
    private let lock = NSLock()
    private var failure: Error?
    private var _stats = BatchStats()

    init(inserter: ClickHouseConnection, shards: [ClickHouseConnection], schema: ClickHouseSchema, capture: String,
         options: ClickHouseExportOptions) {
        self.inserter = inserter
        self.shards = shards
        self.schema = schema
        self.capture = capture
        self.options = options
    }

    var stats: BatchStats { lock.withLock { _stats } }

    func table(_ table: ClickHouseTable) -> BatchTable { BatchTable(table, sink: self, batchRows: options.batchRows) }

    func check() throws {
        if let failure = lock.withLock({ failure }) { throw failure }
        if let reason = options.interruption?() {
            throw ClickHouseError(message: "interrupted by \(reason)", retryable: false)
        }
    }

    /// Queues a batch (waits while two are already waiting).
    func send(_ table: ClickHouseTable, batch: UInt32, rows: [UInt8], count: Int) throws {
        try check()
        slots.wait()
        queue.async { [self] in
            defer { slots.signal() }
            guard lock.withLock({ failure == nil }) else { return }
            do {
                try deliver(table, batch: batch, rows: rows, count: count)
                lock.withLock {
                    _stats.batches += 1
                    _stats.bytes += Int64(rows.count)
                    _stats.landed[table.name, default: 0] += count
                }
            } catch {
                lock.withLock { if failure == nil { failure = error } }
            }
        }
    }

    /// Waits for every queued batch; throws the first failure.
    func finish() throws {
        queue.sync {}
        try check()
    }

    /// Waits until nothing is being sent (after a failure: the batches queued behind it are skipped).
    func drain() {
        lock.withLock { if failure == nil { failure = ClickHouseError(message: "export stopped", retryable: false) } }
        queue.sync {}
    }

    /// One batch, exactly once.
    private func deliver(_ table: ClickHouseTable, batch: UInt32, rows: [UInt8], count: Int) throws {
        var outcomeUnknown = false
        var last: ClickHouseError?
        for attempt in 0...max(0, options.retries) {
            if attempt > 0 {
                Thread.sleep(forTimeInterval: min(10, options.retryDelay * Double(1 << min(attempt - 1, 6))))
                if let reason = options.interruption?() {
                    throw ClickHouseError(message: "interrupted by \(reason) while batch \(batch) of \(table.name) "
                                          + "was being tried again", retryable: false)
                }
            }
            do {
                if outcomeUnknown {
                    let landed = try landedRows(table, batch: batch)
                    if landed == count {
                        lock.withLock { _stats.foundLanded += 1 }
                        return
                    }
                    if landed > 0 {
                        try deletePartial(table, batch: batch)
                        lock.withLock { _stats.partialDeleted += 1 }
                    }
                    lock.withLock { _stats.resent += 1 }
                    outcomeUnknown = false
                }
                try inserter.insertRowBinary(into: schema.qualified(table), columns: table.columnNames, rows: rows)
                return
            } catch let error as ClickHouseError where error.retryable {
                // The insert may have landed, or the check failed: count again before any resend.
                outcomeUnknown = true
                last = error
            }
        }
        throw ClickHouseError(
            message: "batch \(batch) of \(table.name) (\(count) rows) did not land after \(options.retries + 1) tries: "
                + (last?.message ?? ""),
            serverCode: last?.serverCode ?? 0, retryable: false)
    }

    private func landedRows(_ table: ClickHouseTable, batch: UInt32) throws -> Int {
        let text = try inserter.execute("SELECT count() FROM \(schema.qualified(table)) WHERE capture = "
                                        + ClickHouseSQL.literal(capture) + " AND batch = \(batch)")
        guard let count = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw ClickHouseError(message: "ClickHouse at \(inserter.endpoint) answered a count with \(text.prefix(80))",
                                  retryable: true)
        }
        return count
    }

    /// Deletes what landed of a batch on every shard and waits until the deletes are done.
    private func deletePartial(_ table: ClickHouseTable, batch: UInt32) throws {
        let storage = schema.storage(table)
        for shard in shards {
            try shard.execute("ALTER TABLE \(storage) DELETE WHERE capture = \(ClickHouseSQL.literal(capture)) AND batch = \(batch)")
        }
        let name = ClickHouseSQL.literal(schema.prefix + table.name + (schema.cluster == nil ? "" : "_local"))
        let deadline = Date().addingTimeInterval(options.timeout)
        for shard in shards {
            while true {
                let pending = try shard.execute("SELECT count() FROM system.mutations WHERE database = "
                                                + ClickHouseSQL.literal(schema.database) + " AND table = \(name) AND is_done = 0")
                if pending.trimmingCharacters(in: .whitespacesAndNewlines) == "0" { break }
                guard Date() < deadline else {
                    throw ClickHouseError(message: "deleting the part of batch \(batch) of \(table.name) that landed did not "
                                          + "finish on \(shard.endpoint) in \(Int(options.timeout)) s", retryable: false)
                }
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
    }
}

/// One table's batch being filled.
final class BatchTable {
    let table: ClickHouseTable
    let sink: BatchSink
    let batchRows: Int
    /// The batch the rows being written belong to.
    private(set) var batch: UInt32 = 1
    private var writer: RowBinaryWriter
    static let byteLimit = 64 << 20

    init(_ table: ClickHouseTable, sink: BatchSink, batchRows: Int) {
        self.table = table
        self.sink = sink
        self.batchRows = max(1, batchRows)
        writer = RowBinaryWriter(capacity: 1 << 20)
    }

    /// The batch's writer, to append one row to and hand back with `end`.
    @inline(__always)
    func begin() -> RowBinaryWriter {
        let w = writer
        writer = RowBinaryWriter(capacity: 0)
        return w
    }

    @inline(__always)
    func end(_ w: RowBinaryWriter) throws {
        writer = w
        writer.rows += 1
        if writer.rows >= batchRows || writer.bytes.count >= Self.byteLimit { try flush() }
    }

    /// Sends what is buffered as one batch.
    func flush() throws {
        guard writer.rows > 0 else { return try sink.check() }
        let full = writer
        writer = RowBinaryWriter(capacity: full.bytes.count)
        try sink.send(table, batch: batch, rows: full.bytes, count: full.rows)
        batch += 1
    }
}
