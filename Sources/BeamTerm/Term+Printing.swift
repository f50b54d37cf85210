// Prints terms in Erlang syntax as `io_lib:format("~tp")` does on one line (OTP 25, printable range
// latin1), with optional depth (`~P`) and width limits. Terms without pids, ports, refs or funs
// print as text that `erl_scan`/`erl_parse` read back as an exactly equal term.

public struct ErlangPrintOptions: Sendable {
    /// Like `~P`: nesting beyond this prints as `...`; nil for no limit.
    public var maxDepth: Int?
    /// Output longer than this is cut and ends in `...`; nil for no limit.
    public var maxWidth: Int?
    /// Pids, ports and refs of this node print as `<0.N.S>`; others carry their node name.
    public var localNode: Atom?

    public init(maxDepth: Int? = nil, maxWidth: Int? = nil, localNode: Atom? = nil) {
        self.maxDepth = maxDepth
        self.maxWidth = maxWidth
        self.localNode = localNode
    }
}

extension Term: CustomStringConvertible {
    public var description: String { erlangText() }

    /// The term in Erlang syntax.
    public func erlangText(_ options: ErlangPrintOptions = ErlangPrintOptions()) -> String {
        var printer = ErlangPrinter(options: options)
        printer.write(self, depth: options.maxDepth ?? -1)
        return printer.finish()
    }
}

struct ErlangPrinter {
    let options: ErlangPrintOptions
    var out = ""
    var full = false

    init(options: ErlangPrintOptions) { self.options = options }

    mutating func emit(_ text: String) {
        guard !full else { return }
        out += text
        if let width = options.maxWidth, out.unicodeScalars.count > width {
            out = String(String.UnicodeScalarView(out.unicodeScalars.prefix(max(0, width - 3)))) + "..."
            full = true
        }
    }

    func finish() -> String { out }

    /// `depth` counts down as in `~P`; -1 means unlimited.
    mutating func write(_ term: Term, depth: Int) {
        if full { return }
        if depth == 0 { emit("..."); return }
        let next = depth < 0 ? -1 : depth - 1
        switch term {
        case .integer(let value): emit(String(value))
        case .bigInteger(let value): emit(value.description)
        case .float(let value): emit(ErlangFloat.format(value))
        case .atom(let atom): emit(atom == CutMarker.atom ? "..." : ErlangAtom.quoted(atom.name))
        case .tuple(let elements):
            if let prefix = CutMarker.cutBinary(term) {
                emit("<<")
                writeBinaryBody(prefix, depth: depth, cut: true)
                emit(">>")
                return
            }
            emit("{")
            writeSequence(elements, depth: depth, tail: nil, separator: ",...")
            emit("}")
        case .list(let elements):
            if elements.isEmpty { emit("[]"); return }
            // At depth 1 ~P shows no element, not even of a string.
            if depth == 1 { emit("[...]"); return }
            if let bytes = Self.printableLatin1(elements) {
                emit(ErlangString.quoted(bytes.map { Unicode.Scalar($0) }, quote: "\""))
                return
            }
            emit("[")
            writeSequence(elements, depth: depth, tail: nil)
            emit("]")
        case .string(let bytes):
            if depth == 1 && !bytes.isEmpty { emit("[...]"); return }
            if Self.isPrintableLatin1(bytes) {
                emit(ErlangString.quoted(bytes.map { Unicode.Scalar($0) }, quote: "\""))
            } else {
                write(.list(bytes.map { .integer(Int64($0)) }), depth: depth)
            }
        case .improperList(let elements, let tail):
            // A string cut short (TermCut): `"abcd"...`, as ~P prints a string beyond its chars_limit.
            if CutMarker.isMarker(tail), let bytes = Self.printableLatin1(elements) {
                emit(ErlangString.quoted(bytes.map { Unicode.Scalar($0) }, quote: "\""))
                emit("...")
                return
            }
            emit("[")
            writeSequence(elements, depth: depth, tail: tail)
            emit("]")
        case .binary(let bytes):
            emit("<<")
            if let shown = Self.binaryShown(bytes.count, depth: depth, { Self.isPrintableLatin1(UInt32(bytes[$0])) }) {
                writeBinaryBody(Array(bytes.prefix(shown)), depth: -1, cut: true)
            } else {
                writeBinaryBody(bytes, depth: depth, cut: false)
            }
            emit(">>")
        case .bitBinary(let bytes, let bits):
            emit("<<")
            // OTP prints the bytes of a bit string as numbers, never as text.
            for byte in bytes.dropLast() { emit("\(byte),") }
            let last = (bytes.last ?? 0) >> (8 - bits)
            emit("\(last):\(bits)")
            emit(">>")
        case .pid(let pid):
            emit("<\(nodePart(pid.node)).\(pid.id).\(pid.serial)>")
        case .port(let port):
            emit("#Port<\(nodePart(port.node)).\(port.id)>")
        case .reference(let reference):
            emit("#Ref<\(nodePart(reference.node))" + reference.ids.reversed().map { ".\($0)" }.joined() + ">")
        case .fun(let fun):
            emit("#Fun<\(fun.module.name).\(fun.oldIndex).\(fun.oldUniq)>")
        case .export(let module, let function, let arity):
            emit("fun \(ErlangAtom.quoted(module.name)):\(ErlangAtom.quoted(function.name))/\(arity)")
        case .map(let pairs):
            emit("#{")
            var i = 0
            for pair in pairs where !CutMarker.isMarker(pair.key) {
                if i > 0 { emit(",") }
                if depth > 0 && i >= depth - 1 { emit("..."); break }
                write(pair.key, depth: next)
                emit(" => ")
                write(pair.value, depth: next)
                i += 1
            }
            // A cut map's rest ('$beamtrace_cut' => '$beamtrace_cut') prints last, as ~P puts it.
            if pairs.contains(where: { CutMarker.isMarker($0.key) }) && (depth <= 0 || i < depth - 1) {
                emit(i > 0 ? ",..." : "...")
            }
            emit("}")
        }
    }

    /// Tuples cut by the depth end in `,...` and lists in `|...`, as OTP prints them; as `~P`, the I-th
    /// element is printed at depth Depth - 1 - I (`{get,{a,...},[...],...}` at 4), an improper tail after N
    /// elements at Depth - 1 - N.
    private mutating func writeSequence(_ elements: [Term], depth: Int, tail: Term?,
                                        separator: String = "|...") {
        for (i, element) in elements.enumerated() {
            if depth > 0 && i >= depth - 1 {
                emit(i > 0 ? separator : "...")
                return
            }
            if i > 0 { emit(",") }
            write(element, depth: depth < 0 ? -1 : depth - 1 - i)
        }
        if let tail {
            if CutMarker.isMarker(tail) { emit("|..."); return }
            emit("|")
            write(tail, depth: depth < 0 ? -1 : depth - 1 - elements.count)
        }
    }

    /// A `cut` binary (only its first bytes kept) ends in `...` as `~P` prints it.
    private mutating func writeBinaryBody(_ bytes: [UInt8], depth: Int, cut: Bool) {
        if bytes.isEmpty {
            if cut { emit("...") }
            return
        }
        if let scalars = Self.printableUTF8(bytes) {
            emit(ErlangString.quoted(scalars, quote: "\""))
            if scalars.count != bytes.count { emit("/utf8") }
            if cut { emit("...") }
            return
        }
        if Self.isPrintableLatin1(bytes) {
            emit(ErlangString.quoted(bytes.map { Unicode.Scalar($0) }, quote: "\""))
            if cut { emit("...") }
            return
        }
        var shown = bytes[...]
        var dots = cut
        if depth > 0 && bytes.count > depth - 1 {
            shown = bytes.prefix(max(0, depth - 1))
            dots = true
        }
        emit(shown.map(String.init).joined(separator: ","))
        if dots { emit(shown.isEmpty ? "..." : ",...") }
    }

    private func nodePart(_ node: Atom) -> String {
        if let local = options.localNode, local == node { return "0" }
        return node.name
    }

    /// How many of a binary's `count` bytes `~P` shows at `depth`, nil for all of them: none at depth 1;
    /// else up to 4 * (Depth - 1) when they are latin1 text, the printable start when it is at least
    /// Depth - 1 bytes, or Depth - 1 bytes (what TermCut keeps of a binary, too).
    static func binaryShown(_ count: Int, depth: Int, _ isPrintable: (Int) -> Bool) -> Int? {
        guard depth > 0, count > 0 else { return nil }
        if depth == 1 { return 0 }
        let d1 = depth - 1
        let shown = min(4 * d1, count)
        var printable = 0
        while printable < shown && isPrintable(printable) { printable += 1 }
        if printable == shown { return shown == count ? nil : shown }
        if printable >= d1 { return printable }
        return count <= d1 ? nil : d1
    }

    /// io_lib's printable_latin1_list: 32..126, 160..255 and \b \t \n \v \f \r \e.
    static func isPrintableLatin1(_ c: UInt32) -> Bool {
        (32...126).contains(c) || (160...255).contains(c) || (8...13).contains(c) || c == 27
    }

    static func isPrintableLatin1(_ bytes: [UInt8]) -> Bool {
        !bytes.isEmpty && bytes.allSatisfy { isPrintableLatin1(UInt32($0)) }
    }

    static func printableLatin1(_ elements: [Term]) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(elements.count)
        for element in elements {
            guard case .integer(let value) = element, value >= 0, value <= 255,
                  isPrintableLatin1(UInt32(value)) else { return nil }
            bytes.append(UInt8(value))
        }
        return bytes
    }

    /// The characters of a UTF-8 binary when all are printable (latin1 range, as OTP's default).
    static func printableUTF8(_ bytes: [UInt8]) -> [Unicode.Scalar]? {
        guard let text = String(validating: bytes, as: UTF8.self) else { return nil }
        let scalars = Array(text.unicodeScalars)
        guard scalars.allSatisfy({ isPrintableLatin1($0.value) }) else { return nil }
        return scalars
    }
}

/// Atom quoting as io_lib:write_atom/1 does it.
public enum ErlangAtom {
    static let reservedWords: Set<String> = [
        "after", "and", "andalso", "band", "begin", "bnot", "bor", "bsl", "bsr", "bxor", "case", "catch",
        "cond", "div", "end", "fun", "if", "let", "not", "of", "or", "orelse", "receive", "rem", "try",
        "when", "xor",
    ]

    public static func needsQuotes(_ name: String) -> Bool {
        let scalars = Array(name.unicodeScalars)
        guard let first = scalars.first else { return true }
        guard isLowercase(first.value) else { return true }
        for scalar in scalars.dropFirst() where !isNameCharacter(scalar.value) { return true }
        return reservedWords.contains(name)
    }

    public static func quoted(_ name: String) -> String {
        needsQuotes(name) ? ErlangString.quoted(Array(name.unicodeScalars), quote: "'") : name
    }

    static func isLowercase(_ c: UInt32) -> Bool { (97...122).contains(c) || ((223...255).contains(c) && c != 247) }

    static func isNameCharacter(_ c: UInt32) -> Bool {
        (97...122).contains(c) || (65...90).contains(c) || (48...57).contains(c) || c == 95 || c == 64
            || ((192...255).contains(c) && c != 215 && c != 247)
    }
}

/// Strings and quoted atoms as io_lib:write_string/2 escapes them (latin1 mode).
enum ErlangString {
    /// Quoted text; characters above 255 are written as they are (io_lib's unicode mode, as `~tp`).
    static func quoted(_ scalars: [Unicode.Scalar], quote: Character) -> String {
        var text = String(quote)
        for scalar in scalars {
            let c = scalar.value
            switch c {
            case quote.unicodeScalars.first!.value: text += "\\" + String(quote)
            case 92: text += "\\\\"
            case 32...126: text.unicodeScalars.append(scalar)
            case 160...255: text.unicodeScalars.append(scalar)
            case 10: text += "\\n"
            case 13: text += "\\r"
            case 9: text += "\\t"
            case 11: text += "\\v"
            case 8: text += "\\b"
            case 12: text += "\\f"
            case 27: text += "\\e"
            case 127: text += "\\d"
            case 0..<160:
                text += "\\" + String(c >> 6) + String((c >> 3) & 7) + String(c & 7)
            default:
                text.unicodeScalars.append(scalar)
            }
        }
        text.append(quote)
        return text
    }
}

/// Floats as OTP 25 prints them: the shortest digits that read back exactly, in plain or
/// scientific layout, whichever is shorter (plain on a tie), scientific from 2^53 up.
/// Elixir (1.14) differs above 1: plain below 1.0e16, scientific from there.
public enum ErlangFloat {
    public static func format(_ value: Double, elixir: Bool = false) -> String {
        if value == 0 { return value.sign == .minus ? "-0.0" : "0.0" }
        let (digits, exponent) = shortestDigits(value.magnitude)
        let sign = value < 0 ? "-" : ""
        let scientific = digits.count == 1
            ? "\(digits).0e\(exponent)"
            : "\(digits.prefix(1)).\(digits.dropFirst())e\(exponent)"
        let plain: String
        if exponent >= 0 {
            if digits.count > exponent + 1 {
                plain = "\(digits.prefix(exponent + 1)).\(digits.dropFirst(exponent + 1))"
            } else {
                plain = digits + String(repeating: "0", count: exponent + 1 - digits.count) + ".0"
            }
        } else {
            plain = "0." + String(repeating: "0", count: -exponent - 1) + digits
        }
        if elixir && exponent >= 0 { return sign + (exponent < 16 ? plain : scientific) }
        if value.magnitude >= 9007199254740992.0 || scientific.count < plain.count { return sign + scientific }
        return sign + plain
    }

    /// Shortest round-trip decimal digits (no leading or trailing zeros) and the decimal exponent
    /// of the first digit.
    static func shortestDigits(_ value: Double) -> (String, Int) {
        // Swift's description is the shortest round-trip form (e.g. "1e-05", "123.456", "1.2e+17").
        let text = value.description
        var mantissa = Substring(text)
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = text[..<e]
            exponent = Int(text[text.index(after: e)...].replacingPlus()) ?? 0
        }
        var integerPart = mantissa
        var fraction = Substring("")
        if let dot = mantissa.firstIndex(of: ".") {
            integerPart = mantissa[..<dot]
            fraction = mantissa[mantissa.index(after: dot)...]
        }
        var digits = String(integerPart) + String(fraction)
        var pointPosition = integerPart.count + exponent  // digits before the decimal point
        while digits.first == "0" {
            digits.removeFirst()
            pointPosition -= 1
        }
        while digits.last == "0" { digits.removeLast() }
        if digits.isEmpty { return ("0", 0) }
        return (digits, pointPosition - 1)
    }
}

extension Substring {
    func replacingPlus() -> Substring { first == "+" ? dropFirst() : self }
}
