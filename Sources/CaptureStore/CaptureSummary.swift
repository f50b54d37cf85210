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
        // Flat tables by id instead of sets: this runs once per event.
        var calls = [Int](repeating: 0, count: dictionaries.functions.count)
        var functionSeen = [Bool](repeating: false, count: dictionaries.functions.count)
        var processSeen = [Bool](repeating: false, count: dictionaries.processes.count)
        var nodeSeen = [Bool](repeating: false, count: dictionaries.nodes.count)
        var events = 0, drops: Int64 = 0
        var start: Int64?, end: Int64?
        try forEach { event, _ in
            events += 1
            kindCounts[Int(event.kind.rawValue)] += 1
            let mfa = Int(event.mfa)
            if mfa != 0, mfa < calls.count {
                functionSeen[mfa] = true
                if event.kind == .call || event.kind == .returnFrom || event.kind == .exceptionFrom { calls[mfa] += 1 }
            }
            if event.kind == .drop { drops += event.value }
            if Int(event.pid) < processSeen.count { processSeen[Int(event.pid)] = true }
            if Int(event.node) < nodeSeen.count { nodeSeen[Int(event.node)] = true }
            if !event.flags.contains(.noTimestamp) || event.kind != .drop {
                if start == nil { start = event.time }
                end = event.time
            }
            return true
        }
        s.events = events
        s.drops = drops
        s.startTime = start
        s.endTime = end
        for kind in EventKind.allCases where kindCounts[Int(kind.rawValue)] > 0 { s.kinds[kind] = kindCounts[Int(kind.rawValue)] }
        for (id, count) in calls.enumerated() where count > 0 { s.callsByFunction[FunctionID(id)] = count }
        for (id, seen) in functionSeen.enumerated() where seen { s.functionsSeen.insert(FunctionID(id)) }
        for (id, seen) in processSeen.enumerated() where seen && id != 0 { s.processesSeen.insert(ProcessID(id)) }
        for (id, seen) in nodeSeen.enumerated() where seen && id != 0 { s.nodesSeen.insert(NodeID(id)) }
        return s
    }
}
