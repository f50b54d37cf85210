// Decoding realistic trace tuples with the general `Term` decoder: throughput and mallocs per term.
// Run: swift package --package-path Benchmarks benchmark --target TermDecode
import Benchmark
import BeamTerm

/// A mix like a dbg trace of a gen_server workload: calls with arguments, returns, sends, receives.
func traceTuples(count: Int) -> [[UInt8]] {
    let node = Atom("app@host")
    let encoder = TermEncoder()
    var result: [[UInt8]] = []
    for i in 0..<count {
        let pid = Term.pid(Pid(node: node, id: UInt32(80 + i % 50), serial: 0, creation: 1_700_000_000))
        let peer = Term.pid(Pid(node: node, id: UInt32(200 + i % 7), serial: 0, creation: 1_700_000_000))
        let ts = Term.integer(-576_460_751_893_575_166 + Int64(i) * 1_234)
        let term: Term
        switch i % 5 {
        case 0:
            term = .tuple([.atom("trace_ts"), pid, .atom("call"),
                           .tuple([.atom("my_server"), .atom("handle_call"),
                                   .list([.tuple([.atom("get"), .integer(Int64(i))]),
                                          .tuple([peer, .reference(Reference(node: node, creation: 1, ids: [1, 2, 3]))]),
                                          .map(unordered: [MapPair(.atom("count"), .integer(Int64(i)))])])]), ts])
        case 1:
            term = .tuple([.atom("trace_ts"), pid, .atom("return_from"),
                           .tuple([.atom("my_server"), .atom("handle_call"), .integer(3)]),
                           .tuple([.atom("reply"), .atom("ok"), .binary(Array("value".utf8))]), ts])
        case 2:
            term = .tuple([.atom("trace_ts"), pid, .atom("send"), .tuple([.atom("work"), .integer(Int64(i))]), peer, ts])
        case 3:
            term = .tuple([.atom("trace_ts"), pid, .atom("receive"), .tuple([.atom("work"), .integer(Int64(i))]), ts])
        default:
            term = .tuple([.atom("trace_ts"), pid, .atom("call"), .tuple([.atom("lists"), .atom("seq"), .string([1, 100])]), ts])
        }
        result.append(encoder.encode(term))
    }
    return result
}

let benchmarks: @Sendable () -> Void = {
    let inputs = traceTuples(count: 1_000)
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .mallocCountTotal, .instructions],
        maxDuration: .seconds(3),
        maxIterations: 1_000
    )

    // One iteration decodes 1,000 trace tuples: trace tuples/s = 1,000 x iterations/s, and
    // mallocCountTotal / 1,000 is mallocs per decoded tuple.
    Benchmark("Term decode: 1,000 trace tuples") { benchmark in
        let decoder = TermDecoder()
        for bytes in inputs {
            blackHole(try? decoder.decode(bytes))
        }
    }
}
