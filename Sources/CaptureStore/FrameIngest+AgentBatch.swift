// The live agent's batch shape in the one ingest loop: `term_to_binary([Oldest, ..., Newest])`
// (beamtrace_agent.erl), whose elements are the exact terms a trace port frames one by one, and
// `{beamtrace_drop, N}` for a drop frame. One walk over the list: each element is decoded where it
// lies, in list order (no split into element ranges first). Same rules as frames: an element that
// does not decode is counted and skipped, a batch that is not a proper list keeps the elements before
// the damage, and with `strict` the first bad element stops the input after every good event before
// it is in the batch.
import BeamTerm
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
                                           decoder: inout TraceMessageDecoder, into batch: inout EventBatch) throws {
        var cursor = TermCursor(bytes)
        var read = 0
        func notAList(at offset: Int) throws {
            try noteDamage(IngestDamage(source: source, offset: streamOffset + Int64(offset),
                                        bytes: Int64(bytes.count - offset),
                                        why: "an agent batch that is not a proper list of terms (\(read) "
                                            + "element(s) before the damage were read)"))
        }
        guard cursor.u8() == 131 else { return try notAList(at: 0) }
        if cursor.peek() == ExternalTag.nil {  // []
            cursor.offset += 1
            if cursor.remaining != 0 { try notAList(at: cursor.offset) }
            return
        }
        // Every element takes at least a byte: a count the bytes cannot hold is damage, not a loop bound.
        let headerAt = cursor.offset
        guard let count = cursor.listHeader(), count <= cursor.remaining else { return try notAList(at: headerAt) }
        for _ in 0..<count {
            let start = cursor.offset
            if let drops = Self.dropCount(&cursor) {
                decoder.appendDrop(count: drops, into: &batch)
                noteDropped(drops)
                read += 1
                continue
            }
            do {
                try decoder.decode(next: &cursor, into: &batch)
            } catch var error {
                cursor.offset = start
                guard cursor.skipTerm() else { return try notAList(at: start) }
                // Where a trace port's frame body would have it (after the version byte 131).
                error.offset = error.offset - start + 1
                noteFrameSkipped()
                try noteDamage(IngestDamage(source: source, offset: streamOffset + Int64(start),
                                            bytes: Int64(cursor.offset - start),
                                            why: "a trace message that does not decode: \(error)"))
            }
            read += 1
        }
        let tailAt = cursor.offset
        guard cursor.u8() == ExternalTag.nil, cursor.remaining == 0 else { return try notAList(at: tailAt) }
    }

    /// `{beamtrace_drop, Count}` at the cursor → Count, the cursor after it; nil (the cursor where it
    /// was) for anything else.
    @inline(__always)
    static func dropCount(_ cursor: inout TermCursor) -> Int64? {
        // A trace message is a tuple of at least 3 elements: one byte tells them apart.
        guard cursor.remaining >= 2 else { return nil }
        let head = cursor.slice(cursor.offset, cursor.offset + 2)
        guard head[0] == 104, head[1] == 2 else { return nil }
        var probe = cursor
        guard probe.tupleArity() == 2, probe.isAtom("beamtrace_drop"), probe.skipAtom(), let count = probe.integer()
        else { return nil }
        cursor = probe
        return count
    }
}
