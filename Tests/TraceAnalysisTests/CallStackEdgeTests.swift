// Call-stack cases real traces contain but a workload cannot force on cue: a capture starting in
// the middle of calls, calls whose returns were not traced, tail calls, drops, exits, open calls.
import Testing
import TraceAnalysis
import TraceModel

@Suite("Call stacks on edge cases")
struct CallStackEdgeTests {
    var dictionaries = TraceDictionaries()
    let f: FunctionID, g: FunctionID, h: FunctionID
    let pid: ProcessID, other: ProcessID
    let node: NodeID

    init() {
        node = dictionaries.intern(node: "a@host")
        pid = dictionaries.intern(process: .pid(node: node, id: 80, serial: 0, creation: 1))
        other = dictionaries.intern(process: .pid(node: node, id: 81, serial: 0, creation: 1))
        f = dictionaries.intern(module: "m", function: "f", arity: 0)
        g = dictionaries.intern(module: "m", function: "g", arity: 0)
        h = dictionaries.intern(module: "m", function: "h", arity: 0)
    }

    func replay(_ events: [TraceEvent], end: Int64? = nil) -> CaptureAnalysis {
        let analysis = CaptureAnalysis(dictionaries: dictionaries, options: AnalysisOptions(keepSpans: true))
        for event in events { analysis.consume(event, payload: UnsafeRawBufferPointer(start: nil, count: 0)) }
        analysis.finish(at: end ?? events.last?.time ?? 0)
        return analysis
    }

    func call(_ t: Int64, _ mfa: FunctionID, _ p: ProcessID? = nil) -> TraceEvent {
        TraceEvent(time: t, node: node, pid: p ?? pid, kind: .call, mfa: mfa)
    }

    func ret(_ t: Int64, _ mfa: FunctionID, _ p: ProcessID? = nil) -> TraceEvent {
        TraceEvent(time: t, node: node, pid: p ?? pid, kind: .returnFrom, mfa: mfa)
    }

    @Test("a return whose call came before the capture is a span with an unknown start")
    func startsMidCall() {
        let a = replay([call(10, g), ret(20, g), ret(30, f)])
        let fSpan = a.spans.first { $0.mfa == f }
        #expect(fSpan?.startKnown == false)
        #expect(fSpan?.isMeasured == false)
        #expect(a.spans.first { $0.mfa == g }?.ending == .returned)
        #expect(a.latency.functions[LatencyKey(mfa: f, group: 0)]?.total.totalCount == 0)
        #expect(a.latency.functions[LatencyKey(mfa: g, group: 0)]?.total.totalCount == 1)
    }

    @Test("calls without their own return (untraced return, tail call) close when the caller returns")
    func unwoundByCaller() {
        let a = replay([call(0, f), call(10, g), call(20, h), ret(50, f)])
        #expect(a.spans.map(\.ending) == [.returned, .unwound, .unwound])
        #expect(a.spans.first { $0.mfa == f }?.total == 50)
        #expect(a.spans.first { $0.mfa == h }?.end == 50)
        #expect(a.latency.functions[LatencyKey(mfa: h, group: 0)]?.unmeasured == 1)
    }

    @Test("return_to pops the frames above the function returned to")
    func returnTo() {
        let a = replay([call(0, f), call(10, g), TraceEvent(time: 15, node: node, pid: pid, kind: .returnTo, mfa: f),
                        ret(40, f)])
        #expect(a.spans.first { $0.mfa == g }?.end == 15)
        #expect(a.spans.first { $0.mfa == g }?.ending == .unwound)
        #expect(a.spans.first { $0.mfa == f }?.selfTime == 35)
    }

    @Test("no span crosses a drop: open calls end as gaps and their later returns are not measured")
    func dropGap() {
        let a = replay([call(0, f), call(5, f, other), TraceEvent(time: 10, node: node, kind: .drop, value: 42),
                        ret(20, f), ret(25, f, other), call(30, g), ret(35, g)])
        let gaps = a.spans.filter { $0.ending == .gap }
        #expect(gaps.count == 2)
        #expect(a.drops == 42)
        #expect(a.latency.functions[LatencyKey(mfa: f, group: 0)]?.total.totalCount == 0)
        #expect(a.latency.functions[LatencyKey(mfa: g, group: 0)]?.total.totalCount == 1)
    }

    @Test("a process exiting inside calls, and calls open at the end, are marked with their age")
    func exitAndUnfinished() {
        let a = replay([call(0, f), call(5, g), TraceEvent(time: 9, node: node, pid: pid, kind: .exit),
                        call(10, h, other)], end: 100)
        #expect(a.spans.filter { $0.pid == pid }.map(\.ending) == [.processExited, .processExited])
        let open = a.spans.first { $0.pid == other }
        #expect(open?.ending == .unfinished)
        #expect(open?.total == 90)
        #expect(a.openAtEnd[other]?.map(\.mfa) == [h])
    }

    @Test("recursion closes the innermost frame of the same function first")
    func recursion() {
        let a = replay([call(0, f), call(10, f), call(20, f), ret(25, f), ret(30, f), ret(60, f)])
        #expect(a.spans.map(\.total) == [60, 20, 5])
        #expect(a.spans.map(\.depth) == [0, 1, 2])
        #expect(a.spans.map(\.selfTime) == [40, 15, 5])
    }
}
