// One trace event as a flat, fixed-width record. Variable parts live in the capture's dictionaries
// (ids below) or in the payload bytes a batch or reader hands out next to the event.

/// Index into `TraceDictionaries.atoms`; 0 is "none".
public typealias AtomID = UInt32
/// Index into `TraceDictionaries.nodes`; 0 is "none".
public typealias NodeID = UInt32
/// Index into `TraceDictionaries.processes` (pids, ports, registered names); 0 is "none".
public typealias ProcessID = UInt32
/// Index into `TraceDictionaries.functions` ({Module, Function, Arity}); 0 is "none".
public typealias FunctionID = UInt32

public struct TraceEvent: Sendable, Hashable {
    /// Nanoseconds: monotonic time for `monotonic_timestamp`/`strict_monotonic_timestamp` traces,
    /// system time since 1970 for `timestamp` (now-style) traces; see the capture's time base.
    public var time: Int64
    /// The traced process's node.
    public var node: NodeID
    /// The traced process (or port).
    public var pid: ProcessID
    public var kind: EventKind
    public var flags: EventFlags
    /// {M, F, A}: called/returning function (call, return_from, exception_from, return_to), the
    /// current function (in/out), the initial call (spawn/spawned).
    public var mfa: FunctionID
    /// The other process: send destination, spawned child or parent, link partner, port owner.
    public var peer: ProcessID
    /// A small integer: arity for call, count for drop, the name's atom id for register/unregister,
    /// the label for seq_trace, the figure for sample.
    public var value: Int64

    public init(time: Int64, node: NodeID = 0, pid: ProcessID = 0, kind: EventKind, flags: EventFlags = [],
                mfa: FunctionID = 0, peer: ProcessID = 0, value: Int64 = 0) {
        self.time = time
        self.node = node
        self.pid = pid
        self.kind = kind
        self.flags = flags
        self.mfa = mfa
        self.peer = peer
        self.value = value
    }
}

/// How to read an event's payload and time. Stored on disk as one byte.
public struct EventFlags: OptionSet, Sendable, Hashable {
    public var rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// The payload is the first bytes of a longer one (the size cap cut it); it does not decode.
    @inlinable public static var payloadTruncated: EventFlags { EventFlags(rawValue: 1 << 0) }
    /// The payload keeps only the shape of the original terms (--redact).
    @inlinable public static var payloadRedacted: EventFlags { EventFlags(rawValue: 1 << 1) }
    /// The trace tuple had extra elements (a match spec's `{message, X}`); they follow the main payload term.
    @inlinable public static var hasExtra: EventFlags { EventFlags(rawValue: 1 << 2) }
    /// A send whose destination was not a process (e.g. an alias reference); the destination term
    /// follows the message in the payload.
    @inlinable public static var destinationInPayload: EventFlags { EventFlags(rawValue: 1 << 3) }
    /// The trace message had no timestamp; `time` repeats the previous event's.
    @inlinable public static var noTimestamp: EventFlags { EventFlags(rawValue: 1 << 4) }
    /// The traced entity (`pid`) is a port, not a process.
    @inlinable public static var tracedPort: EventFlags { EventFlags(rawValue: 1 << 5) }
    /// A call traced with `arity` only: `value` holds the arity and there is no argument list.
    @inlinable public static var arityOnly: EventFlags { EventFlags(rawValue: 1 << 6) }
}

extension TraceEvent {
    /// How many raw ETF terms the payload of this event holds when it is not truncated.
    public var payloadTermCount: Int {
        var count: Int
        switch kind {
        case .call, .spawn, .spawned: count = flags.contains(.arityOnly) ? 0 : 1
        case .returnFrom, .exceptionFrom, .send, .sendToNonExistingProcess, .receive, .exit, .closed, .open,
             .gcMinorStart, .gcMinorEnd, .gcMajorStart, .gcMajorEnd, .gcMaxHeapSize, .seqTrace, .monitor,
             .marker:
            count = 1
        default: count = 0
        }
        if flags.contains(.destinationInPayload) { count += 1 }
        return count
    }
}
