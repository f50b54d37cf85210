// `beamtrace record` when the disk fills (a file size limit on the child: writes fail with EFBIG as
// they fail with ENOSPC on a full disk): it stops with a non-zero exit, says how many events the
// capture holds, that many are readable, and no tracing is left on the node.
import CaptureStore
import Foundation
import Testing
import TestSupport
import TraceModel

@Suite struct DiskFullTests {
    @Test func recordStopsWithAnErrorAndWhatWasWrittenStaysReadable() async throws {
        let node = try await TracedNode.start()
        defer { Task { await node.stop() } }
        let output = try temporaryCapturePath()
        guard let beamtrace = BuiltProducts.executable("beamtrace") else { throw TestFailure("beamtrace is not built") }
        let arguments = ["record", "--node", node.name, "--cookie", node.node.cookie, "btwl:f/1", "-o", output, "--quiet",
                         "--max-events", "none", "--max-rate", "none", "--duration", "60s"]
        // 256 KiB per file: a few blocks fit, the rest of the workload does not.
        let recorder = try RecorderProcess(["-c", "ulimit -f 256; trap '' XFSZ; exec \"$0\" \"$@\"", beamtrace] + arguments,
                                           executable: "/bin/bash")
        try await node.waitUntilTracing()
        _ = try await node.rpc("btwl", "calls", [.integer(400_000)], timeout: .seconds(120))
        let status = await recorder.wait(timeout: .seconds(60))
        #expect(status == 1, "\(recorder.output)")
        #expect(recorder.output.contains("stopped by an error"), "\(recorder.output)")
        try await expectClean(node, waiting: true)
        let capture = try ReadCapture(output)
        #expect(capture.events.count > 0)
        #expect(recorder.output.contains("holds the \(capture.events.count) events written before the failure"),
                "\(recorder.output) / read \(capture.events.count)")
        #expect(capture.reader.problems.contains { $0.kind == .unsealed })
    }
}
