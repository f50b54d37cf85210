// `--transport ip`: OTP's ip trace port read over TCP, asked for explicitly or chosen because the
// node cannot compile the agent; exact counts, and dbg stopped and cleared afterwards.
import BeamTerm
import Foundation
import Testing
import TestSupport
import TraceModel
import TraceSession

@Suite struct IPTransportTests {
    @Test func ipTransportRecordsExactlyAndCleansUp() async throws {
        let node = try await TracedNode.start()
        defer { Task { await node.stop() } }
        let output = try temporaryCapturePath()
        var options = try recordingOptions([node], patterns: ["btwl:f/1"], output: output)
        options.transport = .ip
        let (summary, _) = try await record(options, nodes: [node]) { () async throws -> Int in
            _ = try await node.rpc("btwl", "calls", [.integer(1500)])
            try await Task.sleep(for: .milliseconds(300))
            return 0
        }
        #expect(summary.nodes.first?.cleanedUp == true)
        try await expectClean(node)
        #expect(try await node.rpc("erlang", "whereis", [.atom("dbg")]).erlangText() == "undefined")
        let capture = try ReadCapture(output)
        #expect(capture.count(.call, function: "btwl:f/1") == 1500)
        #expect(capture.count(.returnFrom, function: "btwl:f/1") == 1500)
        #expect(capture.reader.meta.sources.first?.hasPrefix("ip:") == true)
    }

    /// The stop marker is the capture's end for every age in the analysis: it is stamped when the stop
    /// is decided (here: the duration reached), not after dbg has been stopped on the node, which
    /// takes over 300 ms. A process calling f/1 every millisecond until tracing is switched off
    /// gives the truth: its last traced call is at most a few ms from the marker.
    @Test func stopMarkerStampedWhenTheStopIsDecided() async throws {
        let node = try await TracedNode.start()
        defer { Task { await node.stop() } }
        let output = try temporaryCapturePath()
        var options = try recordingOptions([node], patterns: ["btwl:f/1"], output: output)
        options.transport = .ip
        options.limits.duration = .seconds(1)
        let (summary, spinner) = try await record(options, nodes: [node]) { () async throws -> Term in
            let spinner = try await node.rpc("btwl", "spin", [.integer(1)])
            try await Task.sleep(for: .milliseconds(1800))
            return spinner
        }
        _ = try await node.rpc("erlang", "send", [spinner, .atom("stop")])
        #expect(summary.stopReason.contains("duration"), "\(summary.stopReason)")
        let capture = try ReadCapture(output)
        let stop = try #require(capture.events.first { $0.event.kind == .marker && $0.event.value == 2 }?.event.time)
        let lastCall = try #require(capture.events.last { $0.event.kind == .call }?.event.time)
        #expect(capture.count(.call, function: "btwl:f/1") > 100)
        // Tracing went off after the marker (the last call is at most a little before it, or after).
        #expect(stop - lastCall < 100_000_000, "stop marker \(Double(stop - lastCall) / 1e6) ms after the last call")
    }

    @Test func nodeWithoutCompilerFallsBackToIP() async throws {
        let node = try await TracedNode.start(extraArguments: ["-eval", "code:del_path(compiler)"])
        defer { Task { await node.stop() } }
        #expect(try await node.rpc("code", "which", [.atom("compile")]).erlangText() == "non_existing")
        let output = try temporaryCapturePath()
        let options = try recordingOptions([node], patterns: ["btwl:f/1"], output: output)
        let (summary, _) = try await record(options, nodes: [node]) { () async throws -> Int in
            _ = try await node.rpc("btwl", "calls", [.integer(700)])
            try await Task.sleep(for: .milliseconds(300))
            return 0
        }
        #expect(summary.problems.contains { $0.contains("ip trace port") }, "\(summary.problems)")
        try await expectClean(node)
        let capture = try ReadCapture(output)
        #expect(capture.count(.call, function: "btwl:f/1") == 700)
    }
}
