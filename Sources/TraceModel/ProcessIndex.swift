// Process identity → id for the dictionaries: an open-addressing table of ids whose keys are the
// dictionary's own entries, with a cheap multiplicative hash. It replaces a Swift Dictionary whose
// SipHash and per-entry key copies were most of an import's cost at a million processes (in the
// decoder and again in the writer's copy of the dictionaries).

struct ProcessIndex: Sendable {
    /// Process ids by slot; 0 is an empty slot. The capacity is a power of two.
    private var slots: [ProcessID] = Array(repeating: 0, count: 64)
    private var count = 0

    @inline(__always) static func hash(_ identity: ProcessIdentity) -> UInt64 {
        let a: UInt64, b: UInt64
        switch identity {
        case .pid(let node, let id, let serial, let creation):
            a = UInt64(node) << 32 | UInt64(id)
            b = UInt64(serial) << 32 | UInt64(creation)
        case .port(let node, let id, let creation):
            a = id ^ UInt64(node) << 48
            b = UInt64(creation) | 1 << 40
        case .name(let atom):
            a = UInt64(atom)
            b = 2 << 40
        case .remoteName(let atom, let node):
            a = UInt64(atom) | UInt64(node) << 32
            b = 3 << 40
        }
        var h = (a ^ 0x9E37_79B9_7F4A_7C15) &* 0xBF58_476D_1CE4_E5B9
        h = (h ^ (h >> 31) ^ b) &* 0x94D0_49BB_1331_11EB
        return h ^ (h >> 29)
    }

    /// The id of `identity` among `entries` (the dictionary's processes), if it was inserted.
    @inline(__always) func find(_ identity: ProcessIdentity, in entries: [ProcessEntry]) -> ProcessID? {
        let mask = slots.count - 1
        var i = Int(truncatingIfNeeded: Self.hash(identity)) & mask
        while true {
            let id = slots[i]
            if id == 0 { return nil }
            if entries[Int(id)].identity == identity { return id }
            i = (i + 1) & mask
        }
    }

    /// Adds `id` (entries[id] is its entry; not already present).
    mutating func insert(_ id: ProcessID, in entries: [ProcessEntry]) {
        if (count + 1) * 2 > slots.count { grow(entries) }
        place(id, entries[Int(id)].identity)
        count += 1
    }

    private mutating func place(_ id: ProcessID, _ identity: ProcessIdentity) {
        let mask = slots.count - 1
        var i = Int(truncatingIfNeeded: Self.hash(identity)) & mask
        while slots[i] != 0 { i = (i + 1) & mask }
        slots[i] = id
    }

    private mutating func grow(_ entries: [ProcessEntry]) {
        let old = slots
        slots = Array(repeating: 0, count: old.count * 2)
        for id in old where id != 0 { place(id, entries[Int(id)].identity) }
    }
}
