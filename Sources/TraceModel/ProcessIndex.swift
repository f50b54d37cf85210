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
    /// Ids at or beyond `entries.count` (inserted by a longer copy sharing this index) are skipped.
    @inline(__always) func find(_ identity: ProcessIdentity, in entries: [ProcessEntry]) -> ProcessID? {
        let h = Self.hash(identity)
        let tag = h >> 32
        let mask = slots.count - 1
        var i = Int(truncatingIfNeeded: h) & mask
        return slots.withUnsafeBufferPointer { slots in
            while true {
                let slot = slots[i]
                if slot == 0 { return nil }
                if slot >> 32 == tag {
                    let id = Int(slot & 0xFFFF_FFFF)
                    if id < entries.count, entries[id].identity == identity { return ProcessID(id) }
                }
                i = (i + 1) & mask
            }
        }
    }

    /// Adds `id` (entries[id] is its entry; not already present).
    mutating func insert(_ id: ProcessID, in entries: [ProcessEntry]) {
        if (count + 1) * 2 > slots.count { grow(entries) }
        place(id, hash: Self.hash(entries[Int(id)].identity))
        count += 1
    }

    private mutating func place(_ id: ProcessID, hash h: UInt64) {
        let mask = slots.count - 1
        var i = Int(truncatingIfNeeded: h) & mask
        slots.withUnsafeMutableBufferPointer { slots in
            while slots[i] != 0 { i = (i + 1) & mask }
            slots[i] = (h >> 32) << 32 | UInt64(id)
        }
    }

    private mutating func grow(_ entries: [ProcessEntry]) {
        let old = slots
        slots = Array(repeating: 0, count: old.count * 2)
        for slot in old where slot != 0 {
            let id = ProcessID(truncatingIfNeeded: slot)
            place(id, hash: Self.hash(entries[Int(id)].identity))
        }
    }
}

/// A `ProcessIndex` built on first use and caught up with the entries appended since, shared by
/// copies of the dictionaries (a copy that appends gets an index of its own, rebuilt when it is
/// next needed). Entries restored by id cost nothing until someone looks a process up by identity.
final class LazyProcessIndex: @unchecked Sendable {
    private let lock = NSLock()
    private var index = ProcessIndex()
    /// Entries 1 ..< indexed are in the index (the first id wins for an identity listed twice).
    private var indexed = 1

    /// The id of `identity`, indexing the entries not yet indexed first (any thread).
    func find(_ identity: ProcessIdentity, in entries: [ProcessEntry]) -> ProcessID? {
        lock.lock()
        defer { lock.unlock() }
        catchUp(entries)
        return index.find(identity, in: entries)
    }

    /// As `find`, by the owner of a uniquely referenced index (no other thread can see it).
    func findOwned(_ identity: ProcessIdentity, in entries: [ProcessEntry]) -> ProcessID? {
        catchUp(entries)
        return index.find(identity, in: entries)
    }

    /// Records that `entries.last` (just appended, not present before) is indexed, by the owner.
    func appendedOwned(_ entries: [ProcessEntry]) {
        guard indexed == entries.count - 1 else { return }  // caught up later, with the rest
        index.insert(ProcessID(entries.count - 1), in: entries)
        indexed = entries.count
    }

    private func catchUp(_ entries: [ProcessEntry]) {
        guard indexed < entries.count else { return }
        // Placeholders for ids a damaged capture skipped (`.name(0)`) are not indexed, as before.
        for id in indexed..<entries.count
        where entries[id].identity != .name(0) && index.find(entries[id].identity, in: entries) == nil {
            index.insert(ProcessID(id), in: entries)
        }
        indexed = entries.count
    }
}
