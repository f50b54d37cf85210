// An open-addressing hash table from byte strings (raw ETF of atoms, pids, functions) to ids, so
// the ingest path interns without allocating: keys are copied into one arena on first sight only.

@usableFromInline
struct RawTable {
    /// Where an entry's key is in the arena, and its value: one array, so a hit reads one line of it.
    @usableFromInline struct Entry {
        @usableFromInline var offset: UInt32
        @usableFromInline var length: UInt32
        @usableFromInline var value: UInt32
    }

    @usableFromInline var slots: [UInt64]  // (hash high 32 | entry index + 1), 0 = empty
    @usableFromInline var entries: [Entry] = []
    @usableFromInline var arena: [UInt8] = []
    @usableFromInline var mask: Int

    init(capacity: Int = 1024) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slots = Array(repeating: 0, count: size)
        mask = size - 1
    }

    @inlinable static func hash(_ key: UnsafeRawBufferPointer) -> UInt64 { ByteHash.of(key) }

    @inlinable func find(_ key: UnsafeRawBufferPointer) -> UInt32? {
        let h = Self.hash(key)
        let tag = h >> 32
        var index = Int(truncatingIfNeeded: h) & mask
        let mask = self.mask
        return slots.withUnsafeBufferPointer { slots in
            entries.withUnsafeBufferPointer { entries in
                arena.withUnsafeBytes { arenaBytes -> UInt32? in
                    while true {
                        let slot = slots[index]
                        if slot == 0 { return nil }
                        if slot >> 32 == tag {
                            let entry = entries[Int(slot & 0xFFFF_FFFF) - 1]
                            let length = Int(entry.length)
                            if length == key.count {
                                if length == 0
                                    || memcmpRaw(arenaBytes.baseAddress! + Int(entry.offset), key.baseAddress!, length) {
                                    return entry.value
                                }
                            }
                        }
                        index = (index + 1) & mask
                    }
                }
            }
        }
    }

    /// Keys held.
    var count: Int { entries.count }

    /// Forgets every key, keeping the table's size.
    mutating func removeAll() {
        slots.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
        entries.removeAll(keepingCapacity: true)
        arena.removeAll(keepingCapacity: true)
    }

    mutating func insert(_ key: UnsafeRawBufferPointer, value: UInt32) {
        if (entries.count + 1) * 2 > slots.count { grow() }
        let entry = entries.count
        entries.append(Entry(offset: UInt32(arena.count), length: UInt32(key.count), value: value))
        arena.append(contentsOf: key)
        place(hash: Self.hash(key), entry: entry)
    }

    private mutating func place(hash h: UInt64, entry: Int) {
        var index = Int(truncatingIfNeeded: h) & mask
        let mask = self.mask
        slots.withUnsafeMutableBufferPointer { slots in
            while slots[index] != 0 { index = (index + 1) & mask }
            slots[index] = (h >> 32) << 32 | UInt64(entry + 1)
        }
    }

    private mutating func grow() {
        let size = slots.count * 2
        slots = Array(repeating: 0, count: size)
        mask = size - 1
        let arenaCopy = arena
        arenaCopy.withUnsafeBytes { bytes in
            for index in 0..<entries.count {
                let entry = entries[index]
                let key = UnsafeRawBufferPointer(rebasing: bytes[Int(entry.offset)..<Int(entry.offset + entry.length)])
                place(hash: Self.hash(key), entry: index)
            }
        }
    }
}

@inlinable func memcmpRaw(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ n: Int) -> Bool {
    var i = 0
    while i + 8 <= n {
        if a.loadUnaligned(fromByteOffset: i, as: UInt64.self) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) {
            return false
        }
        i += 8
    }
    if i < n && n >= 8 {
        // The last bytes as one word that overlaps the ones compared already.
        return a.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
            == b.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
    }
    while i < n {
        if a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) { return false }
        i += 1
    }
    return true
}
