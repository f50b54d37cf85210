// Where terms of a raw payload end, without decoding them (ETFScan), e.g. to take a send's message
// apart from the destination that follows it.

extension Payload {
    /// The byte length of the payload's first term; nil when it is cut short or malformed.
    public static func firstTermLength(_ bytes: UnsafeRawBufferPointer) -> Int? {
        var scan = ETFScan(bytes)
        guard scan.skipTerm() else { return nil }
        return scan.offset
    }
}
