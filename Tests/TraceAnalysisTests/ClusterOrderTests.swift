// Six live nodes recorded in one session, one of them joining the cluster while it runs (global's
// locker then takes its `{Ref, Node}` multi_call locks on every node): every receive in the merged
// capture is stamped after its send (checked message by message against the workload's own ids),
// and `hang` finds nothing.
import BeamTerm
import CaptureStore
import Foundation
import Testing
import TestSupport
import TraceModel

@Suite("causal order across nodes", .serialized)
struct ClusterOrderTests {
    @Test("6 nodes, one joining mid-session: no receive before its send, global's locks are no suspect")
    func sixNodes() throws {
        let code = try LiveHang.codeDirectory.get()
        let cli = try #require(BuiltProducts.executable("beamtrace"), "the beamtrace executable was not built")
        let directory = try Erlang.temporaryDirectory("bt-cluster")
        defer { if ProcessInfo.processInfo.environment["BT_KEEP"] == nil { try? FileManager.default.removeItem(at: directory) } }
        let cookie = Erlang.randomName("c")
        let host = Erlang.shortHostName
        let names = (0..<6).map { _ in Erlang.randomName() }
        let peers = "[" + names.prefix(5).map { "'\($0)@\(host)'" }.joined(separator: ",") + "]"
        // Nodes 1-5 call each other's ping-pong servers from the start; node 6 joins the cluster
        // (connects to node 1) 700 ms into the session, then calls them too.
        let options = names.indices.map { i in
            i == 5 ? "[{peers, \(peers)}, {join, {'\(names[0])@\(host)', 700}}, {rounds, 40}]" : "[{peers, \(peers)}, {rounds, 60}]"
        }
        let truthFiles = names.indices.map { directory.appendingPathComponent("truth-\($0).txt").path }
        // Started in parallel: a node takes 1-2 s to come up.
        let started = Mutex<[Int: Result<ErlangNode, Error>]>([:])
        DispatchQueue.concurrentPerform(iterations: names.count) { i in
            let result = Result {
                try ErlangNode(name: names[i], cookie: cookie, codePaths: [code],
                               setup: "demo_hang:start(cluster, \"\(truthFiles[i])\", \(options[i]))")
            }
            started.withLock { $0[i] = result }
        }
        let results = started.withLock { $0 }
        let nodes = names.indices.compactMap { try? results[$0]?.get() }
        defer { for node in nodes { node.stop() } }
        try #require(nodes.count == names.count, "not every node started: \(results.values)")

        let capture = directory.appendingPathComponent("cluster.btrace").path
        let recorded = try Shell.runCapturing(cli, ["record"] + nodes.flatMap { ["--node", $0.nodeName] }
                                              + ["--cookie", cookie, "demo_hang", "--events", "calls,send,receive,procs",
                                                 "--sample", "100ms", "--duration", "3s", "-o", capture], timeout: 90)
        #expect(recorded.status == 0, "record: \(recorded.stderr)")
        #expect(recorded.stdout.contains("clocks: "), "the recorder reports its clock refinement: \(recorded.stdout)")
        let truths = truthFiles.map { LiveHang.parseTruth((try? String(contentsOfFile: $0, encoding: .utf8)) ?? "") }
        let calls = truths.compactMap { $0["calls"].flatMap { Int($0) } }
        #expect(calls == [60, 60, 60, 60, 60, 40], "\(truths)")

        // Every ping and pong, by the workload's own id: the send and the receive.
        let reader = try CaptureReader(opening: capture)
        var sends: [String: Int64] = [:], receives: [String: Int64] = [:]
        var nodeOf: [String: (send: NodeID, receive: NodeID)] = [:]
        var globalLocks = 0
        try reader.forEach(matching: EventQuery(kinds: [.send, .receive])) { event, payload in
            guard let message = Payload.terms(payload, flags: event.flags)?.first else { return true }
            var key: String?
            if case .tuple(let t) = message, t.count == 3, t[0] == .atom("$gen_call") {
                if case .tuple(let request) = t[2], request.count == 2, request[0] == .atom("ping") {
                    key = "ping " + request[1].erlangText()
                }
                if case .tuple(let from) = t[1], from.count == 2, case .tuple(let tag) = from[1], tag.count == 2,
                   case .reference = tag[0], event.kind == .send {
                    globalLocks += 1
                }
            } else if case .tuple(let t) = message, t.count == 2, case .tuple(let reply) = t[1], reply.count == 2,
                      reply[0] == .atom("pong") {
                key = "pong " + reply[1].erlangText()
            }
            guard let key else { return true }
            if event.kind == .send {
                sends[key] = event.time
                nodeOf[key, default: (0, 0)].send = event.node
            } else {
                receives[key] = event.time
                nodeOf[key, default: (0, 0)].receive = event.node
            }
            return true
        }
        let total = calls.reduce(0, +)
        let paired = sends.keys.filter { receives[$0] != nil }
        #expect(paired.count == 2 * total, "pings and pongs paired: \(paired.count), calls made: \(total)")
        let early = paired.filter { (receives[$0] ?? 0) < (sends[$0] ?? 0) }
        let sameNode = early.filter { nodeOf[$0].map { $0.send == $0.receive } ?? false }
        let clocks = recorded.stdout.split(separator: "\n").first { $0.hasPrefix("clocks: ") } ?? ""
        let examples = early.prefix(3).map { "\($0) by \((sends[$0] ?? 0) - (receives[$0] ?? 0)) ns" }
        #expect(early.isEmpty, "receives stamped before their send: \(early.count) (\(sameNode.count) within a node), e.g. \(examples); \(clocks)")
        // The joining node set off global's locker: multi_call requests tagged {Ref, Node}.
        #expect(globalLocks > 0)
        let joined = try #require(truths[5]["t_join"].flatMap { Int64($0) })
        let offset = reader.meta.nodes.first { $0.name == nodes[5].nodeName }?.clockOffsetNs ?? 0
        let first = try #require(reader.blocks.map(\.timeMin).min())
        #expect(joined + offset > first, "node 6 joined before the session started")

        let hang = try JSONSerialization.jsonObject(with: Data(try Shell.run(cli, ["hang", "--json", capture]).utf8))
            as? [String: Any]
        let suspects = hang?["suspects"] as? [[String: Any]] ?? []
        #expect(suspects.isEmpty, "\(hang?["verdict"] ?? "")")
        // global's multi_calls were followed as calls, each server's part ended by its reply.
        let endings = hang?["multi_call_endings"] as? [String: Int] ?? [:]
        #expect(endings.values.reduce(0, +) == globalLocks, "\(endings), requests sent: \(globalLocks)")
        #expect((endings["reply"] ?? 0) * 10 >= globalLocks * 9, "\(endings)")
    }
}

/// A lock-protected value for the parallel node start.
final class Mutex<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()
    init(_ value: Value) { self.value = value }
    func withLock<T>(_ body: (inout Value) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}
