// What a pass reads of each event (column pruning): the capture is columnar, so columns a pass
// does not look at are neither decompressed nor decoded. Payloads are the dearest column (LZ4,
// then compacted pids and integers expanded back to ETF); a pass names the kinds whose payloads it
// reads, and gets the others empty.
import TraceModel

public struct EventColumns: Sendable, Hashable {
    /// Kinds whose payloads are read (bit = `EventKind.rawValue`). A block holding none of them
    /// leaves its payload columns undecoded; in a block holding some, the other payloads are
    /// walked (their integers and pids are needed to expand the later ones) but not expanded.
    /// Events of other kinds come with an empty payload.
    public var payloadKinds: UInt64
    /// The `peer` column (0 for every event without it).
    public var peers: Bool

    public init(payloadKinds: UInt64 = ~0, peers: Bool = true) {
        self.payloadKinds = payloadKinds
        self.peers = peers
    }

    /// Every column of every event.
    public static let all = EventColumns()

    public init(payloadsOf kinds: Set<EventKind>, peers: Bool) {
        self.init(payloadKinds: kinds.reduce(0) { $0 | 1 << UInt64($1.rawValue) }, peers: peers)
    }

    @inline(__always) func wantsPayload(_ kind: UInt8) -> Bool { payloadKinds >> UInt64(kind & 63) & 1 != 0 }

    var isAll: Bool { payloadKinds == ~0 && peers }
}
