// Ticks against nodes with `-kernel net_ticktime 4`: an idle connection stays up past the tick
// time, and a peer frozen with SIGSTOP is declared down within about twice the tick time.
import BeamDistribution
import BeamTerm
import Foundation
import Testing
import TestSupport

@Suite("ticks and silent peers")
struct TickTests {
    static let options = DistributionOptions(netTickTime: .seconds(4))

    @Test("an idle connection survives 20 s with net_ticktime 4")
    func idleConnectionStaysUp() async throws {
        let node = try ErlangNode.forDistribution(extraArguments: ["-kernel", "net_ticktime", "4"])
        defer { node.stop() }
        let connection = try await node.connect(options: Self.options)
        #expect(try await connection.rpc(module: "net_kernel", function: "get_net_ticktime") == .integer(4))
        try await Task.sleep(for: .seconds(20))
        #expect(connection.isConnected)
        #expect(try await connection.rpc(module: "erlang", function: "node") == .atom(node.nodeName))
        // The node still counts us as connected too.
        let hidden = try await connection.rpc(module: "erlang", function: "nodes", arguments: [.atom("hidden")])
        #expect(hidden.listElements?.contains(.atom(connection.localNode.description)) == true)
        await connection.close()
    }

    @Test("a node frozen with SIGSTOP is declared down within about 2 × net_ticktime")
    func frozenPeerIsDown() async throws {
        let node = try ErlangNode.forDistribution(extraArguments: ["-kernel", "net_ticktime", "4"])
        defer {
            kill(node.pid, SIGCONT)
            node.stop()
        }
        let connection = try await node.connect(options: Self.options)
        let mailbox = try connection.makeMailbox()
        let pending = Task {
            try await connection.rpc(module: "timer", function: "sleep", arguments: [.integer(60_000)])
        }
        try await Task.sleep(for: .milliseconds(200))
        let started = ContinuousClock.now
        kill(node.pid, SIGSTOP)
        let reason = try await within(12) { await connection.waitUntilClosed() }
        let elapsed = ContinuousClock.now - started
        #expect(reason.code == .nodeDown)
        #expect(reason.step == "tick")
        #expect(elapsed < .seconds(9), "declared down after \(elapsed)")
        #expect(elapsed > .seconds(3), "declared down too early: \(elapsed)")
        await #expect(throws: DistributionError.self) { try await pending.value }
        guard case .nodeDown = await nextMessage(mailbox) else {
            Issue.record("no nodeDown in the mailbox")
            return
        }
        // Connecting to the frozen node: EPMD answers and the kernel accepts, but the handshake times out.
        let connectStarted = ContinuousClock.now
        do {
            _ = try await node.connect(options: DistributionOptions(handshakeTimeout: .seconds(2)))
            Issue.record("connected to a frozen node")
        } catch let error as DistributionError {
            #expect(error.code == .timeout)
            #expect(error.step?.hasPrefix("handshake") == true)
        }
        #expect(ContinuousClock.now - connectStarted < .seconds(4))
    }
}
