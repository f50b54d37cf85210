// What goes wrong, said clearly and without hanging: wrong cookie, unknown node, EPMD down, a node
// killed during a call, one of several nodes dying, a version-5 handshake OTP 25 refuses.
import BeamDistribution
import BeamTerm
import Foundation
import Testing
import TestSupport

@Suite("failures against real nodes")
struct FailureTests {
    @Test("a wrong cookie is reported as rejected within 5 s, without the cookie")
    func wrongCookie() async throws {
        let node = try SharedNodes.plain.get()
        let log = CapturedLog()
        let wrong = Erlang.randomName("wrong")
        let started = ContinuousClock.now
        do {
            _ = try await DistributionConnection.connect(to: node.nodeName, cookie: Cookie(wrong), logger: log.logger)
            Issue.record("connected with a wrong cookie")
        } catch let error as DistributionError {
            #expect(error.code == .cookieRejected)
            #expect(error.description.contains("cookie"))
            #expect(error.description.contains(node.nodeName))
            #expect(!error.description.contains(wrong) && !error.description.contains(node.cookie))
        }
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(!log.text.contains(wrong) && !log.text.contains(node.cookie))
    }

    @Test("an unknown node name says no such node is registered")
    func unknownNode() async throws {
        _ = try SharedNodes.plain.get()  // makes sure epmd runs
        let name = Erlang.randomName("missing")
        do {
            _ = try await DistributionConnection.connect(to: "\(name)@\(Erlang.shortHostName)", cookie: Cookie("c"))
            Issue.record("connected to a missing node")
        } catch let error as DistributionError {
            #expect(error.code == .nodeNotRegistered)
            #expect(error.description.contains("no node named \(name)"))
        }
    }

    @Test("EPMD not running says so")
    func epmdDown() async throws {
        // A port nothing listens on stands in for a host without epmd.
        let options = DistributionOptions(epmdPort: 1)
        do {
            _ = try await DistributionConnection.connect(to: "x@127.0.0.1", cookie: Cookie("c"), options: options)
            Issue.record("connected without epmd")
        } catch let error as DistributionError {
            #expect(error.code == .epmdUnreachable)
            #expect(error.description.contains("EPMD is not running on 127.0.0.1"))
        }
    }

    @Test("a bad node name is refused before any network traffic")
    func badName() async throws {
        await #expect(throws: DistributionError.self) {
            try await DistributionConnection.connect(to: "a b@host", cookie: Cookie("c"))
        }
    }

    @Test("a node killed during a long call fails the call with nodeDown, no hang")
    func killedDuringCall() async throws {
        let node = try ErlangNode.forDistribution()
        defer { node.stop() }
        let connection = try await node.connect()
        let mailbox = try connection.makeMailbox()
        let waiter = try await connection.rpc(module: "bt_dist", function: "spawn_waiter")
        guard case .pid(let pid) = waiter else { return }
        let reference = try mailbox.monitor(.pid(pid))
        let call = Task {
            try await connection.rpc(module: "timer", function: "sleep", arguments: [.integer(60_000)])
        }
        try await Task.sleep(for: .milliseconds(300))
        let started = ContinuousClock.now
        node.kill9()
        do {
            _ = try await within(10) { try await call.value }
            Issue.record("the call returned")
        } catch let error as DistributionError {
            #expect(error.code == .nodeDown)
            #expect(error.description.contains(node.nodeName))
        }
        #expect(ContinuousClock.now - started < .seconds(5))
        guard case .down(let ref, _, let reason) = await nextMessage(mailbox) else {
            Issue.record("no DOWN for the monitor")
            return
        }
        #expect(ref == reference && reason == .atom("noconnection"))
        guard case .nodeDown = await nextMessage(mailbox) else {
            Issue.record("no nodeDown in the mailbox")
            return
        }
        #expect(await connection.waitUntilClosed().code == .nodeDown)
        #expect(!CapturedLog.shared.text.contains(node.cookie))
        #expect(!node.output.contains(node.cookie))
    }

    @Test("several nodes at once: one dying does not disturb the others")
    func severalNodes() async throws {
        let nodes = try (0..<3).map { _ in try ErlangNode.forDistribution() }
        defer { nodes.forEach { $0.stop() } }
        var connections: [DistributionConnection] = []
        for node in nodes { connections.append(try await node.connect()) }
        for (node, connection) in zip(nodes, connections) {
            #expect(try await connection.rpc(module: "erlang", function: "node") == .atom(node.nodeName))
        }
        nodes[1].kill9()
        #expect(await connections[1].waitUntilClosed().code == .nodeDown)
        for i in [0, 2] {
            #expect(try await connections[i].rpc(module: "erlang", function: "node") == .atom(nodes[i].nodeName))
            #expect(connections[i].isConnected)
        }
        for connection in connections { await connection.close() }
        let logged = CapturedLog.shared.text
        #expect(!logged.isEmpty)
        for node in nodes { #expect(!logged.contains(node.cookie) && !node.output.contains(node.cookie)) }
    }

    @Test("a version-5 name message is refused by OTP 25 with a clear error, not a hang")
    func version5AgainstOTP25() async throws {
        let node = try SharedNodes.plain.get()
        let options = DistributionOptions(handshakeTimeout: .seconds(3), handshakeVersion: 5)
        let started = ContinuousClock.now
        do {
            _ = try await DistributionConnection.connect(to: node.nodeName, cookie: Cookie(node.cookie),
                                                         options: options)
            Issue.record("OTP 25 accepted a version-5 name message")
        } catch let error as DistributionError {
            #expect(error.code == .handshakeFailed || error.code == .timeout)
            #expect(error.step?.contains("handshake") == true)
        }
        #expect(ContinuousClock.now - started < .seconds(5))
    }
}
