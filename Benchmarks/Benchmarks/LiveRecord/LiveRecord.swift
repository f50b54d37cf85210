// Live recording against OTP's own dbg relay, side by side in one run on the same nodes: a tight
// loop calling one traced function (call + return_from per call) on node T.
//   baseline   the loop untraced
//   dbg relay  dbg on node C traces T (dbg:n, dbg:p(all, [call, monotonic_timestamp]), dbg:tp with
//              return_trace) into a counting process (dbg:tracer(process, ...)) on C
//   beamtrace  a TraceSession (agent on T, batches over distribution) into a capture on disk
// Each iteration runs the loop once and waits until every event has arrived. Custom metrics:
// events/s delivered (2 x calls / time from loop start to last event), the loop's own time (ns,
// measured on the node), and drops (must be 0). Slowdown = loop time / baseline loop time. For the
// recorder (this process; the nodes are processes of their own): its CPU (user+sys, getrusage) per
// event recorded, the busiest thread's CPU per event (/proc/self/task: the critical path), and mallocs.
// Run: swift package --package-path Benchmarks benchmark --target LiveRecord
// Gates (from Benchmarks/, whose Thresholds/ it reads): swift package benchmark thresholds check --target LiveRecord
import Benchmark
import BeamDistribution
import BeamTerm
import Foundation
import TestSupport
import TraceSession

struct LiveSetupError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

let liveModule = """
    -module(bt_live).
    -export([f/1, timed/1, dbg_start/1, dbg_run/2, dbg_stop/0]).

    f(X) -> X.
    loop(0) -> ok;
    loop(N) -> bt_live:f(N), loop(N - 1).

    %% The loop's own time in ns.
    timed(N) ->
        T0 = erlang:monotonic_time(nanosecond),
        loop(N),
        erlang:monotonic_time(nanosecond) - T0.

    %% On node C: dbg relaying T's trace to a counting handler here.
    dbg_start(Target) ->
        Counter = atomics:new(2, [{signed, true}]),
        persistent_term:put(bt_live_counter, Counter),
        Handler = fun(_Msg, N) ->
                          atomics:add(Counter, 1, 1),
                          atomics:put(Counter, 2, erlang:monotonic_time(nanosecond)),
                          N
                  end,
        {ok, _} = dbg:tracer(process, {Handler, 0}),
        {ok, Target} = dbg:n(Target),
        {ok, _} = dbg:p(all, [call, monotonic_timestamp]),
        {ok, _} = dbg:tp({bt_live, f, 1}, [{'_', [], [{return_trace}]}]),
        ok.

    %% Runs the loop on T and waits until all 2N events reached the handler: {LoopNs, DeliveryNs}.
    dbg_run(Target, N) ->
        Counter = persistent_term:get(bt_live_counter),
        atomics:put(Counter, 1, 0),
        T0 = erlang:monotonic_time(nanosecond),
        Loop = rpc:call(Target, bt_live, timed, [N]),
        wait(Counter, 2 * N, erlang:monotonic_time(millisecond) + 60000),
        {Loop, atomics:get(Counter, 2) - T0, atomics:get(Counter, 1)}.

    wait(Counter, Want, Deadline) ->
        case atomics:get(Counter, 1) >= Want orelse erlang:monotonic_time(millisecond) > Deadline of
            true -> ok;
            false -> timer:sleep(1), wait(Counter, Want, Deadline)
        end.

    dbg_stop() -> dbg:stop_clear().
    """

/// CPU time of this process (user+sys) and of each of its threads, in ns.
struct RecorderCPU {
    var process: Int64
    var threads: [Int: Int64]

    static func now() -> RecorderCPU {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        let process = (Int64(usage.ru_utime.tv_sec) + Int64(usage.ru_stime.tv_sec)) * 1_000_000_000
            + (Int64(usage.ru_utime.tv_usec) + Int64(usage.ru_stime.tv_usec)) * 1000
        var threads: [Int: Int64] = [:]
        let ticks = Int64(sysconf(Int32(_SC_CLK_TCK)))
        for tid in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? [] {
            guard let id = Int(tid), let stat = try? String(contentsOfFile: "/proc/self/task/\(tid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            // Fields after the name: state is field 3; utime and stime are fields 14 and 15.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 13, let user = Int64(fields[11]), let sys = Int64(fields[12]) else { continue }
            threads[id] = (user + sys) * 1_000_000_000 / max(ticks, 1)
        }
        return RecorderCPU(process: process, threads: threads)
    }

    /// (process CPU, busiest thread's CPU) since `start`.
    func since(_ start: RecorderCPU) -> (process: Int64, busiest: Int64) {
        let busiest = threads.map { $0.value - (start.threads[$0.key] ?? 0) }.max() ?? 0
        return (process - start.process, busiest)
    }
}

final class LiveFixture: @unchecked Sendable {
    var target: ErlangNode?
    var relay: ErlangNode?
    var toTarget: DistributionConnection?
    var toRelay: DistributionConnection?
    var cookie = ""
    var directory = ""
    var baselineLoopNs: Int64 = 0
    var lines: [String] = []

    func setUp() async throws {
        let temp = FileManager.default.temporaryDirectory.appendingPathComponent("bt-live-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: temp, withIntermediateDirectories: true)
        directory = temp.path
        try liveModule.write(to: temp.appendingPathComponent("bt_live.erl"), atomically: true, encoding: .utf8)
        let erlc = Process()
        erlc.executableURL = URL(fileURLWithPath: "/usr/bin/erlc")
        erlc.arguments = ["-o", temp.path, temp.appendingPathComponent("bt_live.erl").path]
        try erlc.run()
        erlc.waitUntilExit()
        cookie = "c" + String(UInt64.random(in: 0..<UInt64.max), radix: 36)
        let suffix = String(UInt32.random(in: 0..<UInt32.max), radix: 36)
        target = try ErlangNode(name: "btlive_t\(suffix)", cookie: cookie, codePaths: [temp.path])
        relay = try ErlangNode(name: "btlive_c\(suffix)", cookie: cookie, codePaths: [temp.path])
        let host = NodeName.localHostName(long: false)
        toTarget = try await DistributionConnection.connect(to: "btlive_t\(suffix)@\(host)", cookie: Cookie(cookie))
        toRelay = try await DistributionConnection.connect(to: "btlive_c\(suffix)@\(host)", cookie: Cookie(cookie))
    }

    var targetName: String { toTarget?.peer.node.description ?? "" }

    /// The untraced loop's best of three (each benchmark runs in its own process: measure here).
    func measureBaseline() async throws {
        var best = Int64.max
        for _ in 0..<3 { best = min(best, try await loop(calls)) }
        baselineLoopNs = best
        lines.append(String(format: "baseline:   loop %.3f ms", Double(best) / 1e6))
    }

    func loop(_ n: Int) async throws -> Int64 {
        guard let toTarget else { throw LiveSetupError(message: "no target") }
        let reply = try await toTarget.rpc(module: "bt_live", function: "timed", arguments: [.integer(Int64(n))])
        return reply.benchInt ?? 0
    }

    func tearDown() {
        target?.stop()
        relay?.stop()
        try? FileManager.default.removeItem(atPath: directory)
        for line in lines { print(line) }
    }
}

extension Term {
    var benchInt: Int64? {
        switch self {
        case .integer(let v): return v
        case .bigInteger(let b): return b.int64Value
        default: return nil
        }
    }
}

let calls = 200_000
let live = LiveFixture()

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .custom("events/s", polarity: .prefersLarger, useScalingFactor: false),
                  .custom("loop ns", useScalingFactor: false), .custom("drops", useScalingFactor: false),
                  .custom("recorder cpu ns/event", useScalingFactor: false),
                  .custom("busiest thread ns/event", useScalingFactor: false), .mallocCountTotal],
        warmupIterations: 1,
        maxDuration: .seconds(20),
        maxIterations: 5,
        // Gates (Benchmarks/Thresholds): mallocs and the recorder's CPU per event; wide, as the machine is shared.
        thresholds: [.mallocCountTotal: .init(relative: [.p90: 50.0]),
                     .custom("recorder cpu ns/event", useScalingFactor: false): .init(relative: [.p90: 60.0])]
    )
    Benchmark.setup = { try await live.setUp() }
    Benchmark.teardown = { live.tearDown() }

    Benchmark("Live_baseline_loop_untraced") { benchmark in
        for _ in benchmark.scaledIterations {
            let loopNs = try await live.loop(calls)
            live.baselineLoopNs = live.baselineLoopNs == 0 ? loopNs : min(live.baselineLoopNs, loopNs)
            benchmark.measurement(.custom("loop ns", useScalingFactor: false), Int(loopNs))
        }
    }

    Benchmark("Live_dbg_relay_to_a_counting_process") { benchmark in
        guard let relay = live.toRelay else { return }
        try await live.measureBaseline()
        _ = try await relay.rpc(module: "bt_live", function: "dbg_start", arguments: [.atom(live.targetName)])
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            let reply = try await relay.rpc(module: "bt_live", function: "dbg_run",
                                            arguments: [.atom(live.targetName), .integer(Int64(calls))])
            guard case .tuple(let t) = reply, t.count == 3, let loopNs = t[0].benchInt, let deliveryNs = t[1].benchInt,
                  let count = t[2].benchInt else { continue }
            let eventsPerSecond = Int(Double(count) / (Double(deliveryNs) / 1e9))
            benchmark.measurement(.custom("events/s", polarity: .prefersLarger, useScalingFactor: false), eventsPerSecond)
            benchmark.measurement(.custom("loop ns", useScalingFactor: false), Int(loopNs))
            benchmark.measurement(.custom("drops", useScalingFactor: false), max(0, 2 * calls - Int(count)))
            live.lines.append(String(format: "dbg relay:  %.0f events/s, loop %.1f ms (%.1fx baseline)",
                                     Double(eventsPerSecond), Double(loopNs) / 1e6,
                                     Double(loopNs) / Double(max(live.baselineLoopNs, 1))))
        }
        benchmark.stopMeasurement()
        _ = try await relay.rpc(module: "bt_live", function: "dbg_stop", arguments: [])
    }

    Benchmark("Live_beamtrace_agent_into_a_capture") { benchmark in
        try await live.measureBaseline()
        let output = live.directory + "/capture-\(UUID().uuidString.prefix(8))"
        var options = RecordingOptions(nodes: [live.targetName], cookie: Cookie(live.cookie),
                                       spec: TraceSpec(patterns: [try TracePattern(parsing: "bt_live:f/1")]),
                                       output: output)
        options.limits.maxRate = nil
        options.limits.maxEvents = nil
        options.limits.duration = .seconds(600)
        let session = TraceSession(options: options)
        let running = Task { try await session.run() }
        while session.eventsRecorded == 0 && !running.isCancelled {
            // Recording has begun once the start marker's sink exists; a tiny loop makes events.
            _ = try await live.loop(1)
            try await Task.sleep(for: .milliseconds(20))
        }
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            let before = session.eventsRecorded
            let dropsBefore = session.dropsRecorded
            let cpuBefore = RecorderCPU.now()
            let start = ContinuousClock.now
            let loopNs = try await live.loop(calls)
            while session.eventsRecorded - before < 2 * calls && session.dropsRecorded == dropsBefore {
                try await Task.sleep(for: .microseconds(500))
                if ContinuousClock.now - start > .seconds(60) { break }
            }
            let elapsed = ContinuousClock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            let delivered = session.eventsRecorded - before
            let cpu = RecorderCPU.now().since(cpuBefore)
            let eventsPerSecond = Int(Double(delivered) / seconds)
            let cpuPerEvent = Int(cpu.process / Int64(max(delivered, 1)))
            let busiestPerEvent = Int(cpu.busiest / Int64(max(delivered, 1)))
            benchmark.measurement(.custom("recorder cpu ns/event", useScalingFactor: false), cpuPerEvent)
            benchmark.measurement(.custom("busiest thread ns/event", useScalingFactor: false), busiestPerEvent)
            benchmark.measurement(.custom("events/s", polarity: .prefersLarger, useScalingFactor: false), eventsPerSecond)
            benchmark.measurement(.custom("loop ns", useScalingFactor: false), Int(loopNs))
            benchmark.measurement(.custom("drops", useScalingFactor: false), session.dropsRecorded - dropsBefore)
            live.lines.append(String(format: "beamtrace:  %.0f events/s, loop %.1f ms (%.1fx baseline), %d drops, "
                                     + "recorder %d ns/event CPU (busiest thread %d)",
                                     Double(eventsPerSecond), Double(loopNs) / 1e6,
                                     Double(loopNs) / Double(max(live.baselineLoopNs, 1)),
                                     session.dropsRecorded - dropsBefore, cpuPerEvent, busiestPerEvent))
        }
        benchmark.stopMeasurement()
        session.requestStop("benchmark done")
        let summary = try await running.value
        live.lines.append("beamtrace session: \(summary.events) events, \(summary.drops) drops, "
                          + "\(summary.bytesWritten) bytes, cleaned up: \(summary.nodes.allSatisfy(\.cleanedUp))")
    }
}
