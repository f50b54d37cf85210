// Parses Erlang term syntax (what `erl_scan` + `erl_parse:parse_term/1` accept) into a `Term`, for
// command-line arguments such as `beamtrace rpc NODE lists seq 1 10`. Beyond erl_parse it reads the
// printed forms of pids `<0.12.0>` / `<a@host.12.0>`, `#Ref<0.1.2.3>` and `#Port<0.5>`, where node 0 is
// the node the term is meant for (`Options.localNode`).

public struct TermParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What was wrong.
    public var message: String
    /// Character (Unicode scalar) offset in the input, 0-based.
    public var offset: Int

    public init(_ message: String, offset: Int) {
        self.message = message
        self.offset = offset
    }

    public var description: String { "cannot parse term at character \(offset + 1): \(message)" }
}

public struct TermParser: Sendable {
    public struct Options: Sendable {
        /// The node that `<0.X.Y>`, `#Ref<0...>` and `#Port<0.X>` refer to.
        public var localNode: Atom
        /// Its creation, given to pids, refs and ports of `localNode`.
        public var localCreation: UInt32

        public init(localNode: Atom = "nonode@nohost", localCreation: UInt32 = 0) {
            self.localNode = localNode
            self.localCreation = localCreation
        }
    }

    public var options: Options

    public init(options: Options = Options()) {
        self.options = options
    }

    /// Parses exactly one term; a final `.` is allowed, anything else after the term is an error.
    public func parse(_ text: String) throws(TermParseError) -> Term {
        var cursor = Cursor(Array(text.unicodeScalars), options: options)
        let term = try cursor.parseTerm(depth: 0)
        cursor.skipSpace()
        if cursor.peek() == "." {
            cursor.position += 1
            cursor.skipSpace()
        }
        guard cursor.atEnd else { throw cursor.error("unexpected \(cursor.describeNext()) after the term") }
        return term
    }
}

private struct Cursor {
    let chars: [Unicode.Scalar]
    let options: TermParser.Options
    var position = 0
    static let maxDepth = 1000
    /// Words that erl_scan makes reserved words, not atoms (OTP 25 without the maybe feature).
    static let reserved: Set<String> = [
        "after", "and", "andalso", "band", "begin", "bnot", "bor", "bsl", "bsr", "bxor", "case", "catch", "cond",
        "div", "end", "fun", "if", "let", "not", "of", "or", "orelse", "receive", "rem", "try", "when", "xor",
    ]

    init(_ chars: [Unicode.Scalar], options: TermParser.Options) {
        self.chars = chars
        self.options = options
    }

    var atEnd: Bool { position >= chars.count }
    func peek(_ ahead: Int = 0) -> Unicode.Scalar? {
        position + ahead < chars.count ? chars[position + ahead] : nil
    }

    func error(_ message: String, at offset: Int? = nil) -> TermParseError {
        TermParseError(message, offset: offset ?? position)
    }

    func describeNext() -> String {
        guard let c = peek() else { return "end of input" }
        return "'\(Character(c))'"
    }

    mutating func skipSpace() {
        while let c = peek() {
            if c == "%" {
                while let d = peek(), d != "\n" { _ = d; position += 1 }
            } else if c.properties.isWhitespace {
                position += 1
            } else {
                return
            }
        }
    }

    mutating func expect(_ text: String) throws(TermParseError) {
        skipSpace()
        for scalar in text.unicodeScalars {
            guard peek() == scalar else { throw error("expected \(text), found \(describeNext())") }
            position += 1
        }
    }

    mutating func consume(_ text: String) -> Bool {
        let scalars = Array(text.unicodeScalars)
        for (i, scalar) in scalars.enumerated() where peek(i) != scalar { return false }
        position += scalars.count
        return true
    }

    // MARK: terms

    mutating func parseTerm(depth: Int) throws(TermParseError) -> Term {
        guard depth < Self.maxDepth else { throw error("terms nest deeper than \(Self.maxDepth) levels") }
        skipSpace()
        guard let c = peek() else { throw error("expected a term, found end of input") }
        switch c {
        case "{":
            position += 1
            return .tuple(try parseElements(closing: "}", depth: depth))
        case "[":
            return try parseList(depth: depth)
        case "#":
            if consume("#{") { return try parseMap(depth: depth) }
            if consume("#Ref<") { return try parseReference() }
            if consume("#Port<") { return try parsePort() }
            throw error("expected #{, #Ref< or #Port<")
        case "<":
            if consume("<<") { return try parseBinary() }
            position += 1
            return try parsePid()
        case "\"":
            return Self.stringTerm(try parseStrings())
        case "'":
            let start = position
            let name = try parseQuoted("'")
            guard name.count <= 255 else { throw error("atom too long (over 255 characters)", at: start) }
            return .atom(Atom(String(String.UnicodeScalarView(name))))
        case "$":
            position += 1
            return .integer(Int64(try parseCharacter().value))
        case "-", "+":
            let start = position
            position += 1
            skipSpace()
            guard let d = peek(), ("0"..."9").contains(d) || d == "$" else {
                throw error("expected a number after \(Character(c))", at: start)
            }
            let value: Term
            if d == "$" {
                position += 1
                value = .integer(Int64(try parseCharacter().value))
            } else {
                value = try parseNumber()
            }
            return c == "-" ? Self.negate(value) : value
        case "0"..."9":
            return try parseNumber()
        default:
            if Self.isAtomStart(c) {
                let start = position
                let word = parseWord()
                if word == "fun" { return try parseExportFun() }
                if Self.reserved.contains(word) {
                    throw error("\(word) is a reserved word, not an atom: quote it as '\(word)'", at: start)
                }
                return .atom(Atom(word))
            }
            if Self.isVariableStart(c) {
                let start = position
                let word = parseWord()
                throw error("\(word) is a variable, not a term: quote it to make an atom ('\(word)')", at: start)
            }
            throw error("expected a term, found \(describeNext())")
        }
    }

    static func negate(_ term: Term) -> Term {
        switch term {
        case .integer(let value):
            if value == 0 { return .integer(0) }
            return .integer(-value)
        case .bigInteger(let big):
            return .integer(BigInteger(isNegative: !big.isNegative, magnitude: big.magnitude))
        case .float(let value):
            return .float(-value)
        default:
            return term
        }
    }

    static func isAtomStart(_ c: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(c) || (c.value >= 0xDF && c.value <= 0xFF && c.value != 0xF7)
    }

    static func isVariableStart(_ c: Unicode.Scalar) -> Bool {
        ("A"..."Z").contains(c) || c == "_" || (c.value >= 0xC0 && c.value <= 0xDE && c.value != 0xD7)
    }

    static func isNameCharacter(_ c: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c) || c == "_" || c == "@"
            || (c.value >= 0xC0 && c.value <= 0xFF && c.value != 0xD7 && c.value != 0xF7)
    }

    mutating func parseWord() -> String {
        var scalars = String.UnicodeScalarView()
        while let c = peek(), Self.isNameCharacter(c) {
            scalars.append(c)
            position += 1
        }
        return String(scalars)
    }

    mutating func parseElements(closing: Unicode.Scalar, depth: Int) throws(TermParseError) -> [Term] {
        var elements: [Term] = []
        skipSpace()
        if peek() == closing {
            position += 1
            return elements
        }
        while true {
            elements.append(try parseTerm(depth: depth + 1))
            skipSpace()
            if peek() == "," {
                position += 1
            } else if peek() == closing {
                position += 1
                return elements
            } else {
                throw error("expected , or \(Character(closing)), found \(describeNext())")
            }
        }
    }

    mutating func parseList(depth: Int) throws(TermParseError) -> Term {
        position += 1
        var elements: [Term] = []
        skipSpace()
        if peek() == "]" {
            position += 1
            return .list([])
        }
        while true {
            elements.append(try parseTerm(depth: depth + 1))
            skipSpace()
            switch peek() {
            case ",":
                position += 1
            case "]":
                position += 1
                return .list(elements)
            case "|":
                position += 1
                let tail = try parseTerm(depth: depth + 1)
                try expect("]")
                switch tail {
                case .list(let rest): return .list(elements + rest)
                case .string(let bytes): return .list(elements + bytes.map { .integer(Int64($0)) })
                case .improperList(let rest, let innerTail): return .improperList(elements + rest, tail: innerTail)
                default: return .improperList(elements, tail: tail)
                }
            default:
                throw error("expected , | or ], found \(describeNext())")
            }
        }
    }

    mutating func parseMap(depth: Int) throws(TermParseError) -> Term {
        var pairs: [MapPair] = []
        skipSpace()
        if peek() == "}" {
            position += 1
            return .map([])
        }
        while true {
            let key = try parseTerm(depth: depth + 1)
            try expect("=>")
            let value = try parseTerm(depth: depth + 1)
            pairs.append(MapPair(key, value))
            skipSpace()
            if peek() == "," {
                position += 1
            } else if peek() == "}" {
                position += 1
                return .map(unordered: pairs)
            } else {
                throw error("expected , or }, found \(describeNext())")
            }
        }
    }

    mutating func parseExportFun() throws(TermParseError) -> Term {
        skipSpace()
        let module = try parseAtomName()
        try expect(":")
        skipSpace()
        let function = try parseAtomName()
        try expect("/")
        skipSpace()
        let start = position
        guard case .integer(let arity) = try parseNumber(), (0...255).contains(arity) else {
            throw error("expected an arity 0..255", at: start)
        }
        return .export(module: module, function: function, arity: Int(arity))
    }

    mutating func parseAtomName() throws(TermParseError) -> Atom {
        if peek() == "'" {
            return Atom(String(String.UnicodeScalarView(try parseQuoted("'"))))
        }
        guard let c = peek(), Self.isAtomStart(c) else { throw error("expected an atom, found \(describeNext())") }
        return Atom(parseWord())
    }

    // MARK: numbers

    mutating func parseDigits(base: Int) throws(TermParseError) -> [Int] {
        var digits: [Int] = []
        while let c = peek() {
            if c == "_", !digits.isEmpty, let next = peek(1), Self.digitValue(next, base: base) != nil {
                position += 1
                continue
            }
            guard let value = Self.digitValue(c, base: base) else { break }
            digits.append(value)
            position += 1
        }
        return digits
    }

    static func digitValue(_ c: Unicode.Scalar, base: Int) -> Int? {
        let value: Int
        switch c {
        case "0"..."9": value = Int(c.value - 48)
        case "a"..."z": value = Int(c.value - 97 + 10)
        case "A"..."Z": value = Int(c.value - 65 + 10)
        default: return nil
        }
        return value < base ? value : nil
    }

    mutating func parseNumber() throws(TermParseError) -> Term {
        let start = position
        let integerDigits = try parseDigits(base: 10)
        guard !integerDigits.isEmpty else { throw error("expected a number") }
        if peek() == "#" {
            let base = integerDigits.reduce(0) { min($0 * 10 + $1, 1000) }
            guard (2...36).contains(base) else { throw error("base \(base) is not in 2..36", at: start) }
            position += 1
            let digits = try parseDigits(base: base)
            guard !digits.isEmpty else { throw error("expected base-\(base) digits after #") }
            return Self.integer(digits: digits, base: base)
        }
        if peek() == ".", let next = peek(1), ("0"..."9").contains(next) {
            position += 1
            let fraction = try parseDigits(base: 10)
            var text = integerDigits.map(String.init).joined() + "." + fraction.map(String.init).joined()
            if let e = peek(), e == "e" || e == "E" {
                var lookahead = 1
                var sign = ""
                if let s = peek(1), s == "+" || s == "-" {
                    sign = String(Character(s))
                    lookahead = 2
                }
                if let d = peek(lookahead), ("0"..."9").contains(d) {
                    position += lookahead
                    let exponent = try parseDigits(base: 10)
                    text += "e" + sign + exponent.map(String.init).joined()
                }
            }
            guard let value = Double(text), value.isFinite else {
                throw error("float \(text) is out of range", at: start)
            }
            return .float(value)
        }
        return Self.integer(digits: integerDigits, base: 10)
    }

    static func integer(digits: [Int], base: Int) -> Term {
        .integer(BigInteger(digits: digits, base: base))
    }

    // MARK: strings and characters

    static func stringTerm(_ scalars: [UInt32]) -> Term {
        if scalars.isEmpty { return .list([]) }
        if scalars.allSatisfy({ $0 < 256 }) { return .string(scalars.map { UInt8($0) }) }
        return .list(scalars.map { .integer(Int64($0)) })
    }

    /// One or more adjacent string literals, concatenated as erl_parse does.
    mutating func parseStrings() throws(TermParseError) -> [UInt32] {
        var result = try parseQuoted("\"").map(\.value)
        while true {
            let save = position
            skipSpace()
            guard peek() == "\"" else {
                position = save
                return result
            }
            result += try parseQuoted("\"").map(\.value)
        }
    }

    mutating func parseQuoted(_ quote: Unicode.Scalar) throws(TermParseError) -> [Unicode.Scalar] {
        let start = position
        position += 1
        var result: [Unicode.Scalar] = []
        while true {
            guard let c = peek() else {
                throw error("unterminated \(quote == "'" ? "quoted atom" : "string")", at: start)
            }
            position += 1
            if c == quote { return result }
            if c == "\\" {
                result.append(try parseEscape())
            } else {
                result.append(c)
            }
        }
    }

    /// The character after `$`.
    mutating func parseCharacter() throws(TermParseError) -> Unicode.Scalar {
        guard let c = peek() else { throw error("expected a character after $") }
        position += 1
        return c == "\\" ? try parseEscape() : c
    }

    /// An escape sequence; the backslash is already consumed.
    mutating func parseEscape() throws(TermParseError) -> Unicode.Scalar {
        guard let c = peek() else { throw error("unterminated escape sequence") }
        position += 1
        func scalar(_ value: UInt32) throws(TermParseError) -> Unicode.Scalar {
            guard let s = Unicode.Scalar(value) else { throw error("\\x{\(String(value, radix: 16))} is not a character") }
            return s
        }
        switch c {
        case "b": return "\u{8}"
        case "d": return "\u{7F}"
        case "e": return "\u{1B}"
        case "f": return "\u{C}"
        case "n": return "\n"
        case "r": return "\r"
        case "s": return " "
        case "t": return "\t"
        case "v": return "\u{B}"
        case "0"..."7":
            var value = c.value - 48
            for _ in 0..<2 {
                guard let d = peek(), ("0"..."7").contains(d) else { break }
                value = value * 8 + d.value - 48
                position += 1
            }
            return try scalar(value)
        case "x":
            if peek() == "{" {
                position += 1
                let digits = try parseDigits(base: 16)
                guard !digits.isEmpty, digits.count <= 8, peek() == "}" else { throw error("bad \\x{...} escape") }
                position += 1
                return try scalar(digits.reduce(UInt32(0)) { $0 * 16 + UInt32($1) })
            }
            guard let h = peek(), let high = Self.digitValue(h, base: 16), let l = peek(1),
                  let low = Self.digitValue(l, base: 16) else { throw error("\\x needs two hex digits or {...}") }
            position += 2
            return try scalar(UInt32(high * 16 + low))
        case "^":
            guard let d = peek() else { throw error("unterminated \\^ escape") }
            position += 1
            return try scalar(d.value & 31)
        default:
            return c
        }
    }

    // MARK: binaries

    mutating func parseBinary() throws(TermParseError) -> Term {
        var writer = BitWriter()
        skipSpace()
        if consume(">>") { return .binary([]) }
        while true {
            try parseSegment(into: &writer)
            skipSpace()
            if consume(">>") { break }
            try expect(",")
        }
        return writer.term
    }

    enum SegmentValue {
        case integer(Term)
        case float(Double)
        case string([UInt32])
    }

    mutating func parseSegment(into writer: inout BitWriter) throws(TermParseError) {
        skipSpace()
        let start = position
        let value: SegmentValue
        guard let first = peek() else { throw error("expected a binary segment, found end of input") }
        switch first {
        case "\"":
            value = .string(try parseStrings())
        case "$":
            position += 1
            value = .integer(.integer(Int64(try parseCharacter().value)))
        case "-", "+", "0"..."9":
            let negative = first == "-"
            if negative || first == "+" {
                position += 1
                skipSpace()
            }
            let number = try parseNumber()
            switch number {
            case .float(let f): value = .float(negative ? -f : f)
            default: value = .integer(negative ? Self.negate(number) : number)
            }
        default:
            throw error("expected an integer, float or string in a binary segment, found \(describeNext())")
        }
        skipSpace()
        var size: Int?
        if peek() == ":" {
            position += 1
            skipSpace()
            let sizeStart = position
            guard case .integer(let s) = try parseNumber(), s >= 0, s <= 1 << 24 else {
                throw error("expected a segment size", at: sizeStart)
            }
            size = Int(s)
        }
        var type = "integer", signed = false, little = false, unit: Int?
        skipSpace()
        if peek() == "/" {
            position += 1
            repeat {
                skipSpace()
                let specStart = position
                let word = parseWord()
                switch word {
                case "integer", "float", "binary", "bytes", "bitstring", "bits", "utf8", "utf16", "utf32": type = word
                case "signed": signed = true
                case "unsigned": signed = false
                case "big": little = false
                case "little": little = true
                case "native": little = Self.isLittleEndianHost
                case "unit":
                    try expect(":")
                    skipSpace()
                    guard case .integer(let u) = try parseNumber(), (1...256).contains(u) else {
                        throw error("expected unit:1..256", at: specStart)
                    }
                    unit = Int(u)
                default:
                    throw error("unknown binary type specifier \(word.isEmpty ? describeNext() : word)", at: specStart)
                }
                skipSpace()
            } while consume("-")
        }
        _ = signed
        func writeInteger(_ term: Term, bits: Int) throws(TermParseError) {
            guard let v = term.int64Value else {
                throw error("integer too large for a binary segment (at most 64 bits here)", at: start)
            }
            if little {
                guard bits % 8 == 0 else { throw error("little-endian segments must be whole bytes", at: start) }
                var le: [UInt8] = []
                for i in 0..<(bits / 8) { le.append(UInt8(truncatingIfNeeded: i < 8 ? v >> (8 * i) : (v < 0 ? -1 : 0))) }
                for byte in le { writer.write(UInt64(byte), bits: 8) }
            } else {
                writer.writeSigned(v, bits: bits)
            }
        }
        func writeCodePoint(_ cp: UInt32) throws(TermParseError) {
            guard let scalar = Unicode.Scalar(cp) else { throw error("\(cp) is not a Unicode code point", at: start) }
            switch type {
            case "utf8":
                for byte in String(Character(scalar)).utf8 { writer.write(UInt64(byte), bits: 8) }
            case "utf16":
                for unit in String(Character(scalar)).utf16 {
                    if little {
                        writer.write(UInt64(unit & 0xFF), bits: 8)
                        writer.write(UInt64(unit >> 8), bits: 8)
                    } else {
                        writer.write(UInt64(unit), bits: 16)
                    }
                }
            default:
                if little {
                    for i in 0..<4 { writer.write(UInt64((cp >> (8 * UInt32(i))) & 0xFF), bits: 8) }
                } else {
                    writer.write(UInt64(cp), bits: 32)
                }
            }
        }
        switch (value, type) {
        case (_, "binary"), (_, "bytes"), (_, "bitstring"), (_, "bits"):
            throw error("binary-typed segments need a binary value, which literals here cannot be", at: start)
        case (.string(let scalars), "utf8"), (.string(let scalars), "utf16"), (.string(let scalars), "utf32"):
            guard size == nil else { throw error("utf segments take no size", at: start) }
            for cp in scalars { try writeCodePoint(cp) }
        case (.integer(let term), "utf8"), (.integer(let term), "utf16"), (.integer(let term), "utf32"):
            guard size == nil, let v = term.int64Value, v >= 0, v <= 0x10FFFF else {
                throw error("utf segments need a code point and no size", at: start)
            }
            try writeCodePoint(UInt32(v))
        case (.string(let scalars), "integer"):
            let bits = (size ?? 8) * (unit ?? 1)
            for cp in scalars { try writeInteger(.integer(Int64(cp)), bits: bits) }
        case (.integer(let term), "integer"):
            try writeInteger(term, bits: (size ?? 8) * (unit ?? 1))
        case (.float(let f), "float"):
            let bits = (size ?? 64) * (unit ?? 1)
            let pattern: UInt64
            switch bits {
            case 64: pattern = f.bitPattern
            case 32: pattern = UInt64(Float(f).bitPattern)
            default: throw error("float segments are 32 or 64 bits", at: start)
            }
            if little {
                for i in 0..<(bits / 8) { writer.write((pattern >> (8 * UInt64(i))) & 0xFF, bits: 8) }
            } else {
                writer.write(pattern, bits: bits)
            }
        case (.integer(let term), "float"):
            guard let v = term.int64Value else { throw error("integer too large for a float segment", at: start) }
            let bits = (size ?? 64) * (unit ?? 1)
            guard bits == 64 || bits == 32 else { throw error("float segments are 32 or 64 bits", at: start) }
            let pattern = bits == 64 ? Double(v).bitPattern : UInt64(Float(v).bitPattern)
            writer.write(pattern, bits: bits)
        default:
            throw error("a \(type) segment cannot hold this value", at: start)
        }
    }

    static var isLittleEndianHost: Bool { 1.littleEndian == 1 }

    // MARK: pids, refs, ports

    /// The text up to `>`, split at dots: node part first (`0` or a node name), then numbers.
    mutating func parseIdentifierParts(numbers: Int?) throws(TermParseError) -> (node: Atom, creation: UInt32, [UInt64]) {
        let start = position
        var text = String.UnicodeScalarView()
        while let c = peek(), c != ">" {
            text.append(c)
            position += 1
        }
        guard peek() == ">" else { throw error("expected > to close the identifier", at: start) }
        position += 1
        var parts = String(text).split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        var values: [UInt64] = []
        while parts.count > 1, let last = parts.last, let value = UInt64(last), numbers.map({ values.count < $0 }) ?? true {
            values.insert(value, at: 0)
            parts.removeLast()
        }
        let nodeText = parts.joined(separator: ".").trimmedOfWhitespace
        guard !values.isEmpty, !nodeText.isEmpty else { throw error("expected <Node.Number.Number>", at: start) }
        if nodeText == "0" { return (options.localNode, options.localCreation, values) }
        if UInt64(nodeText) != nil {
            throw error("node number \(nodeText) means nothing outside its shell: write the node name instead, "
                            + "e.g. <app@host.\(values.map(String.init).joined(separator: "."))>", at: start)
        }
        var name = nodeText
        if name.hasPrefix("'"), name.hasSuffix("'"), name.count >= 2 { name = String(name.dropFirst().dropLast()) }
        let node = Atom(name)
        return (node, node == options.localNode ? options.localCreation : 0, values)
    }

    mutating func parsePid() throws(TermParseError) -> Term {
        let start = position - 1
        let (node, creation, values) = try parseIdentifierParts(numbers: 2)
        guard values.count == 2, let id = UInt32(exactly: values[0]), let serial = UInt32(exactly: values[1]) else {
            throw error("expected a pid <Node.Id.Serial>", at: start)
        }
        return .pid(Pid(node: node, id: id, serial: serial, creation: creation))
    }

    mutating func parseReference() throws(TermParseError) -> Term {
        let start = position
        let (node, creation, values) = try parseIdentifierParts(numbers: 5)
        let ids = values.compactMap { UInt32(exactly: $0) }
        guard ids.count == values.count, (1...5).contains(ids.count) else {
            throw error("expected a reference #Ref<Node.N.N.N>", at: start)
        }
        return .reference(Reference(node: node, creation: creation, ids: ids.reversed()))
    }

    mutating func parsePort() throws(TermParseError) -> Term {
        let start = position
        let (node, creation, values) = try parseIdentifierParts(numbers: 1)
        guard values.count == 1 else { throw error("expected a port #Port<Node.N>", at: start) }
        return .port(Port(node: node, id: values[0], creation: creation))
    }
}

/// Bits written most significant first, as Erlang binaries lay them out.
private struct BitWriter {
    var bytes: [UInt8] = []
    var bitCount = 0

    mutating func write(_ value: UInt64, bits: Int) {
        guard bits > 0 else { return }
        for i in stride(from: bits - 1, through: 0, by: -1) {
            let bit = i < 64 ? (value >> UInt64(i)) & 1 : 0
            appendBit(UInt8(bit))
        }
    }

    mutating func writeSigned(_ value: Int64, bits: Int) {
        guard bits > 0 else { return }
        for i in stride(from: bits - 1, through: 0, by: -1) {
            let bit = i < 64 ? (value >> Int64(i)) & 1 : (value < 0 ? 1 : 0)
            appendBit(UInt8(bit))
        }
    }

    mutating func appendBit(_ bit: UInt8) {
        if bitCount % 8 == 0 { bytes.append(0) }
        if bit != 0 { bytes[bytes.count - 1] |= 0x80 >> UInt8(bitCount % 8) }
        bitCount += 1
    }

    var term: Term {
        let trailing = bitCount % 8
        return trailing == 0 ? .binary(bytes) : .bitBinary(bytes, trailingBits: UInt8(trailing))
    }
}

private extension String {
    var trimmedOfWhitespace: String {
        String(String.UnicodeScalarView(unicodeScalars.drop { $0.properties.isWhitespace }.reversed()
            .drop { $0.properties.isWhitespace }.reversed()))
    }
}
