// Fuzzes the ingest loop (CaptureStore.FrameIngest) with arbitrary trace-port streams, fed in
// chunks the first input byte chooses, as a file or a live stream is: no trap; the bytes consumed
// never exceed the input; the same stream fed whole gives the same events.
import CaptureStore
import TraceModel

import FuzzDriver

@_cdecl("fuzz_frames_main")
public func mainframes(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { data, size in
        guard let data else { return 0 }
        return fuzzFrames(data, size)
    }
}

func fuzzFrames(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let chunk = Int(data[0]) * 7 + 1
    let stream = UnsafeRawBufferPointer(start: data + 1, count: size - 1)
    func run(chunked: Bool) -> (events: Int, skipped: Int64) {
        var ingest = FrameIngest()
        var decoder = TraceMessageDecoder()
        var batch = EventBatch()
        var pending: [UInt8] = []
        var offset: Int64 = 0
        var position = 0
        while position < stream.count {
            let end = chunked ? min(stream.count, position + chunk) : stream.count
            pending.append(contentsOf: stream[position..<end])
            position = end
            let atEnd = position == stream.count
            let consumed = (try? pending.withUnsafeBytes { raw in
                try ingest.consume(raw, streamOffset: offset, source: "fuzz", atEnd: atEnd, decoder: &decoder, into: &batch)
            }) ?? pending.count
            precondition(consumed <= pending.count)
            pending.removeFirst(consumed)
            offset += Int64(consumed)
        }
        try? ingest.finish(source: "fuzz", at: offset)
        return (batch.count, ingest.bytesSkipped)
    }
    let whole = run(chunked: false)
    let chunked = run(chunked: true)
    precondition(whole.events == chunked.events, "chunking changed what was decoded")
    return 0
}
