// Mailboxes on our hidden node against a real node: messages in, registered sends, monitors of
// remote processes (down and noproc), links and exit signals.
import BeamDistribution
import BeamTerm
import Foundation
import Synchronization
import Testing
import TestSupport

@Suite("mailboxes, monitors and links")
struct MailboxTests {
    let node: ErlangNode

    init() throws {
        node = try SharedNodes.plain.get()
    }

    @Test("a remote send reaches the mailbox of the pid we handed out")
    func receive() async throws {
        let connection = try await node.connect()
        let mailbox = try connection.makeMailbox()
        #expect(mailbox.pid.node.name == connection.localNode.description)
        _ = try await connection.rpc(module: "erlang", function: "send",
                                     arguments: [.pid(mailbox.pid), .tuple([.atom("hello"), .integer(1)])])
        guard case .message(let message) = await nextMessage(mailbox) else {
            Issue.record("no message")
            return
        }
        #expect(message == .tuple([.atom("hello"), .integer(1)]))
        await connection.close()
    }

    @Test("a burst of messages of every size, cut anywhere by the socket's reads, arrives whole and in order")
    func burstOfSizes() async throws {
        let connection = try await node.connect()
        let mailbox = try connection.makeMailbox()
        // Frames from a few bytes to several reads long, many in one read, and sizes around 64 KiB.
        var sizes: [Int] = [0, 1, 2, 3, 4, 5, 100, 65_535, 65_536, 65_537, 300_001, 2_000_003]
        for i in 0..<600 { sizes.append(i % 7 == 0 ? 70_000 + i : i * 13 % 4_099) }
        _ = try await connection.rpc(module: "bt_dist", function: "burst",
                                     arguments: [.pid(mailbox.pid), .list(sizes.map { .integer(Int64($0)) })])
        let expected = sizes
        // How many arrived whole and in order, up to the first that did not.
        let received = try await within(30) { () async throws -> Int in
            var count = 0
            for await message in mailbox {
                guard case .message(.tuple(let t)) = message, t.count == 3, t[0] == .atom("burst"),
                      case .integer(let i) = t[1], case .binary(let bytes) = t[2] else { return count }
                let index = Int(i)
                guard index == count + 1, bytes.count == expected[index - 1],
                      bytes.allSatisfy({ $0 == UInt8(index % 251) }) else { return count }
                count = index
                if count == expected.count { return count }
            }
            return count
        }
        #expect(received == sizes.count)
        await connection.close()
    }

    @Test("sending to a registered name, and the answer coming back")
    func registeredSend() async throws {
        let connection = try await node.connect()
        let mailbox = try connection.makeMailbox()
        let name = Erlang.randomName("echo")
        _ = try await connection.rpc(module: "bt_dist", function: "register_echo", arguments: [.atom(name)])
        try mailbox.send(to: .name(Atom(name)), .tuple([.pid(mailbox.pid), .string(Array("ping".utf8))]))
        guard case .message(let reply) = await nextMessage(mailbox) else {
            Issue.record("no echo")
            return
        }
        #expect(reply == .tuple([.atom("echoed"), .string(Array("ping".utf8))]))
        await connection.close()
    }

    @Test("a monitored process that dies sends DOWN with its reason; a missing one noproc")
    func monitors() async throws {
        let connection = try await node.connect()
        let mailbox = try connection.makeMailbox()
        let waiter = try await connection.rpc(module: "bt_dist", function: "spawn_waiter")
        guard case .pid(let pid) = waiter else {
            Issue.record("spawn_waiter returned \(waiter)")
            return
        }
        let reference = try connection.monitor(.pid(pid), from: mailbox)
        try connection.send(to: .pid(pid), message: .tuple([.atom("crash"), .atom("boom")]))
        guard case .down(let ref, let process, let reason) = await nextMessage(mailbox) else {
            Issue.record("no DOWN")
            return
        }
        #expect(ref == reference && process == .pid(pid) && reason == .atom("boom"))

        let missing = try mailbox.monitor(.name(Atom(Erlang.randomName("nobody"))))
        guard case .down(let ref2, _, let reason2) = await nextMessage(mailbox) else {
            Issue.record("no DOWN for a missing process")
            return
        }
        #expect(ref2 == missing && reason2 == .atom("noproc"))
        await connection.close()
    }

    @Test("a linked remote process that exits sends us an exit signal")
    func links() async throws {
        let connection = try await node.connect()
        let mailbox = try connection.makeMailbox()
        let linked = try await connection.rpc(module: "bt_dist", function: "link_to", arguments: [.pid(mailbox.pid)])
        guard case .pid(let pid) = linked else {
            Issue.record("link_to returned \(linked)")
            return
        }
        // The link is set up by the spawned process; give it a moment, then stop it.
        try await Task.sleep(for: .milliseconds(200))
        try connection.send(to: .pid(pid), message: .atom("stop"))
        guard case .exit(let from, let reason) = await nextMessage(mailbox) else {
            Issue.record("no exit signal")
            return
        }
        #expect(from == pid && reason == .atom("stopped"))
        await connection.close()
    }

    @Test("an interceptor takes messages as bytes, declines the rest to the sequence, and its sendSoon answers go out")
    func interceptor() async throws {
        let connection = try await node.connect()
        let mailbox = try connection.makeMailbox()
        let echo = Erlang.randomName("echo")
        _ = try await connection.rpc(module: "bt_dist", function: "register_echo", arguments: [.atom(echo)])
        let taken = Mutex<[Term]>([])
        let pid = mailbox.pid
        mailbox.intercept { message in
            let term = message.withUnsafeBytes { bytes -> Term? in
                var offset = 0
                guard let term = try? TermDecoder().decode(bytes, offset: &offset, versioned: true),
                      offset == bytes.count else { return nil }
                return term
            }
            guard let term, case .tuple(let t) = term, t.first == .atom("take") else { return false }
            taken.withLock { $0.append(term) }
            // Answered from the event loop: the echo's reply comes back through the sequence.
            try? mailbox.sendSoon(to: .name(Atom(echo)), .tuple([.pid(pid), t[1]]))
            return true
        }
        // A binary of 300 KB spans several reads of the socket.
        let big = Term.binary((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let sent: [Term] = [.tuple([.atom("take"), .integer(1)]), .tuple([.atom("keep"), .integer(2)]),
                            .tuple([.atom("take"), .integer(3), big])]
        for message in sent {
            _ = try await connection.rpc(module: "erlang", function: "send", arguments: [.pid(mailbox.pid), message])
        }
        var arrived: [Term] = []
        for _ in 0..<3 {
            guard case .message(let message) = await nextMessage(mailbox) else { break }
            arrived.append(message)
        }
        #expect(taken.withLock { $0 } == [sent[0], sent[2]])
        #expect(Set(arrived.map { $0.erlangText() })
                == Set([sent[1], .tuple([.atom("echoed"), .integer(1)]), .tuple([.atom("echoed"), .integer(3)])]
                    .map { $0.erlangText() }))
        await connection.close()
    }

    @Test("closing the connection ends every mailbox with nodeDown")
    func closeEndsMailboxes() async throws {
        let connection = try await node.connect()
        let mailbox = try connection.makeMailbox()
        await connection.close()
        guard case .nodeDown(let error) = await nextMessage(mailbox) else {
            Issue.record("no nodeDown")
            return
        }
        #expect(error.code == .closedLocally)
        #expect(throws: DistributionError.self) { try connection.makeMailbox() }
    }
}
