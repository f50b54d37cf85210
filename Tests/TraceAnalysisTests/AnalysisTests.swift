// Replay analyses checked against ground truth from real OTP workloads: their own timings,
// their own queue samples, and the exact shape of the calls they made.
import CaptureStore
import Foundation
import Testing
import TestSupport
import TraceAnalysis
import TraceModel

@Suite("Replay and analysis against real workloads")
struct AnalysisTests {
    @Test("latency percentiles agree with the workload's own timings within 5% or 50 µs")
    func latency() throws {
        let run = try Workload.run("latency(DIR, 300)")
        defer { try? FileManager.default.removeItem(at: run.directory) }
        let truth = Workload.integers(run.truth).sorted()
        #expect(truth.count == 300)
        let analysis = try CaptureAnalysis.run(CaptureReader(opening: run.capture))
        let row = try #require(analysis.latencyReport().functions.first { $0.mfa == "bt_workload:step/1" })
        #expect(row.calls == 300)
        #expect(row.returned == 300)
        func percentile(_ p: Double) -> Double {
            Double(truth[min(truth.count - 1, Int((p / 100 * Double(truth.count)).rounded(.up)) - 1)]) / 1000
        }
        for (ours, theirs, label) in [(row.p50Micros, percentile(50), "p50"), (row.p99Micros, percentile(99), "p99"),
                                      (row.maxMicros, Double(truth.last ?? 0) / 1000, "max")] {
            #expect(abs(ours - theirs) <= max(0.05 * theirs, 50), "\(label): beamtrace \(ours) µs, workload \(theirs) µs")
        }
    }

    @Test("call stacks: recursion, a traced loop, an exception two frames up, a process killed mid-call")
    func stacks() throws {
        let run = try Workload.run("stacks(DIR)")
        defer { try? FileManager.default.removeItem(at: run.directory) }
        let pids = Workload.pids(run.truth)
        let analysis = try CaptureAnalysis.run(CaptureReader(opening: run.capture), options: AnalysisOptions(keepSpans: true))
        let all = analysis.spans
        func spans(_ mfa: String) -> [Span] { all.filter { analysis.functionText($0.mfa) == mfa } }

        let fib = spans("bt_workload:fib/1")
        #expect(fib.count == 177)  // fib(10) makes 177 calls
        #expect(fib.allSatisfy { $0.ending == .returned && $0.startKnown })
        #expect(fib.map(\.depth).max() == 9)
        #expect(fib.filter { $0.depth == 0 }.count == 1)
        // Every non-root fib span's parent is a fib span one level up that encloses it.
        for span in fib where span.depth > 0 {
            let parent = all[span.parent]
            #expect(analysis.functionText(parent.mfa) == "bt_workload:fib/1" && parent.depth == span.depth - 1)
            #expect(parent.start <= span.start && span.end <= parent.end)
        }
        let root = try #require(fib.first { $0.depth == 0 })
        #expect(root.selfTime < root.total)

        let loop = spans("bt_workload:loop/1")
        #expect(loop.count == 101)
        #expect(loop.map(\.depth).sorted() == Array(0...100))

        let outer = spans("bt_workload:outer/0"), middle = spans("bt_workload:middle/0"), inner = spans("bt_workload:inner/0")
        #expect(outer.map(\.ending) == [.returned])
        #expect(middle.map(\.ending) == [.exception])
        #expect(inner.map(\.ending) == [.exception])
        #expect(middle.first.map { analysis.functionText(all[$0.parent].mfa) } == "bt_workload:outer/0")
        #expect(inner.first.map { analysis.functionText(all[$0.parent].mfa) } == "bt_workload:middle/0")

        let killed = spans("bt_workload:wait_forever/0")
        #expect(killed.count == 1)
        // OTP reports the kill to a call traced with exception_trace as exception_from {exit, killed}.
        #expect(killed.first?.ending == .exception)
        #expect(killed.first.map { analysis.processText($0.pid) } == pids["victim"])
        let reader = try CaptureReader(opening: run.capture)
        let exits = try reader.events(matching: EventQuery(kinds: [.exit])).filter {
            reader.dictionaries.processText($0.event.pid) == pids["victim"]
        }
        #expect(exits.count == 1)
        #expect(exits.first.flatMap { Payload.terms($0.payload, flags: $0.event.flags)?.first } == .atom("killed"))
        #expect(all.allSatisfy { $0.ending != .unfinished })
    }

    @Test("queue series and slope agree with the workload's own samples within 10%; the consumer tops `hang`")
    func queues() throws {
        let run = try Workload.run("queues(DIR)")
        defer { try? FileManager.default.removeItem(at: run.directory) }
        let server = try #require(Workload.pids(run.truth)["server"])
        // The workload's own samples: process_info(message_queue_len) bracketed by two clock reads.
        let samples = Workload.triples(run.truth)
        #expect(samples.count == 40)
        let analysis = try CaptureAnalysis.run(CaptureReader(opening: run.capture))
        let queue = try #require(analysis.queueReports().first { $0.pid == server })
        #expect(queue.estimated)
        #expect(queue.growing)
        // Compare our series with the real queue length at each sample: the real value was read
        // somewhere between T0 and T1, so it must lie within 10% of our range over [T0, T1].
        let points = queue.series.map { ($0[0], $0[1]) }
        var checked = 0
        for (t0, t1, real) in samples where real >= 20 {
            guard let low = points.last(where: { $0.0 <= t0 })?.1, let high = points.last(where: { $0.0 <= t1 })?.1 else { continue }
            let tolerance = max(0.1 * Double(real), 3)
            #expect(Double(real) >= Double(min(low, high)) - tolerance && Double(real) <= Double(max(low, high)) + tolerance,
                    "real \(real) read between \(t0) and \(t1), ours \(low)...\(high)")
            checked += 1
        }
        #expect(checked >= 20)
        let (realSlope, _) = GrowthFit.leastSquares(samples.filter { $0.2 > 0 }.map { (time: ($0.0 + $0.1) / 2, length: $0.2) })
        #expect(abs(queue.slopePerSecond - realSlope) <= 0.1 * realSlope, "slope ours \(queue.slopePerSecond), real \(realSlope)")

        let hang = analysis.hangReport()
        #expect(hang.suspects.first?.pid == server)
        #expect(hang.suspects.first?.reason == .queueGrowth)
        #expect(hang.verdict.contains(server))
    }

    @Test("two gen_servers calling each other: hang reports the deadlock cycle with both pids")
    func deadlock() throws {
        let run = try Workload.run("deadlock(DIR)")
        defer { try? FileManager.default.removeItem(at: run.directory) }
        let pids = Workload.pids(run.truth)
        let a = try #require(pids["a"]), b = try #require(pids["b"])
        let hang = try CaptureAnalysis.run(CaptureReader(opening: run.capture)).hangReport()
        #expect(hang.deadlocks.count == 1)
        #expect(Set(hang.deadlocks.first ?? []) == [a, b])
        #expect(hang.suspects.prefix(2).allSatisfy { $0.reason == .deadlock })
        #expect(Set(hang.suspects.prefix(2).map(\.pid)) == [a, b])
        #expect(hang.verdict.contains("deadlock"))
    }

    @Test("stuck calls print their requests as OTP does, before and after 3000 answered calls")
    func stuckRequests() throws {
        // 3000 requests of ~60 bytes each are kept (as bytes) while their calls wait, and compacted
        // away once answered: the first stuck request moves, the last comes after the compactions.
        let run = try Workload.run("requests(DIR, 3000)")
        defer { try? FileManager.default.removeItem(at: run.directory) }
        let truth = Workload.pids(run.truth)
        let hang = try CaptureAnalysis.run(CaptureReader(opening: run.capture)).hangReport()
        #expect(hang.callEndings["reply"] == 3000, "\(hang.callEndings)")
        for who in ["first", "last"] {
            let pid = try #require(truth[who]), request = try #require(truth[who + "_request"])
            let suspect = try #require(hang.suspects.first { $0.pid == pid && $0.reason == .stuckCall },
                                       "\(who) caller \(pid) is no stuck_call: \(hang.suspects.map(\.summary))")
            #expect(suspect.evidence["request"] == .string(request))
        }
    }

    @Test("state at T from a checkpoint equals a full replay to T, and replays fewer events")
    func stateAtTime() throws {
        let run = try Workload.run("deadlock(DIR)")
        defer { try? FileManager.default.removeItem(at: run.directory) }
        let reader = try CaptureReader(opening: run.capture)
        let events = try reader.events()
        let late = try #require(events.last?.event.time)
        let middle = events[events.count / 2].event.time
        for time in [middle, late] {
            let fast = try StateAtTime.state(reader, at: time, interval: 5)
            let full = try StateAtTime.state(reader, at: time, useCheckpoints: false)
            #expect(fast.processes.map(\.pid) == full.processes.map(\.pid))
            #expect(fast.processes.map { $0.stack.map(\.mfa) } == full.processes.map { $0.stack.map(\.mfa) })
            #expect(fast.processes.map { $0.stack.map(\.sinceNs) } == full.processes.map { $0.stack.map(\.sinceNs) })
            #expect(fast.processes.map(\.queueLength) == full.processes.map(\.queueLength))
            #expect(fast.eventsReplayed < full.eventsReplayed)
        }
        // At the end both servers are inside handle_call.
        let end = try StateAtTime.state(reader, at: late)
        #expect(end.processes.filter { $0.stack.map(\.mfa).contains("bt_workload:handle_call/3") }.count == 2)
    }
}
