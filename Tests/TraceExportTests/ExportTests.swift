// `beamtrace export` of a real OTP workload and of the shipped live capture, each file read back by
// its format's own reader (Perfetto's published schema, JSON) and checked against the analysis and
// the workload's own counts.
import CaptureStore
import Foundation
import Testing
import TestSupport
import TraceAnalysis

@Suite("export: perfetto, chrome, folded, speedscope, csv", .serialized)
struct ExportTests {
    static let workload = Result { try ExportWorkload.run() }
    static let shipped = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("traces/mailbox-overload.btrace").path

    func beamtrace() throws -> String {
        try #require(BuiltProducts.executable("beamtrace"), "the beamtrace executable was not built")
    }

    /// Exports with the CLI into a temporary file.
    func export(_ capture: String, _ format: String, _ extra: [String] = []) throws -> (path: String, stderr: String) {
        let directory = try Erlang.temporaryDirectory("bt-export-out")
        let path = directory.appendingPathComponent("out.\(format)").path
        let result = try Shell.runCapturing(try beamtrace(), ["export", capture, "--format", format, "-o", path] + extra,
                                            timeout: 300)
        #expect(result.status == 0, "export \(format) failed: \(result.stderr)")
        return (path, result.stderr)
    }

    /// Spans per process (pid text) as the analysis counts them: calls per function grouped by process.
    func spansPerProcess(_ capture: String) throws -> [String: Int] {
        let analysis = try CaptureAnalysis.run(CaptureReader(opening: capture), options: AnalysisOptions(grouping: .process))
        var counts: [String: Int] = [:]
        for (key, stats) in analysis.latency.functions { counts[analysis.processText(key.group), default: 0] += stats.calls }
        return counts
    }

    /// Thread names start with the pid text.
    func byPid(_ counts: Any?) -> [String: Int] {
        var result: [String: Int] = [:]
        for (name, count) in (counts as? [String: Int]) ?? [:] {
            result[String(name.prefix { $0 != " " }), default: 0] += count
        }
        return result
    }

    @Test("perfetto: tracks per node and process, slices per process as the analysis, nesting, paired flows, counters")
    func perfetto() throws {
        try Checkers.ensurePerfettoModule()
        let run = try Self.workload.get()
        let (path, _) = try export(run.capture, "perfetto")
        let summary = try Checkers.run(Checkers.perfetto, path)
        #expect((summary["problems"] as? [String]) == [], "\(summary["problems"] ?? "")")
        #expect(summary["open_at_end"] as? Int == 0)
        let expected = try spansPerProcess(run.capture)
        #expect(byPid(summary["slices"]) == expected)
        let calls = try #require(run.integer("calls")), pings = try #require(run.integer("pings"))
        let kv = try #require(run.pid("kv")), echo = try #require(run.pid("echo"))
        // The workload's own counts: per put a handle_call and a store; the boom call and its work/1.
        #expect(byPid(summary["slices"])[kv] == 2 * (2 * calls) + 2)
        let threads = (summary["threads"] as? [String]) ?? []
        #expect(threads.contains("\(kv) kv"), "\(threads)")
        #expect((summary["processes"] as? [String])?.contains { $0.hasPrefix("nonode@nohost") } == true)
        // Every ping and the stop reached echo: one flow each, and none ends without its send.
        #expect(byPid(summary["flows_by_thread"])[echo] == pings + 1)
        #expect(summary["flows_unpaired"] as? Int == 0)
        // Each client's gen_server call is a request and a reply (the boom call comes from the untraced
        // test process: only kv's receive of it is traced, with no send to match).
        #expect(summary["flows_ended"] as? Int == pings + 1 + 2 * (2 * calls))
        // No samples in a dbg trace: kv's queue is estimated from sends and handled callbacks.
        let counters = (summary["counters"] as? [String: Int]) ?? [:]
        #expect(counters.keys.contains { $0.hasPrefix("message_queue_len (estimated) \(kv)") }, "\(counters)")
    }

    @Test("perfetto and chrome: the sampled counters of the shipped live capture, one point per sample")
    func sampledCounters() throws {
        try Checkers.ensurePerfettoModule()
        let reader = try CaptureReader(opening: Self.shipped)
        let samples = try reader.events(matching: EventQuery(kinds: [.sample]))
        let processSamples = samples.filter { $0.event.pid != 0 }
        let sink = try #require(processSamples.first.map { reader.dictionaries.processText($0.event.pid) })
        let nodeSamples = samples.count - processSamples.count
        for (format, checker) in [("perfetto", Checkers.perfetto), ("chrome", Checkers.chrome)] {
            let (path, _) = try export(Self.shipped, format)
            let counters = (try Checkers.run(checker, path)["counters"] as? [String: Int]) ?? [:]
            #expect(counters["message_queue_len \(sink) sink"] == processSamples.filter {
                reader.dictionaries.processText($0.event.pid) == sink
            }.count, "\(format): \(counters)")
            #expect(counters["run_queue"] == nodeSamples, "\(format)")
            #expect(counters["memory_total"] == nodeSamples, "\(format)")
        }
    }

    @Test("chrome: parsable, B/E balanced and ts monotonic per thread, named threads, paired flows")
    func chrome() throws {
        let run = try Self.workload.get()
        let (path, _) = try export(run.capture, "chrome")
        // It holds the capture's arguments and messages: only its owner reads it, as the capture.
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600, "\(path)")
        let summary = try Checkers.run(Checkers.chrome, path)
        #expect((summary["problems"] as? [String]) == [], "\(summary["problems"] ?? "")")
        #expect(summary["open_at_end"] as? Int == 0)
        #expect(byPid(summary["slices"]) == (try spansPerProcess(run.capture)))
        let kv = try #require(run.pid("kv")), echo = try #require(run.pid("echo"))
        #expect(((summary["threads"] as? [String]) ?? []).contains("\(kv) kv"))
        #expect(byPid(summary["flows_by_thread"])[echo] == (try #require(run.integer("pings"))) + 1)
        #expect(summary["flows_unpaired"] as? Int == 0)
    }

    @Test("folded: every line is `stack weight` as speedscope imports it; kv's nested calls are one stack")
    func folded() throws {
        let run = try Self.workload.get()
        let kv = try #require(run.pid("kv"))
        let (path, _) = try export(run.capture, "folded")
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        let rule = try Regex(#"^(.*) (\d+)$"#)
        #expect(!lines.isEmpty)
        #expect(lines.allSatisfy { (try? rule.wholeMatch(in: String($0))) != nil })
        let nested = lines.first { $0.hasPrefix("\(kv) kv;bt_export:handle_call/3;bt_export:store/2 ") }
        // store/2 sleeps 1 ms per put: its self time is at least the sleeps.
        let weight = Int(nested?.split(separator: " ").last ?? "") ?? 0
        #expect(weight >= 2 * (try #require(run.integer("calls"))) * 1000, "\(lines)")
        // Merged and excluding: the process frame goes, and so does store/2 with what it calls.
        let (merged, _) = try export(run.capture, "folded", ["--merged", "--exclude", "bt_export:store/*"])
        let mergedLines = try String(contentsOfFile: merged, encoding: .utf8).split(separator: "\n")
        #expect(mergedLines.contains { $0.hasPrefix("bt_export:handle_call/3 ") })
        #expect(!mergedLines.contains { $0.contains("store/2") || $0.hasPrefix("<") })
    }

    @Test("speedscope: one evented profile per process, opens and closes balanced, `at` never decreasing")
    func speedscope() throws {
        let run = try Self.workload.get()
        let (path, _) = try export(run.capture, "speedscope")
        let summary = try Checkers.run(Checkers.speedscope, path)
        #expect((summary["problems"] as? [String]) == [], "\(summary["problems"] ?? "")")
        #expect(byPid(summary["profiles"]) == (try spansPerProcess(run.capture)))
    }

    @Test("csv: one row per event as the reader reads them; the latency table as `latency --json`")
    func csv() throws {
        let run = try Self.workload.get()
        let (path, _) = try export(run.capture, "csv")
        let rows = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: true)
        let reader = try CaptureReader(opening: run.capture)
        #expect(rows.first == "time_ns,node,pid,process,kind,mfa,peer,value,payload")
        #expect(rows.count - 1 == reader.blocks.reduce(0) { $0 + Int($1.count) })
        #expect(rows.contains { $0.contains(",kv,call,bt_export:handle_call/3,") })
        let (latency, _) = try export(run.capture, "latency-csv")
        let table = try String(contentsOfFile: latency, encoding: .utf8).split(separator: "\n")
        let json = try Shell.run(try beamtrace(), ["latency", run.capture, "--json"])
        let report = try JSONDecoder().decode(LatencyReport.self, from: Data(json.utf8))
        #expect(table.count - 1 == report.functions.count)
        for row in report.functions {
            #expect(table.contains { $0.hasPrefix("\(row.mfa),,\(row.calls),") && $0.contains(",\(row.p99Micros),") })
        }
    }

    @Test("progress: a bar on stderr when it is a terminal (under script(1)), nothing when it is a pipe")
    func progress() throws {
        let (_, piped) = try export(Self.shipped, "perfetto")
        #expect(!piped.contains("\u{1B}["), "\(piped)")
        let directory = try Erlang.temporaryDirectory("bt-progress")
        defer { try? FileManager.default.removeItem(at: directory) }
        let out = directory.appendingPathComponent("out.perfetto").path
        let command = [try beamtrace(), "export", Self.shipped, "--format", "perfetto", "-o", out].joined(separator: " ")
        let terminal = try Shell.runCapturing("/usr/bin/script", ["-qec", command, "/dev/null"], timeout: 120)
        #expect(terminal.status == 0)
        #expect(terminal.stdout.contains("export perfetto [") && terminal.stdout.contains("events of"), "\(terminal.stdout)")
    }

    @Test("filters never lie: a function or node the capture lacks is a usage error listing what it has; every spelling of a function selects the same spans")
    func filters() throws {
        let cli = try beamtrace()
        let run = try Self.workload.get()
        let out = try Erlang.temporaryDirectory("bt-export-filters").appendingPathComponent("out.folded").path
        for extra in [["--mfa", "nosuch:thing"], ["--exclude", "bt_export:nosuch/9"], ["--mfa", "nosuch_*"]] {
            let result = try Shell.runCapturing(cli, ["export", run.capture, "--format", "folded", "-o", out] + extra)
            #expect(result.status == 64, "\(extra): \(result.stderr)")
            #expect(result.stderr.contains("matches no function") && result.stderr.contains("bt_export:handle_call/3"),
                    "\(result.stderr)")
        }
        let node = try Shell.runCapturing(cli, ["export", run.capture, "--format", "folded", "-o", out,
                                                "--node", "nosuch@nowhere"])
        #expect(node.status == 64 && node.stderr.contains("no node nosuch@nowhere"), "\(node.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))
        // The one function matcher: Erlang, Elixir's view of an Erlang module, module:function and a wildcard.
        var outputs: [String] = []
        for spelling in ["bt_export:handle_call/3", ":bt_export.handle_call/3", "bt_export:handle_call", "*:handle_call/3"] {
            let (path, _) = try export(run.capture, "folded", ["--mfa", spelling, "--merged"])
            outputs.append(try String(contentsOfFile: path, encoding: .utf8))
        }
        #expect(outputs[0].contains("bt_export:handle_call/3 "))
        #expect(!outputs[0].contains("\n") || outputs[0].split(separator: "\n").allSatisfy { $0.hasPrefix("bt_export:handle_call/3") })
        #expect(Set(outputs).count == 1, "\(outputs)")
    }

    @Test("a bad format, a missing capture and an unwritable output are clear errors that leave nothing behind")
    func errors() throws {
        let cli = try beamtrace()
        let bad = try Shell.runCapturing(cli, ["export", Self.shipped, "--format", "svg", "-o", "/tmp/x"])
        #expect(bad.status != 0 && bad.stderr.contains("--format takes perfetto"))
        let missing = try Shell.runCapturing(cli, ["export", "/nonexistent.btrace", "--format", "chrome", "-o", "/tmp/x"])
        #expect(missing.status != 0 && missing.stderr.contains("cannot open capture"))
        let unwritable = try Shell.runCapturing(cli, ["export", Self.shipped, "--format", "chrome", "-o", "/nonexistent-dir/out.json"])
        #expect(unwritable.status != 0 && unwritable.stderr.contains("/nonexistent-dir/out.json"))
        #expect(!FileManager.default.fileExists(atPath: "/nonexistent-dir/out.json.partial"))
        // A full disk: the writes fail on the writer thread; the export says so and exits 1.
        let full = try Shell.runCapturing("/bin/sh", ["-c", "exec \"$0\" export \"$1\" --format chrome -o - > /dev/full",
                                                      cli, Self.shipped])
        #expect(full.status == 1 && full.stderr.contains("No space left on device"), "\(full.status) \(full.stderr)")
    }
}
