// `--redact`: rewrites a term to its shape — tuples, lists and maps keep their structure and atoms,
// pids, ports and references stay (they are identities, not data); numbers become 0, binaries and
// strings become empty, funs become the atom 'fun'.

enum PayloadShape {
    static func write(_ scan: inout ETFScan, into out: inout [UInt8], depth: Int) {
        let start = scan.offset
        guard depth < 64, let tag = scan.peek() else {
            out.append(contentsOf: [100, 0, 3, 46, 46, 46])  // '...'
            _ = scan.skipTerm()
            return
        }
        switch tag {
        case 97, 98, 110, 111:
            _ = scan.skipTerm()
            out.append(contentsOf: [97, 0])
        case 70, 99:
            _ = scan.skipTerm()
            out.append(contentsOf: [70, 0, 0, 0, 0, 0, 0, 0, 0])
        case 109, 77:
            _ = scan.skipTerm()
            out.append(contentsOf: [109, 0, 0, 0, 0])
        case 107:
            _ = scan.skipTerm()
            out.append(106)
        case 104, 105:
            guard let arity = scan.tupleArity() else { return }
            if arity < 256 { out.append(contentsOf: [104, UInt8(arity)]) } else {
                out.append(105)
                appendU32(UInt32(arity), &out)
            }
            for _ in 0..<arity { write(&scan, into: &out, depth: depth + 1) }
        case 108:
            _ = scan.u8()
            guard let n = scan.u32() else { return }
            out.append(108)
            appendU32(n, &out)
            for _ in 0..<Int(n) + 1 { write(&scan, into: &out, depth: depth + 1) }
        case 116:
            _ = scan.u8()
            guard let n = scan.u32() else { return }
            out.append(116)
            appendU32(n, &out)
            for _ in 0..<Int(n) * 2 { write(&scan, into: &out, depth: depth + 1) }
        case 112, 117:
            _ = scan.skipTerm()
            out.append(contentsOf: [100, 0, 3, 102, 117, 110])  // 'fun'
        default:
            // atoms, pids, ports, references, exports, []: copied as they are.
            guard scan.skipTerm() else { return }
            out.append(contentsOf: scan.slice(start, scan.offset))
        }
    }

    static func appendU32(_ value: UInt32, _ out: inout [UInt8]) {
        out.append(UInt8(value >> 24))
        out.append(UInt8(truncatingIfNeeded: value >> 16))
        out.append(UInt8(truncatingIfNeeded: value >> 8))
        out.append(UInt8(truncatingIfNeeded: value))
    }
}
