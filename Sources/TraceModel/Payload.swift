// Reading an event's payload back as terms: the raw ETF terms the decoder copied, in order
// (see `TraceEvent.payloadTermCount`).
import BeamTerm

public enum Payload {
    /// Decodes every whole term in the payload; nil when it was truncated or does not decode.
    public static func terms(_ bytes: UnsafeRawBufferPointer, flags: EventFlags) -> [Term]? {
        if flags.contains(.payloadTruncated) { return nil }
        var terms: [Term] = []
        var offset = 0
        let decoder = TermDecoder()
        while offset < bytes.count {
            guard let term = try? decoder.decode(bytes, offset: &offset, versioned: false) else { return nil }
            terms.append(term)
        }
        return terms
    }

    /// The first byte of a payload cut to a depth (flag `payloadTruncated`): `0xF4, Depth`, then the
    /// terms as `TermCut` left them. Older captures' cut payloads are a plain byte prefix instead
    /// (their first byte is an ETF tag, never 0xF4).
    public static let cutTag: UInt8 = 0xF4

    /// The terms of a cut payload and the `~P` depth they were cut to; nil for anything else.
    public static func cut(_ bytes: UnsafeRawBufferPointer, flags: EventFlags) -> (depth: Int, terms: [Term])? {
        guard flags.contains(.payloadTruncated), bytes.count >= 2, bytes[0] == cutTag else { return nil }
        var terms: [Term] = []
        var offset = 2
        let decoder = TermDecoder()
        while offset < bytes.count {
            guard let term = try? decoder.decode(bytes, offset: &offset, versioned: false) else { return nil }
            terms.append(term)
        }
        return (Int(bytes[1]), terms)
    }

    /// The terms of a payload whether whole or cut (see `cut`); nil when unreadable.
    public static func readableTerms(_ bytes: UnsafeRawBufferPointer, flags: EventFlags) -> [Term]? {
        terms(bytes, flags: flags) ?? cut(bytes, flags: flags)?.terms
    }

    public static func terms(_ bytes: some Collection<UInt8>, flags: EventFlags) -> [Term]? {
        Array(bytes).withUnsafeBytes { terms($0, flags: flags) }
    }
}
