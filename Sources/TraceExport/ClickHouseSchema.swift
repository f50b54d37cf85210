// The ClickHouse schema of an exported capture (docs/CLICKHOUSE.md): events, spans, the queue-length
// series `queues` gives (sampled and estimated), and the processes and functions dimension tables,
// MergeTree partitioned by (capture_date, capture) so a capture exported again replaces its
// partition, ordered by capture, node, pid and time. Across
// shards each table is `<name>_local` on every server and a Distributed `<name>` over them, sharded
// by capture and pid so a process's rows stay together.
public struct ClickHouseTable: Sendable {
    public var name: String
    /// (column, type) in insert order.
    public var columns: [(String, String)]
    public var orderBy: String
    /// Distributed tables: the sharding key.
    public var shardBy: String

    public var columnNames: [String] { columns.map(\.0) }
}

public struct ClickHouseSchema: Sendable {
    public var database: String
    public var prefix: String
    /// A cluster of `remote_servers`: the tables are Distributed over `_local` tables on each shard.
    public var cluster: String?

    public init(database: String = "default", prefix: String = "", cluster: String? = nil) {
        self.database = database
        self.prefix = prefix
        self.cluster = cluster
    }

    static let key: [(String, String)] = [("capture", "String"), ("capture_date", "Date"), ("batch", "UInt32")]

    public static let events = ClickHouseTable(
        name: "events",
        columns: key + [("seq", "UInt64"), ("node", "String"), ("pid", "String"), ("process", "String"),
                        ("time", "Int64"), ("kind", "String"), ("mfa", "String"), ("peer", "String"),
                        ("value", "Int64"), ("payload", "String")],
        orderBy: "capture, node, pid, time, seq", shardBy: "cityHash64(capture, pid)")

    public static let spans = ClickHouseTable(
        name: "spans",
        columns: key + [("node", "String"), ("pid", "String"), ("id", "UInt64"), ("parent", "Int64"),
                        ("depth", "UInt16"), ("mfa", "String"), ("start_time", "Int64"), ("end_time", "Int64"),
                        ("duration", "Int64"), ("self_time", "Int64"), ("ending", "String"),
                        ("start_known", "UInt8"), ("measured", "UInt8"), ("exception", "String"),
                        ("arguments", "String"), ("result", "String")],
        orderBy: "capture, node, pid, start_time, id", shardBy: "cityHash64(capture, pid)")

    /// `beamtrace queues`' series, one row per point: sampled, or estimated for processes never sampled.
    public static let queues = ClickHouseTable(
        name: "queues",
        columns: key + [("node", "String"), ("pid", "String"), ("point", "UInt32"), ("time", "Int64"),
                        ("length", "Int64"), ("estimated", "UInt8")],
        orderBy: "capture, node, pid, point", shardBy: "cityHash64(capture, pid)")

    public static let processes = ClickHouseTable(
        name: "processes",
        columns: key + [("node", "String"), ("pid", "String"), ("registered_name", "String"),
                        ("initial_call", "String"), ("label", "String"), ("events", "UInt64")],
        orderBy: "capture, node, pid", shardBy: "cityHash64(capture, pid)")

    public static let functions = ClickHouseTable(
        name: "functions",
        columns: key + [("mfa", "String"), ("module", "String"), ("function", "String"), ("arity", "UInt16"),
                        ("traced", "UInt8")],
        orderBy: "capture, mfa", shardBy: "cityHash64(capture, mfa)")

    public static let tables = [events, spans, queues, processes, functions]

    /// What queries and inserts name: `db`.`P events`.
    public func qualified(_ table: ClickHouseTable) -> String {
        ClickHouseSQL.name(database) + "." + ClickHouseSQL.name(prefix + table.name)
    }

    /// Where the rows are stored (the `_local` table on each shard with a cluster).
    public func storage(_ table: ClickHouseTable) -> String {
        cluster == nil ? qualified(table) : ClickHouseSQL.name(database) + "." + ClickHouseSQL.name(prefix + table.name + "_local")
    }

    public func createStorage(_ table: ClickHouseTable) -> String {
        let columns = table.columns.map { "    \($0.0) \($0.1)" }.joined(separator: ",\n")
        return "CREATE TABLE IF NOT EXISTS \(storage(table))\n(\n\(columns)\n)\nENGINE = MergeTree()\n"
            + "PARTITION BY (capture_date, capture)\nORDER BY (\(table.orderBy))"
    }

    /// The Distributed table over the shards' `_local` tables (nil without a cluster).
    public func createDistributed(_ table: ClickHouseTable) -> String? {
        guard let cluster else { return nil }
        let columns = table.columns.map { "    \($0.0) \($0.1)" }.joined(separator: ",\n")
        return "CREATE TABLE IF NOT EXISTS \(qualified(table))\n(\n\(columns)\n)\n"
            + "ENGINE = Distributed(\(ClickHouseSQL.name(cluster)), \(ClickHouseSQL.name(database)), "
            + "\(ClickHouseSQL.name(prefix + table.name + "_local")), \(table.shardBy))"
    }

    /// Drops one capture's partition (a no-op when it has none).
    public func dropCapture(_ table: ClickHouseTable, capture: String, date: String) -> String {
        "ALTER TABLE \(storage(table)) DROP PARTITION (\(ClickHouseSQL.literal(date)), \(ClickHouseSQL.literal(capture)))"
    }
}
