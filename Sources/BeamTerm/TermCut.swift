// Cuts terms too big to keep to what `io_lib:format("~P", [Term, Depth])` shows of them, as External
// Term Format bytes: a tuple keeps its first Depth - 1 elements, the I-th at depth Depth - I; a list
// likewise, its rest becoming a '$beamtrace_cut' tail; a map keeps Depth - 1 pairs at depth Depth - 1;
// at depth 1 a container keeps nothing but the mark. A binary keeps the bytes `~P` prints (up to
// 4 * (Depth - 1) of text, Depth - 1 bytes otherwise) as `{'$beamtrace_cut', binary, Prefix}`; a
// printable string (which `~P` prints whole) keeps 4 * (Depth - 1) characters, so a cut term stays
// small. The depth is the largest up to `maxDepth` whose result fits the size limit. The agent
// (beamtrace_agent:cut/2) implements the same rules on the node; docs/FORMAT.md has the layout.

public enum TermCut {
    /// The deepest cut tried (an event printer shows 20 levels).
    public static let maxDepth = 20

    /// Appends `0xF4, Depth` and the terms at `ranges` of `bytes`, each cut to `~P` depth Depth, for
    /// the largest Depth ≤ `maxDepth` whose terms fit in `limit` bytes with the header; Depth 0 keeps
    /// no term at all. False, with `out` unchanged, when a range is not one whole term.
    public static func cut(_ bytes: UnsafeRawBufferPointer, ranges: [Range<Int>], limit: Int,
                           into out: inout [UInt8]) -> Bool {
        let start = out.count
        let limit = limit - 2  // the header's two bytes count too
        // Sizes grow with the depth: search for the largest depth that fits.
        var low = 0
        var high = maxDepth
        var scratch: [UInt8] = []
        scratch.reserveCapacity(limit + 64)
        while low < high {
            let mid = (low + high + 1) / 2
            scratch.removeAll(keepingCapacity: true)
            switch attempt(bytes, ranges: ranges, depth: mid, budget: limit, into: &scratch) {
            case .fits: low = mid
            case .tooBig: high = mid - 1
            case .malformed: return false
            }
        }
        out.append(0xF4)
        out.append(UInt8(low))
        if low == 0 { return true }  // nothing fits: the header alone (every term prints as `...`)
        scratch.removeAll(keepingCapacity: true)
        guard attempt(bytes, ranges: ranges, depth: low, budget: .max, into: &scratch) != .malformed else {
            out.removeSubrange(start...)
            return false
        }
        out.append(contentsOf: scratch)
        return true
    }

    enum Outcome { case fits, tooBig, malformed }

    static func attempt(_ bytes: UnsafeRawBufferPointer, ranges: [Range<Int>], depth: Int, budget: Int,
                        into out: inout [UInt8]) -> Outcome {
        for range in ranges {
            var walk = Walk(cursor: TermCursor(UnsafeRawBufferPointer(rebasing: bytes[range])), budget: budget)
            guard walk.term(depth: depth, into: &out) else { return walk.over ? .tooBig : .malformed }
            if out.count > budget { return .tooBig }
        }
        return .fits
    }

    /// '$beamtrace_cut' as OTP 25's term_to_binary writes it (ATOM_EXT).
    static let mark: [UInt8] = [100, 0, 14] + Array("$beamtrace_cut".utf8)
    static let binaryAtom: [UInt8] = [100, 0, 6] + Array("binary".utf8)

    static func appendMark(_ out: inout [UInt8]) { out.append(contentsOf: mark) }

    static func appendU32(_ value: Int, _ out: inout [UInt8]) {
        out.append(UInt8(truncatingIfNeeded: value >> 24))
        out.append(UInt8(truncatingIfNeeded: value >> 16))
        out.append(UInt8(truncatingIfNeeded: value >> 8))
        out.append(UInt8(truncatingIfNeeded: value))
    }

    static func appendTupleHeader(_ n: Int, _ out: inout [UInt8]) {
        if n < 256 {
            out.append(104)
            out.append(UInt8(n))
        } else {
            out.append(105)
            appendU32(n, &out)
        }
    }

    /// A cut binary: `{'$beamtrace_cut', binary, Prefix}`.
    static func appendCutBinary(_ prefix: UnsafeRawBufferPointer, _ out: inout [UInt8]) {
        out.append(contentsOf: [104, 3])
        out.append(contentsOf: mark)
        out.append(contentsOf: binaryAtom)
        out.append(109)
        appendU32(prefix.count, &out)
        out.append(contentsOf: prefix)
    }

    /// io_lib's printable latin1 characters: 32..126, 160..255, \b \t \n \v \f \r \e.
    @inline(__always)
    static func isPrintable(_ c: Int64) -> Bool {
        (32...126).contains(c) || (160...255).contains(c) || (8...13).contains(c) || c == 27
    }

    struct Walk {
        var cursor: TermCursor
        let budget: Int
        var over = false

        /// Appends the term at the cursor cut to `depth` (≥ 1); false when malformed or over budget.
        mutating func term(depth: Int, into out: inout [UInt8]) -> Bool {
            if out.count > budget {
                over = true
                return false
            }
            let start = cursor.offset
            guard let tag = cursor.peek() else { return false }
            switch tag {
            case ExternalTag.smallTuple, ExternalTag.largeTuple:
                guard let arity = cursor.tupleArity() else { return false }
                if arity == 0 {
                    out.append(contentsOf: [104, 0])
                    return true
                }
                let kept = min(arity, depth - 1)
                appendTupleHeader(kept + (kept < arity ? 1 : 0), &out)
                for i in 0..<kept where !term(depth: depth - 1 - i, into: &out) { return false }
                if kept < arity {
                    appendMark(&out)
                    for _ in kept..<arity where !cursor.skipTerm() { return false }
                }
                return true
            case ExternalTag.nil:
                _ = cursor.u8()
                out.append(106)
                return true
            case ExternalTag.string:
                _ = cursor.u8()
                guard let n = cursor.u16(), cursor.remaining >= n else { return false }
                let chars = cursor.slice(cursor.offset, cursor.offset + n)
                _ = cursor.skip(n)
                if depth == 1 && n > 0 {
                    out.append(108)
                    appendU32(1, &out)
                    appendMark(&out)
                    out.append(106)
                    return true
                }
                if chars.allSatisfy({ isPrintable(Int64($0)) }) {
                    return string(chars.map { Int64($0) }, proper: true, depth: depth, into: &out)
                }
                if n <= depth - 1 {
                    out.append(contentsOf: cursor.slice(start, cursor.offset))
                    return true
                }
                return smallIntegers(chars, depth: depth, into: &out)
            case ExternalTag.list:
                return list(depth: depth, into: &out)
            case ExternalTag.map:
                _ = cursor.u8()
                guard let n = cursor.u32().map(Int.init), n * 2 <= cursor.remaining else { return false }
                if n == 0 {
                    out.append(contentsOf: [116, 0, 0, 0, 0])
                    return true
                }
                let kept = min(n, depth - 1)
                out.append(116)
                appendU32(kept + (kept < n ? 1 : 0), &out)
                for _ in 0..<kept {
                    guard term(depth: depth - 1, into: &out), term(depth: depth - 1, into: &out) else { return false }
                }
                if kept < n {
                    appendMark(&out)
                    appendMark(&out)
                    for _ in 0..<(2 * (n - kept)) where !cursor.skipTerm() { return false }
                }
                return true
            case ExternalTag.binary, ExternalTag.bitBinary:
                _ = cursor.u8()
                guard let n = cursor.u32().map(Int.init) else { return false }
                let bits = tag == ExternalTag.bitBinary ? cursor.u8() : nil
                guard cursor.remaining >= n else { return false }
                let bytes = cursor.slice(cursor.offset, cursor.offset + n)
                _ = cursor.skip(n)
                if n == 0 {
                    out.append(contentsOf: cursor.slice(start, cursor.offset))
                    return true
                }
                if depth == 1 {
                    appendCutBinary(UnsafeRawBufferPointer(rebasing: bytes[0..<0]), &out)
                    return true
                }
                let d1 = depth - 1
                if bits != nil && bits != 8 {
                    // A bit string is never text to ~P: it shows d1 bytes.
                    if n <= d1 { out.append(contentsOf: cursor.slice(start, cursor.offset)) } else {
                        appendCutBinary(UnsafeRawBufferPointer(rebasing: bytes[0..<d1]), &out)
                    }
                    return true
                }
                let shown = min(4 * d1, n)
                var printable = 0
                while printable < shown && isPrintable(Int64(bytes[printable])) { printable += 1 }
                if printable == shown {
                    if shown == n { out.append(contentsOf: cursor.slice(start, cursor.offset)) } else {
                        appendCutBinary(UnsafeRawBufferPointer(rebasing: bytes[0..<shown]), &out)
                    }
                } else if printable >= d1 {
                    appendCutBinary(UnsafeRawBufferPointer(rebasing: bytes[0..<printable]), &out)
                } else if n <= d1 {
                    out.append(contentsOf: cursor.slice(start, cursor.offset))
                } else {
                    appendCutBinary(UnsafeRawBufferPointer(rebasing: bytes[0..<d1]), &out)
                }
                return true
            default:
                // Atoms, numbers, pids, ports, references, funs, exports: kept as they are.
                guard cursor.skipTerm() else { return false }
                out.append(contentsOf: cursor.slice(start, cursor.offset))
                return true
            }
        }

        /// A STRING_EXT that is not text: a list of small integers.
        mutating func smallIntegers(_ chars: UnsafeRawBufferPointer, depth: Int, into out: inout [UInt8]) -> Bool {
            let kept = min(chars.count, depth - 1)
            out.append(108)
            appendU32(kept, &out)
            for i in 0..<kept { out.append(contentsOf: [97, chars[i]]) }
            if kept < chars.count { appendMark(&out) } else { out.append(106) }
            return true
        }

        /// A printable string (whole, or cut to 4 * (depth - 1) characters).
        func string(_ chars: [Int64], proper: Bool, depth: Int, into out: inout [UInt8]) -> Bool {
            if depth == 1 {
                out.append(108)
                appendU32(1, &out)
                appendMark(&out)
                out.append(106)
                return true
            }
            if chars.isEmpty {
                out.append(106)
                return true
            }
            let kept = min(chars.count, 4 * (depth - 1))
            if kept == chars.count && chars.count < 65536 && chars.allSatisfy({ $0 <= 255 }) {
                out.append(107)
                out.append(UInt8(kept >> 8))
                out.append(UInt8(kept & 255))
                for c in chars { out.append(UInt8(c)) }
                return true
            }
            out.append(108)
            appendU32(kept, &out)
            for c in chars.prefix(kept) { out.append(contentsOf: [97, UInt8(c)]) }
            if kept < chars.count { appendMark(&out) } else { out.append(106) }
            return true
        }

        mutating func list(depth: Int, into out: inout [UInt8]) -> Bool {
            _ = cursor.u8()
            guard let n = cursor.u32().map(Int.init), n <= cursor.remaining else { return false }
            // A proper list of printable latin1 integers is a string to ~P.
            var scan = cursor
            var chars: [Int64] = []
            var printable = true
            for _ in 0..<n {
                guard scan.peek() == ExternalTag.smallInteger || scan.peek() == ExternalTag.integer,
                      let c = scan.integer(), isPrintable(c) else { printable = false; break }
                chars.append(c)
            }
            if printable && scan.peek() == ExternalTag.nil {
                _ = scan.u8()
                cursor = scan
                return string(chars, proper: true, depth: depth, into: &out)
            }
            if depth == 1 {
                out.append(108)
                appendU32(1, &out)
                appendMark(&out)
                out.append(106)
                for _ in 0...n where !cursor.skipTerm() { return false }
                return true
            }
            // Element I (from 0) at depth - 1 - I while the running depth is above 1; then the mark.
            let kept = min(n, depth - 1)
            out.append(108)
            appendU32(kept, &out)
            for i in 0..<kept where !term(depth: depth - 1 - i, into: &out) { return false }
            let running = depth - kept
            if kept < n {
                appendMark(&out)
                for _ in kept...n where !cursor.skipTerm() { return false }
                return true
            }
            // The tail: [] as it is; an improper tail at the running depth - 1, or the mark at 1.
            if cursor.peek() == ExternalTag.nil {
                _ = cursor.u8()
                out.append(106)
                return true
            }
            if running <= 1 {
                appendMark(&out)
                return cursor.skipTerm()
            }
            return term(depth: running - 1, into: &out)
        }
    }
}
