// `beamtrace record` as a process: a limit ends it by itself, SIGINT and SIGTERM stop it cleanly, SIGKILL
// leaves a readable capture and the agent cleans the node by itself; the cookie is never printed
// nor stored.
import BeamTerm
import CaptureStore
import Foundation
import Testing
import TestSupport
import TraceModel

/// A running `beamtrace record`, its output collected.
final class RecorderProcess: @unchecked Sendable {
    let process = Process()
    private let out = Pipe()
    private let err = Pipe()
    private let lock = NSLock()
    private var stdoutData = Data()
    private var stderrData = Data()

    init(_ arguments: [String], executable: String? = nil) throws {
        guard let executable = executable ?? BuiltProducts.executable("beamtrace") else {
            throw TestFailure("beamtrace is not built")
        }
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        out.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            self?.lock.withLock { self?.stdoutData.append(data) }
        }
        err.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            self?.lock.withLock { self?.stderrData.append(data) }
        }
        try process.run()
    }

    var standardOutput: String { lock.withLock { String(decoding: stdoutData, as: UTF8.self) } }
    var isRunning: Bool { process.isRunning }

    var output: String {
        lock.withLock { String(decoding: stdoutData, as: UTF8.self) + String(decoding: stderrData, as: UTF8.self) }
    }

    func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    /// Waits for the exit; SIGKILLs after `timeout`. Returns the exit status.
    func wait(timeout: Duration = .seconds(60)) async -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        try? await Task.sleep(for: .milliseconds(100))
        return process.terminationStatus
    }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
}

@Suite struct RecordCommandTests {
    func arguments(_ node: TracedNode, _ output: String, _ extra: [String]) -> [String] {
        ["record", "--node", node.name, "--cookie", node.node.cookie, "btwl:f/1", "-o", output, "--quiet"] + extra
    }

    @Test func maxEventsEndsTheSessionExactly() async throws {
        let node = try await TracedNode.start()
        defer { Task { await node.stop() } }
        let output = try temporaryCapturePath()
        let recorder = try RecorderProcess(arguments(node, output, ["--max-events", "1000", "--max-rate", "none"]))
        try await node.waitUntilTracing()
        _ = try await node.rpc("btwl", "calls", [.integer(5000)])
        let status = await recorder.wait()
        #expect(status == 0, "\(recorder.output)")
        #expect(recorder.output.contains("max_events"), "\(recorder.output)")
        #expect(!recorder.output.contains(node.node.cookie))
        #expect(!recorder.output.contains("beamtrace.session"), "logs at info without --log-level: \(recorder.output)")
        try await expectClean(node)
        let capture = try ReadCapture(output)
        #expect(capture.traceEvents == 1000)
        #expect(capture.reader.meta.stopReason?.contains("max_events") == true)
        #expect(capture.markers(code: 3).count >= 1)
        let session = capture.reader.meta.session ?? ""
        #expect(session.contains("<cookie>"))
        #expect(!session.contains(node.node.cookie))
    }

    @Test func sigintStopsCleanly() async throws {
        let node = try await TracedNode.start()
        defer { Task { await node.stop() } }
        let output = try temporaryCapturePath()
        let recorder = try RecorderProcess(arguments(node, output, ["--duration", "60s", "--max-rate", "none"]))
        try await node.waitUntilTracing()
        _ = try await node.rpc("btwl", "calls", [.integer(2000)])
        try await Task.sleep(for: .milliseconds(200))
        recorder.signal(SIGINT)
        let status = await recorder.wait(timeout: .seconds(30))
        #expect(status == 130, "\(recorder.output)")   // interrupted, per the README's exit codes
        #expect(recorder.output.contains("SIGINT"), "\(recorder.output)")
        #expect(!recorder.output.contains(node.node.cookie))
        try await expectClean(node)
        let capture = try ReadCapture(output)
        #expect(capture.count(.call, function: "btwl:f/1") == 2000)
        #expect(capture.count(.returnFrom, function: "btwl:f/1") == 2000)
        #expect(capture.reader.meta.stopReason?.contains("SIGINT") == true)
    }

    @Test func sigtermStopsCleanly() async throws {
        let node = try await TracedNode.start()
        defer { Task { await node.stop() } }
        let output = try temporaryCapturePath()
        let recorder = try RecorderProcess(arguments(node, output, ["--duration", "60s", "--max-rate", "none"]))
        try await node.waitUntilTracing()
        // Still running when the signal comes: the agent must switch it off on the way out.
        let spinner = try await node.rpc("btwl", "spin", [.integer(5)])
        _ = try await node.rpc("btwl", "calls", [.integer(2000)])
        try await Task.sleep(for: .milliseconds(200))
        recorder.signal(SIGTERM)
        let status = await recorder.wait(timeout: .seconds(30))
        #expect(status == 0, "\(recorder.output)")
        #expect(recorder.output.contains("SIGTERM"), "\(recorder.output)")
        #expect(!recorder.output.contains(node.node.cookie))
        try await expectClean(node)
        if case .pid(let pid) = spinner { try node.control.send(to: .pid(pid), message: .atom("stop")) }
        let capture = try ReadCapture(output)
        #expect(capture.count(.call, function: "btwl:f/1") >= 2000)
        #expect(capture.count(.returnFrom, function: "btwl:f/1") >= 2000)
        #expect(capture.reader.meta.stopReason?.contains("SIGTERM") == true)
    }

    @Test func sigkillLeavesACaptureAndTheAgentCleansUp() async throws {
        let node = try await TracedNode.start()
        defer { Task { await node.stop() } }
        let output = try temporaryCapturePath()
        let recorder = try RecorderProcess(arguments(node, output, ["--duration", "60s", "--max-rate", "none"]))
        try await node.waitUntilTracing()
        // A process keeps calling while the recorder dies: the agent must switch it all off.
        let spinner = try await node.rpc("btwl", "spin", [.integer(1)])
        _ = try await node.rpc("btwl", "calls", [.integer(3000)])
        try await Task.sleep(for: .milliseconds(1500))
        recorder.signal(SIGKILL)
        _ = await recorder.wait()
        try await expectClean(node, waiting: true)
        if case .pid(let pid) = spinner { try node.control.send(to: .pid(pid), message: .atom("stop")) }
        // What arrived more than a second before the kill is on disk and readable.
        let capture = try ReadCapture(output)
        #expect(capture.count(.call, function: "btwl:f/1") >= 3000)
        #expect(capture.count(.returnFrom, function: "btwl:f/1") >= 3000)
        #expect(!recorder.output.contains(node.node.cookie))
    }
}
