// Fuzzes the capture reader (CaptureStore.CaptureReader) with a damaged capture: the input is
// `segment length:u32 LE | segment file | index file`, written into a fresh capture directory,
// opened and read whole (and with a filter, through the index). No trap; an error is a CaptureError.
import CaptureStore
import Foundation

nonisolated(unsafe) let directory: String = {
    let path = NSTemporaryDirectory() + "/beamtrace-fuzz-capture-\(getpid())"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}()

import FuzzDriver

@_cdecl("fuzz_capture_main")
public func maincapture(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { data, size in
        guard let data else { return 0 }
        return fuzzCapture(data, size)
    }
}

func fuzzCapture(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 4 else { return 0 }
    let bytes = UnsafeBufferPointer(start: data, count: size)
    let declared = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16 | Int(bytes[3]) << 24
    let split = min(4 + declared, size)
    let segment = Data(bytes[4..<split])
    let index = Data(bytes[split...])
    let segmentPath = directory + "/segment-00000001.btseg", indexPath = directory + "/segment-00000001.btidx"
    FileManager.default.createFile(atPath: segmentPath, contents: segment)
    if index.isEmpty { unlink(indexPath) } else { FileManager.default.createFile(atPath: indexPath, contents: index) }
    do {
        let reader = try CaptureReader(opening: directory)
        var events = 0
        try reader.forEach { _, payload in
            precondition(payload.count < 1 << 24)
            events += 1
            return true
        }
        var filtered = 0
        try reader.forEach(matching: EventQuery(kinds: [.receive])) { event, _ in
            precondition(event.kind == .receive)
            filtered += 1
            return true
        }
        precondition(filtered <= events)
        _ = try reader.summary()
    } catch is CaptureError {
    } catch {
        preconditionFailure("an error that is not a CaptureError: \(error)")
    }
    return 0
}
