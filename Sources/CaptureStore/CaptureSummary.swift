// What `beamtrace info` reports: totals by kind and function, nodes, processes, time range, size.
import TraceModel

public struct CaptureSummary: Sendable {
    public var events = 0
    public var kinds: [EventKind: Int] = [:]
    /// call, return_from and exception_from events per function.
    public var callsByFunction: [FunctionID: Int] = [:]
    public var startTime: Int64?
    public var endTime: Int64?
    public var drops: Int64 = 0
    public var processesSeen = Set<ProcessID>()
    public var functionsSeen = Set<FunctionID>()
    public var nodesSeen = Set<NodeID>()
}

extension CaptureReader {
    /// Scans the whole capture once and totals it.
    public func summary() throws -> CaptureSummary {
        var s = CaptureSummary()
        var kindCounts = [Int](repeating: 0, count: 64)
        try forEach { event, _ in
            s.events += 1
            kindCounts[Int(event.kind.rawValue)] += 1
            if event.mfa != 0 {
                if event.kind == .call || event.kind == .returnFrom || event.kind == .exceptionFrom {
                    s.callsByFunction[event.mfa, default: 0] += 1
                }
                s.functionsSeen.insert(event.mfa)
            }
            if event.kind == .drop { s.drops += event.value }
            if event.pid != 0 { s.processesSeen.insert(event.pid) }
            if event.node != 0 { s.nodesSeen.insert(event.node) }
            if event.kind != .drop || !event.flags.contains(.noTimestamp) {
                if s.startTime == nil { s.startTime = event.time }
                s.endTime = event.time
            }
            return true
        }
        for kind in EventKind.allCases where kindCounts[Int(kind.rawValue)] > 0 { s.kinds[kind] = kindCounts[Int(kind.rawValue)] }
        return s
    }
}
