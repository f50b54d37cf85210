// Splits the agent's batch — `term_to_binary([Newest, ..., Oldest])` — into its elements without
// building terms, with BeamTerm's TermCursor: where each element starts and ends. Each element is
// the exact term a trace port would have written for one trace message (or the agent's
// `{beamtrace_drop, Count}`).
import BeamTerm

public struct TermListSplitter: Sendable {
    public init() {}

    /// Element ranges, in list order.
    public private(set) var ranges: [Range<Int>] = []

    /// Fills `ranges`; returns false (with what was found so far) when the bytes are not a proper list.
    mutating func split(_ bytes: UnsafeRawBufferPointer) -> Bool {
        ranges.removeAll(keepingCapacity: true)
        var cursor = TermCursor(bytes)
        guard cursor.u8() == 131 else { return false }
        if cursor.peek() == ExternalTag.nil { return cursor.remaining == 1 }  // []
        // Every element takes at least a byte: a count the bytes cannot hold is damage, not a reservation.
        guard let count = cursor.listHeader(), count <= cursor.remaining else { return false }
        ranges.reserveCapacity(count)
        for _ in 0..<count {
            let start = cursor.offset
            guard cursor.skipTerm() else { return false }
            ranges.append(start..<cursor.offset)
        }
        return cursor.u8() == ExternalTag.nil && cursor.remaining == 0
    }

    /// `{beamtrace_drop, Count}` → Count.
    static func dropCount(_ element: UnsafeRawBufferPointer) -> Int64? {
        var cursor = TermCursor(element)
        guard cursor.tupleArity() == 2, cursor.isAtom("beamtrace_drop"), cursor.skipAtom(),
              let count = cursor.integer(), cursor.remaining == 0 else { return nil }
        return count
    }
}
