// Fuzzes the capture writer and reader together: the input steers SyntheticClusterEvents (nodes,
// processes, events, block size, every shape choice), whose shuffled multi-node batches go through
// CaptureWriter and come back through CaptureReader. Every event must read back exactly (every
// field, every payload byte), in time order; a filtered read must give the same payloads, and a
// pruned one (payloads of some kinds only) those exactly and the others empty.
import CaptureStore
import Foundation
import TraceModel

nonisolated(unsafe) let directory: String = {
    let path = NSTemporaryDirectory() + "/beamtrace-fuzz-roundtrip-\(getpid())"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}()

import FuzzDriver

@_cdecl("fuzz_roundtrip_main")
public func mainroundtrip(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { data, size in
        guard let data else { return 0 }
        return fuzzRoundTrip(Array(UnsafeBufferPointer(start: data, count: size)))
    }
}

func fuzzRoundTrip(_ input: [UInt8]) -> CInt {
    guard input.count >= 4 else { return 0 }
    let nodes = 1 + Int(input[0] % 8)
    let processes = [1, 3, 40, 300][Int(input[1] % 4)]
    // Up to 1024 events: a run takes milliseconds, so 30 s try thousands of inputs.
    let events = 1 + (Int(input[2]) << 2 | Int(input[3] >> 6))
    var options = CaptureWriter.Options()
    options.blockEvents = [1, 7, 64, 700, 16_384][Int(input[3] & 7) % 5]
    options.background = input[3] & 8 != 0
    if input[1] & 0x80 != 0 { options.segmentBytes = 20_000 }
    var seed: UInt64 = 0
    for byte in input.prefix(8) { seed = seed << 8 | UInt64(byte) }
    var generator = SyntheticClusterEvents(seed: seed, entropy: Array(input.dropFirst(4)), nodes: nodes,
                                           processesPerNode: processes)
    let batches = generator.batches(events: events)
    var written: [Int64: (TraceEvent, [UInt8])] = [:]
    for batch in batches {
        for i in 0..<batch.count { written[batch[i].value] = (batch[i], Array(batch.payload(i))) }
    }
    let path = directory + "/capture"
    try? FileManager.default.removeItem(atPath: path)
    defer { try? FileManager.default.removeItem(atPath: path) }
    do {
        let writer = try CaptureWriter(creating: path, options: options)
        for batch in batches { try writer.append(batch, dictionaries: generator.dictionaries) }
        try writer.close(stopReason: "fuzz")
        let reader = try CaptureReader(opening: path)
        precondition(reader.problems.isEmpty, "problems reading back: \(reader.problems)")
        var read = 0
        var lastTime = Int64.min
        try reader.forEach { event, payload in
            guard let (expected, bytes) = written[event.value] else {
                preconditionFailure("event \(event) was never written")
            }
            precondition(event == expected, "event \(event.value) reads back as \(event), written \(expected)")
            precondition(payload.elementsEqual(bytes), """
                event \(event.value) (\(event.kind)): payload reads back as \(Array(payload)), written \(bytes)
                """)
            precondition(event.time >= lastTime, "event \(event.value) out of time order")
            lastTime = event.time
            read += 1
            return true
        }
        precondition(read == written.count, "\(read) events read back of \(written.count) written")
        try reader.forEach(matching: EventQuery(kinds: [.send, .exit])) { event, payload in
            precondition(written[event.value].map { payload.elementsEqual($0.1) } == true,
                         "event \(event.value): a filtered read gives another payload")
            return true
        }
        // Column pruning: the payloads of the kinds named (steered by the input) exactly, the rest empty.
        let kinds = UInt64(input[0]) << 8 | UInt64(input[input.count - 1])
        try reader.forEach(columns: EventColumns(payloadKinds: kinds, peers: input[1] & 1 != 0)) { event, payload in
            guard let (expected, bytes) = written[event.value] else { preconditionFailure("event never written") }
            let wanted = kinds >> UInt64(event.kind.rawValue & 63) & 1 != 0 ? bytes : []
            precondition(payload.elementsEqual(wanted), "event \(event.value) (\(event.kind)): a pruned read's payload")
            precondition(event.time == expected.time && event.pid == expected.pid && event.kind == expected.kind,
                         "event \(event.value): a pruned read's columns")
            return true
        }
    } catch {
        preconditionFailure("writing or reading the capture failed: \(error)")
    }
    return 0
}
