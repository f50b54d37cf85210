// A payload transform for storage: a pid inside an argument, message or return value that is
// already in the process dictionary is stored as 0xF0 + varint(process id) instead of its ~30
// bytes of NEW_PID_EXT (messages carry `self()` all the time). Only pids whose bytes rebuild
// exactly from the dictionary are replaced, so reading restores the original bytes. Events whose
// payload went through this have bit 7 set in the stored flags column.
import BeamTerm
import TraceModel

struct PayloadPids {
    static let tag: UInt8 = 0xF0
    /// INTEGER_EXT (98, 4 bytes big-endian) stored as 0xF1 + zigzag varint: counters and sums
    /// shrink, and their bytes rebuild exactly.
    static let integerTag: UInt8 = 0xF1
    /// A whole payload equal to the one N (1...16) events earlier in the block: 0xF3, N.
    static let copyTag: UInt8 = 0xF3
    static let storedFlag: UInt8 = 0x80

    private var table = RawPidTable()
    /// A node's name as the ATOM_EXT bytes trace ports write inside a pid, by node id (empty: a
    /// name that does not rebuild exactly). Nodes are few: this is the only cache, so reading a
    /// pid costs the same with 5 processes as with a million.
    private var nodeAtoms: [[UInt8]?] = []

    private mutating func nodeAtom(_ node: NodeID, _ d: TraceDictionaries) -> [UInt8] {
        let index = Int(node)
        if index < nodeAtoms.count, let cached = nodeAtoms[index] { return cached }
        if index >= nodeAtoms.count { nodeAtoms.append(contentsOf: repeatElement(nil, count: index - nodeAtoms.count + 1)) }
        let name = Array(d.nodeName(node).utf8)
        let atom: [UInt8] = name.count < 256 && name.allSatisfy({ $0 < 0x80 }) ? [100, 0, UInt8(name.count)] + name : []
        nodeAtoms[index] = atom
        return atom
    }

    /// Appends the exact NEW_PID_EXT bytes (node as ATOM_EXT, as trace ports write it) of a
    /// dictionary pid; false when it is not a pid whose bytes rebuild.
    mutating func appendBytes(for id: ProcessID, _ d: TraceDictionaries, into out: inout [UInt8]) -> Bool {
        guard let entry = d.process(id), case .pid(let node, let number, let serial, let creation) = entry.identity else {
            return false
        }
        let atom = nodeAtom(node, d)
        guard !atom.isEmpty else { return false }
        out.append(88)
        out.append(contentsOf: atom)
        func u32(_ v: UInt32) {
            out.append(UInt8(truncatingIfNeeded: v >> 24)); out.append(UInt8(truncatingIfNeeded: v >> 16))
            out.append(UInt8(truncatingIfNeeded: v >> 8)); out.append(UInt8(truncatingIfNeeded: v))
        }
        u32(number); u32(serial); u32(creation)
        return true
    }

    /// Appends `payload` to `out` with known pids replaced; true when any was. A payload that does
    /// not walk as whole terms is appended unchanged.
    mutating func encode(_ payload: UnsafeRawBufferPointer, _ d: TraceDictionaries, into out: inout [UInt8]) -> Bool {
        let mark = out.count
        if let replaced = transform(payload, d, into: &out) { return replaced }
        out.removeSubrange(mark...)
        out.append(contentsOf: payload)
        return false
    }

    private mutating func transform(_ payload: UnsafeRawBufferPointer, _ d: TraceDictionaries, into out: inout [UInt8]) -> Bool? {
        var c = TermCursor(payload)
        var pending = 0
        var copyFrom = 0
        var replaced = false
        func flush(_ upTo: Int) {
            if upTo > copyFrom { out.append(contentsOf: UnsafeRawBufferPointer(rebasing: payload[copyFrom..<upTo])) }
        }
        while c.offset < payload.count || pending > 0 {
            if pending == 0 { pending = 1 }
            pending -= 1
            let start = c.offset
            guard let tag = c.u8() else { return nil }
            if tag == 88, c.peek() == 100 {
                guard c.skipAtom(), c.skip(12) else { return nil }
                let raw = UnsafeRawBufferPointer(rebasing: payload[start..<c.offset])
                var id = table.find(raw)
                if id == nil {
                    id = lookup(raw, d)
                    table.insert(raw, value: id ?? 0)
                }
                if let id, id != 0 {
                    flush(start)
                    out.append(Self.tag)
                    var v = UInt64(id)
                    while v >= 0x80 { out.append(UInt8(truncatingIfNeeded: v) | 0x80); v >>= 7 }
                    out.append(UInt8(v))
                    copyFrom = c.offset
                    replaced = true
                }
                continue
            }
            if tag == 98 {
                guard let raw = c.u32() else { return nil }
                flush(start)
                out.append(Self.integerTag)
                let value = Int64(Int32(bitPattern: raw))
                var v = UInt64(bitPattern: (value << 1) ^ (value >> 63))
                while v >= 0x80 { out.append(UInt8(truncatingIfNeeded: v) | 0x80); v >>= 7 }
                out.append(UInt8(v))
                copyFrom = c.offset
                replaced = true
                continue
            }
            c.offset = start
            guard let children = c.skipHeader() else { return nil }
            pending += children
        }
        flush(payload.count)
        return replaced
    }

    private mutating func lookup(_ raw: UnsafeRawBufferPointer, _ d: TraceDictionaries) -> ProcessID? {
        var c = TermCursor(raw)
        guard let pid = c.pid(), c.offset == raw.count else { return nil }
        let name = String(decoding: c.slice(pid.nodeStart, pid.nodeStart + pid.nodeLength), as: UTF8.self)
        guard let node = d.nodeID(named: name),
              let id = d.processID(.pid(node: node, id: pid.id, serial: pid.serial, creation: pid.creation)) else { return nil }
        // The rest of the bytes came from the dictionary's own fields: only the node's atom can differ.
        let atom = nodeAtom(node, d)
        guard raw.count == 13 + atom.count, atom.elementsEqual(UnsafeRawBufferPointer(rebasing: raw[1..<(1 + atom.count)])) else {
            return nil
        }
        return id
    }

    /// A LEB128 varint of the compacted form (not ETF), read through the cursor.
    static func varint(_ c: inout TermCursor) -> UInt64? {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while let byte = c.u8() {
            result |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return result }
            shift += 7
            if shift > 63 { return nil }
        }
        return nil
    }

    /// Expands a stored payload back to the original bytes.
    mutating func decode(_ stored: UnsafeRawBufferPointer, _ d: TraceDictionaries, into out: inout [UInt8]) -> Bool {
        var i = 0
        var copyFrom = 0
        var c = TermCursor(stored)
        var pending = 0
        while c.offset < stored.count || pending > 0 {
            if pending == 0 { pending = 1 }
            pending -= 1
            let start = c.offset
            guard let tag = c.peek() else { return false }
            if tag == Self.tag {
                _ = c.u8()
                guard let id = Self.varint(&c), id <= UInt64(UInt32.max) else { return false }
                if start > copyFrom { out.append(contentsOf: UnsafeRawBufferPointer(rebasing: stored[copyFrom..<start])) }
                guard appendBytes(for: ProcessID(truncatingIfNeeded: id), d, into: &out) else { return false }
                copyFrom = c.offset
                continue
            }
            if tag == Self.integerTag {
                _ = c.u8()
                guard let zz = Self.varint(&c), zz <= UInt64(UInt32.max) else { return false }
                if start > copyFrom { out.append(contentsOf: UnsafeRawBufferPointer(rebasing: stored[copyFrom..<start])) }
                let value = UInt32(truncatingIfNeeded: Int64(bitPattern: zz >> 1) ^ -Int64(bitPattern: zz & 1))
                let rebuilt: (UInt8, UInt32) = (98, value.bigEndian)
                withUnsafeBytes(of: rebuilt.1) { bytes in
                    out.append(rebuilt.0)
                    out.append(contentsOf: bytes)
                }
                copyFrom = c.offset
                continue
            }
            guard let children = c.skipHeader() else { return false }
            pending += children
            i += 1
        }
        if stored.count > copyFrom { out.append(contentsOf: UnsafeRawBufferPointer(rebasing: stored[copyFrom...])) }
        return true
    }
}

/// Raw pid bytes → process id (0: not replaceable), without allocating per lookup: the last few
/// keys are compared first (payloads keep naming the same pids), then a hash map.
private struct RawPidTable {
    var map: [Int: [(key: [UInt8], value: ProcessID)]] = [:]
    var recent: [(key: [UInt8], value: ProcessID)] = []
    var next = 0

    mutating func find(_ raw: UnsafeRawBufferPointer) -> ProcessID? {
        for entry in recent where entry.key.count == raw.count {
            let same = entry.key.withUnsafeBytes { memcmpRawBytes($0.baseAddress!, raw.baseAddress!, raw.count) }
            if same { return entry.value }
        }
        guard let bucket = map[Self.hash(raw)] else { return nil }
        for entry in bucket where entry.key.elementsEqual(raw) {
            remember(entry)
            return entry.value
        }
        return nil
    }

    /// Entries kept before the table starts over (a system of a million processes must not keep
    /// a million keys here: a forgotten pid is only looked up again).
    static let limit = 1 << 16
    var entries = 0

    mutating func insert(_ raw: UnsafeRawBufferPointer, value: ProcessID) {
        if entries >= Self.limit {
            map.removeAll(keepingCapacity: true)
            entries = 0
        }
        entries += 1
        let entry = (Array(raw), value)
        map[Self.hash(raw), default: []].append(entry)
        remember(entry)
    }

    private mutating func remember(_ entry: (key: [UInt8], value: ProcessID)) {
        if recent.count < 4 { recent.append(entry) } else { recent[next] = entry }
        next = (next + 1) & 3
    }

    static func hash(_ raw: UnsafeRawBufferPointer) -> Int {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(raw.count)
        guard let base = raw.baseAddress else { return Int(truncatingIfNeeded: h) }
        var i = 0
        while i + 8 <= raw.count {
            h = (h ^ base.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0xBF58_476D_1CE4_E5B9
            h ^= h >> 29
            i += 8
        }
        while i < raw.count {
            h = (h ^ UInt64(base.load(fromByteOffset: i, as: UInt8.self))) &* 0x100_0000_01B3
            i += 1
        }
        return Int(truncatingIfNeeded: h)
    }
}

private func memcmpRawBytes(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ n: Int) -> Bool {
    var i = 0
    while i + 8 <= n {
        if a.loadUnaligned(fromByteOffset: i, as: UInt64.self) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) { return false }
        i += 8
    }
    while i < n {
        if a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) { return false }
        i += 1
    }
    return true
}
