// Before anything is switched on, and after anything went wrong: the process selectors checked on
// the node itself (OTP decides what a valid pid is), and a node's cleanup confirmed — over a new
// connection when the node dropped the one the session used.
import BeamDistribution
import BeamTerm
import Foundation
import Logging
import TraceModel

extension TraceSession {
    /// The `--procs` selectors as the agent takes them: pids as the node itself parsed them
    /// (`erlang:list_to_pid/1`: a pid the node's own decoder would refuse never leaves us), each one
    /// alive, each name registered. Throws `.invalidSpec` naming the selector and what the node has.
    func resolveProcesses(on connection: DistributionConnection, node: String) async throws -> [Term] {
        var result: [Term] = []
        for selector in options.spec.processes {
            switch selector {
            case .all, .new, .existing:
                result.append(.atom(selector.description))
            case .pid(let text):
                if let named = Self.pidNode(text), named != node { continue }   // a pid of another node
                let local = Self.localPidText(text)
                let pid: Term
                do {
                    pid = try await connection.rpc(module: "erlang", function: "list_to_pid",
                                                   arguments: [.string(Array(local.utf8))],
                                                   timeout: options.setupTimeout)
                } catch let error as DistributionError where error.code == .badRPC {
                    throw SessionError(.invalidSpec, node: node,
                                       "--procs \(text): the node refuses \(local) as a pid (erlang:list_to_pid/1 "
                                       + "says badarg: on OTP 25 a pid is <0.N.S> with N below 32768 and S below 8192); "
                                       + "nothing was switched on")
                }
                let alive = try await connection.rpc(module: "erlang", function: "is_process_alive", arguments: [pid],
                                                     timeout: options.setupTimeout)
                guard alive.atomName == "true" else {
                    throw SessionError(.invalidSpec, node: node,
                                       "--procs \(text): no process \(local) is alive on the node; nothing was switched on")
                }
                result.append(pid)
            case .name(let name):
                let pid = try await connection.rpc(module: "erlang", function: "whereis", arguments: [.atom(name)],
                                                   timeout: options.setupTimeout)
                guard case .pid = pid else {
                    let registered = try await connection.rpc(module: "erlang", function: "registered",
                                                              timeout: options.setupTimeout)
                    let names = (registered.listElements ?? []).compactMap(\.atomName)
                    throw SessionError(.invalidSpec, node: node,
                                       "--procs \(name): no process is registered under that name on the node "
                                       + "(registered there: \(Closest.listing(names, to: name))); nothing was switched on")
                }
                result.append(.atom(name))
            }
        }
        return result
    }

    /// The node a pid text names (`<a@host.80.0>`), nil for `<0.80.0>`.
    static func pidNode(_ text: String) -> String? {
        let parts = text.dropFirst().dropLast().split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count >= 3 else { return nil }
        let node = parts.dropLast(2).joined(separator: ".")
        return node.contains("@") ? node : nil
    }

    /// `<0.80.0>` stays; `<name@host.80.0>` and `<3.80.0>` (a node index) become `<0.80.0>`: the
    /// selector is resolved on the node it is given for.
    static func localPidText(_ text: String) -> String {
        guard text.hasPrefix("<"), text.hasSuffix(">") else { return text }
        let parts = text.dropFirst().dropLast().split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count >= 3 else { return text }
        return "<0.\(parts[parts.count - 2]).\(parts[parts.count - 1])>"
    }

    /// Makes sure nothing of ours is left on `node`: waits for a running agent to finish cleaning up
    /// (it watches the recorder), removes a loaded but idle module, and checks `code:is_loaded` and
    /// `whereis`. Uses `connection` while it is up, else a new connection. Returns nil when the node
    /// is confirmed clean, or what is known to be left.
    func confirmClean(node: String, connection: DistributionConnection?) async -> String? {
        var own: DistributionConnection?
        var live = connection
        if live?.isConnected != true {
            do {
                own = try await DistributionConnection.connect(to: node, cookie: options.cookie,
                                                               options: options.distribution)
                live = own
            } catch {
                return "could not reconnect to check the node: \(error)"
            }
        }
        defer { if let own { Task { await own.close() } } }
        guard let live else { return "no connection" }
        let loader = AgentLoader(connection: live, node: node, timeout: options.setupTimeout)
        let deadline = ContinuousClock.now + max(.seconds(15), options.setupTimeout)
        while ContinuousClock.now < deadline {
            guard let loaded = try? await loader.isLoaded() else { return "the node stopped answering" }
            if !loaded { return nil }
            let info = try? await live.rpc(module: AgentSource.moduleName, function: "loaded_info",
                                           timeout: options.setupTimeout)
            if info?.atomName == "none" || (connection?.isConnected == true && own == nil) {
                // Idle module (no controller, no guard) or our own session: take it off ourselves.
                if await loader.unload() { return nil }
            }
            try? await Task.sleep(for: .milliseconds(200))
        }
        if await loader.unload() { return nil }
        return "beamtrace_agent is still loaded on the node"
    }
}
