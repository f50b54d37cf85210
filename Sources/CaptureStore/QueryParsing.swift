// Turns command-line filters (names as people write them) into an `EventQuery` of dictionary ids.
// Filters never lie: a node, process, name or function the capture does not have is an error that
// lists what it has, closest first — never a silent empty result.
import TraceModel

extension EventQuery {
    /// - Parameters:
    ///   - from/to: instants as `InstantArgument` takes them (`1s`, `+250ms`, `14:52:20.1`, raw ns).
    ///   - nodes: node names; with them, `<0.N.S>` pids mean that node's process.
    ///   - pids: `<0.80.0>`, `<name@host.80.0>`, or a registered name (`MyApp.Worker` for Elixir's).
    ///   - functions: anything `FunctionMatcher` takes (`mod:fun/arity`, `Mod.fun/arity`, `Mod`...).
    public static func parse(reader: CaptureReader, start: Int64?, from: String?, to: String?, nodes: [String],
                             pids: [String], functions: [String], kinds: [String]) throws -> EventQuery {
        let d = reader.dictionaries
        var query = EventQuery()
        func time(_ text: String) throws -> Int64 {
            do {
                return try InstantArgument(parsing: text).resolve(start: start ?? 0, timeBase: reader.meta.timeBase)
            } catch {
                throw CaptureError(.invalidArgument, error.description)
            }
        }
        if let from { query.from = try time(from) }
        if let to { query.to = try time(to) }
        if !kinds.isEmpty {
            query.kinds = Set(try kinds.flatMap { $0.split(separator: ",") }.map { name in
                guard let kind = EventKind(otpName: String(name)) else {
                    throw CaptureError(.invalidArgument, "unknown kind \(name): use OTP's tag names ("
                                       + Closest.listing(EventKind.allCases.map(\.otpName), to: String(name)) + ")")
                }
                return kind
            })
        }
        let nodeNames = (1..<max(d.nodes.count, 1)).map { d.nodeName(NodeID($0)) }
        var nodeSet: Set<NodeID>?
        if !nodes.isEmpty {
            var set = Set<NodeID>()
            for name in nodes.flatMap({ $0.split(separator: ",").map(String.init) }) {
                guard let id = d.nodeID(named: name) else {
                    throw CaptureError(.invalidArgument, "no node \(name) in this capture (it has: "
                                       + Closest.listing(nodeNames, to: name) + ")")
                }
                set.insert(id)
            }
            nodeSet = set
            query.nodes = set
        }
        if !pids.isEmpty {
            var set = Set<ProcessID>()
            for text in pids.flatMap({ $0.split(separator: ",").map(String.init) }) {
                set.formUnion(try processes(text, d, nodes: nodeSet))
            }
            query.pids = set
        }
        if !functions.isEmpty {
            var set = Set<FunctionID>()
            for text in functions {
                let matcher: FunctionMatcher
                do {
                    matcher = try FunctionMatcher(parsing: text)
                } catch {
                    throw CaptureError(.invalidArgument, "bad function \(error.description)")
                }
                var found = false
                for (id, mfa) in d.functions.enumerated().dropFirst() where matcher.matches(mfa, in: d) {
                    set.insert(FunctionID(id))
                    found = true
                }
                if !found {
                    let known = d.tracedFunctions.map { d.functionText($0) }
                    throw CaptureError(.invalidArgument, "no function matches \(text) in this capture (it has: "
                                       + Closest.listing(known, to: text) + ")")
                }
            }
            query.functions = set
        }
        return query
    }

    /// The processes `text` names: a pid in any printed form, or a registered name.
    static func processes(_ typed: String, _ d: TraceDictionaries, nodes: Set<NodeID>?) throws -> Set<ProcessID> {
        var result = Set<ProcessID>()
        let text = typed.hasPrefix("#PID<") ? String(typed.dropFirst(4)) : typed   // Elixir's inspect form
        if text.hasPrefix("<"), text.hasSuffix(">") {
            let parts = text.dropFirst().dropLast().split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count >= 3, let number = UInt32(parts[parts.count - 2]), let serial = UInt32(parts[parts.count - 1])
            else {
                throw CaptureError(.invalidArgument, "bad pid \(text): write <0.N.S>, or <node@host.N.S> in a capture of "
                                   + "several nodes")
            }
            let nodePart = parts.dropLast(2).joined(separator: ".")
            // <0.N.S> is the capture's one node's process when it has one, else any node's.
            var onNode: NodeID? = UInt32(nodePart) != nil && nodes == nil ? d.localNode : nil
            if UInt32(nodePart) == nil {
                guard let id = d.nodeID(named: nodePart) else {
                    let names = (1..<max(d.nodes.count, 1)).map { d.nodeName(NodeID($0)) }
                    throw CaptureError(.invalidArgument, "no node \(nodePart) in this capture (it has: "
                                       + Closest.listing(names, to: nodePart) + ")")
                }
                onNode = id
            }
            for (index, entry) in d.processes.enumerated().dropFirst() {
                guard case .pid(let node, let n, let s, _) = entry.identity, n == number, s == serial else { continue }
                if let onNode, node != onNode { continue }
                if let nodes, !nodes.contains(node) { continue }
                result.insert(ProcessID(index))
            }
            let distinctNodes = Set(result.compactMap { d.process($0)?.identity.node })
            if UInt32(nodePart) != nil, distinctNodes.count > 1 {
                let forms = result.map { pid -> String in
                    guard let node = d.process(pid)?.identity.node else { return "" }
                    return "<\(d.nodeName(node)).\(number).\(serial)>"
                }.sorted()
                throw CaptureError(.invalidArgument, "\(text) is a process on several nodes of this capture: "
                                   + forms.joined(separator: ", ") + "; write one of them, or add --node")
            }
        } else {
            let atom = text.first?.isUppercase == true && !text.hasPrefix("Elixir.") ? "Elixir." + text : text
            for name in [text, atom] { result.formUnion(d.processes(named: name)) }
            if let nodes { result = result.filter { d.process($0).map { nodes.contains($0.identity.node) } ?? false } }
        }
        guard result.isEmpty else { return result }
        // Nothing: say what there is, names first, then pids, closest first.
        var known: [String] = []
        var pidTexts: [String] = []
        for (index, entry) in d.processes.enumerated().dropFirst() {
            if entry.registeredName != 0 { known.append(displayName(d.atom(entry.registeredName))) }
            if case .pid = entry.identity { pidTexts.append(d.processText(ProcessID(index))) }
        }
        throw CaptureError(.invalidArgument, "no process \(text)\(nodes == nil ? "" : " on the given node(s)") in this "
                           + "capture (names: \(Closest.listing(known, to: text)); pids: \(Closest.listing(pidTexts, to: text)))")
    }

    /// `Elixir.MyApp.Worker` as Elixir code writes it.
    static func displayName(_ atom: String) -> String {
        atom.hasPrefix("Elixir.") && atom.dropFirst(7).first?.isUppercase == true ? String(atom.dropFirst(7)) : atom
    }
}
