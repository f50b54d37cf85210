// `beamtrace export --format clickhouse` into real ClickHouse servers (Debian's clickhouse-server, each
// test starting its own on loopback with its own config and data directory): the queries of
// docs/CLICKHOUSE.md, read from the doc, against `latency --json` and `queues --json` of the same
// captures (sampled and estimated queues); exporting again replaces; batches cut off by a proxy
// land once, one that landed in part is deleted first; an export failing midway removes what landed;
// credentials work and are never printed; and two shards behind a Distributed table answer the same.
import CaptureStore
import Foundation
import Testing
import TestSupport
import TraceAnalysis
import TraceExport

@Suite("export: clickhouse", .serialized)
struct ClickHouseTests {
    static let shipped = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("traces/mailbox-overload.btrace").path
    static let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("docs/CLICKHOUSE.md").path
    static let workload = Result { try ExportWorkload.run() }

    func beamtrace() throws -> String {
        try #require(BuiltProducts.executable("beamtrace"), "the beamtrace executable was not built")
    }

    func requireClickHouse() throws {
        try #require(ClickHouseServer.serverExecutable != nil && ClickHouseServer.clientExecutable != nil,
                     Comment(rawValue: ClickHouseServer.missing))
    }

    /// Runs the CLI; returns stderr (the export's summary line).
    @discardableResult
    func cli(_ arguments: [String], expectStatus: Int32 = 0) throws -> Shell.Result {
        let result = try Shell.runCapturing(try beamtrace(), arguments, timeout: 300)
        #expect(result.status == expectStatus, "beamtrace \(arguments.joined(separator: " ")): \(result.stderr)")
        return result
    }

    func json(_ arguments: [String]) throws -> [String: Any] {
        let result = try cli(arguments + ["--json"])
        return try #require(try JSONSerialization.jsonObject(with: result.stdoutData) as? [String: Any])
    }

    func captureID(_ capture: String) throws -> String { try CaptureReader(opening: capture).meta.captureID }

    /// The docs' query named `name`, for `capture`.
    static func query(_ name: String, capture: String) throws -> String {
        let doc = try String(contentsOfFile: docs, encoding: .utf8)
        let marker = "```sql\n-- query: \(name)\n"
        guard let start = doc.range(of: marker), let end = doc[start.upperBound...].range(of: "```") else {
            throw Failure(description: "docs/CLICKHOUSE.md has no query \(name)")
        }
        return doc[start.upperBound..<end.lowerBound].replacingOccurrences(of: "CAPTURE-ID", with: capture)
    }

    struct Failure: Error, CustomStringConvertible { var description: String }

    static func rows(_ text: String) -> [[String]] {
        text.split(separator: "\n").map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
    }

    static func close(_ a: Double, _ b: Double, relative: Double, absolute: Double = 0.0015) -> Bool {
        abs(a - b) <= max(absolute, relative * max(abs(a), abs(b)))
    }

    /// The docs' queries on `server` against the CLI's JSON of `capture` (which has sampled and/or estimated queues).
    func checkQueries(_ server: ClickHouseServer, capture: String, expectSampled: Bool, expectEstimated: Bool = true)
        throws {
        let id = try captureID(capture)
        let latency = try json(["latency", capture, "--sort", "mfa"])
        let expected = try #require(latency["functions"] as? [[String: Any]])
        #expect(!expected.isEmpty)

        let calls = Dictionary(uniqueKeysWithValues: Self.rows(try server.query(try Self.query("calls", capture: id))).map {
            ($0[0], $0.dropFirst().compactMap { Int($0) })
        })
        let measured = Dictionary(uniqueKeysWithValues: Self.rows(try server.query(try Self.query("latency", capture: id))).map {
            ($0[0], $0.dropFirst().compactMap { Double($0) })
        })
        #expect(Set(calls.keys) == Set(expected.compactMap { $0["mfa"] as? String }))
        for row in expected {
            let mfa = try #require(row["mfa"] as? String)
            let counts = ["calls", "returned", "exceptions", "unmeasured"].map { row[$0] as? Int ?? -1 }
            #expect(calls[mfa] == counts, "call counts of \(mfa)")
            guard let server = measured[mfa], server.count == 9 else {
                Issue.record("no latency row for \(mfa) in \(measured)")
                continue
            }
            #expect(Int(server[0]) == counts[0])
            // min, mean and max are exact; percentiles within the histogram's 3 significant digits.
            for (index, key) in [(1, "min_us"), (2, "mean_us"), (7, "max_us")] {
                let cli = row[key] as? Double ?? -1
                #expect(Self.close(server[index], cli, relative: 1e-9), "\(key) of \(mfa): \(server[index]) vs \(cli)")
            }
            for (index, key) in [(3, "p50_us"), (4, "p90_us"), (5, "p99_us"), (6, "p999_us"), (8, "self_p50_us")] {
                let cli = row[key] as? Double ?? -1
                #expect(Self.close(server[index], cli, relative: 1e-3), "\(key) of \(mfa): \(server[index]) vs \(cli)")
            }
        }

        // Every process `queues` reports, sampled or estimated, from the queues table.
        let queues = try json(["queues", capture, "--top", "100000"])
        let reports = try #require(queues["processes"] as? [[String: Any]])
        #expect(reports.contains { ($0["estimated"] as? Bool) == true } == expectEstimated, "estimated series")
        #expect(reports.contains { ($0["estimated"] as? Bool) == false } == expectSampled, "sampled series")
        let queueRows = Self.rows(try server.query(try Self.query("queues", capture: id)))
        let byPid = Dictionary(queueRows.map { ($0[0], $0) }, uniquingKeysWith: { first, _ in first })
        #expect(queueRows.count == reports.count)
        #expect(Set(byPid.keys) == Set(reports.compactMap { $0["pid"] as? String }))
        for report in reports {
            let pid = report["pid"] as? String ?? ""
            guard let row = byPid[pid], row.count == 6 else {
                Issue.record("no queues row for \(pid)")
                continue
            }
            #expect(row[1] == report["node"] as? String)
            #expect(row[2] == ((report["estimated"] as? Bool) == true ? "1" : "0"), "estimated of \(pid)")
            #expect(Int(row[3]) == report["max_len"] as? Int)
            #expect(Int(row[4]) == report["end_len"] as? Int)
            #expect(Self.pairs(row[5]) == (report["series"] as? [[Int]]) ?? [], "series of \(pid)")
        }

        // Every sample from the events table: the sampled series (under 4096 samples, so not thinned).
        let sampled = reports.filter { ($0["estimated"] as? Bool) == false && ($0["max_len"] as? Int ?? 0) > 0 }
        let samples = Self.rows(try server.query(try Self.query("samples", capture: id)))
        #expect(samples.map { $0[0] } == sampled.compactMap { $0["pid"] as? String })
        for (row, report) in zip(samples, sampled) {
            #expect(row[1] == report["node"] as? String)
            #expect(Int(row[2]) == report["max_len"] as? Int)
            #expect(Int(row[3]) == report["end_len"] as? Int)
            #expect(Self.pairs(row[4]) == (report["series"] as? [[Int]]) ?? [], "samples of \(row[0])")
        }
    }

    /// `[(1,2),(3,-4)]` as [[1, 2], [3, -4]].
    static func pairs(_ text: String) -> [[Int]] {
        let numbers = text.split(whereSeparator: { !$0.isNumber && $0 != "-" }).compactMap { Int($0) }
        return stride(from: 0, to: numbers.count - 1, by: 2).map { [numbers[$0], numbers[$0 + 1]] }
    }

    func count(_ server: ClickHouseServer, _ table: String, _ capture: String) throws -> Int {
        Int(try server.query("SELECT count() FROM \(table) WHERE capture = '\(capture)'")
            .trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    @Test("the documented queries give latency's quantiles, call counts and queue series; exporting again replaces")
    func queries() throws {
        try requireClickHouse()
        let server = try ClickHouseServer()
        defer { server.stop() }
        let run = try Self.workload.get()
        for capture in [Self.shipped, run.capture] {
            try cli(["export", capture, "--format", "clickhouse", "--url", server.url, "--create", "--batch", "5000"])
        }
        let shippedID = try captureID(Self.shipped), workloadID = try captureID(run.capture)
        let events = try CaptureReader(opening: Self.shipped).blocks.reduce(0) { $0 + Int($1.count) }
        #expect(try count(server, "events", shippedID) == events)
        // Each capture's spans: as many as the analysis closes.
        let analysis = try CaptureAnalysis.run(CaptureReader(opening: run.capture))
        let spans = analysis.latency.functions.values.reduce(0) { $0 + $1.calls }
        #expect(try count(server, "spans", workloadID) == spans)
        let exceptions = try server.query("SELECT mfa, exception FROM spans WHERE capture = '\(workloadID)' "
                                          + "AND ending = 'exception'")
        #expect(exceptions.hasPrefix("bt_export:work/1\t{error,boom}"), "\(exceptions)")
        let nested = try server.query("SELECT count() FROM spans AS c WHERE capture = '\(workloadID)' AND depth = 1 "
                                      + "AND mfa = 'bt_export:store/2' AND parent IN (SELECT toInt64(id) FROM spans "
                                      + "WHERE capture = '\(workloadID)' AND mfa = 'bt_export:handle_call/3')")
        #expect(Int(nested.trimmingCharacters(in: .whitespacesAndNewlines)) == 2 * (run.integer("calls") ?? 0))

        try checkQueries(server, capture: Self.shipped, expectSampled: true)
        try checkQueries(server, capture: run.capture, expectSampled: false)

        // Again: the capture's rows are replaced, the other capture's untouched.
        let before = try server.query("SELECT capture, count() FROM events GROUP BY capture ORDER BY capture")
        let result = try cli(["export", Self.shipped, "--format", "clickhouse", "--url", server.url])
        #expect(result.stderr.contains("exported capture \(shippedID)"))
        #expect(try server.query("SELECT capture, count() FROM events GROUP BY capture ORDER BY capture") == before)
        #expect(try count(server, "processes", shippedID) == CaptureReader(opening: Self.shipped).dictionaries.processes.count - 1)
        try checkQueries(server, capture: Self.shipped, expectSampled: true)
    }

    @Test("a missing table, a refused connection, a bad URL or password are clear errors; a user's password works")
    func errors() throws {
        try requireClickHouse()
        let server = try ClickHouseServer(users: [("bt", "s3cret-pw")])
        defer { server.stop() }
        let user = try cli(["export", Self.shipped, "--format", "clickhouse", "--url",
                            "http://bt:s3cret-pw@127.0.0.1:\(server.httpPort)", "--create"])
        #expect(try count(server, "events", try captureID(Self.shipped)) > 0)
        #expect(user.stderr.contains("to ClickHouse at http://127.0.0.1:\(server.httpPort):"), "\(user.stderr)")
        #expect(!user.stderr.contains("s3cret"), "the password is never printed: \(user.stderr)")
        let badPort = try cli(["export", Self.shipped, "--format", "clickhouse",
                               "--url", "http://bt:s3cret-pw@127.0.0.1:70000"], expectStatus: 64)
        #expect(badPort.stderr.contains("http://bt@127.0.0.1:70000"), "\(badPort.stderr)")
        #expect(!badPort.stderr.contains("s3cret"), "the password is never printed: \(badPort.stderr)")
        let wrong = try cli(["export", Self.shipped, "--format", "clickhouse", "--url",
                             "http://bt:wrong-pw@127.0.0.1:\(server.httpPort)"], expectStatus: 1)
        #expect(wrong.stderr.contains("Code: 193") && wrong.stderr.contains("Wrong password for user bt"),
                "\(wrong.stderr)")
        #expect(!wrong.stderr.contains("wrong-pw"), "the password is never printed: \(wrong.stderr)")
        let missing = try cli(["export", Self.shipped, "--format", "clickhouse", "--url", server.url,
                               "--table-prefix", "none_"], expectStatus: 1)
        #expect(missing.stderr.contains("none_events") && missing.stderr.contains("--create"), "\(missing.stderr)")
        let port = try ClickHouseServer.freePort()
        let refused = try cli(["export", Self.shipped, "--format", "clickhouse", "--url", "http://127.0.0.1:\(port)"],
                              expectStatus: 1)
        #expect(refused.stderr.contains("cannot connect to http://127.0.0.1:\(port)"), "\(refused.stderr)")
        let https = try cli(["export", Self.shipped, "--format", "clickhouse", "--url", "https://127.0.0.1:8443"],
                            expectStatus: 64)
        #expect(https.stderr.contains("only http://"), "\(https.stderr)")
        let noURL = try cli(["export", Self.shipped, "--format", "clickhouse"], expectStatus: 64)
        #expect(noURL.stderr.contains("--url"))

        // Another database and a table prefix: created, filled, and replaced when exported again.
        let events = try CaptureReader(opening: Self.shipped).blocks.reduce(0) { $0 + Int($1.count) }
        let id = try captureID(Self.shipped)
        for _ in 0..<2 {
            try cli(["export", Self.shipped, "--format", "clickhouse", "--url", server.url, "--database", "bt_db",
                     "--table-prefix", "p_", "--create"])
            #expect(try count(server, "bt_db.p_events", id) == events)
        }
        let points = try server.query("SELECT count() FROM bt_db.p_queues")
        #expect(Int(points.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0 > 0)
        let plain = try server.query("EXISTS TABLE default.p_events")
        #expect(plain.trimmingCharacters(in: .whitespacesAndNewlines) == "0")
    }

    @Test("a batch whose answer was lost is found on the server, one that never arrived is sent again: each lands once")
    func retries() throws {
        try requireClickHouse()
        let server = try ClickHouseServer()
        defer { server.stop() }
        // The proxy forwards the 2nd insert and drops the server's answer; it drops the 4th insert unsent.
        let proxy = try PythonServer(Self.proxy, ["127.0.0.1", "\(server.httpPort)", "2:answer,4:request"])
        defer { proxy.stop() }
        let result = try cli(["export", Self.shipped, "--format", "clickhouse", "--url", "http://127.0.0.1:\(proxy.port)",
                              "--create", "--batch", "5000"])
        #expect(result.stderr.contains("1 batches were found landed, 1 sent again"), "\(result.stderr)")
        let id = try captureID(Self.shipped)
        let events = try CaptureReader(opening: Self.shipped).blocks.reduce(0) { $0 + Int($1.count) }
        let counts = try server.query("SELECT count(), uniqExact(seq), max(seq) + 1 FROM events WHERE capture = '\(id)'")
        #expect(counts.trimmingCharacters(in: .whitespacesAndNewlines) == "\(events)\t\(events)\t\(events)")
        #expect(proxy.output.contains("dropped answer to insert 2") && proxy.output.contains("dropped insert 4"),
                "\(proxy.output)")
        try checkQueries(server, capture: Self.shipped, expectSampled: true)
    }

    @Test("a batch that landed in part is deleted (waiting for the mutation) and sent again: no duplicates")
    func partialBatch() throws {
        try requireClickHouse()
        let server = try ClickHouseServer()
        defer { server.stop() }
        let types = ClickHouseSchema.events.columns.map(\.1).joined(separator: ",")
        let proxy = try PythonServer(Self.proxy, ["127.0.0.1", "\(server.httpPort)", "3:cut", types])
        defer { proxy.stop() }
        let result = try cli(["export", Self.shipped, "--format", "clickhouse",
                              "--url", "http://127.0.0.1:\(proxy.port)", "--create", "--batch", "5000"])
        // The server really took half of batch 3 (it answered 200 to the cut body) before the connection broke.
        #expect(proxy.output.contains("cut insert 3 (`default`.`events` batch 3) after 2500 of 5000 rows: "
                                      + "the server answered 200 and holds 2500 rows of it"), "\(proxy.output)")
        #expect(result.stderr.contains("0 batches were found landed, 1 sent again, 1 partial ones deleted first"),
                "\(result.stderr)")
        let id = try captureID(Self.shipped)
        let mutations = try server.query("SELECT command, is_done FROM system.mutations WHERE table = 'events'")
        // Cut short and answered 200: only the counts at the end can tell, and then the capture is removed.
        let short = try PythonServer(Self.proxy, ["127.0.0.1", "\(server.httpPort)", "3:short", types])
        defer { short.stop() }
        let failed = try cli(["export", Self.shipped, "--format", "clickhouse",
                              "--url", "http://127.0.0.1:\(short.port)", "--batch", "5000"], expectStatus: 1)
        #expect(short.output.contains("cut insert 3 short and passed on the answer 200"), "\(short.output)")
        #expect(failed.stderr.contains("holds 27336 rows of the capture in `default`.`events` where 29836 were "
                                       + "sent and acknowledged"), "\(failed.stderr)")
        #expect(failed.stderr.contains("they were removed again"), "\(failed.stderr)")
        #expect(try count(server, "events", id) == 0)
        try cli(["export", Self.shipped, "--format", "clickhouse", "--url", server.url, "--batch", "5000"])
        #expect(mutations.contains("batch = 3") && mutations.hasSuffix("\t1\n"), "\(mutations)")
        let events = try CaptureReader(opening: Self.shipped).blocks.reduce(0) { $0 + Int($1.count) }
        let counts = try server.query("SELECT count(), uniqExact(seq), max(seq) + 1, countIf(batch = 3) FROM events "
                                      + "WHERE capture = '\(id)'")
        #expect(counts.trimmingCharacters(in: .whitespacesAndNewlines) == "\(events)\t\(events)\t\(events)\t5000")
        try checkQueries(server, capture: Self.shipped, expectSampled: true)
    }

    @Test("an export that fails midway removes what landed (or says it stays) and exits 1; exporting again is whole")
    func failsMidway() throws {
        try requireClickHouse()
        let server = try ClickHouseServer()
        defer { server.stop() }
        let run = try Self.workload.get()
        try cli(["export", run.capture, "--format", "clickhouse", "--url", server.url, "--create"])
        let other = try server.query("SELECT count() FROM events")
        let id = try captureID(Self.shipped)
        let tables = ["events", "spans", "queues", "processes", "functions"]
        func rows() throws -> [Int] { try tables.map { try count(server, $0, id) } }

        // Inserts stop landing from the 4th on (the server answers everything else): what landed is dropped.
        let down = try PythonServer(Self.proxy, ["127.0.0.1", "\(server.httpPort)", "4:down"])
        defer { down.stop() }
        let failed = try cli(["export", Self.shipped, "--format", "clickhouse",
                              "--url", "http://127.0.0.1:\(down.port)", "--batch", "5000", "--retries", "1"],
                             expectStatus: 1)
        #expect(failed.stderr.contains("export to ClickHouse failed: batch 4 of events (5000 rows) did not land "
                                       + "after 2 tries"), "\(failed.stderr)")
        #expect(failed.stderr.contains("ClickHouse had acknowledged 15000 events, 0 spans, 0 queue points, 0 processes "
                                       + "and 0 functions of capture \(id); they were removed again"),
                "\(failed.stderr)")
        // Inserts 4 and 5 were batch 4's two tries; batch 5, queued behind it, was never sent.
        #expect(down.output.contains("dropped insert 5") && !down.output.contains("dropped insert 6"), "\(down.output)")
        #expect(try rows() == [0, 0, 0, 0, 0])
        #expect(try server.query("SELECT count() FROM events") == other, "the other capture is untouched")

        // The server goes away from the 4th insert on: nothing can be removed, and the message says so.
        let gone = try PythonServer(Self.proxy, ["127.0.0.1", "\(server.httpPort)", "4:gone"])
        defer { gone.stop() }
        let stays = try cli(["export", Self.shipped, "--format", "clickhouse", "--url", "http://127.0.0.1:\(gone.port)",
                             "--batch", "5000", "--retries", "1"], expectStatus: 1)
        #expect(stays.stderr.contains("ClickHouse had acknowledged 15000 events, 0 spans, 0 queue points, 0 processes "
                                      + "and 0 functions of capture \(id), and they stay there: removing them failed"),
                "\(stays.stderr)")
        #expect(try rows() == [15000, 0, 0, 0, 0])

        // Exported again: whole, once.
        try cli(["export", Self.shipped, "--format", "clickhouse", "--url", server.url, "--batch", "5000"])
        let events = try CaptureReader(opening: Self.shipped).blocks.reduce(0) { $0 + Int($1.count) }
        let counts = try server.query("SELECT count(), uniqExact(seq) FROM events WHERE capture = '\(id)'")
        #expect(counts.trimmingCharacters(in: .whitespacesAndNewlines) == "\(events)\t\(events)")
        try checkQueries(server, capture: Self.shipped, expectSampled: true)
        try checkQueries(server, capture: run.capture, expectSampled: false)
    }

    @Test("SIGINT midway removes what landed and exits 130, saying an earlier export's rows were dropped; twice stops at once")
    func interrupted() async throws {
        try requireClickHouse()
        let server = try ClickHouseServer()
        defer { server.stop() }
        let tables = ["events", "spans", "queues", "processes", "functions"]
        let healthy = URL(fileURLWithPath: Self.shipped).deletingLastPathComponent()
            .appendingPathComponent("healthy.btrace").path
        try cli(["export", healthy, "--format", "clickhouse", "--url", server.url, "--create"])
        let otherID = try captureID(healthy)
        let other = try tables.map { try count(server, $0, otherID) }
        let id = try captureID(Self.shipped)
        func rows() throws -> [Int] { try tables.map { try count(server, $0, id) } }
        try cli(["export", Self.shipped, "--format", "clickhouse", "--url", server.url, "--batch", "5000"])
        let whole = try rows()
        #expect(whole[0] > 15000)

        // The 4th insert is held 3 s on its way: Ctrl-C while it is in flight.
        for second in [false, true] {
            let hold = try PythonServer(Self.proxy, ["127.0.0.1", "\(server.httpPort)", "4:hold"])
            defer { hold.stop() }
            let export = try InterruptibleProcess(try beamtrace(), ["export", Self.shipped, "--format", "clickhouse",
                                                                   "--url", "http://127.0.0.1:\(hold.port)",
                                                                   "--batch", "5000"])
            let deadline = ContinuousClock.now + .seconds(60)
            while !hold.output.contains("holding insert 4") && ContinuousClock.now < deadline && export.isRunning {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(hold.output.contains("holding insert 4"), "\(hold.output) \(export.output)")
            export.signal(SIGINT)
            if second {
                try await Task.sleep(for: .milliseconds(300))
                export.signal(SIGINT)
            }
            let status = await export.wait()
            let text = export.output
            #expect(status == 130, "\(text)")
            #expect(text.contains("export to ClickHouse interrupted"), "\(text)")
            #expect(!text.contains("export to ClickHouse failed"), "\(text)")
            if second {
                // Stopped during the held insert: batch 4 lands after the process is gone, and the message
                // says rows may be left and how to replace them.
                #expect(text.contains("interrupted again (SIGINT)"), "\(text)")
                #expect(text.contains("may be left in ClickHouse: export it again"), "\(text)")
                try await Task.sleep(for: .seconds(4))
                let left = try rows()
                #expect(left[0] == 20000, "left after a second SIGINT: \(left)")
            } else {
                #expect(text.contains("interrupted (SIGINT): interrupted by SIGINT; ClickHouse had acknowledged "),
                        "\(text)")
                #expect(text.contains("of capture \(id); they were removed again"), "\(text)")
                #expect(text.contains("the \(whole.reduce(0, +)) rows an earlier export of the capture had left "
                                      + "were dropped when this one began"), "\(text)")
                #expect(try rows() == [0, 0, 0, 0, 0], "left after SIGINT")
                // Batch 5 and later, queued behind the held one, were never sent.
                try await Task.sleep(for: .seconds(1))
                #expect(try rows() == [0, 0, 0, 0, 0], "landed after the export said it was removed")
            }
            #expect(try tables.map { try count(server, $0, otherID) } == other, "the other capture is untouched")
        }
        // Exported again: whole, once.
        try cli(["export", Self.shipped, "--format", "clickhouse", "--url", server.url, "--batch", "5000"])
        #expect(try rows() == whole)
    }

    @Test("two shards behind Distributed tables: rows spread over both, a partial batch deleted on both, same answers")
    func distributed() throws {
        try requireClickHouse()
        let servers = try ClickHouseServer.cluster("bt_cluster", shards: 2)
        defer { servers.forEach { $0.stop() } }
        let run = try Self.workload.get()
        // Exported twice; the second time the shipped capture's 3rd insert lands in part (half its rows,
        // spread over both shards) before the connection breaks: deleted on every shard, then sent again.
        let types = ClickHouseSchema.events.columns.map(\.1).joined(separator: ",")
        let proxy = try PythonServer(Self.proxy, ["127.0.0.1", "\(servers[0].httpPort)", "3:cut", types])
        defer { proxy.stop() }
        for round in 0..<2 {
            for capture in [Self.shipped, run.capture] {
                let first = round == 1 && capture == Self.shipped ? "http://127.0.0.1:\(proxy.port)" : servers[0].url
                let result = try cli(["export", capture, "--format", "clickhouse", "--cluster", "bt_cluster",
                                      "--url", first, "--url", servers[1].url, "--create", "--batch", "5000"])
                if first != servers[0].url {
                    #expect(proxy.output.contains("after 2500 of 5000 rows: the server answered 200 and holds 2500"),
                            "\(proxy.output)")
                    #expect(result.stderr.contains("1 partial ones deleted first"), "\(result.stderr)")
                }
            }
        }
        for server in servers {
            let done = try server.query("SELECT count() FROM system.mutations WHERE table = 'events_local' "
                                        + "AND is_done = 1 AND command LIKE '%batch = 3%'")
            #expect(done.trimmingCharacters(in: .whitespacesAndNewlines) == "1", "the delete ran on every shard")
        }
        for capture in [Self.shipped, run.capture] {
            let id = try captureID(capture)
            let events = try CaptureReader(opening: capture).blocks.reduce(0) { $0 + Int($1.count) }
            let local = try servers.map { try count($0, "events_local", id) }
            // Rows are sharded by (capture, pid): the shipped capture's dozen processes (its id and pids fixed)
            // land on both shards; the workload's few, under a new capture id each run, may all hash to one.
            if capture == Self.shipped { #expect(local.allSatisfy { $0 > 0 }, "events per shard: \(local)") }
            #expect(local.reduce(0, +) == events)
            #expect(try count(servers[1], "events", id) == events)
        }
        // The second shard's Distributed tables answer the documented queries.
        try checkQueries(servers[1], capture: Self.shipped, expectSampled: true)
        try checkQueries(servers[1], capture: run.capture, expectSampled: false)
        let fewer = try cli(["export", Self.shipped, "--format", "clickhouse", "--cluster", "bt_cluster",
                             "--url", servers[0].url], expectStatus: 1)
        #expect(fewer.stderr.contains("give every shard's HTTP URL"), "\(fewer.stderr)")
    }

    /// An HTTP proxy in front of a server that fails as networks and servers do, by plan `N:action,...`
    /// (N counts inserts): `answer` forwards insert N and loses the server's answer; `request` loses
    /// insert N unsent; `cut` forwards the first half of insert N's rows (cut at a row boundary, so the
    /// server takes them) and breaks the connection; `short` does the same but passes the server's
    /// status (200) on; `down` loses every insert from N on (other queries
    /// pass); `gone` breaks every request from insert N on, as a server that stopped. The 4th argument
    /// is the inserted table's column types, for `cut` to find the rows.
    static let proxy = #"""
import http.client, http.server, socketserver, sys, threading, os, socket, urllib.parse, time
host, port = sys.argv[1], int(sys.argv[2])
plan = [(int(n), a) for n, a in (p.split(':') for p in sys.argv[3].split(','))]
types = sys.argv[4].split(',') if len(sys.argv) > 4 else []
sizes = {'UInt8': 1, 'UInt16': 2, 'Date': 2, 'UInt32': 4, 'UInt64': 8, 'Int64': 8}
state = {'inserts': 0, 'gone': False}
lock = threading.Lock()

def varint(body, i):
    n, shift = 0, 0
    while True:
        b = body[i]; i += 1
        n |= (b & 0x7f) << shift; shift += 7
        if b < 0x80: return n, i

def row_ends(body):
    ends, i = [], 0
    while i < len(body):
        for t in types:
            if t == 'String':
                n, i = varint(body, i); i += n
            else:
                i += sizes[t]
        ends.append(i)
    return ends

def ask(sql):
    c = http.client.HTTPConnection(host, port, timeout=60)
    c.request('POST', '/', body=sql.encode())
    text = c.getresponse().read().decode().strip()
    c.close()
    return text

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def log_message(self, *args): pass
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
        action, n = None, 0
        with lock:
            if 'INSERT' in self.path:
                state['inserts'] += 1
                n = state['inserts']
                for k, a in plan:
                    if (a in ('down', 'gone') and n >= k) or k == n:
                        action = a
                if action == 'gone': state['gone'] = True
            if state['gone']: action = 'gone'
        if action in ('request', 'down', 'gone'):
            print('dropped insert %d' % n if n else 'dropped a query', flush=True)
            self.close_connection = True
            return
        if action == 'hold':
            print('holding insert %d' % n, flush=True)
            time.sleep(3)
        if action in ('cut', 'short'):
            ends = row_ends(body)
            cut = ends[len(ends) // 2 - 1]
            s = socket.create_connection((host, port))
            s.sendall(('POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n'
                       % (self.path, host, len(body))).encode() + body[:cut])
            s.shutdown(socket.SHUT_WR)
            s.settimeout(60)
            reply = b''
            while not reply.endswith(b'0\r\n\r\n'):
                chunk = s.recv(65536)
                if not chunk: break
                reply += chunk
            s.close()
            if action == 'short':
                status = int(reply.split(b' ')[1])
                print('cut insert %d short and passed on the answer %d' % (n, status), flush=True)
                self.send_response(status)
                self.send_header('Content-Length', '0')
                self.end_headers()
                return
            table = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)['query'][0].split(' ')[2]
            length, i = varint(body, 0)
            capture = body[i:i + length].decode()
            batch = int.from_bytes(body[i + length + 2:i + length + 6], 'little')
            landed = ask("SELECT count() FROM %s WHERE capture = '%s' AND batch = %d" % (table, capture, batch))
            print('cut insert %d (%s batch %d) after %d of %d rows: the server answered %s and holds %s rows of it'
                  % (n, table, batch, len(ends) // 2, len(ends), reply.split(b' ')[1].decode(), landed), flush=True)
            self.close_connection = True
            return
        upstream = http.client.HTTPConnection(host, port, timeout=60)
        upstream.request('POST', self.path, body=body)
        reply = upstream.getresponse()
        data = reply.read()
        upstream.close()
        if action == 'answer':
            print('dropped answer to insert %d' % n, flush=True)
            self.close_connection = True
            return
        self.send_response(reply.status)
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)
"""#
}

/// A Python script serving on a port it prints first; stopped by closing its stdin. The script
/// defines `Handler` (a `http.server.BaseHTTPRequestHandler`); `serving` runs it.
final class PythonServer: @unchecked Sendable {
    static let serving = #"""

class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
server = Server(('127.0.0.1', 0), Handler)
print(server.server_address[1], flush=True)
threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
server.serve_forever()
"""#

    let process = Process()
    private let input = Pipe(), out = Pipe()
    private let box = DataBox()
    private let lock = NSLock()
    private(set) var port: UInt16 = 0

    init(_ script: String, _ arguments: [String]) throws {
        let directory = try Erlang.temporaryDirectory("bt-py")
        let path = directory.appendingPathComponent("server.py").path
        try (script + Self.serving).write(toFile: path, atomically: true, encoding: .utf8)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", path] + arguments
        process.standardInput = input
        process.standardOutput = out
        let errors = Pipe()
        process.standardError = errors
        let box = self.box, lock = self.lock
        out.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            lock.withLock { box.data.append(data) }
        }
        errors.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            lock.withLock { box.data.append(data) }
        }
        try process.run()
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if let line = output.split(separator: "\n").first, let port = UInt16(line) {
                self.port = port
                return
            }
            if !process.isRunning { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        stop()
        throw ClickHouseTests.Failure(description: "python server did not start: \(output)")
    }

    var output: String { lock.withLock { String(decoding: box.data, as: UTF8.self) } }

    func stop() {
        try? input.fileHandleForWriting.close()
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning { process.terminate() }
    }

    deinit { stop() }
}

final class DataBox: @unchecked Sendable {
    var data = Data()
}

/// A process whose output is collected as it comes and that can be sent signals.
final class InterruptibleProcess: @unchecked Sendable {
    private let process = Process()
    private let pipe = Pipe()
    private let box = DataBox()
    private let lock = NSLock()

    init(_ executable: String, _ arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        let box = self.box, lock = self.lock
        pipe.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            lock.withLock { box.data.append(data) }
        }
        try process.run()
    }

    var output: String { lock.withLock { String(decoding: box.data, as: UTF8.self) } }
    var isRunning: Bool { process.isRunning }
    func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    /// Waits for the exit (SIGKILL after `timeout`); the exit status, or 128 + the signal that ended it.
    func wait(timeout: Duration = .seconds(60)) async -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        try? await Task.sleep(for: .milliseconds(100))
        return process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
}
