// Fuzzes the trace-message decoder (TraceModel) with arbitrary bytes after the version byte, plain and
// redacted: no trap, and a failed decode leaves the batch as it was.
import TraceModel

nonisolated(unsafe) var plain = TraceMessageDecoder()
nonisolated(unsafe) var redacting = TraceMessageDecoder(options: TraceDecoderOptions(payloadLimit: 64, redact: true))

import FuzzDriver

@_cdecl("fuzz_trace_main")
public func maintrace(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { data, size in
        guard let data else { return 0 }
        return fuzzTrace(data, size)
    }
}

func fuzzTrace(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var bytes: [UInt8] = [131]
    bytes.append(contentsOf: UnsafeBufferPointer(start: data, count: size))
    for redact in [false, true] {
        var batch = EventBatch()
        do {
            if redact { try redacting.decode(bytes, into: &batch) } else { try plain.decode(bytes, into: &batch) }
            precondition(batch.count == 1)
        } catch {
            precondition(batch.count == 0 && batch.payloadBytes.isEmpty, "a failed decode left an event behind")
        }
    }
    // Keep the dictionaries from growing without bound across runs.
    if plain.dictionaries.atoms.count > 50_000 { plain = TraceMessageDecoder() }
    if redacting.dictionaries.atoms.count > 50_000 {
        redacting = TraceMessageDecoder(options: TraceDecoderOptions(payloadLimit: 64, redact: true))
    }
    return 0
}
