// Process identity → id for the dictionaries: an open-addressing table of ids whose keys are the
// dictionary's own entries, with a cheap multiplicative hash. Each slot keeps 32 bits of its key's
// hash beside the id, so a probe touches the entry only when those match: at a million processes
// the table and the entries are far out of cache, and a miss per probed entry was most of the cost.
// The index is built lazily (`LazyProcessIndex`): a reader or a writer's copy that restores a
// million processes by id and never looks one up by identity never builds it.
import Foundation

struct ProcessIndex: Sendable {
    /// (hash tag << 32 | process id) by slot; 0 is an empty slot (id 0 is never inserted). The
    /// capacity is a power of two.
    private var slots: [UInt64] = Array(repeating: 0, count: 64)
    private var count = 0

    /// A pid's hash keeps its number's last 3 bits in the 3 bits of the tag that place it in a
    /// group of 8 slots (one cache line; see `home`), the rest hashed from the number's other bits:
    /// the VM numbers new processes in sequence, so 8 pids spawned in a row share the line their
    /// first sight misses, where 8 random slots missed 8 lines.
    @inline(__always) static func hash(_ identity: ProcessIdentity) -> UInt64 {
        let a: UInt64, b: UInt64
        var low: UInt64?
        switch identity {
        case .pid(let node, let id, let serial, let creation):
            a = UInt64(node) << 32 | UInt64(id >> 3)
            b = UInt64(serial) << 32 | UInt64(creation)
            low = UInt64(id & 7)
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
        h ^= h >> 29
        if let low { h = h & ~(7 << 32) | low << 32 }
        return h
    }

    /// The id of `identity` among `entries` (the dictionary's processes), if it was inserted.
    /// Ids at or beyond `entries.count` (inserted by a longer copy sharing this index) are skipped.
    @inline(__always) func find(_ identity: ProcessIdentity, in entries: [ProcessEntry]) -> ProcessID? {
        let (id, _) = probe(identity, hash: Self.hash(identity), in: entries)
        return id
    }

    /// The slot a hash's probe starts at: the group of 8 slots its tag's top bits name, at the place
    /// in it its tag's last 3 bits name (a pid's number's last 3 bits). It follows from the tag alone,
    /// so growing moves tags without reading an entry or hashing again.
    @inline(__always) private static func home(tag: UInt64, shift: UInt64) -> Int {
        Int(truncatingIfNeeded: (tag >> shift) & ~7 | tag & 7)
    }

    /// 32 minus log2 of the capacity: a tag shifted right by it is its home slot.
    private var shift: UInt64 = 32 - 6

    /// The id of `identity` (hash `h`), else nil and the empty slot that ends its probe.
    @inline(__always) func probe(_ identity: ProcessIdentity, hash h: UInt64, in entries: [ProcessEntry]) -> (ProcessID?, Int) {
        let tag = h >> 32
        let mask = slots.count - 1
        var i = Self.home(tag: tag, shift: shift)
        return slots.withUnsafeBufferPointer { slots in
            while true {
                let slot = slots[i]
                if slot == 0 { return (nil, i) }
                if slot >> 32 == tag {
                    let id = Int(slot & 0xFFFF_FFFF)
                    if id < entries.count, entries[id].identity == identity { return (ProcessID(id), i) }
                }
                i = (i + 1) & mask
            }
        }
    }

    /// Adds `id` with hash `h` at `slot`, the empty slot its `probe` ended at (no insert since).
    @inline(__always) mutating func insert(_ id: ProcessID, hash h: UInt64, at slot: Int) {
        count += 1
        if count * 2 > slots.count {
            grow()
            place(id, tag: h >> 32)
        } else {
            slots[slot] = (h >> 32) << 32 | UInt64(id)
        }
    }

    private mutating func place(_ id: ProcessID, tag: UInt64) {
        let mask = slots.count - 1
        var i = Self.home(tag: tag, shift: shift)
        slots.withUnsafeMutableBufferPointer { slots in
            while slots[i] != 0 { i = (i + 1) & mask }
            slots[i] = tag << 32 | UInt64(id)
        }
    }

    /// Doubles the capacity, placing each slot by its tag: a pass over the old slots in order and
    /// writes that move forward through the new ones, no entry read and no hash computed.
    private mutating func grow() {
        let old = slots
        slots = Array(repeating: 0, count: old.count * 2)
        shift -= 1
        for slot in old where slot != 0 {
            place(ProcessID(truncatingIfNeeded: slot), tag: slot >> 32)
        }
    }
}

/// A `ProcessIndex` built on first use and caught up with the entries appended since, shared by
/// copies of the dictionaries (a copy that appends gets an index of its own, rebuilt when it is
/// next needed). Entries restored by id cost nothing until someone looks a process up by identity.
final class LazyProcessIndex: @unchecked Sendable {
    private let lock = NSLock()
    // Unchecked: the owner's calls have the object to themselves and the others hold the lock, so
    // the run-time exclusivity check (two calls into the runtime per new process) guards nothing.
    @exclusivity(unchecked) private var index = ProcessIndex()
    /// Entries 1 ..< indexed are in the index (the first id wins for an identity listed twice).
    @exclusivity(unchecked) private var indexed = 1

    /// The id of `identity`, indexing the entries not yet indexed first (any thread).
    func find(_ identity: ProcessIdentity, in entries: [ProcessEntry]) -> ProcessID? {
        lock.lock()
        defer { lock.unlock() }
        catchUp(entries)
        return index.find(identity, in: entries)
    }

    /// The id of `identity`, appending its entry to `entries` when it is new, by the owner: one
    /// hash and one probe, the insert going into the empty slot the probe ended at.
    func internOwned(_ identity: ProcessIdentity, in entries: inout [ProcessEntry]) -> ProcessID {
        catchUp(entries)
        let h = ProcessIndex.hash(identity)
        let (found, slot) = index.probe(identity, hash: h, in: entries)
        if let found { return found }
        let id = ProcessID(entries.count)
        entries.append(ProcessEntry(identity: identity))
        index.insert(id, hash: h, at: slot)
        indexed = entries.count
        return id
    }

    private func catchUp(_ entries: [ProcessEntry]) {
        guard indexed < entries.count else { return }
        // Placeholders for ids a damaged capture skipped (`.name(0)`) are not indexed, as before.
        for id in indexed..<entries.count where entries[id].identity != .name(0) {
            let identity = entries[id].identity
            let h = ProcessIndex.hash(identity)
            let (found, slot) = index.probe(identity, hash: h, in: entries)
            if found == nil { index.insert(ProcessID(id), hash: h, at: slot) }
        }
        indexed = entries.count
    }
}
