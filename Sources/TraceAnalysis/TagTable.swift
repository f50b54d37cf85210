// Call tags (RefKey) to the callers waiting on them, for the waiting model's hot path: every send
// and receive of a traced call looks a tag up. A RefKey already carries a hash of the reference
// (GenProtocol.reference), so this table probes with it directly, where a Dictionary would
// hash the key again (SipHash) for every lookup, insert and removal.
import TraceModel

struct TagTable: Sendable {
    private var hashes: [UInt64]
    private var firsts: [UInt32]
    private var values: [ProcessID]
    /// 0 empty, 1 holds an entry, 2 removed (probing goes on past it).
    private var states: [UInt8]
    private var live = 0
    private var used = 0

    init() {
        hashes = Array(repeating: 0, count: 16)
        firsts = Array(repeating: 0, count: 16)
        values = Array(repeating: 0, count: 16)
        states = Array(repeating: 0, count: 16)
    }

    var isEmpty: Bool { live == 0 }

    /// The slot holding `key`, or nil.
    @inline(__always) private func find(_ key: RefKey) -> Int? {
        let mask = states.count - 1
        var i = Int(truncatingIfNeeded: key.hash ^ key.hash >> 29) & mask
        while true {
            switch states[i] {
            case 0: return nil
            case 1 where hashes[i] == key.hash && firsts[i] == key.first: return i
            default: i = (i + 1) & mask
            }
        }
    }

    subscript(key: RefKey) -> ProcessID? {
        get { find(key).map { values[$0] } }
        set {
            if let slot = find(key) {
                if let newValue {
                    values[slot] = newValue
                } else {
                    states[slot] = 2
                    live -= 1
                }
                return
            }
            guard let newValue else { return }
            if (used + 1) * 4 > states.count * 3 { rehash() }
            let mask = states.count - 1
            var i = Int(truncatingIfNeeded: key.hash ^ key.hash >> 29) & mask
            while states[i] == 1 { i = (i + 1) & mask }
            if states[i] == 0 { used += 1 }
            states[i] = 1
            hashes[i] = key.hash
            firsts[i] = key.first
            values[i] = newValue
            live += 1
        }
    }

    /// Rebuilds without removed slots: in place (no allocation: calls end all the time, and their
    /// tags leave removed slots behind), or twice as large when more than half is live.
    private mutating func rehash() {
        let grow = live * 2 >= states.count
        let capacity = grow ? states.count * 2 : states.count
        withUnsafeTemporaryAllocation(of: (RefKey, ProcessID).self, capacity: live) { kept in
            var k = 0
            for i in states.indices where states[i] == 1 {
                kept[k] = (RefKey(hash: hashes[i], first: firsts[i]), values[i])
                k += 1
            }
            if grow {
                self = TagTable(capacity: capacity)
            } else {
                for i in states.indices { states[i] = 0 }
                live = 0
                used = 0
            }
            for j in 0..<k { self[kept[j].0] = kept[j].1 }
        }
    }

    private init(capacity: Int) {
        hashes = Array(repeating: 0, count: capacity)
        firsts = Array(repeating: 0, count: capacity)
        values = Array(repeating: 0, count: capacity)
        states = Array(repeating: 0, count: capacity)
    }
}
