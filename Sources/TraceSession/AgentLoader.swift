// Puts the agent onto a node for the session and takes it off again: the source is sent over rpc,
// scanned, parsed and compiled there (so it fits the node's OTP release), loaded with
// `code:load_binary`, and at the end purged and deleted. Also evaluates small Erlang expressions
// on a node (erl_scan + erl_parse + erl_eval: no compiler needed).
import BeamDistribution
import BeamTerm
import Foundation

enum AgentSource {
    static let moduleName = "beamtrace_agent"

    /// The agent's Erlang source: `BEAMTRACE_AGENT_SOURCE` if set, else this target's resource bundle
    /// (`beamtrace_TraceSession.resources`) next to the executable. Looked up by hand rather than
    /// through `Bundle.module`, which traps when the bundle is missing.
    static func text() throws(SessionError) -> String {
        var candidates: [URL] = []
        if let path = ProcessInfo.processInfo.environment["BEAMTRACE_AGENT_SOURCE"] {
            candidates.append(URL(fileURLWithPath: path))
        }
        var directories = [Bundle.main.bundleURL]
        if let executable = Bundle.main.executableURL { directories.append(executable.deletingLastPathComponent()) }
        let argv0 = URL(fileURLWithPath: CommandLine.arguments.first ?? "").resolvingSymlinksInPath()
        directories.append(argv0.deletingLastPathComponent())
        for directory in directories {
            let bundle = directory.appendingPathComponent("beamtrace_TraceSession.resources")
            candidates.append(bundle.appendingPathComponent("Resources/beamtrace_agent.erl"))
            candidates.append(bundle.appendingPathComponent("Contents/Resources/Resources/beamtrace_agent.erl"))
            candidates.append(bundle.appendingPathComponent("beamtrace_agent.erl"))
        }
        for url in candidates {
            if let text = try? String(contentsOf: url, encoding: .utf8) { return text }
        }
        throw SessionError(.agentLoadFailed, "the agent source beamtrace_agent.erl was not found (looked in "
                           + "\(directories.map(\.path).joined(separator: ", ")) for beamtrace_TraceSession.resources); "
                           + "keep that directory next to the beamtrace executable, or set BEAMTRACE_AGENT_SOURCE")
    }
}

struct AgentLoader {
    let connection: DistributionConnection
    let node: String
    var timeout: Duration = .seconds(30)

    private func call(_ module: String, _ function: String, _ arguments: [Term]) async throws -> Term {
        try await connection.rpc(module: module, function: function, arguments: arguments, timeout: timeout)
    }

    /// True when the node can compile (the `compiler` application is there).
    func hasCompiler() async throws -> Bool {
        let which = try await call("code", "which", [.atom("compile")])
        if case .atom(let atom) = which, atom.name == "non_existing" { return false }
        return true
    }

    /// Whether a beamtrace agent is loaded now (a session running, or one that has not finished unloading).
    func isLoaded() async throws -> Bool {
        let reply = try await call("code", "is_loaded", [.atom(AgentSource.moduleName)])
        if case .atom(let atom) = reply, atom.name == "false" { return false }
        return true
    }

    /// Compiles the agent on the node and loads it.
    func load() async throws {
        let source = try AgentSource.text()
        let scanned = try await call("erl_scan", "string", [.string(Array(source.utf8))])
        guard case .tuple(let parts) = scanned, parts.count == 3, case .atom(let ok) = parts[0], ok.name == "ok",
              let tokens = parts[1].listElements else {
            throw SessionError(.agentLoadFailed, node: node, "scanning the agent source failed: \(scanned.erlangText())")
        }
        var forms: [Term] = []
        var current: [Term] = []
        for token in tokens {
            current.append(token)
            if case .tuple(let t) = token, case .atom(let tag)? = t.first, tag.name == "dot" {
                forms.append(.list(current))
                current = []
            }
        }
        let parsed = try await call("lists", "map", [.export(module: "erl_parse", function: "parse_form", arity: 1),
                                                     .list(forms)])
        var abstract: [Term] = []
        for form in parsed.listElements ?? [] {
            guard case .tuple(let t) = form, t.count == 2, case .atom(let ok) = t[0], ok.name == "ok" else {
                throw SessionError(.agentLoadFailed, node: node, "parsing the agent failed: \(form.erlangText())")
            }
            abstract.append(t[1])
        }
        let compiled = try await call("compile", "forms", [.list(abstract), .list([.atom("binary"), .atom("return_errors")])])
        guard case .tuple(let c) = compiled, c.count >= 3, case .atom(let ok) = c[0], ok.name == "ok" else {
            throw SessionError(.agentLoadFailed, node: node, "compiling the agent on the node failed: \(compiled.erlangText())")
        }
        let loaded = try await call("code", "load_binary", [.atom(AgentSource.moduleName),
                                                           .string(Array("beamtrace_agent.erl".utf8)), c[2]])
        guard case .tuple(let l) = loaded, case .atom(let tag)? = l.first, tag.name == "module" else {
            throw SessionError(.agentLoadFailed, node: node, "loading the agent failed: \(loaded.erlangText())")
        }
    }

    /// Purges and deletes the agent; returns true when `code:is_loaded` says it is gone.
    @discardableResult
    func unload() async -> Bool {
        let module = Term.atom(AgentSource.moduleName)
        _ = try? await call("code", "purge", [module])
        _ = try? await call("code", "delete", [module])
        _ = try? await call("code", "purge", [module])
        return (try? await isLoaded()) == false
    }

    /// Evaluates an Erlang expression sequence (`"X = 1, X + 1."`) on the node with erl_eval.
    func evaluate(_ expression: String, bindings: [(String, Term)] = []) async throws -> Term {
        let scanned = try await call("erl_scan", "string", [.string(Array(expression.utf8))])
        guard case .tuple(let s) = scanned, s.count == 3, case .atom(let ok) = s[0], ok.name == "ok" else {
            throw SessionError(.startFailed, node: node, "bad expression \(expression): \(scanned.erlangText())")
        }
        let parsed = try await call("erl_parse", "parse_exprs", [s[1]])
        guard case .tuple(let p) = parsed, p.count == 2, case .atom(let ok2) = p[0], ok2.name == "ok" else {
            throw SessionError(.startFailed, node: node, "bad expression \(expression): \(parsed.erlangText())")
        }
        let bound = Term.list(bindings.map { .tuple([.atom($0.0), $0.1]) })
        let result = try await call("erl_eval", "exprs", [p[1], bound])
        guard case .tuple(let r) = result, r.count == 3, case .atom(let value) = r[0], value.name == "value" else {
            throw SessionError(.startFailed, node: node, "evaluating \(expression) gave \(result.erlangText())")
        }
        return r[1]
    }
}

extension Term {
    /// The elements of a proper list (a `STRING_EXT` counts as a list of small integers).
    var listElements: [Term]? {
        switch self {
        case .list(let elements): return elements
        case .string(let bytes): return bytes.map { .integer(Int64($0)) }
        default: return nil
        }
    }

    var atomName: String? {
        if case .atom(let atom) = self { return atom.name }
        return nil
    }

    var intValue: Int64? {
        switch self {
        case .integer(let v): return v
        case .bigInteger(let big): return big.int64Value
        default: return nil
        }
    }
}
