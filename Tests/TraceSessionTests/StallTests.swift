// A recorder that stops running (SIGSTOP) while the node keeps going: the node drops the
// connection after its net tick time and the agent cleans up by itself; the capture records the
// stall and the loss as gaps, and the node_down marker carries the time the node itself saw the
// connection go (OTP's nodedown, timed on the node), not the time the recorder woke.
import BeamTerm
import CaptureStore
import Foundation
import Testing
import TestSupport
import TraceModel

/// Logs, on the node, when each hidden node went down (erlang:monotonic_time, nanoseconds).
enum WatchModule {
    static let source = #"""
    -module(btwatch).
    -export([start/0, downs/0]).
    start() ->
        Self = self(),
        Pid = spawn(fun() -> ok = net_kernel:monitor_nodes(true, [{node_type, hidden}]), Self ! ready, loop([]) end),
        register(btwatch, Pid),
        receive ready -> ok end.
    loop(Downs) ->
        receive
            {nodedown, Node, _} -> loop([{Node, erlang:monotonic_time(nanosecond)} | Downs]);
            {downs, From} -> From ! {downs, Downs}, loop(Downs);
            _ -> loop(Downs)
        end.
    downs() -> btwatch ! {downs, self()}, receive {downs, D} -> D end.
    """#

    static let directory: String = {
        do {
            let directory = try Erlang.temporaryDirectory("beamtrace-watch")
            try Erlang.compile(module: "btwatch", source: source, in: directory)
            return directory.path
        } catch {
            return "/nonexistent-btwatch-compile-failed: \(error)"
        }
    }()
}

@Suite struct StallTests {
    @Test func aStalledRecorderLeavesAGapAtTheTimeTheNodeDroppedIt() async throws {
        let node = try await TracedNode.start(extraArguments: ["-kernel", "net_ticktime", "3", "-pa", WatchModule.directory])
        defer { Task { await node.stop() } }
        _ = try await node.rpc("btwatch", "start")
        let output = try temporaryCapturePath()
        let recorderName = Erlang.randomName("btrec")
        let recorder = try RecorderProcess(["record", "--node", node.name, "--cookie", node.node.cookie, "btwl:f/1",
                                            "-o", output, "--quiet", "--duration", "60s", "--max-rate", "none",
                                            "--name", recorderName])
        try await node.waitUntilTracing()
        let spinner = try await node.rpc("btwl", "spin", [.integer(2)])
        try await Task.sleep(for: .milliseconds(700))
        recorder.signal(SIGSTOP)
        try await Task.sleep(for: .seconds(8))
        recorder.signal(SIGCONT)
        _ = await recorder.wait(timeout: .seconds(30))
        try await expectClean(node, waiting: true)
        if case .pid(let pid) = spinner { try node.control.send(to: .pid(pid), message: .atom("stop")) }

        // When the node saw the recorder go, on the session clock.
        let downs = try await node.rpc("btwatch", "downs")
        let down: Int64? = {
            guard case .list(let entries) = downs else { return nil }
            for case .tuple(let t) in entries where t.count == 2 {
                if case .atom(let a) = t[0], a.name.hasPrefix(recorderName), case .integer(let v) = t[1] { return v }
                if case .atom(let a) = t[0], a.name.hasPrefix(recorderName), case .bigInteger(let b) = t[1] { return b.int64Value }
            }
            return nil
        }()
        let capture = try ReadCapture(output)
        let offset = try #require(capture.reader.meta.nodes.first?.clockOffsetNs)
        let nodeSawDown = try #require(down, "no nodedown logged: \(downs.erlangText())") + offset

        let markers = capture.events.filter { $0.event.kind == .marker }
        func marker(_ code: Int64, _ prefix: String) -> RecordedEvent? {
            markers.first { $0.event.value == code
                && (Payload.terms($0.payload, flags: $0.event.flags)?.first?.erlangText().hasPrefix(prefix) ?? false) }
        }
        let stall = try #require(marker(4, "{gap,recorder_stalled"), "\(markers.count) markers")
        let lost = try #require(marker(4, "{gap,node_lost"))
        let nodeDown = try #require(marker(0, "{node_down"))
        let stallText = Payload.terms(stall.payload, flags: stall.event.flags)?.first?.erlangText() ?? ""
        #expect(stallText.contains("to_ns"))
        // The node_down marker: within a second of when the node dropped us, long before the wake-up.
        #expect(abs(nodeDown.event.time - nodeSawDown) < 1_500_000_000,
                "marker \(nodeDown.event.time) vs node's nodedown \(nodeSawDown)")
        let lastCall = capture.events.filter { $0.event.kind == .call }.map(\.event.time).max() ?? 0
        #expect(lost.event.time <= nodeSawDown && lost.event.time >= lastCall - 1_000_000)
        #expect(recorder.output.contains("missing, count unknown"), "\(recorder.output)")
    }
}
