// The streaming seam on real capture files: the spans it streams are the spans a replay keeps, in
// time order, every open closed once, nested per process; sends meet their receives; a stack that
// would pile up past the depth limit ends as a gap and still nests.
import CaptureStore
import Foundation
import Testing
import TestSupport
import TraceAnalysis
import TraceModel

@Suite("AnalysisStream: spans, instants and counters in time order")
struct AnalysisStreamTests {
    final class Recorder: AnalysisStreamConsumer {
        var began: [Span] = []
        var ended: [Span] = []
        var instants: [StreamInstant] = []
        var counters: [StreamCounter] = []
        var times: [Int64] = []
        var open: [ProcessID: [Int]] = [:]
        var nestingErrors = 0

        func spanBegan(_ span: Span, arguments: StreamPayload) {
            began.append(span)
            times.append(span.start)
            open[span.pid, default: []].append(span.id)
        }

        func spanEnded(_ span: Span, result: StreamPayload) {
            ended.append(span)
            times.append(span.end)
            guard span.startKnown else { return }
            if open[span.pid]?.last == span.id { open[span.pid]?.removeLast() } else { nestingErrors += 1 }
        }

        func instant(_ instant: StreamInstant, payload: StreamPayload) {
            instants.append(instant)
            times.append(instant.event.time)
        }

        func counter(_ counter: StreamCounter) { counters.append(counter) }
    }

    /// Writes `batch` as a capture in a fresh directory.
    func capture(_ batch: EventBatch, _ dictionaries: TraceDictionaries) throws -> (URL, String) {
        let directory = try Erlang.temporaryDirectory("bt-stream")
        let path = directory.appendingPathComponent("cap").path
        let writer = try CaptureWriter(creating: path)
        try writer.append(batch, dictionaries: dictionaries)
        try writer.close(stopReason: "done")
        return (directory, path)
    }

    @Test("the streamed spans are the replay's spans, in time order, each opened span closed once, nested")
    func spansMatchReplay() throws {
        var generator = SyntheticEvents(seed: 7)
        var batch = EventBatch()
        generator.generate(60_000, into: &batch)
        let (directory, path) = try capture(batch, generator.dictionaries)
        defer { try? FileManager.default.removeItem(at: directory) }
        let recorder = Recorder()
        let streamed = try AnalysisStream.run(CaptureReader(opening: path), into: recorder)
        let kept = try CaptureAnalysis.run(CaptureReader(opening: path), options: AnalysisOptions(keepSpans: true))
        #expect(streamed.events == 60_000)
        #expect(Set(recorder.ended) == Set(kept.spans))
        #expect(recorder.ended.count == kept.spans.count)
        #expect(zip(recorder.times, recorder.times.dropFirst()).allSatisfy { $0 <= $1 })
        #expect(Set(recorder.began.map(\.id)) == Set(recorder.ended.filter(\.startKnown).map(\.id)))
        #expect(recorder.nestingErrors == 0)
        #expect(recorder.open.values.allSatisfy { $0.isEmpty })
        // Every synthetic send is an instant with its own flow number.
        let sends = recorder.instants.filter { $0.event.kind == .send }
        #expect(sends.count == (0..<batch.count).filter { batch.kinds[$0] == .send }.count)
        #expect(Set(sends.map(\.flow)).count == sends.count)
    }

    @Test("a receive is matched to the send of the same message to it; an unmatched one to nothing")
    func sendsMeetReceives() throws {
        var d = TraceDictionaries()
        let node = d.intern(node: "a@host")
        let a = d.intern(process: .pid(node: node, id: 80, serial: 0, creation: 1))
        let b = d.intern(process: .pid(node: node, id: 81, serial: 0, creation: 1))
        var batch = EventBatch()
        // {ping, 1} and {ping, 2} to b, received in order; then a message b never had sent to it.
        let ping1: [UInt8] = [104, 2, 100, 0, 4] + Array("ping".utf8) + [97, 1]
        let ping2: [UInt8] = [104, 2, 100, 0, 4] + Array("ping".utf8) + [97, 2]
        batch.append(TraceEvent(time: 10, node: node, pid: a, kind: .send, peer: b), payload: ping1)
        batch.append(TraceEvent(time: 11, node: node, pid: a, kind: .send, peer: b), payload: ping2)
        batch.append(TraceEvent(time: 20, node: node, pid: b, kind: .receive), payload: ping1)
        batch.append(TraceEvent(time: 21, node: node, pid: b, kind: .receive), payload: ping2)
        batch.append(TraceEvent(time: 22, node: node, pid: b, kind: .receive), payload: [97, 7])
        let (directory, path) = try capture(batch, d)
        defer { try? FileManager.default.removeItem(at: directory) }
        let recorder = Recorder()
        try AnalysisStream.run(CaptureReader(opening: path), into: recorder)
        let receives = recorder.instants.filter { $0.event.kind == .receive }
        let sends = recorder.instants.filter { $0.event.kind == .send }
        #expect(receives.map { $0.matched?.flow } == [sends[0].flow, sends[1].flow, nil])
        #expect(receives.first?.matched?.time == 10 && receives.first?.matched?.pid == a)
    }

    @Test("calls whose returns were never traced end as a gap at the depth limit, still nested")
    func depthLimit() throws {
        var d = TraceDictionaries()
        let node = d.intern(node: "a@host")
        let p = d.intern(process: .pid(node: node, id: 80, serial: 0, creation: 1))
        let loop = d.intern(module: "m", function: "loop", arity: 1)
        var batch = EventBatch()
        for i in 0..<25_000 { batch.append(TraceEvent(time: Int64(i), node: node, pid: p, kind: .call, mfa: loop), payload: []) }
        let (directory, path) = try capture(batch, d)
        defer { try? FileManager.default.removeItem(at: directory) }
        let recorder = Recorder()
        try AnalysisStream.run(CaptureReader(opening: path), into: recorder)
        #expect(recorder.began.count == 25_000 && recorder.ended.count == 25_000)
        #expect(recorder.nestingErrors == 0)
        #expect(recorder.ended.filter { $0.ending == .gap }.count == 20_000)
        #expect(recorder.began.map(\.depth).max() == 9_999)
    }
}
