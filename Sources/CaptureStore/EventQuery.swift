// What a reader is asked for: a time range, nodes, processes, functions and kinds. Blocks whose
// index entry cannot match are skipped without being read or decompressed.
import TraceModel

public struct EventQuery: Sendable, Hashable {
    /// Inclusive bounds in the capture's nanoseconds.
    public var from: Int64?
    public var to: Int64?
    public var nodes: Set<NodeID>?
    /// The traced process (not the peer).
    public var pids: Set<ProcessID>?
    public var functions: Set<FunctionID>?
    public var kinds: Set<EventKind>?

    public init(from: Int64? = nil, to: Int64? = nil, nodes: Set<NodeID>? = nil, pids: Set<ProcessID>? = nil,
                functions: Set<FunctionID>? = nil, kinds: Set<EventKind>? = nil) {
        self.from = from
        self.to = to
        self.nodes = nodes
        self.pids = pids
        self.functions = functions
        self.kinds = kinds
    }

    public static let all = EventQuery()

    public var isAll: Bool { self == EventQuery.all }

    @inlinable
    public func matches(time: Int64, node: NodeID, pid: ProcessID, kind: EventKind, mfa: FunctionID) -> Bool {
        if let from, time < from { return false }
        if let to, time > to { return false }
        if let kinds, !kinds.contains(kind) { return false }
        if let pids, !pids.contains(pid) { return false }
        if let nodes, !nodes.contains(node) { return false }
        if let functions, !functions.contains(mfa) { return false }
        return true
    }
}
