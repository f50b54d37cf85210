// Fuzzes BeamTerm's TermCursor (and the term decoder beside it) with arbitrary bytes: no trap, and a
// term the cursor skips ends inside the input; a term that decodes is skipped to the same end.
import BeamTerm

import FuzzDriver

@_cdecl("fuzz_etf_main")
public func mainetf(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { data, size in
        guard let data else { return 0 }
        return fuzzETF(data, size)
    }
}

func fuzzETF(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let raw = UnsafeRawBufferPointer(start: data, count: size)
    var cursor = TermCursor(raw)
    if cursor.skipTerm() { precondition(cursor.offset <= size) } else { precondition(cursor.offset == 0) }
    var headers = TermCursor(raw)
    var steps = 0
    while steps < 10_000, headers.skipHeader() != nil { steps += 1 }
    var reads = TermCursor(raw)
    _ = reads.tupleArity(); _ = reads.listHeader(); _ = reads.integer(); _ = reads.pid(); _ = reads.atomText()
    _ = reads.isAtom("timeout")
    // The decoder builds terms; the cursor must agree on where a plain term ends.
    var offset = 0
    let decoder = TermDecoder(maxDepth: 200, maxUncompressedSize: 1 << 20)
    if let term = try? decoder.decode(raw, offset: &offset, versioned: false), !term.usesDecoderOnlyTags(raw) {
        var check = TermCursor(raw)
        precondition(check.skipTerm() && check.offset == offset, "cursor and decoder disagree")
    }
    _ = try? TermDecoder(maxDepth: 200, maxUncompressedSize: 1 << 20).decode(Array(raw))
    return 0
}

extension Term {
    /// Atom cache references and LOCAL_EXT are the decoder's alone (distribution headers, OTP 26 local terms).
    func usesDecoderOnlyTags(_ raw: UnsafeRawBufferPointer) -> Bool {
        raw.contains(82) || raw.contains(121)
    }
}
