// Where terms of a raw payload end, without decoding them (BeamTerm's TermCursor), e.g. to take a
// send's message apart from the destination that follows it.
import BeamTerm

extension Payload {
    /// The byte length of the payload's first term; nil when it is cut short or malformed.
    public static func firstTermLength(_ bytes: UnsafeRawBufferPointer) -> Int? {
        var scan = TermCursor(bytes)
        guard scan.skipTerm() else { return nil }
        return scan.offset
    }
}
