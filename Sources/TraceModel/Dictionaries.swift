// The capture's dictionaries: atoms, nodes, processes (pids, ports, names) and functions, each
// interned once and referred to by a small integer id from events. Id 0 is "none" everywhere.
import BeamTerm

/// {Module, Function, Arity} by atom ids.
public struct MFA: Sendable, Hashable {
    public var module: AtomID
    public var function: AtomID
    public var arity: UInt32
    public init(module: AtomID, function: AtomID, arity: UInt32) {
        self.module = module
        self.function = function
        self.arity = arity
    }
}

/// Something a trace message names as a process: a pid, a port, or a registered name it was sent to.
public enum ProcessIdentity: Sendable, Hashable {
    case pid(node: NodeID, id: UInt32, serial: UInt32, creation: UInt32)
    case port(node: NodeID, id: UInt64, creation: UInt32)
    /// A local registered name used as a send destination.
    case name(AtomID)
    /// `{Name, Node}` used as a send destination.
    case remoteName(AtomID, node: NodeID)

    public var node: NodeID {
        switch self {
        case .pid(let node, _, _, _), .port(let node, _, _), .remoteName(_, let node): return node
        case .name: return 0
        }
    }
}

public struct ProcessEntry: Sendable, Hashable {
    public var identity: ProcessIdentity
    /// The latest registered name known for it (register events, ttb metadata); 0 when none.
    public var registeredName: AtomID
    /// Its initial call (spawn events, ttb metadata); 0 when unknown.
    public var initialCall: FunctionID

    public init(identity: ProcessIdentity, registeredName: AtomID = 0, initialCall: FunctionID = 0) {
        self.identity = identity
        self.registeredName = registeredName
        self.initialCall = initialCall
    }
}

public struct TraceDictionaries: Sendable {
    /// Atom texts by id; `atoms[0]` is the empty placeholder for "none".
    public private(set) var atoms: [String] = [""]
    /// Node names as atom ids, by node id.
    public private(set) var nodes: [AtomID] = [0]
    public private(set) var processes: [ProcessEntry] = [ProcessEntry(identity: .name(0))]
    public private(set) var functions: [MFA] = [MFA(module: 0, function: 0, arity: 0)]
    /// Process ids whose name or initial call changed since `takeUpdatedProcesses()`.
    public private(set) var updatedProcesses: [ProcessID] = []

    /// Atom and function ids by value, built when first looked up (see LazyNameIndex).
    private var names = LazyNameIndex()
    private var nodeIDs: [AtomID: NodeID] = [:]
    private var processIDs = LazyProcessIndex()

    public init() {}

    // MARK: interning

    public mutating func intern(atom text: String) -> AtomID {
        ownNameIndex()
        if let id = names.atomIDOwned(text, in: atoms) { return id }
        let id = AtomID(atoms.count)
        atoms.append(text)
        names.appendedAtomOwned(atoms)
        return id
    }

    /// A copy that interns atoms or functions gets a name index of its own (see `ownProcessIndex`).
    private mutating func ownNameIndex() {
        if !isKnownUniquelyReferenced(&names) { names = LazyNameIndex() }
    }

    public mutating func intern(node atom: AtomID) -> NodeID {
        if let id = nodeIDs[atom] { return id }
        let id = NodeID(nodes.count)
        nodes.append(atom)
        nodeIDs[atom] = id
        return id
    }

    public mutating func intern(node name: String) -> NodeID { intern(node: intern(atom: name)) }

    public mutating func intern(process identity: ProcessIdentity) -> ProcessID {
        ownProcessIndex()
        return processIDs.internOwned(identity, in: &processes)
    }

    /// A copy that appends processes gets an index of its own (built again when next needed), so
    /// copies never see each other's ids.
    private mutating func ownProcessIndex() {
        if !isKnownUniquelyReferenced(&processIDs) { processIDs = LazyProcessIndex() }
    }

    public mutating func intern(function mfa: MFA) -> FunctionID {
        ownNameIndex()
        if let id = names.functionIDOwned(mfa, in: functions) { return id }
        let id = FunctionID(functions.count)
        functions.append(mfa)
        names.appendedFunctionOwned(functions)
        return id
    }

    public mutating func intern(module: String, function: String, arity: Int) -> FunctionID {
        intern(function: MFA(module: intern(atom: module), function: intern(atom: function), arity: UInt32(arity)))
    }

    /// Records a registered name for a process (0 clears it); later calls win.
    public mutating func setRegisteredName(_ name: AtomID, for process: ProcessID) {
        guard Int(process) < processes.count, process != 0, processes[Int(process)].registeredName != name else { return }
        processes[Int(process)].registeredName = name
        updatedProcesses.append(process)
    }

    public mutating func setInitialCall(_ mfa: FunctionID, for process: ProcessID) {
        guard Int(process) < processes.count, process != 0, processes[Int(process)].initialCall != mfa else { return }
        processes[Int(process)].initialCall = mfa
        updatedProcesses.append(process)
    }

    public mutating func takeUpdatedProcesses() -> [ProcessID] {
        defer { updatedProcesses.removeAll(keepingCapacity: true) }
        return updatedProcesses
    }

    // MARK: restoring from disk (ids given; a gap is filled with placeholders so later ids stay right)

    public mutating func restore(atom text: String, id: AtomID) {
        guard id != 0 else { return }
        while atoms.count < Int(id) { _ = intern(atom: "?missing-atom-\(atoms.count)") }
        // Indexed by text only when someone looks one up (see LazyNameIndex).
        if Int(id) == atoms.count {
            ownNameIndex()
            atoms.append(text)
        }
    }

    public mutating func restore(node atom: AtomID, id: NodeID) {
        guard id != 0 else { return }
        while nodes.count < Int(id) { nodes.append(0) }
        if Int(id) == nodes.count {
            nodes.append(atom)
            if nodeIDs[atom] == nil { nodeIDs[atom] = id }
        }
    }

    public mutating func restore(function mfa: MFA, id: FunctionID) {
        guard id != 0 else { return }
        while functions.count < Int(id) { functions.append(MFA(module: 0, function: 0, arity: 0)) }
        if Int(id) == functions.count {
            ownNameIndex()
            functions.append(mfa)
        }
    }

    /// Adds an entry, or updates the name and initial call of an existing one.
    public mutating func restore(process entry: ProcessEntry, id: ProcessID) {
        guard id != 0 else { return }
        if processes.count < Int(id) { ownProcessIndex() }
        while processes.count < Int(id) { processes.append(ProcessEntry(identity: .name(0))) }
        if Int(id) == processes.count {
            // Indexed by identity only when someone looks one up (see LazyProcessIndex).
            ownProcessIndex()
            processes.append(entry)
            return
        }
        processes[Int(id)].registeredName = entry.registeredName
        processes[Int(id)].initialCall = entry.initialCall
    }

    // MARK: lookups

    public func atom(_ id: AtomID) -> String { Int(id) < atoms.count ? atoms[Int(id)] : "?atom\(id)" }
    public func atomID(_ text: String) -> AtomID? { names.atomID(text, in: atoms) }
    public func nodeName(_ id: NodeID) -> String { Int(id) < nodes.count ? atom(nodes[Int(id)]) : "?node\(id)" }
    public func nodeID(named name: String) -> NodeID? { atomID(name).flatMap { nodeIDs[$0] } }
    public func process(_ id: ProcessID) -> ProcessEntry? { Int(id) < processes.count && id != 0 ? processes[Int(id)] : nil }
    public func processID(_ identity: ProcessIdentity) -> ProcessID? { processIDs.find(identity, in: processes) }
    public func function(_ id: FunctionID) -> MFA? { Int(id) < functions.count && id != 0 ? functions[Int(id)] : nil }
    public func functionID(_ mfa: MFA) -> FunctionID? { names.functionID(mfa, in: functions) }

    /// Print in Elixir syntax (`:gen_server.call/3`, `#PID<0.85.0>`): set for a capture of Elixir
    /// modules or on request, so every report made from these dictionaries follows.
    public var elixirSyntax = false

    /// `mod:fun/arity` in Erlang syntax (atoms quoted where needed); Elixir modules as `Mod.fun/arity`;
    /// with `elixirSyntax` Erlang modules as Elixir writes them (`:gen_server.call/3`).
    public func functionText(_ id: FunctionID) -> String {
        guard let mfa = function(id) else { return "undefined" }
        if elixirSyntax, ElixirAtom.moduleAlias(atom(mfa.module)) == nil {
            return ElixirAtom.literal(atom(mfa.module)) + "." + ElixirAtom.functionName(atom(mfa.function)) + "/\(mfa.arity)"
        }
        let module = atom(mfa.module)
        // Elixir modules as Elixir code names them: `MyApp.Worker.handle_call/3`.
        if let alias = ElixirAtom.moduleAlias(module) {
            return "\(alias).\(ElixirAtom.functionName(atom(mfa.function)))/\(mfa.arity)"
        }
        return "\(ErlangAtom.quoted(module)):\(ErlangAtom.quoted(atom(mfa.function)))/\(mfa.arity)"
    }

    /// The node whose pids print as `<0.N.S>`: the only node with events (a capture reader sets it
    /// from its index), or the only node known. nil when events come from several nodes.
    public var localNode: NodeID? {
        get { _localNode ?? (nodes.count == 2 ? 1 : nil) }
        set { _localNode = newValue }
    }
    private var _localNode: NodeID?

    /// True when events come from more than one node (pids then all print with their node).
    public var isMultiNode: Bool { localNode == nil && nodes.count > 2 }

    /// `<0.Id.Serial>` for a pid of the capture's one node; `<name@host.Id.Serial>` for other nodes'
    /// and for every pid of a capture of several nodes (the form payloads print and filters take);
    /// `#Port<…>` likewise; or a name.
    public func processText(_ id: ProcessID) -> String {
        guard let entry = process(id) else { return "undefined" }
        let local = localNode
        func nodePart(_ node: NodeID) -> String { node == local ? "0" : nodeName(node) }
        switch entry.identity {
        case .pid(let node, let number, let serial, _):
            return (elixirSyntax ? "#PID" : "") + "<\(nodePart(node)).\(number).\(serial)>"
        case .port(let node, let number, _): return "#Port<\(nodePart(node)).\(number)>"
        case .name(let atom): return ErlangAtom.quoted(self.atom(atom))
        case .remoteName(let atom, let node): return "{\(ErlangAtom.quoted(self.atom(atom))),\(ErlangAtom.quoted(nodeName(node)))}"
        }
    }

    /// A registered name as people write it (`MyApp.Worker` for `Elixir.MyApp.Worker`).
    public func registeredNameText(_ id: ProcessID) -> String? {
        guard let entry = process(id), entry.registeredName != 0 else { return nil }
        let name = atom(entry.registeredName)
        return ElixirAtom.moduleAlias(name) ?? name
    }

    /// A process's registered name, else its (proc_lib) initial call, else nil.
    public func nameText(_ id: ProcessID) -> String? {
        if let name = registeredNameText(id) { return name }
        guard let entry = process(id), entry.initialCall != 0 else { return nil }
        return functionText(entry.initialCall)
    }

    /// The term a process id stands for (pids and ports with their node names).
    public func processTerm(_ id: ProcessID) -> Term {
        guard let entry = process(id) else { return .atom("undefined") }
        switch entry.identity {
        case .pid(let node, let number, let serial, let creation):
            return .pid(Pid(node: Atom(nodeName(node)), id: number, serial: serial, creation: creation))
        case .port(let node, let number, let creation):
            return .port(Port(node: Atom(nodeName(node)), id: number, creation: creation))
        case .name(let atom): return .atom(self.atom(atom))
        case .remoteName(let atom, let node): return .tuple([.atom(self.atom(atom)), .atom(nodeName(node))])
        }
    }

    /// Processes whose registered name is `name`.
    public func processes(named name: String) -> [ProcessID] {
        guard let atom = atomID(name) else { return [] }
        var result: [ProcessID] = []
        for (index, entry) in processes.enumerated() where index != 0 {
            if entry.registeredName == atom { result.append(ProcessID(index)) }
            if case .name(let named) = entry.identity, named == atom { result.append(ProcessID(index)) }
        }
        return result
    }
}
