// The live agent's batch shape in the one ingest loop: `term_to_binary([Newest, ..., Oldest])`
// (beamtrace_agent.erl), whose elements are the exact terms a trace port frames one by one, and
// `{beamtrace_drop, N}` for a drop frame. Same rules as frames: an element that does not decode is
// counted and skipped, a batch that is not a proper list keeps the elements before the damage, and
// with `strict` the first bad element stops the input after every good event before it is in the batch.
import TraceModel

extension FrameIngest {
    /// Counts and records a whole input that is not of the expected shape (an agent batch whose
    /// data is not a binary); with `strict` it stops the input.
    public mutating func skipInput(source: String, offset: Int64, bytes: Int64, why: String) throws {
        noteFrameSkipped()
        try noteDamage(IngestDamage(source: source, offset: offset, bytes: bytes, why: why))
    }

    /// Consumes one agent batch (`bytes` is the whole binary, only read: it may be the received
    /// frame itself), received at byte `streamOffset` of the node's stream, oldest element first.
    public mutating func consumeAgentBatch(_ bytes: UnsafeRawBufferPointer, streamOffset: Int64, source: String,
                                           splitter: inout TermListSplitter, decoder: inout TraceMessageDecoder,
                                           into batch: inout EventBatch) throws {
        let whole = splitter.split(bytes)
        let ranges = splitter.ranges
        if !whole {
            // The list is newest first: what could not be split holds the oldest messages.
            let at = ranges.last?.upperBound ?? 0
            try noteDamage(IngestDamage(source: source, offset: streamOffset + Int64(at), bytes: Int64(bytes.count - at),
                                        why: "an agent batch that is not a proper list of terms (\(ranges.count) "
                                        + "element(s) before the damage were read)"))
        }
        for range in ranges.reversed() {
            let element = UnsafeRawBufferPointer(rebasing: bytes[range])
            if let drops = TermListSplitter.dropCount(element) {
                decoder.appendDrop(count: drops, into: &batch)
                noteDropped(drops)
                continue
            }
            do {
                try decoder.decode(element: element, into: &batch)
            } catch var error {
                // Where a trace port's frame body would have it (after the version byte 131).
                error.offset += 1
                noteFrameSkipped()
                try noteDamage(IngestDamage(source: source, offset: streamOffset + Int64(range.lowerBound),
                                            bytes: Int64(range.count),
                                            why: "a trace message that does not decode: \(error)"))
            }
        }
    }
}
