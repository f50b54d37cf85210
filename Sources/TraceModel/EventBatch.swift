// A batch of events stored by column: what the decoder fills and what a capture block holds.
// Payloads are concatenated raw ETF terms (no version byte); `payloadEnds[i]` is where event i's ends.

public struct EventBatch: Sendable {
    public var times: [Int64] = []
    public var nodes: [NodeID] = []
    public var pids: [ProcessID] = []
    public var kinds: [EventKind] = []
    public var flags: [EventFlags] = []
    public var mfas: [FunctionID] = []
    public var peers: [ProcessID] = []
    public var values: [Int64] = []
    /// End offset of each event's payload in `payloadBytes` (start is the previous end).
    public var payloadEnds: [UInt32] = []
    public var payloadBytes: [UInt8] = []

    public init() {}

    public init(reservingCapacity capacity: Int, payloadBytes: Int = 0) {
        reserveCapacity(capacity, payloadBytes: payloadBytes)
    }

    // Inlinable: the ingest loop asks for the count once per frame, from another module.
    @inlinable public var count: Int { times.count }
    @inlinable public var isEmpty: Bool { times.isEmpty }

    public mutating func reserveCapacity(_ capacity: Int, payloadBytes payloadCapacity: Int = 0) {
        times.reserveCapacity(capacity)
        nodes.reserveCapacity(capacity)
        pids.reserveCapacity(capacity)
        kinds.reserveCapacity(capacity)
        flags.reserveCapacity(capacity)
        mfas.reserveCapacity(capacity)
        peers.reserveCapacity(capacity)
        values.reserveCapacity(capacity)
        payloadEnds.reserveCapacity(capacity)
        payloadBytes.reserveCapacity(payloadCapacity)
    }

    public mutating func removeAll() {
        times.removeAll(keepingCapacity: true)
        nodes.removeAll(keepingCapacity: true)
        pids.removeAll(keepingCapacity: true)
        kinds.removeAll(keepingCapacity: true)
        flags.removeAll(keepingCapacity: true)
        mfas.removeAll(keepingCapacity: true)
        peers.removeAll(keepingCapacity: true)
        values.removeAll(keepingCapacity: true)
        payloadEnds.removeAll(keepingCapacity: true)
        payloadBytes.removeAll(keepingCapacity: true)
    }

    /// Appends an event whose payload bytes were already appended to `payloadBytes`.
    @inlinable
    public mutating func appendWithPayloadInPlace(_ event: TraceEvent) {
        times.append(event.time)
        nodes.append(event.node)
        pids.append(event.pid)
        kinds.append(event.kind)
        flags.append(event.flags)
        mfas.append(event.mfa)
        peers.append(event.peer)
        values.append(event.value)
        payloadEnds.append(UInt32(truncatingIfNeeded: payloadBytes.count))
    }

    public mutating func append(_ event: TraceEvent, payload: some Collection<UInt8> = [UInt8]()) {
        payloadBytes.append(contentsOf: payload)
        appendWithPayloadInPlace(event)
    }

    public subscript(index: Int) -> TraceEvent {
        TraceEvent(time: times[index], node: nodes[index], pid: pids[index], kind: kinds[index],
                   flags: flags[index], mfa: mfas[index], peer: peers[index], value: values[index])
    }

    public func payloadRange(_ index: Int) -> Range<Int> {
        let start = index == 0 ? 0 : Int(payloadEnds[index - 1])
        return start..<Int(payloadEnds[index])
    }

    public func payload(_ index: Int) -> ArraySlice<UInt8> { payloadBytes[payloadRange(index)] }

    /// Drops events from `index` on (used when a frame fails to decode half-way).
    public mutating func truncate(to newCount: Int) {
        guard newCount < count else { return }
        let payloadEnd = newCount == 0 ? 0 : Int(payloadEnds[newCount - 1])
        times.removeSubrange(newCount...)
        nodes.removeSubrange(newCount...)
        pids.removeSubrange(newCount...)
        kinds.removeSubrange(newCount...)
        flags.removeSubrange(newCount...)
        mfas.removeSubrange(newCount...)
        peers.removeSubrange(newCount...)
        values.removeSubrange(newCount...)
        payloadEnds.removeSubrange(newCount...)
        payloadBytes.removeSubrange(payloadEnd...)
    }
}

/// Read-only views of every column of a batch, for the hot loops over whole blocks (the block
/// encoder, the block summary): no bounds check, retain or uniqueness check per element.
public struct EventBatchColumns {
    public let count: Int
    public let times: UnsafeBufferPointer<Int64>
    public let nodes: UnsafeBufferPointer<NodeID>
    public let pids: UnsafeBufferPointer<ProcessID>
    public let kinds: UnsafeBufferPointer<EventKind>
    public let flags: UnsafeBufferPointer<EventFlags>
    public let mfas: UnsafeBufferPointer<FunctionID>
    public let peers: UnsafeBufferPointer<ProcessID>
    public let values: UnsafeBufferPointer<Int64>
    public let payloadEnds: UnsafeBufferPointer<UInt32>
    public let payloadBytes: UnsafeRawBufferPointer

    /// Where event `i`'s payload starts in `payloadBytes`.
    @inlinable public func payloadStart(_ i: Int) -> Int { i == 0 ? 0 : Int(payloadEnds[i - 1]) }
}

extension EventBatch {
    /// Calls `body` with views of the columns, valid only inside it.
    public func withColumns<R>(_ body: (EventBatchColumns) throws -> R) rethrows -> R {
        try times.withUnsafeBufferPointer { times in
            try nodes.withUnsafeBufferPointer { nodes in
                try pids.withUnsafeBufferPointer { pids in
                    try kinds.withUnsafeBufferPointer { kinds in
                        try flags.withUnsafeBufferPointer { flags in
                            try mfas.withUnsafeBufferPointer { mfas in
                                try peers.withUnsafeBufferPointer { peers in
                                    try values.withUnsafeBufferPointer { values in
                                        try payloadEnds.withUnsafeBufferPointer { ends in
                                            try payloadBytes.withUnsafeBytes { bytes in
                                                try body(EventBatchColumns(
                                                    count: times.count, times: times, nodes: nodes, pids: pids,
                                                    kinds: kinds, flags: flags, mfas: mfas, peers: peers,
                                                    values: values, payloadEnds: ends, payloadBytes: bytes))
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// An event with its own copy of its payload (convenient, allocates; the scan API avoids it).
public struct RecordedEvent: Sendable, Hashable {
    public var event: TraceEvent
    /// Raw ETF terms without version bytes; see `TraceEvent.payloadTermCount`.
    public var payload: [UInt8]
    public init(event: TraceEvent, payload: [UInt8]) {
        self.event = event
        self.payload = payload
    }
}
