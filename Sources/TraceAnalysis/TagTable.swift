// Call tags (RefKey) to the callers waiting on them, for the waiting model's hot path: every send
// and receive of a traced call looks a tag up. A RefKey already carries a hash of the reference
// (GenProtocol.reference), so this table probes with it directly, where a Dictionary would
// hash the key again (SipHash) for every lookup, insert and removal. Linear probing in one array
// of entries; a removal shifts the entries after it back (no removed-slot markers: calls end all
// the time, and markers made the table rebuild itself every few calls).
import TraceModel

struct TagTable: Sendable {
    private struct Entry: Sendable {
        var hash: UInt64 = 0
        var first: UInt32 = 0
        var value: ProcessID = 0
        var full = false
    }

    private var entries: [Entry]
    private var live = 0

    init() { entries = Array(repeating: Entry(), count: 16) }

    var isEmpty: Bool { live == 0 }

    @inline(__always) private static func home(_ hash: UInt64, _ mask: Int) -> Int {
        Int(truncatingIfNeeded: hash ^ hash >> 29) & mask
    }

    /// The slot holding `key`, or nil.
    @inline(__always) private func find(_ key: RefKey) -> Int? {
        let mask = entries.count - 1
        var i = Self.home(key.hash, mask)
        while entries[i].full {
            if entries[i].hash == key.hash && entries[i].first == key.first { return i }
            i = (i + 1) & mask
        }
        return nil
    }

    subscript(key: RefKey) -> ProcessID? {
        get { find(key).map { entries[$0].value } }
        set {
            guard let newValue else {
                if let slot = find(key) { removeSlot(slot) }
                return
            }
            if (live + 1) * 4 > entries.count * 3 { grow() }
            let mask = entries.count - 1
            var i = Self.home(key.hash, mask)
            while entries[i].full {
                if entries[i].hash == key.hash && entries[i].first == key.first {
                    entries[i].value = newValue
                    return
                }
                i = (i + 1) & mask
            }
            entries[i] = Entry(hash: key.hash, first: key.first, value: newValue, full: true)
            live += 1
        }
    }

    /// Removes `key` when it maps to `value` (a caller's tag that no later call took over).
    @inline(__always) mutating func remove(_ key: RefKey, ifValue value: ProcessID) {
        if let slot = find(key), entries[slot].value == value { removeSlot(slot) }
    }

    /// Empties `slot`, moving back each entry after it that probing would no longer reach.
    private mutating func removeSlot(_ slot: Int) {
        let mask = entries.count - 1
        var hole = slot
        var j = slot
        while true {
            j = (j + 1) & mask
            guard entries[j].full else { break }
            let home = Self.home(entries[j].hash, mask)
            // The entry stays when its home lies cyclically in (hole, j].
            let stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j)
            if !stays {
                entries[hole] = entries[j]
                hole = j
            }
        }
        entries[hole].full = false
        live -= 1
    }

    private mutating func grow() {
        let old = entries
        entries = Array(repeating: Entry(), count: old.count * 2)
        live = 0
        for entry in old where entry.full { self[RefKey(hash: entry.hash, first: entry.first)] = entry.value }
    }
}
