// Failures leave nothing behind: a pid the node refuses, a dead pid or an unknown name is an error
// before anything is switched on; the node dropping the connection in the middle of a start ends
// with the agent unloaded (checked by the session, and here with code:is_loaded and
// erlang:trace_info); an agent whose recorder vanishes before any session runs unloads itself; and
// the next session on the node works.
import BeamDistribution
import BeamTerm
import Foundation
import Testing
import TestSupport
@testable import TraceSession

/// A module whose on_load cuts every hidden node named btrec* (the recorder in these tests): the
/// agent loads it while installing its patterns, so the node drops the session mid-start.
enum CutModule {
    static let source = #"""
    -module(btcut).
    -on_load(cut/0).
    -export([f/1]).
    f(X) -> X.
    cut() ->
        [erlang:disconnect_node(N) || N <- nodes(hidden), lists:prefix("btrec", atom_to_list(N))],
        ok.
    """#

    static let directory: String = {
        do {
            let directory = try Erlang.temporaryDirectory("beamtrace-cut")
            try Erlang.compile(module: "btcut", source: source, in: directory)
            return directory.path
        } catch {
            return "/nonexistent-btcut-compile-failed: \(error)"
        }
    }()
}

@Suite(.serialized) struct StartFailureTests {
    func secondSessionWorks(_ node: TracedNode) async throws {
        let output = try temporaryCapturePath()
        let options = try recordingOptions([node], patterns: ["btwl:f/1"], output: output)
        let (summary, _) = try await record(options, nodes: [node]) {
            try await node.rpc("btwl", "calls", [.integer(100)])
        }
        #expect(summary.nodes.first?.cleanedUp == true)
        #expect(try ReadCapture(output).count(.call, function: "btwl:f/1") == 100)
        try await expectClean(node)
    }

    func expectRefused(_ node: TracedNode, procs: String, saying: [String]) async throws {
        let output = try temporaryCapturePath()
        var options = try recordingOptions([node], patterns: ["btwl:f/1"], output: output)
        options.spec.processes = [try ProcessSelector(parsing: procs)]
        do {
            _ = try await TraceSession(options: options).run()
            Issue.record("a session with --procs \(procs) started")
        } catch let error as SessionError {
            #expect(error.code == .invalidSpec, "\(error)")
            for text in saying { #expect(error.description.contains(text), "\(error)") }
        }
        #expect(node.control.isConnected)
        #expect(!FileManager.default.fileExists(atPath: output))
        try await expectClean(node)
    }

    @Test func aPidTheNodeRefusesIsAnErrorBeforeAnything() async throws {
        let node = try await TracedNode.start()
        defer { Task { await node.stop() } }
        try await expectRefused(node, procs: "<0.32768.0>", saying: ["<0.32768.0>", "refuses"])
        // A valid pid whose process is gone.
        let dead = try await node.rpc("erlang", "spawn", [.atom("erlang"), .atom("is_atom"), .list([.atom("a")])])
        try await Task.sleep(for: .milliseconds(100))
        let text = try await node.rpc("erlang", "pid_to_list", [dead])
        guard case .string(let bytes) = text else { throw TestFailure("pid_to_list gave \(text.erlangText())") }
        let deadText = String(decoding: bytes, as: UTF8.self)
        try await expectRefused(node, procs: deadText, saying: [deadText, "no process"])
        // A name nobody registered: the message lists the node's names, closest first.
        try await expectRefused(node, procs: "code_servr", saying: ["code_servr", "registered there: code_server"])
        try await secondSessionWorks(node)
    }

    @Test func theNodeDroppingTheConnectionMidStartLeavesItClean() async throws {
        let node = try await TracedNode.start(extraArguments: ["-pa", CutModule.directory])
        defer { Task { await node.stop() } }
        let output = try temporaryCapturePath()
        var options = try recordingOptions([node], patterns: ["btcut:f/1"], output: output)
        options.localName = Erlang.randomName("btrec")
        do {
            _ = try await TraceSession(options: options).run()
            Issue.record("the session started although the node cut the connection")
        } catch {
            #expect("\(error)".contains("agent unloaded, checked"), "\(error)")
        }
        // Checked by the session before it threw; checked again here without waiting.
        try await expectClean(node)
        #expect(try await node.rpc("code", "is_loaded", [.atom("btcut")]).erlangText() != "false")
        try await secondSessionWorks(node)
    }

    @Test func anAgentWhoseRecorderVanishesBeforeAnySessionUnloadsItself() async throws {
        let node = try await TracedNode.start()
        defer { Task { await node.stop() } }
        let recorder = try await DistributionConnection.connect(to: node.name, cookie: node.cookie)
        let loader = AgentLoader(connection: recorder, node: node.name)
        try await loader.load()
        let mailbox = try recorder.makeMailbox()
        let guarded = try await recorder.rpc(module: "beamtrace_agent", function: "guard", arguments: [.pid(mailbox.pid)])
        #expect(guarded.erlangText().hasPrefix("{ok,"), "\(guarded.erlangText())")
        #expect(try await node.rpc("code", "is_loaded", [.atom("beamtrace_agent")]).erlangText() != "false")
        await recorder.close()
        try await expectClean(node, waiting: true)
        try await secondSessionWorks(node)
    }
}
