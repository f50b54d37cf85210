// system_monitor alerts near the end of a capture become `monitor` suspects; old ones do not.
import BeamTerm
import Testing
import TraceAnalysis
import TraceModel

@Test("long_gc and busy_port alerts in the last fifth of the capture are reported with their kinds")
func monitorSuspects() {
    var dictionaries = TraceDictionaries()
    let node = dictionaries.intern(node: "a@host")
    let gcVictim = dictionaries.intern(process: .pid(node: node, id: 90, serial: 0, creation: 1))
    let early = dictionaries.intern(process: .pid(node: node, id: 91, serial: 0, creation: 1))
    let analysis = CaptureAnalysis(dictionaries: dictionaries)
    func payload(_ term: Term) -> [UInt8] {
        var bytes: [UInt8] = []
        TermEncoder().encode(term, into: &bytes)
        return bytes
    }
    let longGC = payload(.tuple([.atom("long_gc"), .list([.tuple([.atom("timeout"), .integer(180)])])]))
    let busyPort = payload(.tuple([.atom("busy_port"), .atom("undefined")]))
    let events: [(TraceEvent, [UInt8])] = [
        (TraceEvent(time: 0, node: node, kind: .marker), []),
        (TraceEvent(time: 1_000_000_000, node: node, pid: early, kind: .monitor, value: 500), longGC),
        (TraceEvent(time: 9_000_000_000, node: node, pid: gcVictim, kind: .monitor, value: 180), longGC),
        (TraceEvent(time: 9_500_000_000, node: node, pid: gcVictim, kind: .monitor, value: 1), busyPort),
        (TraceEvent(time: 10_000_000_000, node: node, kind: .marker), []),
    ]
    for (event, bytes) in events {
        bytes.withUnsafeBytes { analysis.consume(event, payload: $0) }
    }
    analysis.finish(at: 10_000_000_000)
    let report = analysis.hangReport()
    let monitors = report.suspects.filter { $0.reason == .monitor }
    #expect(monitors.map(\.pid) == ["<0.90.0>"])
    #expect(monitors.first?.evidence["kinds"] == .array([.string("busy_port"), .string("long_gc")]))
    #expect(monitors.first?.evidence["worst"] == .int(180))
    #expect(report.verdict.contains("system_monitor"))
}
