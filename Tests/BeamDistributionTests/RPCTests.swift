// rpc through rex against a real node: round trips of every kind of term, large lists and binaries,
// badrpc, time-outs and many concurrent calls on one connection.
import BeamDistribution
import BeamTerm
import Foundation
import Testing
import TestSupport

@Suite("rpc against a real node", .serialized)
final class RPCTests {
    let node: ErlangNode
    let log = CapturedLog()

    init() throws {
        node = try ErlangNode.forDistribution()
    }

    deinit {
        node.stop()
        #expect(!log.text.contains(node.cookie))
    }

    @Test("erlang:node() names the node; the connection is hidden")
    func nodeName() async throws {
        let connection = try await node.connect(logger: log.logger)
        let reply = try await connection.rpc(module: "erlang", function: "node")
        #expect(reply == .atom(node.nodeName))
        #expect(connection.peer.node.description == node.nodeName)
        #expect(connection.peer.handshakeVersion == 6)
        let visible = try await connection.rpc(module: "erlang", function: "nodes", arguments: [.atom("hidden")])
        #expect(visible == .list([.atom(connection.localNode.description)]))
        let published = try await connection.rpc(module: "erlang", function: "nodes")
        #expect(published == .list([]))
        await connection.close()
    }
}
