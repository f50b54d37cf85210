// `beamtrace record` against a node too busy to start a session in time: every setup step waits as
// long as `--timeout` says (loading the agent compiles it on the node, which a loaded scheduler slows
// down by seconds), the error names the step and that remedy, says once that the node was left clean,
// and a larger `--timeout` records the same busy node.
import BeamTerm
import Foundation
import Testing
import TestSupport

/// Busy loops at normal priority (as an application under load has them): on a node with one
/// scheduler every other process, rex's workers and the compiler included, waits its turn behind them.
enum BusyModule {
    static let source = #"""
    -module(btbusy).
    -export([hog/2]).
    hog(N, Ms) ->
        End = erlang:monotonic_time(millisecond) + Ms,
        [spawn(fun() -> loop(End) end) || _ <- lists:seq(1, N)],
        ok.
    loop(End) ->
        case erlang:monotonic_time(millisecond) > End of
            true -> ok;
            false -> loop(End)
        end.
    """#

    static let directory: String = {
        do {
            let directory = try Erlang.temporaryDirectory("beamtrace-busy")
            try Erlang.compile(module: "btbusy", source: source, in: directory)
            return directory.path
        } catch {
            return "/nonexistent-btbusy-compile-failed: \(error)"
        }
    }()
}

@Suite(.serialized) struct BusyNodeTests {
    func arguments(_ node: TracedNode, _ output: String, _ extra: [String]) -> [String] {
        ["record", "--node", node.name, "--cookie", node.node.cookie, "btwl:f/1", "-o", output, "--quiet"] + extra
    }

    @Test func aBusyNodeTimesOutWithTheRemedyAndARaisedTimeoutRecordsIt() async throws {
        let node = try await TracedNode.start(extraArguments: ["+S", "1:1", "-pa", BusyModule.directory])
        defer { Task { await node.stop() } }

        // 60 busy processes for 6 s: compiling the agent alone takes longer than 2 s then.
        _ = try await node.rpc("btbusy", "hog", [.integer(60), .integer(6000)])
        let output = try temporaryCapturePath()
        let started = ContinuousClock.now
        let failed = try RecorderProcess(arguments(node, output, ["--timeout", "2"]))
        let status = await failed.wait(timeout: .seconds(60))
        let took = ContinuousClock.now - started
        let text = failed.output
        #expect(status == 1, "\(text)")
        #expect(text.contains("no reply within 2000 ms"), "\(text)")
        #expect(text.contains("record --timeout SECONDS (now 2.0 s)"), "\(text)")
        #expect(!text.contains("raise --timeout if"), "\(text)")
        #expect(text.components(separatedBy: "nothing was left on the node").count == 2, "said once: \(text)")
        // Waiting 30 s per step instead would load the agent and record for the default 30 s.
        #expect(took < .seconds(25), "the 2 s limit was not applied (took \(took)): \(text)")
        #expect(!FileManager.default.fileExists(atPath: output))
        #expect(!text.contains(node.node.cookie))
        try await expectClean(node, waiting: true)

        // The same load, a timeout that allows for it: the session starts and records.
        _ = try await node.rpc("btbusy", "hog", [.integer(60), .integer(6000)])
        let patient = try RecorderProcess(arguments(node, output, ["--timeout", "120", "--max-events", "100",
                                                                  "--max-rate", "none"]))
        try await node.waitUntilTracing(timeout: .seconds(120))
        _ = try await node.rpc("btwl", "calls", [.integer(1000)])
        let recorded = await patient.wait(timeout: .seconds(120))
        #expect(recorded == 0, "\(patient.output)")
        #expect(try ReadCapture(output).traceEvents == 100, "\(patient.output)")
        try await expectClean(node)
    }
}
