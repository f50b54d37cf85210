// `record --print` shows calls while the session runs (before it ends), in the one-line format
// with arguments and return values; `--max-events 10` prints exactly 10 trace events, exits 0 and
// leaves the node clean; the capture is still written (and not with --no-capture).
import BeamTerm
import CaptureStore
import Foundation
import Testing
import TestSupport
import TraceModel

@Suite(.serialized) struct LivePrintTests {
    @Test func printShowsCallsWhileTheSessionRuns() async throws {
        let node = try await TracedNode.start()
        defer { Task { await node.stop() } }
        let output = try temporaryCapturePath()
        let recorder = try RecorderProcess(["record", "--node", node.name, "--cookie", node.node.cookie, "btwl:f/1",
                                            "-o", output, "--print", "--args", "--duration", "60s",
                                            "--max-rate", "none", "--time", "rel"])
        try await node.waitUntilTracing()
        // The workload's own answer: calls(N) calls f(N), f(N-1) ... f(1); f(X) returns X + 1.
        _ = try await node.rpc("btwl", "calls", [.integer(5)])
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline && !recorder.standardOutput.contains("btwl:f(1)") {
            try await Task.sleep(for: .milliseconds(50))
        }
        let seenWhileRunning = recorder.standardOutput
        #expect(recorder.isRunning, "the session ended before the calls were printed")
        recorder.signal(SIGINT)
        let status = await recorder.wait(timeout: .seconds(30))
        #expect(status == 130, "\(recorder.output)")
        let lines = seenWhileRunning.split(separator: "\n")
        for n in 1...5 {
            #expect(lines.contains { $0.contains("call btwl:f(\(n))") }, "\(seenWhileRunning)")
            #expect(lines.contains { $0.contains("returned from btwl:f/1 -> \(n + 1)") }, "\(seenWhileRunning)")
        }
        // `+S.ffffff s <0.N.S> call ...`
        let first = try #require(lines.first { $0.contains("call btwl:f(5)") })
        #expect(first.hasPrefix("+"), "\(first)")
        #expect(first.contains(" s <0."), "\(first)")
        try await expectClean(node)
        #expect(try ReadCapture(output).count(.call, function: "btwl:f/1") == 5)
    }

    @Test func maxEventsTenPrintsTenAndEndsClean() async throws {
        let node = try await TracedNode.start()
        defer { Task { await node.stop() } }
        let recorder = try RecorderProcess(["record", "--node", node.name, "--cookie", node.node.cookie, "btwl:f/1",
                                            "--print", "--no-capture", "--max-events", "10", "--max-rate", "none",
                                            "--calls-only", "--log-level", "info"])
        try await node.waitUntilTracing()
        _ = try await node.rpc("btwl", "calls", [.integer(100)])
        let status = await recorder.wait(timeout: .seconds(30))
        #expect(status == 0, "\(recorder.output)")
        let lines = recorder.standardOutput.split(separator: "\n")
        #expect(lines.count == 10, "\(recorder.standardOutput)")
        #expect(lines.allSatisfy { $0.contains(" call btwl:f/1") }, "\(recorder.standardOutput)")
        #expect(recorder.output.contains("no capture kept"), "\(recorder.output)")
        // --log-level info: the session's own log line on stderr (swift-log bootstrapped by the CLI).
        #expect(recorder.output.contains("info beamtrace.session"), "\(recorder.output)")
        #expect(!recorder.output.contains(node.node.cookie))
        try await expectClean(node)
    }
}
