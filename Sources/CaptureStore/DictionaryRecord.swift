// Dictionary records: atoms, nodes, processes and functions as (id, value) entries. A segment
// starts with a full snapshot (so pruning old segments loses nothing); later records carry only
// new ids and changed process names.
import TraceModel

enum DictionaryRecord {
    enum EntryType: UInt8 { case atom = 1, node = 2, process = 3, function = 4 }

    /// Where a writer is in the dictionaries: what it has written so far.
    struct Cursor {
        var atoms = 1, nodes = 1, processes = 1, functions = 1, updates = 0
    }

    /// Encodes entries from `cursor` on (everything when `cursor` is fresh); nil when nothing is new.
    static func encode(_ d: TraceDictionaries, from cursor: inout Cursor) -> [UInt8]? {
        var w = ByteWriter()
        var entries = 0
        for id in cursor.atoms..<d.atoms.count {
            w.u8(EntryType.atom.rawValue); w.varint(UInt64(id)); w.string(d.atoms[id]); entries += 1
        }
        for id in cursor.nodes..<d.nodes.count {
            w.u8(EntryType.node.rawValue); w.varint(UInt64(id)); w.varint(UInt64(d.nodes[id])); entries += 1
        }
        for id in cursor.functions..<d.functions.count {
            let f = d.functions[id]
            w.u8(EntryType.function.rawValue); w.varint(UInt64(id))
            w.varint(UInt64(f.module)); w.varint(UInt64(f.function)); w.varint(UInt64(f.arity)); entries += 1
        }
        var processIDs = Array(cursor.processes..<d.processes.count)
        let updates = d.updatedProcesses
        if cursor.updates < updates.count {
            for p in updates[cursor.updates...] where Int(p) < cursor.processes { processIDs.append(Int(p)) }
        }
        for id in processIDs {
            let p = d.processes[id]
            w.u8(EntryType.process.rawValue); w.varint(UInt64(id))
            switch p.identity {
            case .pid(let node, let number, let serial, let creation):
                w.u8(0); w.varint(UInt64(node)); w.varint(UInt64(number)); w.varint(UInt64(serial)); w.varint(UInt64(creation))
            case .port(let node, let number, let creation):
                w.u8(1); w.varint(UInt64(node)); w.varint(number); w.varint(UInt64(creation))
            case .name(let atom):
                w.u8(2); w.varint(UInt64(atom))
            case .remoteName(let atom, let node):
                w.u8(3); w.varint(UInt64(atom)); w.varint(UInt64(node))
            }
            w.varint(UInt64(p.registeredName)); w.varint(UInt64(p.initialCall))
            entries += 1
        }
        cursor = Cursor(atoms: d.atoms.count, nodes: d.nodes.count, processes: d.processes.count,
                        functions: d.functions.count, updates: updates.count)
        return entries == 0 ? nil : w.bytes
    }

    struct Failure: Error {
        var message: String
        /// Where in the record's body the bad entry starts.
        var offset: Int
    }

    /// Ids may skip ahead (when a record before this one was lost, its ids are filled with
    /// placeholders) but only this far: a damaged id must not fill memory with placeholders.
    static let maxIDGap = 1 << 16

    /// Applies a record to `d`; what is wrong and where when it is malformed (entries before that are applied).
    static func apply(_ body: UnsafeRawBufferPointer, to d: inout TraceDictionaries) -> Failure? {
        var c = ByteCursor(body)
        while c.remaining > 0 {
            let entryStart = c.offset
            if let message = applyEntry(&c, to: &d) { return Failure(message: message, offset: entryStart) }
        }
        return nil
    }

    private static func applyEntry(_ c: inout ByteCursor, to d: inout TraceDictionaries) -> String? {
        guard let typeRaw = c.u8(), let type = EntryType(rawValue: typeRaw) else { return "unknown dictionary entry type" }
        guard let id64 = c.varint(), id64 > 0, id64 < 1 << 31 else { return "bad dictionary id" }
        let next: Int
        switch type {
        case .atom: next = d.atoms.count
        case .node: next = d.nodes.count
        case .process: next = d.processes.count
        case .function: next = d.functions.count
        }
        guard id64 <= UInt64(next + maxIDGap) else {
            return "dictionary id \(id64) is far beyond the next id \(next) (damaged)"
        }
        let id = UInt32(id64)
        switch type {
        case .atom:
            guard let text = c.string() else { return "bad atom entry" }
            d.restore(atom: text, id: id)
        case .node:
            guard let atom = c.varint() else { return "bad node entry" }
            d.restore(node: AtomID(truncatingIfNeeded: atom), id: id)
        case .function:
            guard let m = c.varint(), let f = c.varint(), let a = c.varint() else { return "bad function entry" }
            d.restore(function: MFA(module: AtomID(truncatingIfNeeded: m), function: AtomID(truncatingIfNeeded: f),
                                    arity: UInt32(truncatingIfNeeded: a)), id: id)
        case .process:
            guard let form = c.u8() else { return "bad process entry" }
            let identity: ProcessIdentity
            switch form {
            case 0:
                guard let node = c.varint(), let n = c.varint(), let s = c.varint(), let cr = c.varint() else { return "bad pid entry" }
                identity = .pid(node: NodeID(truncatingIfNeeded: node), id: UInt32(truncatingIfNeeded: n),
                                serial: UInt32(truncatingIfNeeded: s), creation: UInt32(truncatingIfNeeded: cr))
            case 1:
                guard let node = c.varint(), let n = c.varint(), let cr = c.varint() else { return "bad port entry" }
                identity = .port(node: NodeID(truncatingIfNeeded: node), id: n, creation: UInt32(truncatingIfNeeded: cr))
            case 2:
                guard let atom = c.varint() else { return "bad name entry" }
                identity = .name(AtomID(truncatingIfNeeded: atom))
            case 3:
                guard let atom = c.varint(), let node = c.varint() else { return "bad remote name entry" }
                identity = .remoteName(AtomID(truncatingIfNeeded: atom), node: NodeID(truncatingIfNeeded: node))
            default:
                return "unknown process form \(form)"
            }
            guard let name = c.varint(), let initial = c.varint() else { return "bad process entry" }
            d.restore(process: ProcessEntry(identity: identity, registeredName: AtomID(truncatingIfNeeded: name),
                                            initialCall: FunctionID(truncatingIfNeeded: initial)), id: id)
        }
        return nil
    }
}
