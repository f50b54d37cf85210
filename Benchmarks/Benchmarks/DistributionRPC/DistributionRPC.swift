// rpc over distribution, beamtrace against erl itself, in the same run on the same nodes: sequential
// round trips of a small call (erlang:node()) and 10 MB binaries sent as rpc arguments.
// Node A serves the calls; node B is a second erl that runs rpc:call(A, ...) in a loop when asked
// (one extra small rpc from us to B per 1,000 calls, or per binary, which the numbers include).
// Run: swift package --package-path Benchmarks benchmark --target DistributionRPC
import Benchmark
import BeamDistribution
import BeamTerm
import Foundation
import TestSupport

struct BenchmarkSetupError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

let benchModule = """
    -module(bt_bench).
    -export([node_loop/2, bin_loop/3]).

    node_loop(Node, N) -> node_loop_(Node, N).
    node_loop_(_, 0) -> ok;
    node_loop_(Node, N) -> Node = rpc:call(Node, erlang, node, []), node_loop_(Node, N - 1).

    bin_loop(Node, Size, N) -> bin_loop_(Node, binary(Size), Size, N).
    bin_loop_(_, _, _, 0) -> ok;
    bin_loop_(Node, Bin, Size, N) -> Size = rpc:call(Node, erlang, byte_size, [Bin]), bin_loop_(Node, Bin, Size, N - 1).

    binary(Size) ->
        case persistent_term:get({?MODULE, Size}, undefined) of
            undefined ->
                Bin = binary:copy(<<"0123456789abcdef">>, Size div 16),
                persistent_term:put({?MODULE, Size}, Bin),
                Bin;
            Bin -> Bin
        end.
    """

/// Everything the benchmarks share, made once in the global setup.
final class Fixture: @unchecked Sendable {
    var server: ErlangNode?
    var client: ErlangNode?
    var toServer: DistributionConnection?
    var toClient: DistributionConnection?
    var serverName = ""

    func start() async throws {
        let cookie = "c" + String(UInt64.random(in: 0..<UInt64.max), radix: 36)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bt-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let source = directory.appendingPathComponent("bt_bench.erl")
        try benchModule.write(to: source, atomically: true, encoding: .utf8)
        let erlc = Process()
        erlc.executableURL = URL(fileURLWithPath: "/usr/bin/erlc")
        erlc.arguments = ["-o", directory.path, source.path]
        try erlc.run()
        erlc.waitUntilExit()
        let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        let server = try ErlangNode(name: "bench_a_\(suffix)", cookie: cookie, codePaths: [directory.path])
        let client = try ErlangNode(name: "bench_b_\(suffix)", cookie: cookie, codePaths: [directory.path])
        self.server = server
        self.client = client
        let host = NodeName.localHostName(long: false)
        serverName = "\(server.name)@\(host)"
        toServer = try await DistributionConnection.connect(to: serverName, cookie: Cookie(cookie))
        toClient = try await DistributionConnection.connect(to: "\(client.name)@\(host)", cookie: Cookie(cookie))
        // Let B connect to A and make its binary before anything is measured.
        _ = try await toClient?.rpc(module: "bt_bench", function: "bin_loop",
                                    arguments: [.atom(serverName), .integer(Int64(binarySize)), .integer(1)])
    }

    func stop() async {
        await toServer?.close()
        await toClient?.close()
        server?.stop()
        client?.stop()
    }
}

let binarySize = 10_000_000
nonisolated(unsafe) let fixture = Fixture()
let payload: Term = .binary([UInt8](repeating: 0x61, count: binarySize))

let benchmarks: @Sendable () -> Void = {
    Benchmark.setup = { try await fixture.start() }
    Benchmark.teardown = { await fixture.stop() }

    let sequential = Benchmark.Configuration(metrics: [.wallClock, .throughput], warmupIterations: 1,
                                             scalingFactor: .kilo, maxDuration: .seconds(5), maxIterations: 30)
    let large = Benchmark.Configuration(metrics: [.wallClock, .throughput], warmupIterations: 2,
                                        scalingFactor: .one, maxDuration: .seconds(5), maxIterations: 200)

    Benchmark("rpc erlang:node() x1000, beamtrace", configuration: sequential) { benchmark async throws in
        guard let connection = fixture.toServer else { throw BenchmarkSetupError(message: "no connection") }
        for _ in benchmark.scaledIterations {
            blackHole(try await connection.rpc(module: "erlang", function: "node"))
        }
    }

    Benchmark("rpc erlang:node() x1000, beamtrace on the connection's executor", configuration: sequential) {
        benchmark async throws in
        guard let connection = fixture.toServer else { throw BenchmarkSetupError(message: "no connection") }
        let count = benchmark.scaledIterations.count
        try await withTaskExecutorPreference(connection.taskExecutor) {
            for _ in 0..<count {
                blackHole(try await connection.rpc(module: "erlang", function: "node"))
            }
        }
    }

    Benchmark("rpc erlang:node() x1000, erl rpc:call", configuration: sequential) { benchmark async throws in
        guard let connection = fixture.toClient else { throw BenchmarkSetupError(message: "no connection") }
        let count = Int64(benchmark.scaledIterations.count)
        blackHole(try await connection.rpc(module: "bt_bench", function: "node_loop",
                                           arguments: [.atom(fixture.serverName), .integer(count)]))
    }

    Benchmark("rpc byte_size(10 MB binary), beamtrace", configuration: large) { benchmark async throws in
        guard let connection = fixture.toServer else { throw BenchmarkSetupError(message: "no connection") }
        for _ in benchmark.scaledIterations {
            blackHole(try await connection.rpc(module: "erlang", function: "byte_size", arguments: [payload]))
        }
    }

    Benchmark("rpc byte_size(10 MB binary), erl rpc:call", configuration: large) { benchmark async throws in
        guard let connection = fixture.toClient else { throw BenchmarkSetupError(message: "no connection") }
        let count = Int64(benchmark.scaledIterations.count)
        blackHole(try await connection.rpc(module: "bt_bench", function: "bin_loop",
                                           arguments: [.atom(fixture.serverName), .integer(Int64(binarySize)),
                                                       .integer(count)]))
    }
}
