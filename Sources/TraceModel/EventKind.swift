// The kinds of trace events, named exactly as OTP names its trace tags, plus beamtrace's own
// (sample, monitor, drop, marker). Raw values are stored on disk: never renumber, only append.

public enum EventKind: UInt8, Sendable, CaseIterable, Hashable, Codable {
    case call = 0
    case returnFrom = 1
    case exceptionFrom = 2
    case returnTo = 3
    case send = 4
    case sendToNonExistingProcess = 5
    case `receive` = 6
    case spawn = 7
    case spawned = 8
    case exit = 9
    case link = 10
    case unlink = 11
    case gettingLinked = 12
    case gettingUnlinked = 13
    case register = 14
    case unregister = 15
    case `in` = 16
    case out = 17
    case inExiting = 18
    case outExiting = 19
    case outExited = 20
    case gcMinorStart = 21
    case gcMinorEnd = 22
    case gcMajorStart = 23
    case gcMajorEnd = 24
    case gcMaxHeapSize = 25
    /// A port was opened (`ports` flag): `{trace, Port, open, Pid, Driver}`.
    case open = 26
    /// A port was closed: `{trace, Port, closed, Reason}`.
    case closed = 27
    /// A `seq_trace` message: `{seq_trace, Label, Info}`.
    case seqTrace = 28
    /// beamtrace's own: a sampled process or node figure (queue length, memory, reductions).
    case sample = 29
    /// beamtrace's own: a `system_monitor` event (long_gc, long_schedule, large_heap, busy_port...).
    case monitor = 30
    /// Trace messages lost at the source (an Op 1 frame); `value` is how many.
    case drop = 31
    /// beamtrace's own: a user or session marker.
    case marker = 32

    /// The number of kinds; kinds bitmaps in the index have room for 64.
    public static let count = 33

    /// OTP's tag (`return_from`, `receive`, `gc_minor_start`...), or beamtrace's name for its own kinds.
    public var otpName: String { Self.names[Int(rawValue)] }

    /// The kind for an OTP tag or beamtrace name, e.g. `"return_from"`.
    public init?(otpName: String) {
        guard let index = Self.names.firstIndex(of: otpName) else { return nil }
        self.init(rawValue: UInt8(index))
    }

    static let names: [String] = [
        "call", "return_from", "exception_from", "return_to", "send", "send_to_non_existing_process",
        "receive", "spawn", "spawned", "exit", "link", "unlink", "getting_linked", "getting_unlinked",
        "register", "unregister", "in", "out", "in_exiting", "out_exiting", "out_exited",
        "gc_minor_start", "gc_minor_end", "gc_major_start", "gc_major_end", "gc_max_heap_size",
        "open", "closed", "seq_trace", "sample", "monitor", "drop", "marker",
    ]
}

extension EventKind: CustomStringConvertible {
    public var description: String { otpName }
}
