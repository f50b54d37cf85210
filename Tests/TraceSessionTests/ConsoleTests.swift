// The console as a BEAM engineer uses it, against captures recorded live here: an Elixir node's
// GenServer recorded and every command filtering by and printing `MyApp.Worker.handle_call/3`
// (terms as Elixir's own `inspect/2` prints them); unknown filters failing with what the capture
// has; `info` showing the session record; `events --follow` tailing a recording; exit codes as
// the README's table says.
import BeamTerm
import CaptureStore
import Foundation
import Testing
import TestSupport
import TraceModel

/// Runs the built `beamtrace` to the end: status, stdout, stderr.
func beamtrace(_ arguments: [String]) throws -> (status: Int32, out: String, err: String) {
    guard let executable = BuiltProducts.executable("beamtrace") else { throw TestFailure("beamtrace is not built") }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
}

/// `date` from coreutils (local time not computed by us).
func coreutilsDate(_ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/date")
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    process.waitUntilExit()
    return String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        .trimmingCharacters(in: .whitespacesAndNewlines)
}

/// An Elixir GenServer compiled by Elixir's own compiler.
enum ElixirWorker {
    static let source = #"""
    defmodule MyApp.Worker do
      use GenServer
      def start(), do: GenServer.start(__MODULE__, %{count: 0}, name: __MODULE__)
      def bump(n), do: for(i <- 1..n, do: GenServer.call(__MODULE__, {:bump, i}))
      def init(state), do: {:ok, state}
      def handle_call({:bump, i}, _from, state), do: {:reply, {:ok, i}, %{state | count: state.count + 1}}
    end
    """#

    static let elixirLib = "/usr/lib/elixir/lib/elixir/ebin"

    static let directory: String = {
        do {
            let directory = try Erlang.temporaryDirectory("beamtrace-elixir")
            let file = directory.appendingPathComponent("worker.ex")
            try source.write(to: file, atomically: true, encoding: .utf8)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/elixirc")
            process.arguments = [file.path, "-o", directory.path]
            try process.run()
            process.waitUntilExit()
            return directory.path
        } catch {
            return "/nonexistent-elixirc-failed: \(error)"
        }
    }()

    /// What Elixir's own inspect/2 prints for a term written in Elixir.
    static func inspect(_ expression: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/elixir")
        process.arguments = ["-e", "IO.puts(inspect(\(expression)))"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

@Suite(.serialized) struct ConsoleTests {
    /// Records `calls` GenServer calls on an Elixir node with `beamtrace record`; returns the capture.
    func recordElixir(calls: Int) async throws -> (String, TracedNode) {
        let node = try await TracedNode.start(extraArguments: ["-pa", ElixirWorker.directory, "-pa", ElixirWorker.elixirLib])
        _ = try await node.rpc("application", "ensure_all_started", [.atom("elixir")])
        let started = try await node.rpc("Elixir.MyApp.Worker", "start")
        guard started.erlangText().hasPrefix("{ok,") else {
            await node.stop()
            throw TestFailure("MyApp.Worker did not start: \(started.erlangText())")
        }
        let output = try temporaryCapturePath()
        let recorder = try RecorderProcess(["record", "--node", node.name, "--cookie", node.node.cookie,
                                            "MyApp.Worker.handle_call/3", "--args", "-o", output, "--quiet",
                                            "--duration", "60s"])
        try await node.waitUntilTracing()
        _ = try await node.rpc("Elixir.MyApp.Worker", "bump", [.integer(Int64(calls))])
        try await Task.sleep(for: .milliseconds(300))
        recorder.signal(SIGINT)
        #expect(await recorder.wait(timeout: .seconds(30)) == 130, "\(recorder.output)")
        try await expectClean(node)
        return (output, node)
    }

    @Test func anElixirNodeAndEveryCommandSpeaksElixir() async throws {
        let (capture, node) = try await recordElixir(calls: 20)
        defer { Task { await node.stop() } }
        let reply = try ElixirWorker.inspect("{:reply, {:ok, 1}, %{count: 1}}")
        let request = try ElixirWorker.inspect("{:bump, 1}")

        // events: every spelling of the function selects the same 40 events (20 calls, 20 returns).
        for spelling in ["MyApp.Worker.handle_call/3", "MyApp.Worker.handle_call", "MyApp.Worker",
                         "'Elixir.MyApp.Worker':handle_call/3", "Elixir.MyApp.Worker:handle_call"] {
            let r = try beamtrace(["events", capture, "--mfa", spelling])
            #expect(r.status == 0, "\(spelling): \(r.err)")
            let lines = r.out.split(separator: "\n")
            #expect(lines.count == 40, "\(spelling): \(r.out)")
        }
        let events = try beamtrace(["events", capture, "--mfa", "MyApp.Worker.handle_call/3"]).out
        // Elixir syntax by itself for a capture of Elixir modules, the name from the agent's report.
        #expect(events.contains("(MyApp.Worker) call MyApp.Worker.handle_call(\(request), "), "\(events)")
        #expect(events.contains("returned from MyApp.Worker.handle_call/3 -> \(reply)"), "\(events)")
        #expect(events.contains("#PID<0."), "\(events)")
        // --json: one object per line, each as JSONSerialization reads it, with the same texts.
        let json = try beamtrace(["events", capture, "--mfa", "MyApp.Worker.handle_call/3", "--json"]).out
        let objects = try json.split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] ?? [:]
        }
        #expect(objects.count == 40)
        #expect(objects.allSatisfy { $0["mfa"] as? String == "MyApp.Worker.handle_call/3" && $0["node"] as? String == node.name })
        // A call's payload is its argument list, in Elixir syntax here.
        #expect(objects.filter { ($0["payload"] as? [String])?.first?.hasPrefix("[\(request), ") == true }.count == 1,
                "\(json)")
        let erlang = try beamtrace(["events", capture, "--mfa", "MyApp.Worker", "--erlang", "--limit", "2"]).out
        // Erlang syntax for terms on request; Elixir modules keep their Elixir names (COMMON standard).
        #expect(erlang.contains("call MyApp.Worker.handle_call({bump,1}, {<0."), "\(erlang)")

        // latency, timeline, info, state: the same function, printed the Elixir way.
        for spelling in ["MyApp.Worker", "MyApp.Worker.handle_call/3"] {
            let latency = try beamtrace(["latency", capture, "--mfa", spelling, "--json"])
            #expect(latency.status == 0, "\(latency.err)")
            let object = try JSONSerialization.jsonObject(with: Data(latency.out.utf8)) as? [String: Any]
            let rows = object?["functions"] as? [[String: Any]] ?? []
            #expect(rows.count == 1 && rows.first?["mfa"] as? String == "MyApp.Worker.handle_call/3", "\(latency.out)")
            #expect(rows.first?["calls"] as? Int == 20, "\(latency.out)")
        }
        let timeline = try beamtrace(["timeline", capture, "--name", "MyApp.Worker"])
        #expect(timeline.status == 0, "\(timeline.err)")
        #expect(timeline.out.contains("#PID<0.") && timeline.out.contains("(MyApp.Worker)"), "\(timeline.out)")
        let erlangTimeline = try beamtrace(["timeline", capture, "--name", "MyApp.Worker", "--erlang"]).out
        #expect(erlangTimeline.hasPrefix("<0.") && erlangTimeline.contains("MyApp.Worker.handle_call/3"), "\(erlangTimeline)")
        let latencyElixir = try beamtrace(["latency", capture, "--by", "process"]).out
        #expect(latencyElixir.contains("MyApp.Worker.handle_call/3 @ #PID<0."), "\(latencyElixir)")
        #expect(timeline.out.components(separatedBy: "MyApp.Worker.handle_call/3").count - 1 == 20, "\(timeline.out)")
        let info = try beamtrace(["info", capture])
        #expect(info.out.contains("MyApp.Worker.handle_call/3"), "\(info.out)")
        let state = try beamtrace(["state", capture, "--at", "1ms"])
        #expect(state.status == 0, "\(state.err)")
        _ = node
    }

    @Test func unknownFiltersFailWithWhatTheCaptureHas() async throws {
        let (capture, node) = try await recordElixir(calls: 3)
        defer { Task { await node.stop() } }
        let cases: [([String], [String])] = [
            (["events", capture, "--node", "nosuch@host"], ["no node nosuch@host", node.name]),
            (["events", capture, "--pid", "<0.32000.0>"], ["no process <0.32000.0>", "names: ", "pids: <0."]),
            (["events", capture, "--pid", "MyApp.Workr"], ["no process MyApp.Workr", "names: MyApp.Worker"]),
            (["events", capture, "--mfa", "MyApp.Worker.handle_cal/3"], ["it has: MyApp.Worker.handle_call/3"]),
            (["events", capture, "--kind", "cal"], ["unknown kind cal", "call"]),
            (["latency", capture, "--mfa", "nosuch:thing"], ["no function matches nosuch:thing", "MyApp.Worker.handle_call/3"]),
            (["latency", capture, "--sort", "bogus"], ["bogus"]),
            (["timeline", capture, "--name", "Nope"], ["no process Nope", "names: "]),
            (["hang", capture, "--node", "other@host"], ["no node other@host"]),
            (["events", capture, "--from", "30"], ["no unit"]),
        ]
        for (arguments, texts) in cases {
            let r = try beamtrace(arguments)
            #expect(r.status == 64, "\(arguments): \(r.status) \(r.err)")
            for text in texts { #expect(r.err.contains(text), "\(arguments): \(r.err)") }
        }
        // Closest first: the near miss leads the list.
        let near = try beamtrace(["events", capture, "--mfa", "MyApp.Worker.handle_cal/3"]).err
        #expect(near.contains("(it has: MyApp.Worker.handle_call/3"), "\(near)")
    }

    @Test func infoShowsTheSessionRecord() async throws {
        let (capture, node) = try await recordElixir(calls: 5)
        defer { Task { await node.stop() } }
        let text = try beamtrace(["info", capture])
        #expect(text.status == 0, "\(text.err)")
        for part in ["command", "record --node \(node.name) --cookie <cookie> MyApp.Worker.handle_call/3",
                     "patterns     MyApp.Worker.handle_call/3", "limits       duration 1.0 min", "stop reason  SIGINT",
                     "\(node.name): OTP 25", "10 events", "0 dropped", "clock offset at start",
                     "cleanup confirmed", "wall clock"] {
            #expect(text.out.contains(part), "missing \(part) in:\n\(text.out)")
        }
        #expect(!text.out.contains(node.node.cookie))
        let json = try beamtrace(["info", capture, "--json"])
        let object = try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [String: Any]
        let session = object?["session"] as? [String: Any]
        let nodes = session?["nodes"] as? [[String: Any]]
        #expect(nodes?.first?["cleanedUp"] as? Bool == true, "\(json.out)")
        #expect(nodes?.first?["otpRelease"] as? String == "25")
        #expect((session?["stopReason"] as? String)?.contains("SIGINT") == true)
        #expect(!json.out.contains(node.node.cookie))
        // Times: the range prints as the wall clock date(1) gives for its first instant.
        let start = try #require(object?["start_ns"] as? Int64 ?? (object?["start_ns"] as? Int).map(Int64.init))
        let date = try coreutilsDate(["-d", "@\(start / 1_000_000_000)", "+%Y-%m-%d %H:%M:%S"])
        #expect(text.out.contains("time         \(date)."), "\(text.out)")
    }

    @Test func followTailsARecordingUntilItStops() async throws {
        let node = try await TracedNode.start()
        defer { Task { await node.stop() } }
        let output = try temporaryCapturePath()
        let recorder = try RecorderProcess(["record", "--node", node.name, "--cookie", node.node.cookie, "btwl:f/1",
                                            "-o", output, "--quiet", "--duration", "60s", "--max-rate", "none"])
        try await node.waitUntilTracing()
        while !FileManager.default.fileExists(atPath: output) { try await Task.sleep(for: .milliseconds(50)) }
        let follower = try RecorderProcess(["events", output, "--follow", "--kind", "call", "--time", "rel"])
        _ = try await node.rpc("btwl", "calls", [.integer(50)])
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline
                && follower.standardOutput.split(separator: "\n").count < 50 {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(follower.standardOutput.split(separator: "\n").count == 50, "\(follower.output)")
        #expect(recorder.isRunning)
        _ = try await node.rpc("btwl", "calls", [.integer(25)])
        recorder.signal(SIGINT)
        #expect(await recorder.wait(timeout: .seconds(30)) == 130)
        // The follower ends by itself once the session has stopped, having printed each call once.
        #expect(await follower.wait(timeout: .seconds(10)) == 0, "\(follower.output)")
        let lines = follower.standardOutput.split(separator: "\n")
        #expect(lines.count == 75, "\(follower.standardOutput)")
        #expect(lines.allSatisfy { $0.hasPrefix("+") && $0.contains(" call btwl:f/1") })
        try await expectClean(node)
    }

    @Test func exitCodesFollowTheTable() throws {
        let version = try beamtrace(["--version"])
        #expect(version.status == 0 && !version.out.isEmpty)
        let missing = "/nonexistent/capture.btrace"
        for command in ["info", "events", "hang", "latency", "queues", "timeline", "index"] {
            let r = try beamtrace([command, missing])
            #expect(r.status == 1, "\(command): \(r.status) \(r.err)")       // runtime error, no usage text
            #expect(!r.err.contains("USAGE"), "\(command): \(r.err)")
        }
        #expect(try beamtrace(["import", missing, "-o", NSTemporaryDirectory() + "/x-\(UUID().uuidString)"]).status == 1)
        #expect(try beamtrace(["events"]).status == 64)                       // usage
        #expect(try beamtrace(["record", "--node", "a@b", "-o", "x", "--duration", "30"]).status == 64)
        #expect(try beamtrace(["events", missing, "--time", "weird"]).status == 64)
        #expect(try beamtrace(["state", missing]).status == 64)
    }
}

@Suite(.serialized) struct MultiNodeConsoleTests {
    @Test func pidsNameTheirNodeAndFiltersTakeEitherForm() async throws {
        let cookie = Erlang.randomName("c")
        let a = try await TracedNode.start(cookie: cookie)
        defer { Task { await a.stop() } }
        let b = try await TracedNode.start(cookie: cookie)
        defer { Task { await b.stop() } }
        // A gen_server on each node started before the session: its name is its $initial_call.
        func server(_ node: TracedNode) async throws -> (Term, String) {
            let started = try await node.rpc("gen_server", "start", [.atom("btwl"), .list([]), .list([])])
            guard case .tuple(let t) = started, t.count == 2, case .pid(let pid) = t[1] else {
                throw TestFailure("gen_server:start gave \(started.erlangText())")
            }
            return (t[1], "<\(node.name).\(pid.id).\(pid.serial)>")
        }
        let (serverA, textA) = try await server(a)
        let (serverB, textB) = try await server(b)
        let output = try temporaryCapturePath()
        let recorder = try RecorderProcess(["record", "--node", a.name, "--node", b.name, "--cookie", cookie,
                                            "btwl:handle_call/3", "--args", "-o", output, "--quiet", "--duration", "60s"])
        try await a.waitUntilTracing()
        try await b.waitUntilTracing()
        let sleep = Term.tuple([.atom("sleep"), .integer(1)])
        for _ in 0..<3 { _ = try await a.rpc("gen_server", "call", [serverA, sleep]) }
        for _ in 0..<2 { _ = try await b.rpc("gen_server", "call", [serverB, sleep]) }
        try await Task.sleep(for: .milliseconds(300))
        recorder.signal(SIGINT)
        #expect(await recorder.wait(timeout: .seconds(30)) == 130, "\(recorder.output)")
        try await expectClean(a)
        try await expectClean(b)

        func calls(_ arguments: [String]) throws -> [Substring] {
            let r = try beamtrace(["events", output, "--kind", "call"] + arguments)
            #expect(r.status == 0, "\(arguments): \(r.err)")
            return r.out.split(separator: "\n")
        }
        let all = try calls([])
        #expect(all.count == 5, "\(all)")
        // The pid column names the node, with the process's proc_lib initial call as its name.
        #expect(all.filter { $0.contains("\(textA) (btwl:init/1) call btwl:handle_call({sleep,1}, {<\(a.name).") }.count == 3,
                "\(all)")
        #expect(all.filter { $0.contains("\(textB) (btwl:init/1) call btwl:handle_call({sleep,1}, {<\(b.name).") }.count == 2,
                "\(all)")
        #expect(try calls(["--pid", textA]).count == 3)
        #expect(try calls(["--pid", textB]).count == 2)
        let localA = "<0." + textA.split(separator: ".").suffix(2).joined(separator: ".")
        let localB = "<0." + textB.split(separator: ".").suffix(2).joined(separator: ".")
        #expect(try calls(["--node", a.name, "--pid", localA]).count == 3)
        #expect(try calls(["--node", b.name, "--pid", localB]).count == 2)
        let bare = try beamtrace(["events", output, "--kind", "call", "--pid", localA])
        if localA == localB {
            // The same local pid on both nodes: ambiguous, and the error gives both full forms.
            #expect(bare.status == 64 && bare.err.contains(textA) && bare.err.contains(textB), "\(bare.err)")
        } else {
            #expect(bare.status == 0 && bare.out.split(separator: "\n").count == 3, "\(bare.err)")
        }
        // A node in a pid that the capture does not have is an error naming the ones it has.
        let wrong = try beamtrace(["events", output, "--pid", "<nosuch@host.1.0>"])
        #expect(wrong.status == 64 && wrong.err.contains(a.name) && wrong.err.contains(b.name), "\(wrong.err)")
    }
}

@Suite struct MonotonicImportConsoleTests {
    /// A dbg trace file with monotonic timestamps (no wall clock) prints relative times, and the
    /// gap between two calls is what the workload measured with erlang:monotonic_time/1.
    @Test func monotonicImportsPrintRelative() throws {
        guard let erl = Erlang.executable("erl") else { throw TestFailure("erl is not installed") }
        let directory = try Erlang.temporaryDirectory("beamtrace-mono")
        let file = directory.appendingPathComponent("mono.trc").path
        let eval = """
            Port = dbg:trace_port(file, "\(file)"), {ok, _} = dbg:tracer(port, Port), \
            {ok, _} = dbg:p(self(), [call, monotonic_timestamp]), {ok, _} = dbg:tpl(lists, reverse, 1, []), \
            T0 = erlang:monotonic_time(nanosecond), lists:reverse([a]), timer:sleep(150), \
            T1 = erlang:monotonic_time(nanosecond), lists:reverse([b]), \
            dbg:flush_trace_port(), dbg:stop(), io:format("gap ~p~n", [T1 - T0]), halt().
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: erl)
        process.arguments = ["-noshell", "-eval", eval]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let gap = try #require(text.split(separator: "\n").first { $0.hasPrefix("gap ") }.flatMap { Int64($0.dropFirst(4)) },
                               "\(text)")
        let capture = directory.appendingPathComponent("mono.btrace").path
        let imported = try beamtrace(["import", file, "-o", capture])
        #expect(imported.status == 0, "\(imported.err)")
        let events = try beamtrace(["events", capture, "--kind", "call", "--mfa", "lists:reverse/1"])
        let lines = events.out.split(separator: "\n")
        #expect(lines.allSatisfy { $0.hasPrefix("+") }, "\(events.out) \(events.err)")
        let first = try #require(lines.first { $0.contains("call lists:reverse([a])") }, "\(events.out)")
        let second = try #require(lines.first { $0.contains("call lists:reverse([b])") }, "\(events.out)")
        func seconds(_ line: Substring) -> Double { Double(line.dropFirst().split(separator: " ")[0]) ?? -1 }
        // The two calls' distance against the workload's own clock (they sit between T0 and T1).
        let measured = (seconds(second) - seconds(first)) * 1e9
        #expect(abs(measured - Double(gap)) < 20e6, "calls \(measured) ns apart, workload gap \(gap) ns")
        // Asking for wall clock on such a capture still prints relative: there is none.
        #expect(try beamtrace(["events", capture, "--time", "abs", "--limit", "1"]).out.hasPrefix("+"))
        let info = try beamtrace(["info", capture]).out
        #expect(info.contains("time         +0.000000 s .. +") && info.contains("monotonic clock"), "\(info)")
    }
}
