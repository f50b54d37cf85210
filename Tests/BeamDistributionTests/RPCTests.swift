// rpc through rex against a real node: round trips of every kind of term, large lists and binaries,
// badrpc, time-outs, cancellation and many concurrent calls on one connection.
import BeamDistribution
import BeamTerm
import Foundation
import Testing
import TestSupport

@Suite("rpc against a real node")
struct RPCTests {
    let node: ErlangNode
    let log = CapturedLog()

    init() throws {
        node = try SharedNodes.plain.get()
    }

    func connect() async throws -> DistributionConnection {
        try await node.connect(logger: log.logger)
    }

    func checkNoCookie() {
        #expect(!log.text.contains(node.cookie), "the cookie appeared in a log line")
    }

    @Test("erlang:node() names the node; we are a hidden node")
    func nodeName() async throws {
        let connection = try await connect()
        let reply = try await connection.rpc(module: "erlang", function: "node")
        #expect(reply == .atom(node.nodeName))
        #expect(connection.peer.node.description == node.nodeName)
        #expect(connection.peer.handshakeVersion == 6)
        #expect(connection.peer.flags.contains(.handshake23))
        let hidden = try await connection.rpc(module: "erlang", function: "nodes", arguments: [.atom("hidden")])
        #expect(hidden.listElements?.contains(.atom(connection.localNode.description)) == true)
        let published = try await connection.rpc(module: "erlang", function: "nodes")
        #expect(published == .list([]))
        await connection.close()
        #expect(!connection.isConnected)
        checkNoCookie()
    }

    @Test("a term of every kind comes over, goes back, and is the term OTP encodes")
    func everyKind() async throws {
        let connection = try await connect()
        let term = try await connection.rpc(module: "bt_dist", function: "every_kind")
        let elements = try #require(term.listElements)
        #expect(elements.count == 34)
        #expect(elements.contains { if case .fun = $0 { return true } else { return false } })
        #expect(elements.contains { if case .reference = $0 { return true } else { return false } })
        #expect(elements.contains { if case .port = $0 { return true } else { return false } })
        // Our encoding of it, decoded by OTP and re-encoded by term_to_binary, decodes to the same term.
        let encoded = try await connection.rpc(module: "erlang", function: "term_to_binary", arguments: [term])
        guard case .binary(let bytes) = encoded else {
            Issue.record("term_to_binary returned \(encoded)")
            return
        }
        #expect(try TermDecoder().decode(bytes) == term)
        // And OTP finds what we sent exactly equal to what it made.
        let echoed = try await connection.rpc(module: "bt_dist", function: "echo", arguments: [term])
        #expect(echoed == term)
        await connection.close()
        checkNoCookie()
    }

    @Test("lists:seq(1, 100000) and 10 MB binaries both ways")
    func largeTerms() async throws {
        let connection = try await connect()
        let list = try await connection.rpc(module: "lists", function: "seq",
                                            arguments: [.integer(1), .integer(100_000)])
        let elements = try #require(list.listElements)
        #expect(elements.count == 100_000)
        #expect(elements.first == .integer(1) && elements.last == .integer(100_000))

        let made = try await connection.rpc(module: "binary", function: "copy",
                                            arguments: [.binary(Array("x".utf8)), .integer(10_000_000)])
        guard case .binary(let bytes) = made else {
            Issue.record("binary:copy returned something else")
            return
        }
        #expect(bytes.count == 10_000_000 && bytes.allSatisfy { $0 == UInt8(ascii: "x") })

        var payload = [UInt8](repeating: 0, count: 10_000_000)
        for i in payload.indices { payload[i] = UInt8(truncatingIfNeeded: i &* 31 &+ i >> 11) }
        let size = try await connection.rpc(module: "erlang", function: "byte_size", arguments: [.binary(payload)])
        #expect(size == .integer(10_000_000))
        let echoed = try await connection.rpc(module: "bt_dist", function: "echo", arguments: [.binary(payload)])
        #expect(echoed == .binary(payload))
        await connection.close()
    }

    @Test("{badrpc, Reason} is a typed error carrying Reason")
    func badRPC() async throws {
        let connection = try await connect()
        do {
            _ = try await connection.rpc(module: "erlang", function: "list_to_atom", arguments: [.integer(1)])
            Issue.record("expected badrpc")
        } catch let error as DistributionError {
            #expect(error.code == .badRPC)
            let reason = try #require(error.badRPCReason?.tupleElements)
            #expect(reason.first == .atom("EXIT"))
            #expect(reason[1].tupleElements?.first == .atom("badarg"))
            #expect(error.description.contains(node.nodeName))
        }
        do {
            _ = try await connection.rpc(module: "no_such_module", function: "f")
            Issue.record("expected badrpc")
        } catch let error as DistributionError {
            #expect(error.badRPCReason?.tupleElements?[1].tupleElements?.first == .atom("undef"))
        }
        // The connection is still fine, and io from a call does not hang it (we are its group leader).
        #expect(try await connection.rpc(module: "io", function: "format", arguments: [.string(Array("hi~n".utf8))])
                    == .atom("ok"))
        await connection.close()
        checkNoCookie()
    }

    @Test("a time-out fails only that call, and the late reply is dropped")
    func timeout() async throws {
        let connection = try await connect()
        let started = ContinuousClock.now
        do {
            _ = try await connection.rpc(module: "timer", function: "sleep", arguments: [.integer(1500)],
                                         timeout: .milliseconds(200))
            Issue.record("expected a time-out")
        } catch let error as DistributionError {
            #expect(error.code == .timeout)
            #expect(error.description.contains("timer:sleep/1"))
        }
        #expect(ContinuousClock.now - started < .seconds(1.4))
        #expect(try await connection.rpc(module: "erlang", function: "node") == .atom(node.nodeName))
        try await Task.sleep(for: .milliseconds(1500))
        #expect(try await connection.rpc(module: "bt_dist", function: "echo", arguments: [.atom("after")])
                    == .atom("after"))
        await connection.close()
    }

    @Test("cancelling the calling task ends the call at once")
    func cancellation() async throws {
        let connection = try await connect()
        let task = Task {
            try await connection.rpc(module: "timer", function: "sleep", arguments: [.integer(10_000)])
        }
        try await Task.sleep(for: .milliseconds(100))
        let started = ContinuousClock.now
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(ContinuousClock.now - started < .seconds(2))
        await connection.close()
    }

    @Test("1,000 concurrent calls on one connection each get their own answer")
    func concurrentCalls() async throws {
        let connection = try await connect()
        let results = try await withThrowingTaskGroup(of: (Int, Term).self) { group in
            for i in 0..<1000 {
                group.addTask {
                    let reply = try await connection.rpc(module: "bt_dist", function: "sleep_then",
                                                         arguments: [.integer(Int64(i % 7)),
                                                                     .tuple([.integer(Int64(i)), .atom("done")])])
                    return (i, reply)
                }
            }
            var results: [Int: Term] = [:]
            for try await (i, reply) in group { results[i] = reply }
            return results
        }
        #expect(results.count == 1000)
        for (i, reply) in results {
            #expect(reply == .tuple([.integer(Int64(i)), .atom("done")]))
        }
        await connection.close()
    }

    @Test("sequential calls from the connection's own executor")
    func onConnectionExecutor() async throws {
        let connection = try await connect()
        let replies = try await withTaskExecutorPreference(connection.taskExecutor) { () async throws -> [Term] in
            var replies: [Term] = []
            for i in 0..<300 {
                replies.append(try await connection.rpc(module: "bt_dist", function: "echo",
                                                        arguments: [.integer(Int64(i))]))
            }
            return replies
        }
        #expect(replies == (0..<300).map { .integer(Int64($0)) })
        await connection.close()
    }

    @Test("calls after close fail at once with closedLocally")
    func afterClose() async throws {
        let connection = try await connect()
        await connection.close()
        do {
            _ = try await connection.rpc(module: "erlang", function: "node")
            Issue.record("expected an error")
        } catch let error as DistributionError {
            #expect(error.code == .closedLocally)
        }
        #expect(await connection.waitUntilClosed().code == .closedLocally)
    }
}
