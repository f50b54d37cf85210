// The shipped hang reproductions (traces/*.btrace, recorded live by traces/record-demo): each one's
// verdict is what traces/README.md shows, and names what the workload's own truth file says.
import Foundation
import Testing
import TestSupport

@Suite("shipped hang captures")
struct ShippedTracesTests {
    struct Shipped {
        var report: [String: Any]
        var verdict: String
        var truth: [String: String]
        var suspects: [[String: Any]] { report["suspects"] as? [[String: Any]] ?? [] }
    }

    func load(_ name: String) throws -> Shipped {
        let cli = try #require(BuiltProducts.executable("beamtrace"), "the beamtrace executable was not built")
        let capture = LiveHang.root.appendingPathComponent("traces/\(name).btrace").path
        let text = try Shell.run(cli, ["hang", capture])
        let json = try Shell.run(cli, ["hang", "--json", capture])
        let report = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] ?? [:]
        let readme = try String(contentsOf: LiveHang.root.appendingPathComponent("traces/README.md"), encoding: .utf8)
        let verdict = try #require(text.split(separator: "\n").first.map(String.init))
        #expect(readme.contains(verdict), "traces/README.md shows another verdict for \(name) than `hang` prints:\n\(verdict)")
        let truth = try String(contentsOf: LiveHang.root.appendingPathComponent("traces/\(name).truth"), encoding: .utf8)
        return Shipped(report: report, verdict: verdict, truth: LiveHang.parseTruth(truth))
    }

    @Test("stuck-call: backend is the root that does not answer, with the chain client → front → backend")
    func stuckCall() throws {
        let shipped = try load("stuck-call")
        let top = try #require(shipped.suspects.first)
        #expect(LiveHang.reason(top) == "not_answering")
        #expect(LiveHang.pid(top) == shipped.truth["backend"])
        let chain = try ["client_a", "front", "backend"].map { try #require(shipped.truth[$0]) }
        #expect((shipped.report["chains"] as? [[String]] ?? []).contains(chain))
    }

    @Test("deadlock: the cycle of ring_a, ring_b and ring_c")
    func deadlock() throws {
        let shipped = try load("deadlock")
        let ring = try ["ring_a", "ring_b", "ring_c"].map { try #require(shipped.truth[$0]) }
        #expect(shipped.report["deadlocks"] as? [[String]] == [ring])
        #expect(shipped.suspects.prefix(3).allSatisfy { LiveHang.reason($0) == "deadlock" })
    }

    @Test("frozen-queue: frozen's five messages, its owner blocked in a receive")
    func frozenQueue() throws {
        let shipped = try load("frozen-queue")
        let top = try #require(shipped.suspects.first)
        #expect(LiveHang.reason(top) == "frozen_queue")
        #expect(LiveHang.pid(top) == shipped.truth["frozen"])
        #expect((LiveHang.evidence(top)["frozen_len"] as? Int).map(String.init) == shipped.truth["frozen_len"])
        #expect(shipped.suspects.count == 1)
    }

    @Test("healthy: no suspect; its timed-out calls and dead callees counted as the workload saw them")
    func healthy() throws {
        let shipped = try load("healthy")
        #expect(shipped.suspects.isEmpty)
        let endings = shipped.report["call_endings"] as? [String: Int] ?? [:]
        #expect(endings["timeout"].map(String.init) == shipped.truth["timeouts"])
        #expect(endings["down"].map(String.init) == shipped.truth["downs"])
    }
}
