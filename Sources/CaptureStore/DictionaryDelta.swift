// What the caller's dictionaries gained since the last append, carried to the writer's queue with
// the block that follows. The writer keeps its own copy of the dictionaries, grown by these deltas
// on its own queue: the caller's dictionaries are never shared with another thread, so interning
// a new process never copies a dictionary of a million processes (copy-on-write of a shared one).
import TraceModel

struct DictionaryDelta: Sendable {
    /// Counts of the caller's dictionaries already taken.
    struct Cursor: Sendable {
        var atoms = 1, nodes = 1, processes = 1, functions = 1, updates = 0
    }

    var atomsFrom = 1, nodesFrom = 1, processesFrom = 1, functionsFrom = 1
    var atoms: [String] = []
    var nodes: [AtomID] = []
    var processes: [ProcessEntry] = []
    var functions: [MFA] = []
    /// Name or initial-call changes of processes taken before.
    var updates: [(id: ProcessID, name: AtomID, initialCall: FunctionID)] = []

    var isEmpty: Bool {
        atoms.isEmpty && nodes.isEmpty && processes.isEmpty && functions.isEmpty && updates.isEmpty
    }

    /// Adds what `d` gained since `cursor` (only the new entries are read: the cost is per entry).
    mutating func take(from d: TraceDictionaries, cursor: inout Cursor) {
        if isEmpty {
            atomsFrom = cursor.atoms; nodesFrom = cursor.nodes
            processesFrom = cursor.processes; functionsFrom = cursor.functions
        }
        if d.atoms.count > cursor.atoms { atoms.append(contentsOf: d.atoms[cursor.atoms...]) }
        if d.nodes.count > cursor.nodes { nodes.append(contentsOf: d.nodes[cursor.nodes...]) }
        if d.functions.count > cursor.functions { functions.append(contentsOf: d.functions[cursor.functions...]) }
        let changed = d.updatedProcesses
        if changed.count < cursor.updates { cursor.updates = 0 }
        for id in changed[cursor.updates...] where Int(id) < cursor.processes {
            let entry = d.processes[Int(id)]
            updates.append((id, entry.registeredName, entry.initialCall))
        }
        if d.processes.count > cursor.processes { processes.append(contentsOf: d.processes[cursor.processes...]) }
        cursor = Cursor(atoms: max(cursor.atoms, d.atoms.count), nodes: max(cursor.nodes, d.nodes.count),
                        processes: max(cursor.processes, d.processes.count),
                        functions: max(cursor.functions, d.functions.count), updates: changed.count)
    }

    /// Grows the writer's own dictionaries by this delta (same ids as the caller's).
    func apply(to d: inout TraceDictionaries) {
        for (i, atom) in atoms.enumerated() { d.restore(atom: atom, id: AtomID(atomsFrom + i)) }
        for (i, node) in nodes.enumerated() { d.restore(node: node, id: NodeID(nodesFrom + i)) }
        for (i, mfa) in functions.enumerated() { d.restore(function: mfa, id: FunctionID(functionsFrom + i)) }
        for (i, entry) in processes.enumerated() { d.restore(process: entry, id: ProcessID(processesFrom + i)) }
        for update in updates {
            d.setRegisteredName(update.name, for: update.id)
            d.setInitialCall(update.initialCall, for: update.id)
        }
    }
}
