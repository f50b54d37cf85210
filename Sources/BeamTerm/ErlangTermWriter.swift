// Prints terms in Erlang syntax straight from their External Term Format bytes into a byte buffer,
// with no `Term` and no `String` per term: the fast path of `Term.erlangText` (same text, same depth
// and width limits, see Term+Printing.swift). Integers, atoms, tuples, lists, strings, binaries and
// pids print from the bytes; rarer parts (floats, bignums, maps, ports, references, funs, non-ASCII
// atoms) are decoded and printed by `ErlangPrinter`. A cut term (see TermCut.swift) prints its cuts
// as `...` the way `io_lib:format("~P")` does. It prints into any `ByteSink`: a `TextBuffer` on hot
// paths (no uniqueness check or reference counting per byte), an `[UInt8]` elsewhere.

public struct ErlangTermWriter: Sendable {
    public let options: ErlangPrintOptions
    let localNode: [UInt8]?
    /// Integers print without the walk: no depth cut and no width cut can touch them (at most 11 characters).
    let plainIntegers: Bool

    public init(options: ErlangPrintOptions = ErlangPrintOptions()) {
        self.options = options
        localNode = options.localNode.map { Array($0.name.utf8) }
        plainIntegers = options.maxDepth != 0 && (options.maxWidth ?? .max) >= 11
    }

    /// Appends the text of the term at `offset` (no version byte) and moves `offset` past it. False,
    /// with `out` and `offset` unchanged, when the bytes there are not one whole term.
    @discardableResult
    public func write(_ bytes: UnsafeRawBufferPointer, offset: inout Int, into out: inout [UInt8]) -> Bool {
        writeTerm(bytes, offset: &offset, into: &out)
    }

    /// `write(_:offset:into:)` into a `TextBuffer` (the fast path of event printing).
    @discardableResult
    public func write(_ bytes: UnsafeRawBufferPointer, offset: inout Int, into out: inout TextBuffer) -> Bool {
        writeTerm(bytes, offset: &offset, into: &out)
    }

    func writeTerm<Out: ByteSink & ~Copyable>(_ bytes: UnsafeRawBufferPointer, offset: inout Int,
                                               into out: inout Out) -> Bool {
        if plainIntegers, offset < bytes.count {
            // The commonest terms of a trace (counters, return values): SMALL_INTEGER_EXT, INTEGER_EXT.
            let tag = bytes[offset]
            if tag == ExternalTag.smallInteger, offset + 2 <= bytes.count {
                NumberText.append(Int64(bytes[offset + 1]), to: &out)
                offset += 2
                return true
            }
            if tag == ExternalTag.integer, offset + 5 <= bytes.count {
                let value = Int32(bitPattern: UInt32(bytes[offset + 1]) << 24 | UInt32(bytes[offset + 2]) << 16
                                  | UInt32(bytes[offset + 3]) << 8 | UInt32(bytes[offset + 4]))
                NumberText.append(Int64(value), to: &out)
                offset += 5
                return true
            }
        }
        let start = out.count
        let depth = options.maxDepth ?? -1
        let budget = options.maxWidth.map { $0 * 4 + 8 } ?? .max
        // The walk borrows the local node's bytes: no reference counting per term.
        func run(_ local: UnsafeRawBufferPointer?, _ out: inout Out) -> Int? {
            var walk = Walk<Out>(local: local, buffer: bytes, cursor: TermCursor(bytes, offset: offset), start: start,
                            budget: budget)
            return walk.term(&out, depth: depth) ? walk.cursor.offset : nil
        }
        let end: Int?
        if let localNode {
            end = localNode.withUnsafeBytes { run($0, &out) }
        } else {
            end = run(nil, &out)
        }
        guard let end else {
            out.truncate(to: start)
            return false
        }
        offset = end
        if let width = options.maxWidth { Self.cut(&out, from: start, width: width) }
        return true
    }

    /// Appends the text of a term value (through the same rules).
    public func write(_ term: Term, into out: inout [UInt8]) {
        out.append(contentsOf: term.erlangText(options).utf8)
    }

    /// Text longer than `width` characters keeps its first `width - 3` and ends in `...`.
    static func cut<Out: ByteSink & ~Copyable>(_ out: inout Out, from start: Int, width: Int) {
        if out.count - start <= width { return }  // no more characters than bytes
        var scalars = 0
        var keep = -1
        let limit = max(0, width - 3)
        for i in start..<out.count where out.byte(at: i) & 0xC0 != 0x80 {
            if scalars == limit { keep = i }
            scalars += 1
            if scalars > width { break }
        }
        guard scalars > width else { return }
        out.truncate(to: keep < 0 ? out.count : keep)
        ErlangTermWriter.appendDots(&out)
    }

    struct Walk<Out: ByteSink & ~Copyable> {
        let local: UnsafeRawBufferPointer?
        let buffer: UnsafeRawBufferPointer
        var cursor: TermCursor
        let start: Int
        /// Bytes after which the width limit has surely been passed (4 bytes per character at most).
        let budget: Int

        func full(_ count: Int) -> Bool { count - start > budget }

        func byte(_ at: Int) -> UInt8 { buffer.load(fromByteOffset: at, as: UInt8.self) }

        /// `depth` counts down as in ErlangPrinter; -1 is unlimited.
        mutating func term(_ out: inout Out, depth: Int) -> Bool {
            guard let tag = cursor.peek() else { return false }
            if depth == 0 {
                ErlangTermWriter.appendDots(&out)
                return cursor.skipTerm()
            }
            let next = depth < 0 ? -1 : depth - 1
            let at = cursor.offset
            switch tag {
            case ExternalTag.smallInteger, ExternalTag.integer:
                guard let value = cursor.integer() else { return false }
                NumberText.append(value, to: &out)
                return true
            case ExternalTag.atom, ExternalTag.smallAtom, ExternalTag.atomUTF8, ExternalTag.smallAtomUTF8:
                guard let text = cursor.atomText() else { return false }
                if CutMarker.isMarker(buffer, text.start, text.length) {
                    ErlangTermWriter.appendDots(&out)
                    return true
                }
                if ErlangTermWriter.isASCII(buffer, text.start, text.length) {
                    ErlangTermWriter.atom(buffer, text.start, text.length, into: &out)
                    return true
                }
                cursor.offset = at
                return fallback(&out, depth: depth)
            case ExternalTag.smallTuple, ExternalTag.largeTuple:
                guard let arity = cursor.tupleArity() else { return false }
                if arity == 3, isCutBinary() { return cutBinary(&out, depth: depth) }
                out.append(123)
                guard sequence(&out, count: arity, depth: depth) else { return false }
                out.append(125)
                return true
            case ExternalTag.nil:
                _ = cursor.u8()
                out.append(91); out.append(93)
                return true
            case ExternalTag.string:
                _ = cursor.u8()
                guard let n = cursor.u16(), cursor.remaining >= n else { return false }
                let bytes = cursor.slice(cursor.offset, cursor.offset + n)
                _ = cursor.skip(n)
                // At depth 1 ~P shows no element, not even of a string.
                if depth == 1 && n > 0 {
                    out.append(91); ErlangTermWriter.appendDots(&out); out.append(93)
                    return true
                }
                if n > 0, bytes.allSatisfy({ ErlangPrinter.isPrintableLatin1(UInt32($0)) }) {
                    ErlangTermWriter.quoted(bytes, quote: 34, into: &out)
                } else if n == 0 {
                    out.append(91); out.append(93)
                } else {
                    // As a list of small integers, element by element as ErlangPrinter does.
                    out.append(91)
                    for (i, b) in bytes.enumerated() {
                        if depth > 0 && i >= depth - 1 {
                            if i > 0 { out.append(124) }; ErlangTermWriter.appendDots(&out)
                            out.append(93)
                            return true
                        }
                        if i > 0 { out.append(44) }
                        if next == 0 { ErlangTermWriter.appendDots(&out) } else { NumberText.append(Int64(b), to: &out) }
                    }
                    out.append(93)
                }
                return true
            case ExternalTag.list:
                return list(&out, depth: depth)
            case ExternalTag.binary:
                _ = cursor.u8()
                guard let n = cursor.u32().map(Int.init), cursor.remaining >= n else { return false }
                let bytes = cursor.slice(cursor.offset, cursor.offset + n)
                _ = cursor.skip(n)
                out.append(60); out.append(60)
                if let shown = ErlangPrinter.binaryShown(n, depth: depth, {
                    ErlangPrinter.isPrintableLatin1(UInt32(bytes[$0]))
                }) {
                    binaryBody(UnsafeRawBufferPointer(rebasing: bytes[0..<shown]), depth: -1, cut: true, into: &out)
                } else {
                    binaryBody(bytes, depth: depth, cut: false, into: &out)
                }
                out.append(62); out.append(62)
                return true
            case ExternalTag.newPid, ExternalTag.pid:
                guard let pid = cursor.pid() else { return false }
                out.append(60)
                nodePart(pid.nodeStart, pid.nodeLength, latin1: pid.nodeIsLatin1, into: &out)
                out.append(46)
                NumberText.append(Int64(pid.id), to: &out)
                out.append(46)
                NumberText.append(Int64(pid.serial), to: &out)
                out.append(62)
                return true
            default:
                return fallback(&out, depth: depth)
            }
        }

        /// Tuple elements (or list elements without their tail) as ErlangPrinter's writeSequence.
        mutating func sequence(_ out: inout Out, count: Int, depth: Int) -> Bool {
            for i in 0..<count {
                if depth > 0 && i >= depth - 1 {
                    if i > 0 { out.append(44) }; ErlangTermWriter.appendDots(&out)
                    for _ in i..<count where !cursor.skipTerm() { return false }
                    return true
                }
                if i > 0 { out.append(44) }
                // As ~P: the I-th element at depth Depth - 1 - I.
                guard term(&out, depth: depth < 0 ? -1 : depth - 1 - i) else { return false }
                if full(out.count) { return skipRest(count - i - 1) }
            }
            return true
        }

        mutating func skipRest(_ n: Int) -> Bool {
            for _ in 0..<max(0, n) where !cursor.skipTerm() { return false }
            return true
        }

        mutating func list(_ out: inout Out, depth: Int) -> Bool {
            _ = cursor.u8()
            guard let n = cursor.u32().map(Int.init), n <= cursor.remaining else { return false }
            if depth == 1 {
                out.append(91); ErlangTermWriter.appendDots(&out); out.append(93)
                return skipRest(n + 1)
            }
            let elementsStart = cursor.offset
            // A list of printable latin1 integers with a proper tail prints as a string.
            var printable = n > 0
            var scan = cursor
            var i = 0
            while printable && i < n {
                guard let tag = scan.peek(), tag == ExternalTag.smallInteger || tag == ExternalTag.integer,
                      let value = scan.integer(), value >= 0, value <= 255,
                      ErlangPrinter.isPrintableLatin1(UInt32(value)) else { printable = false; break }
                i += 1
            }
            let cutString = printable && scan.peek() != ExternalTag.nil && {
                var c = scan
                guard let text = c.atomText() else { return false }
                return CutMarker.isMarker(buffer, text.start, text.length)
            }()
            if printable, scan.peek() == ExternalTag.nil || cutString {
                guard scan.skipTerm() else { return false }
                out.append(34)
                var c = cursor
                for _ in 0..<n {
                    guard let value = c.integer() else { return false }
                    ErlangTermWriter.escaped(UInt32(value), quote: 34, into: &out)
                }
                out.append(34)
                if cutString { ErlangTermWriter.appendDots(&out) }
                cursor = scan
                return true
            }
            cursor.offset = elementsStart
            // Element by element: [a,b|...] when the depth cuts it, [a|Tail] when improper.
            out.append(91)
            for k in 0..<n {
                if depth > 0 && k >= depth - 1 {
                    if k > 0 { out.append(124) }; ErlangTermWriter.appendDots(&out)
                    guard skipRest(n - k + 1) else { return false }
                    out.append(93)
                    return true
                }
                if k > 0 { out.append(44) }
                guard term(&out, depth: depth < 0 ? -1 : depth - 1 - k) else { return false }
                if full(out.count) { return skipRest(n - k) }
            }
            if cursor.peek() == ExternalTag.nil {
                _ = cursor.u8()
            } else {
                if isMarkerHere() {
                    guard cursor.skipTerm() else { return false }
                    out.append(124); ErlangTermWriter.appendDots(&out)
                } else {
                    out.append(124)
                    guard term(&out, depth: depth < 0 ? -1 : depth - 1 - n) else { return false }
                }
            }
            out.append(93)
            return true
        }

        func isMarkerHere() -> Bool {
            var c = cursor
            guard let text = c.atomText() else { return false }
            return CutMarker.isMarker(buffer, text.start, text.length)
        }

        /// `{'$beamtrace_cut', binary, Prefix}`: a binary cut to its first bytes.
        func isCutBinary() -> Bool {
            var c = cursor
            guard let text = c.atomText(), CutMarker.isMarker(buffer, text.start, text.length),
                  let kind = c.atomText() else { return false }
            return ErlangTermWriter.equals(buffer, kind.start, kind.length, "binary") && c.peek() == ExternalTag.binary
        }

        mutating func cutBinary(_ out: inout Out, depth: Int) -> Bool {
            _ = cursor.atomText()
            _ = cursor.atomText()
            _ = cursor.u8()
            guard let n = cursor.u32().map(Int.init), cursor.remaining >= n else { return false }
            let bytes = cursor.slice(cursor.offset, cursor.offset + n)
            _ = cursor.skip(n)
            out.append(60); out.append(60)
            binaryBody(bytes, depth: depth, cut: true, into: &out)
            out.append(62); out.append(62)
            return true
        }

        /// As ErlangPrinter.writeBinaryBody; a cut binary ends in `...` as `~P` prints it.
        func binaryBody(_ bytes: UnsafeRawBufferPointer, depth: Int, cut: Bool, into out: inout Out) {
            if bytes.isEmpty {
                if cut { ErlangTermWriter.appendDots(&out) }
                return
            }
            // One pass: printable ASCII prints as it is; a control character is text in neither
            // latin1 nor UTF-8, so the bytes print as numbers without trying either.
            var ascii = true
            var control = false
            for b in bytes {
                if b >= 128 { ascii = false } else if !ErlangPrinter.isPrintableLatin1(UInt32(b)) { control = true; break }
            }
            if control {
                writeBytes(bytes, depth: depth, cut: cut, into: &out)
                return
            }
            if ascii {
                ErlangTermWriter.quoted(bytes, quote: 34, into: &out)
                if cut { ErlangTermWriter.appendDots(&out) }
                return
            }
            let array = Array(bytes)
            if let scalars = ErlangPrinter.printableUTF8(array) {
                out.append(utf8: ErlangString.quoted(scalars, quote: "\""))
                if scalars.count != array.count { out.append(utf8: "/utf8") }
                if cut { ErlangTermWriter.appendDots(&out) }
                return
            }
            if ErlangPrinter.isPrintableLatin1(array) {
                ErlangTermWriter.quoted(bytes, quote: 34, into: &out)
                if cut { ErlangTermWriter.appendDots(&out) }
                return
            }
            writeBytes(bytes, depth: depth, cut: cut, into: &out)
        }

        /// A binary as numbers; a cut one (it keeps just the bytes `~P` shows) ends in `,...`.
        func writeBytes(_ bytes: UnsafeRawBufferPointer, depth: Int, cut: Bool, into out: inout Out) {
            var shown = bytes.count
            var dots = cut
            if depth > 0 && shown > depth - 1 {
                shown = max(0, depth - 1)
                dots = true
            }
            for i in 0..<shown {
                if i > 0 { out.append(44) }
                NumberText.append(Int64(bytes[i]), to: &out)
            }
            if dots { if shown > 0 { out.append(44) }; ErlangTermWriter.appendDots(&out) }
        }

        func nodePart(_ start: Int, _ length: Int, latin1: Bool, into out: inout Out) {
            if let local, local.count == length,
               memcmpEqual(local.baseAddress, buffer.baseAddress.map { $0 + start }, length) {
                out.append(48)
                return
            }
            for i in start..<(start + length) {
                let b = byte(i)
                if latin1 && b >= 128 {
                    out.append(0xC0 | (b >> 6))
                    out.append(0x80 | (b & 0x3F))
                } else {
                    out.append(b)
                }
            }
        }

        /// Decodes the term here and prints it with ErlangPrinter.
        mutating func fallback(_ out: inout Out, depth: Int) -> Bool {
            var offset = cursor.offset
            guard let term = try? TermDecoder().decode(buffer, offset: &offset, versioned: false) else { return false }
            cursor.offset = offset
            let node = local.map { Atom(String(decoding: $0, as: UTF8.self)) }
            var printer = ErlangPrinter(options: ErlangPrintOptions(localNode: node))
            printer.write(term, depth: depth)
            out.append(utf8: printer.finish())
            return true
        }
    }

    @inline(__always)
    static func appendDots<Out: ByteSink & ~Copyable>(_ out: inout Out) {
        out.append(46)
        out.append(46)
        out.append(46)
    }

    static func isASCII(_ buffer: UnsafeRawBufferPointer, _ start: Int, _ length: Int) -> Bool {
        for i in start..<(start + length) where buffer.load(fromByteOffset: i, as: UInt8.self) >= 128 { return false }
        return true
    }

    static func isASCII(_ bytes: UnsafeRawBufferPointer) -> Bool { isASCII(bytes, 0, bytes.count) }

    static func equals(_ buffer: UnsafeRawBufferPointer, _ start: Int, _ length: Int, _ text: StaticString) -> Bool {
        guard length == text.utf8CodeUnitCount else { return false }
        for i in 0..<length where buffer.load(fromByteOffset: start + i, as: UInt8.self) != text.utf8Start[i] {
            return false
        }
        return true
    }

    /// An ASCII atom, quoted as io_lib:write_atom/1 does.
    static func atom<Out: ByteSink & ~Copyable>(_ buffer: UnsafeRawBufferPointer, _ start: Int, _ length: Int, into out: inout Out) {
        let bytes = UnsafeRawBufferPointer(rebasing: buffer[start..<(start + length)])
        if !atomNeedsQuotes(bytes) {
            out.append(bytes: bytes)
        } else {
            quoted(bytes, quote: 39, into: &out)
        }
    }

    static func atomNeedsQuotes(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let first = bytes.first, first >= 97 && first <= 122 else { return true }
        for b in bytes.dropFirst() {
            let ok = (b >= 97 && b <= 122) || (b >= 65 && b <= 90) || (b >= 48 && b <= 57) || b == 95 || b == 64
            if !ok { return true }
        }
        guard bytes.count >= 2 && bytes.count <= 7 else { return false }
        return isReservedWord(bytes)
    }

    /// `ErlangAtom.reservedWords`, compared byte by byte (no String per atom).
    static let reservedWords: [StaticString] = [
        "after", "and", "andalso", "band", "begin", "bnot", "bor", "bsl", "bsr", "bxor", "case", "catch",
        "cond", "div", "end", "fun", "if", "let", "not", "of", "or", "orelse", "receive", "rem", "try",
        "when", "xor",
    ]

    static func isReservedWord(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress else { return false }
        for word in reservedWords where word.utf8CodeUnitCount == bytes.count
            && memcmpEqual(base, UnsafeRawPointer(word.utf8Start), bytes.count) {
            return true
        }
        return false
    }

    /// Latin-1 bytes (each one character) quoted as ErlangString.quoted does.
    static func quoted<Out: ByteSink & ~Copyable>(_ bytes: UnsafeRawBufferPointer, quote: UInt8, into out: inout Out) {
        out.append(quote)
        for b in bytes { escaped(UInt32(b), quote: quote, into: &out) }
        out.append(quote)
    }

    /// One character (0...255) of a quoted string or atom.
    @inline(__always)
    static func escaped<Out: ByteSink & ~Copyable>(_ c: UInt32, quote: UInt8, into out: inout Out) {
        switch c {
        case UInt32(quote): out.append(92); out.append(quote)
        case 92: out.append(92); out.append(92)
        case 32...126: out.append(UInt8(c))
        case 160...255:
            out.append(UInt8(0xC0 | (c >> 6)))
            out.append(UInt8(0x80 | (c & 0x3F)))
        case 10: out.append(92); out.append(110)
        case 13: out.append(92); out.append(114)
        case 9: out.append(92); out.append(116)
        case 11: out.append(92); out.append(118)
        case 8: out.append(92); out.append(98)
        case 12: out.append(92); out.append(102)
        case 27: out.append(92); out.append(101)
        case 127: out.append(92); out.append(100)
        default:
            out.append(92)
            out.append(UInt8(48 + (c >> 6)))
            out.append(UInt8(48 + ((c >> 3) & 7)))
            out.append(UInt8(48 + (c & 7)))
        }
    }
}

@inline(__always)
func memcmpEqual(_ a: UnsafeRawPointer?, _ b: UnsafeRawPointer?, _ n: Int) -> Bool {
    guard n > 0 else { return true }
    guard let a, let b else { return false }
    for i in 0..<n where a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) {
        return false
    }
    return true
}

/// Decimal integers into bytes.
public enum NumberText {
    /// "00" "01" ... "99": two digits per division.
    @inlinable static var pairs: StaticString {
        """
        00010203040506070809101112131415161718192021222324252627282930313233343536373839\
        40414243444546474849505152535455565758596061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899
        """
    }

    @inlinable @inline(__always)
    public static func append<Out: ByteSink & ~Copyable>(_ value: Int64, to out: inout Out) {
        if value >= 0 && value < 10 {
            out.append(UInt8(truncatingIfNeeded: 48 + value))
            return
        }
        if value < 0 { out.append(45) }
        appendDigits(value.magnitude, to: &out)
    }

    /// The digits of `value`, at most 20.
    @inlinable @inline(__always)
    public static func appendDigits<Out: ByteSink & ~Copyable>(_ value: UInt64, to out: inout Out) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes of scratch, enough for 20 digits
        withUnsafeMutableBytes(of: &digits) { raw in
            guard let base = raw.baseAddress else { return }
            let n = write(value, endingAt: base.assumingMemoryBound(to: UInt8.self) + 24)
            out.append(bytes: UnsafeRawBufferPointer(rebasing: raw[(24 - n)...]))
        }
    }

    /// Writes the digits of `value` backwards ending just before `end`; returns how many.
    @inlinable @inline(__always)
    public static func write(_ value: UInt64, endingAt end: UnsafeMutablePointer<UInt8>) -> Int {
        var p = end
        var v = value
        // Eight digits at a time with one 64-bit division, the rest in 32-bit arithmetic.
        while v > UInt64(UInt32.max) {
            let low = UInt32(truncatingIfNeeded: v % 100_000_000)
            v /= 100_000_000
            p -= 8
            writeEight(low, at: p)
        }
        return end - p + write32(UInt32(truncatingIfNeeded: v), endingAt: p)
    }

    /// Exactly eight digits of `value` (< 10^8) at `p`.
    @inlinable @inline(__always)
    static func writeEight(_ value: UInt32, at p: UnsafeMutablePointer<UInt8>) {
        writeTwo(value / 1_000_000, at: p)
        writeSix(value % 1_000_000, at: p + 2)
    }

    /// Exactly two digits of `value` (< 100) at `p`.
    @inlinable @inline(__always)
    static func writeTwo(_ value: UInt32, at p: UnsafeMutablePointer<UInt8>) {
        let table = pairs.utf8Start
        let pair = Int(value) &* 2
        p[0] = table[pair]
        p[1] = table[pair &+ 1]
    }

    /// Exactly six digits of `value` (< 10^6) at `p`.
    @inlinable @inline(__always)
    public static func writeSix(_ value: UInt32, at p: UnsafeMutablePointer<UInt8>) {
        let high = value / 10_000
        let low = value % 10_000
        writeTwo(high, at: p)
        writeTwo(low / 100, at: p + 2)
        writeTwo(low % 100, at: p + 4)
    }

    @inlinable @inline(__always)
    static func write32(_ value: UInt32, endingAt end: UnsafeMutablePointer<UInt8>) -> Int {
        var v = value
        var p = end
        let table = pairs.utf8Start
        while v >= 100 {
            let pair = Int(v % 100) &* 2
            v /= 100
            p -= 2
            p[0] = table[pair]
            p[1] = table[pair &+ 1]
        }
        if v >= 10 {
            let pair = Int(v) &* 2
            p -= 2
            p[0] = table[pair]
            p[1] = table[pair &+ 1]
        } else {
            p -= 1
            p[0] = UInt8(truncatingIfNeeded: 48 &+ v)
        }
        return end - p
    }

    /// Exactly `width` digits, zero-padded (for non-negative values below 10^width).
    @inlinable @inline(__always)
    public static func appendPadded<Out: ByteSink & ~Copyable>(_ value: Int, width: Int, to out: inout Out) {
        var digits: (UInt64, UInt64, UInt64) = (0x3030_3030_3030_3030, 0x3030_3030_3030_3030, 0x3030_3030_3030_3030)
        let width = min(max(width, 1), 20)
        withUnsafeMutableBytes(of: &digits) { raw in
            guard let base = raw.baseAddress else { return }
            let end = base.assumingMemoryBound(to: UInt8.self) + 24
            _ = write(UInt64(truncatingIfNeeded: max(0, value)), endingAt: end)
            out.append(bytes: UnsafeRawBufferPointer(rebasing: raw[(24 - width)...]))
        }
    }
}
