// Block encoding 1: the integers inside compacted payloads (INTEGER_EXT, SMALL_BIG_EXT up to 8
// bytes) live in a column of their own, each stored as the difference from the integer in the same
// place of the previous payload of the same process, kind and function in the block — a counter in
// a message or an accumulator in arguments moves by small steps, and the payload bytes left behind
// (the payload's shape) repeat exactly. Encoder and decoder keep the same small table, reset at
// each block, so a block decodes on its own.

struct PayloadIntegers {
    static let tableBits = 10
    static let slots = 4
    /// The table, written through pointers (an array's element write checks that its buffer is
    /// unique, on every write: this runs for every integer of every payload). Copies of a
    /// `PayloadIntegers` share it, as copies of the block encoder share its `ColumnBuffers`: each
    /// encoder and decoder keeps one, and resets it at each block.
    private var table = Table()
    private var base = 0
    private var ordinal = 0

    private final class Table {
        let keys: UnsafeMutablePointer<UInt64>
        let kinds: UnsafeMutablePointer<UInt8>
        let previous: UnsafeMutablePointer<Int64>

        init() {
            let n = 1 << PayloadIntegers.tableBits
            keys = .allocate(capacity: n)
            keys.initialize(repeating: .max, count: n)
            kinds = .allocate(capacity: n)
            kinds.initialize(repeating: 0, count: n)
            previous = .allocate(capacity: n * PayloadIntegers.slots)
            previous.initialize(repeating: 0, count: n * PayloadIntegers.slots)
        }

        deinit {
            keys.deallocate()
            kinds.deallocate()
            previous.deallocate()
        }
    }

    /// Gives this copy a table of its own if another copy shares it (before decoding on a thread).
    mutating func ownTable() {
        if !isKnownUniquelyReferenced(&table) { table = Table() }
    }

    /// Forgets every context (the start of a block).
    mutating func reset() {
        table.keys.update(repeating: .max, count: 1 << Self.tableBits)
    }

    /// The event whose payload integers come next.
    @inline(__always) mutating func begin(pid: UInt32, kind: UInt8, mfa: UInt32) {
        let key = UInt64(pid) | UInt64(mfa) << 32
        let h = Int(truncatingIfNeeded: ((key ^ UInt64(kind) &* 0x9E37_79B9) &* 0xBF58_476D_1CE4_E5B9) >> (64 - Self.tableBits))
        base = h * Self.slots
        ordinal = 0
        if table.keys[h] != key || table.kinds[h] != kind {
            table.keys[h] = key
            table.kinds[h] = kind
            (table.previous + base).update(repeating: 0, count: Self.slots)
        }
    }

    /// The integer the next place had in the context's previous payload (0 when none).
    @inline(__always) var predicted: Int64 { ordinal < Self.slots ? table.previous[base + ordinal] : 0 }

    /// Remembers the next place's integer.
    @inline(__always) mutating func record(_ value: Int64) {
        if ordinal < Self.slots { table.previous[base + ordinal] = value }
        ordinal += 1
    }
}

/// Where a stored payload's integers come from when it is expanded: inline after their tag
/// (encoding 0) or, in order, from the block's integer column (encoding 1).
struct StoredIntegers {
    var column: ByteCursor?
    var contexts = PayloadIntegers()
    /// The context of the payload being expanded, entered at its first integer: the encoder enters
    /// a context only for a payload that has integers, and entering one can evict another that
    /// shares its table slot, so a payload without integers must leave the table as it is.
    private var pending: (pid: UInt32, kind: UInt8, mfa: UInt32)?

    init(column: ByteCursor?) { self.column = column }

    /// Reading with the table `contexts` (reset here: a block decodes on its own).
    init(column: ByteCursor?, contexts: PayloadIntegers) {
        self.column = column
        self.contexts = contexts
        self.contexts.reset()
    }

    static var inline: StoredIntegers { StoredIntegers(column: nil) }

    /// The event whose compacted payload is expanded next.
    @inline(__always) mutating func expect(pid: UInt32, kind: UInt8, mfa: UInt32) {
        pending = (pid, kind, mfa)
    }

    /// The next integer of the column; nil when the column is exhausted or damaged.
    @inline(__always) mutating func next() -> Int64? {
        if let p = pending {
            contexts.begin(pid: p.pid, kind: p.kind, mfa: p.mfa)
            pending = nil
        }
        guard let zz = column?.varint() else { return nil }
        let value = contexts.predicted &+ unzigzag(zz)
        contexts.record(value)
        return value
    }
}
