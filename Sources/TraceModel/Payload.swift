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

    public static func terms(_ bytes: some Collection<UInt8>, flags: EventFlags) -> [Term]? {
        Array(bytes).withUnsafeBytes { terms($0, flags: flags) }
    }
}
