// The decoder's fast path for the trace messages that dominate a call trace: a hot function's
// `{trace_ts, Pid, call, {M, F, Arity}, Time}` and `{trace_ts, Pid, return_from, {M, F, A}, Value, Time}`
// repeat, byte for byte, everything up to the function (tuple head, pid, tag, function); only the
// timestamp and the return value change. The last few such prefixes are kept with the event they
// decoded to, so a message that starts with one of them costs a compare, the skip of its value and the
// read of its timestamp, not the atom, pid and function lookups of the full decode.
import BeamTerm

/// A handful of message prefixes (raw bytes) with their events; filled by the full decode only for
/// shapes it can replay exactly (no arguments, no extra elements, not cut by the agent).
struct MessagePrefixes {
    static let slots = 4
    /// Longer prefixes (long node, module or function names) are not kept.
    static let maxLength = 120

    private var bytes = [UInt8](repeating: 0, count: slots * maxLength)
    private var lengths = [Int](repeating: 0, count: slots)
    private var events = [TraceEvent](repeating: TraceEvent(time: 0, kind: .call), count: slots)
    /// Whether one payload term (the return value or exception) follows the prefix.
    private var payloadTerms = [Bool](repeating: false, count: slots)
    private var timestamped = [Bool](repeating: false, count: slots)
    private var next = 0

    /// The slot whose prefix the message at the cursor starts with.
    @inline(__always) func match(_ scan: TermCursor) -> Int? {
        let remaining = scan.remaining
        guard remaining >= 16, let at = scan.slice(scan.offset, scan.count).baseAddress else { return nil }
        return bytes.withUnsafeBytes { mine -> Int? in
            guard let base = mine.baseAddress else { return nil }
            for slot in 0..<Self.slots {
                let length = lengths[slot]
                guard length >= 8, length <= remaining else { continue }
                let prefix = base + slot * Self.maxLength
                // The last word first: the function and the tag differ there, the pid's node does not.
                guard prefix.loadUnaligned(fromByteOffset: length - 8, as: UInt64.self)
                    == at.loadUnaligned(fromByteOffset: length - 8, as: UInt64.self) else { continue }
                if memcmpRaw(prefix, at, length - 8) { return slot }
            }
            return nil
        }
    }

    mutating func insert(_ prefix: UnsafeRawBufferPointer, event: TraceEvent, payloadTerm: Bool, timestamped: Bool) {
        guard prefix.count >= 8, prefix.count <= Self.maxLength, let source = prefix.baseAddress else { return }
        let slot = next
        next = (next + 1) % Self.slots
        bytes.withUnsafeMutableBytes { mine in
            mine.baseAddress.map { ($0 + slot * Self.maxLength).copyMemory(from: source, byteCount: prefix.count) }
        }
        lengths[slot] = prefix.count
        events[slot] = event
        payloadTerms[slot] = payloadTerm
        self.timestamped[slot] = timestamped
    }

    func length(_ slot: Int) -> Int { lengths[slot] }
    func event(_ slot: Int) -> TraceEvent { events[slot] }
    func payloadTerm(_ slot: Int) -> Bool { payloadTerms[slot] }
    func isTimestamped(_ slot: Int) -> Bool { timestamped[slot] }
}

extension TraceMessageDecoder {
    /// Decodes the message at the cursor, which starts with the prefix in `slot`: what follows it is
    /// the payload term (if the shape has one) and the timestamp (if any), as the full decode reads them.
    mutating func decodeWithPrefix(_ slot: Int, _ scan: inout TermCursor, into batch: inout EventBatch)
        throws(TraceDecodingError)
    {
        scan.offset += prefixes.length(slot)
        var event = prefixes.event(slot)
        var payload = 0..<0
        if prefixes.payloadTerm(slot) {
            let start = scan.offset
            guard scan.skipTerm() else {
                throw TraceDecodingError(event.kind == .returnFrom ? "malformed return value" : "malformed exception",
                                         offset: start)
            }
            payload = start..<scan.offset
        }
        if prefixes.isTimestamped(slot) {
            try readTimestamp(&scan, into: &event)
        } else {
            event.time = lastTime
            event.flags.insert(.noTimestamp)
        }
        appendPayload(scan, (payload, 0..<0, 0..<0), event: &event, into: &batch)
        batch.appendWithPayloadInPlace(event)
    }
}
