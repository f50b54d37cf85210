// `--redact`: rewrites a term to its shape — tuples, lists and maps keep their structure and atoms,
// pids, ports and references stay (they are identities, not data); numbers become 0, binaries and
// strings become empty, funs become the atom 'fun'. Walks the bytes with BeamTerm's TermCursor;
// nesting beyond 64 levels becomes '...'.
import BeamTerm

enum PayloadShape {
    static let maxDepth = 64

    /// Appends the shape of the term at the cursor; false (output incomplete) when it is malformed.
    @discardableResult
    static func write(_ scan: inout TermCursor, into out: inout [UInt8], depth: Int) -> Bool {
        let start = scan.offset
        guard let tag = scan.peek() else { return false }
        guard depth < maxDepth else {
            out.append(contentsOf: [100, 0, 3, 46, 46, 46])  // '...'
            return scan.skipTerm()
        }
        switch tag {
        case 97, 98, 110, 111:
            out.append(contentsOf: [97, 0])
            return scan.skipTerm()
        case 70, 99:
            out.append(contentsOf: [70, 0, 0, 0, 0, 0, 0, 0, 0])
            return scan.skipTerm()
        case 109, 77:
            out.append(contentsOf: [109, 0, 0, 0, 0])
            return scan.skipTerm()
        case 107:
            out.append(106)
            return scan.skipTerm()
        case 104, 105:
            guard let arity = scan.tupleArity(), arity <= scan.remaining else { return false }
            if arity < 256 { out.append(contentsOf: [104, UInt8(arity)]) } else {
                out.append(105)
                appendU32(UInt32(arity), &out)
            }
            for _ in 0..<arity where !write(&scan, into: &out, depth: depth + 1) { return false }
            return true
        case 108:
            guard let n = scan.listHeader(), n < scan.remaining else { return false }
            out.append(108)
            appendU32(UInt32(n), &out)
            for _ in 0..<(n + 1) where !write(&scan, into: &out, depth: depth + 1) { return false }
            return true
        case 116:
            _ = scan.u8()
            guard let n = scan.u32(), Int(n) * 2 <= scan.remaining else { return false }
            out.append(116)
            appendU32(n, &out)
            for _ in 0..<Int(n) * 2 where !write(&scan, into: &out, depth: depth + 1) { return false }
            return true
        case 112, 117:
            out.append(contentsOf: [100, 0, 3, 102, 117, 110])  // 'fun'
            return scan.skipTerm()
        default:
            // atoms, pids, ports, references, exports, []: copied as they are.
            guard scan.skipTerm() else { return false }
            out.append(contentsOf: scan.slice(start, scan.offset))
            return true
        }
    }

    static func appendU32(_ value: UInt32, _ out: inout [UInt8]) {
        out.append(UInt8(value >> 24))
        out.append(UInt8(truncatingIfNeeded: value >> 16))
        out.append(UInt8(truncatingIfNeeded: value >> 8))
        out.append(UInt8(truncatingIfNeeded: value))
    }
}
