// What a growing queue's owner was busy with: its busiest outermost traced function, from a real
// OTP trace whose process runs three functions interleaved (the first one seen is not the busiest).
import CaptureStore
import Foundation
import Testing
import TraceAnalysis

@Suite("busiest activity of a queue's owner")
struct BusiestActivityTests {
    @Test("names the function with the most time and its calls as the workload counted them")
    func busiestOfThree() throws {
        let run = try Workload.run("owner_activity(DIR)")
        defer { try? FileManager.default.removeItem(at: run.directory) }
        let truth = Workload.pids(run.truth)
        let owner = try #require(truth["owner"])
        let calls = try #require(truth["slow_calls"])  // the workload's own count of slow/1's calls

        let analysis = try CaptureAnalysis.run(CaptureReader(opening: run.capture))
        let queue = try #require(analysis.queueReports().first { $0.pid == owner })
        #expect(queue.growing)
        let busiest = try #require(queue.ownerActivity.first { $0.hasPrefix("spent ") })
        #expect(busiest.hasSuffix(" of the capture in bt_workload:slow/1 (\(calls) calls)"), "\(busiest)")
        // slow/1 slept 240 ms of a capture of at least 305 ms: more than a third, less than all of it.
        let share = try #require(busiest.firstMatch(of: /spent (\d+)%/).flatMap { Int($0.1) })
        #expect(share > 33 && share < 100, "\(busiest)")
    }
}
