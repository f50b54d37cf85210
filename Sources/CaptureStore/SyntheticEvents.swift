// A seeded generator of plausible events (calls, returns, sends, receives over a few processes
// and functions), for round-trip and crash tests and for benchmarks. Times strictly increase.
import TraceModel

public struct SyntheticEvents {
    public private(set) var dictionaries = TraceDictionaries()
    private var state: UInt64
    private var time: Int64
    private var pids: [ProcessID] = []
    private var functions: [FunctionID] = []

    public init(seed: UInt64, processes: Int = 50, functions functionCount: Int = 40, startTime: Int64 = 1_000_000_000) {
        state = seed &+ 0x9E37_79B9_7F4A_7C15
        time = startTime
        let node = dictionaries.intern(node: "synthetic@localhost")
        for i in 0..<processes {
            pids.append(dictionaries.intern(process: .pid(node: node, id: UInt32(80 + i), serial: 0, creation: 1)))
        }
        for i in 0..<functionCount {
            functions.append(dictionaries.intern(module: "mod\(i % 7)", function: "fun\(i)", arity: i % 4))
        }
    }

    private mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Appends `count` events to `batch`.
    public mutating func generate(_ count: Int, into batch: inout EventBatch) {
        let kinds: [EventKind] = [.call, .returnFrom, .send, .receive, .in, .out, .spawn, .exit]
        for _ in 0..<count {
            let r = next()
            time += Int64(1 + r % 5000)
            let kind = kinds[Int((r >> 8) % UInt64(kinds.count))]
            let pid = pids[Int((r >> 16) % UInt64(pids.count))]
            var event = TraceEvent(time: time, node: 1, pid: pid, kind: kind)
            switch kind {
            case .call, .returnFrom, .in, .out:
                event.mfa = functions[Int((r >> 24) % UInt64(functions.count))]
            case .send, .spawn:
                event.peer = pids[Int((r >> 32) % UInt64(pids.count))]
            default: break
            }
            event.value = Int64((r >> 40) % 1000) - 100
            // Payload: a small integer or a short binary, as raw ETF.
            if kind != .in && kind != .out {
                let n = Int((r >> 50) % 12)
                if n == 0 {
                    batch.payloadBytes.append(contentsOf: [97, UInt8(truncatingIfNeeded: r >> 56)])
                } else {
                    batch.payloadBytes.append(contentsOf: [109, 0, 0, 0, UInt8(n)])
                    for k in 0..<n { batch.payloadBytes.append(UInt8(truncatingIfNeeded: r >> UInt64(k * 5))) }
                }
            }
            batch.appendWithPayloadInPlace(event)
        }
    }
}
