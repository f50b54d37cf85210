// Decoding realistic trace tuples with the general `Term` decoder: throughput and mallocs per term.
import Benchmark
import BeamTerm

let benchmarks: @Sendable () -> Void = {
    Benchmark("placeholder") { benchmark in
        blackHole(1)
    }
}
