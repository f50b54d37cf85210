// One hash of a byte string for every in-memory table over raw bytes: the dictionaries' RawTable
// (atoms, pids, functions), the block encoder's recent-payload copies, and the analysis pairing a
// send's message with its receive. Eight bytes a step (a multiply and a fold each), the tail as one
// word. Never stored on disk: it may change between builds.

public enum ByteHash {
    @inlinable public static func of(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(bytes.count)
        guard let base = bytes.baseAddress else { return h }
        var i = 0
        let n = bytes.count
        while i + 8 <= n {
            let word = base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            h = (h ^ word) &* 0xBF58_476D_1CE4_E5B9
            h ^= h >> 29
            i += 8
        }
        // The last 1 to 7 bytes in one or two loads: the 8 bytes that end the input (overlapping
        // the last word) when there are 8, else two 4-byte loads, else byte by byte.
        var tail: UInt64 = 0
        if i < n {
            if n >= 8 {
                tail = base.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
            } else if n >= 4 {
                tail = UInt64(base.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
                    | UInt64(base.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self)) << 32
            } else {
                var shift: UInt64 = 0
                while i < n {
                    tail |= UInt64(base.load(fromByteOffset: i, as: UInt8.self)) << shift
                    shift += 8
                    i += 1
                }
            }
        }
        // Two multiply-and-fold rounds: the tail's last bytes land in the product's top bits,
        // and the low bits (which tables index by) must depend on them too.
        h = (h ^ tail) &* 0x94D0_49BB_1331_11EB
        h ^= h >> 32
        h = h &* 0xBF58_476D_1CE4_E5B9
        h ^= h >> 29
        return h
    }
}
