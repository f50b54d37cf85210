// Prints terms in Elixir syntax, as `inspect/1` shows them: `Elixir.Foo` as `Foo`, `:atom`,
// keyword lists, `%{}` maps, `~c"..."` charlists, binaries as strings when printable UTF-8.

extension Term {
    /// The term in Elixir syntax.
    public func elixirText(maxDepth: Int? = nil, maxWidth: Int? = nil) -> String {
        var printer = ElixirPrinter()
        printer.write(self, depth: maxDepth ?? -1)
        var text = printer.out
        if let maxWidth, text.unicodeScalars.count > maxWidth {
            text = String(String.UnicodeScalarView(text.unicodeScalars.prefix(max(0, maxWidth - 3)))) + "..."
        }
        return text
    }
}

public enum ElixirAtom {
    /// `:foo`, `:"foo bar"`, `Foo` for `Elixir.Foo`, and `true`, `false`, `nil` bare.
    public static func literal(_ name: String) -> String {
        if ["true", "false", "nil", "Elixir"].contains(name) { return name }
        if let alias = moduleAlias(name) { return alias }
        return ":" + (isIdentifier(name, allowUppercase: true) || operators.contains(name) ? name : quoted(name))
    }

    /// Operator atoms Elixir prints without quotes (`:+`, `:|>`).
    static let operators: Set<String> = [
        "+", "-", "*", "/", "++", "--", "**", "!", "^", "&", "&&", "&&&", "|||", "||", "|", "<", ">", "<=",
        ">=", "==", "!=", "===", "!==", "=~", "<>", "<-", "->", "..", "...", "|>", "<<<", ">>>", "<<~", "~>>",
        "<~", "~>", "<~>", "<|>", "\\\\", "=", "::", "@", ".", "..//", "%", "%{}", "{}", "<<>>", "^^^", "~~~",
        "+++", "---", "not", "and", "or", "in", "when",
    ]

    /// `Foo.Bar` for `'Elixir.Foo.Bar'`, nil for other atoms.
    public static func moduleAlias(_ name: String) -> String? {
        guard name.hasPrefix("Elixir.") else { return nil }
        let rest = name.dropFirst("Elixir.".count)
        let parts = rest.split(separator: ".", omittingEmptySubsequences: false)
        guard !parts.isEmpty, parts.allSatisfy({ part in
            guard let first = part.unicodeScalars.first, ("A"..."Z").contains(first) else { return false }
            return part.unicodeScalars.allSatisfy { isASCIIWord($0) }
        }) else { return nil }
        return String(rest)
    }

    /// A function name as it follows `Mod.` in Elixir code: `handle_call`, `+`, `"do it"`.
    public static func functionName(_ name: String) -> String {
        isIdentifier(name) || operators.contains(name) ? name : quoted(name)
    }

    /// A module as Elixir code names it: `Foo.Bar` or `:lists`.
    public static func module(_ name: String) -> String { moduleAlias(name) ?? literal(name) }

    static func isASCIIWord(_ c: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c) || c == "_"
    }

    /// An Elixir identifier (letters of any script, digits, `_`, `@`, an optional trailing `?` or `!`).
    public static func isIdentifier(_ name: String, allowUppercase: Bool = false) -> Bool {
        let scalars = Array(name.unicodeScalars)
        guard let first = scalars.first,
              first == "_" || (first.properties.isAlphabetic && (allowUppercase || !first.properties.isUppercase))
        else { return false }
        var body = scalars.dropFirst()
        if let last = body.last, last == "?" || last == "!" { body = body.dropLast() }
        return body.allSatisfy { $0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_" || $0 == "@" }
    }

    static func quoted(_ name: String) -> String { ElixirString.quoted(Array(name.unicodeScalars)) }
}

enum ElixirString {
    static func quoted(_ scalars: [Unicode.Scalar], quote: String = "\"") -> String {
        var text = quote
        for (i, scalar) in scalars.enumerated() {
            switch scalar {
            case "\"" where quote == "\"": text += "\\\""
            case "'" where quote == "'": text += "\\'"
            case "#" where i + 1 < scalars.count && scalars[i + 1] == "{": text += "\\#"
            case "\\": text += "\\\\"
            case "\n": text += "\\n"
            case "\r": text += "\\r"
            case "\t": text += "\\t"
            case "\u{0B}": text += "\\v"
            case "\u{08}": text += "\\b"
            case "\u{0C}": text += "\\f"
            case "\u{1B}": text += "\\e"
            case "\u{07}": text += "\\a"
            case "\u{7F}": text += "\\d"
            default:
                if scalar.value < 32 || scalar.value == 127 {
                    text += "\\x" + String(scalar.value, radix: 16, uppercase: true)
                } else {
                    text.unicodeScalars.append(scalar)
                }
            }
        }
        return text + quote
    }

    static func isPrintable(_ scalar: Unicode.Scalar) -> Bool {
        let c = scalar.value
        return (32...127).contains(c) || (160...0x10FFFF).contains(c) || [7, 8, 9, 10, 11, 12, 13, 27].contains(c)
    }

    /// Elixir 1.14 prints a list as a charlist only when all of it is printable ASCII.
    static func isPrintableASCII(_ scalar: Unicode.Scalar) -> Bool {
        let c = scalar.value
        return (32...127).contains(c) || [7, 8, 9, 10, 11, 12, 13, 27].contains(c)
    }
}

struct ElixirPrinter {
    var out = ""

    mutating func write(_ term: Term, depth: Int) {
        if depth == 0 { out += "..."; return }
        let next = depth < 0 ? -1 : depth - 1
        switch term {
        case .integer(let value): out += String(value)
        case .bigInteger(let value): out += value.description
        case .float(let value): out += ErlangFloat.format(value, elixir: true)
        case .atom(let atom): out += atom == CutMarker.atom ? "..." : ElixirAtom.literal(atom.name)
        case .tuple(let elements):
            if let prefix = CutMarker.cutBinary(term) {
                // As inspect/2 shows a binary beyond its limit: `"abc" <> ...`, `<<1, 2, ...>>`.
                if let text = String(validating: prefix, as: UTF8.self),
                   text.unicodeScalars.allSatisfy(ElixirString.isPrintable) {
                    out += (prefix.isEmpty ? "<<...>>" : ElixirString.quoted(Array(text.unicodeScalars)) + " <> ...")
                } else {
                    out += "<<" + prefix.map(String.init).joined(separator: ", ") + (prefix.isEmpty ? "...>>" : ", ...>>")
                }
                return
            }
            out += "{"
            writeSequence(elements, next: next)
            out += "}"
        case .list(let elements):
            if elements.isEmpty { out += "[]"; return }
            if let scalars = Self.printableCharlist(elements) {
                out += ElixirString.quoted(scalars, quote: "'")
                return
            }
            if let keywords = Self.keywordPairs(elements) {
                out += "["
                for (i, (key, value)) in keywords.enumerated() {
                    if i > 0 { out += ", " }
                    out += Self.keywordKey(key) + " "
                    write(value, depth: next)
                }
                out += "]"
                return
            }
            out += "["
            writeSequence(elements, next: next)
            out += "]"
        case .string(let bytes):
            write(.list(bytes.map { .integer(Int64($0)) }), depth: depth)
        case .improperList(let elements, let tail):
            if CutMarker.isMarker(tail), let scalars = Self.printableCharlist(elements) {
                out += ElixirString.quoted(scalars, quote: "'") + " ++ ..."
                return
            }
            out += "["
            writeSequence(elements, next: next)
            if CutMarker.isMarker(tail) {
                out += ", ...]"
                return
            }
            out += " | "
            write(tail, depth: next)
            out += "]"
        case .binary(let bytes):
            if let text = String(validating: bytes, as: UTF8.self),
               text.unicodeScalars.allSatisfy(ElixirString.isPrintable) {
                out += ElixirString.quoted(Array(text.unicodeScalars))
            } else {
                out += "<<" + bytes.map(String.init).joined(separator: ", ") + ">>"
            }
        case .bitBinary(let bytes, let bits):
            var parts = bytes.dropLast().map(String.init)
            parts.append("\((bytes.last ?? 0) >> (8 - bits))::size(\(bits))")
            out += "<<" + parts.joined(separator: ", ") + ">>"
        case .pid(let pid): out += "#PID<\(pid.node.name).\(pid.id).\(pid.serial)>"
        case .port(let port): out += "#Port<\(port.node.name).\(port.id)>"
        case .reference(let reference):
            out += "#Reference<\(reference.node.name)" + reference.ids.reversed().map { ".\($0)" }.joined() + ">"
        case .fun(let fun):
            out += "#Function<\(fun.oldIndex).\(fun.oldUniq)/\(fun.arity) in \(ElixirAtom.module(fun.module.name))>"
        case .export(let module, let function, let arity):
            out += "&\(ElixirAtom.module(module.name)).\(Self.functionName(function.name))/\(arity)"
        case .map(let pairs):
            out += "%{"
            let cut = pairs.contains { CutMarker.isMarker($0.key) }
            let pairs = pairs.filter { !CutMarker.isMarker($0.key) }
            let atomKeyed = pairs.allSatisfy { if case .atom = $0.key { return true } else { return false } }
            for (i, pair) in pairs.enumerated() {
                if i > 0 { out += ", " }
                if atomKeyed, case .atom(let key) = pair.key {
                    out += Self.keywordKey(key.name) + " "
                } else {
                    write(pair.key, depth: next)
                    out += " => "
                }
                write(pair.value, depth: next)
            }
            if cut { out += pairs.isEmpty ? "..." : ", ..." }
            out += "}"
        }
    }

    private mutating func writeSequence(_ elements: [Term], next: Int) {
        for (i, element) in elements.enumerated() {
            if i > 0 { out += ", " }
            write(element, depth: next)
        }
    }

    static func printableCharlist(_ elements: [Term]) -> [Unicode.Scalar]? {
        var scalars: [Unicode.Scalar] = []
        for element in elements {
            guard case .integer(let value) = element, let code = UInt32(exactly: value),
                  let scalar = Unicode.Scalar(code), ElixirString.isPrintableASCII(scalar) else { return nil }
            scalars.append(scalar)
        }
        return scalars
    }

    static func keywordPairs(_ elements: [Term]) -> [(String, Term)]? {
        var pairs: [(String, Term)] = []
        for element in elements {
            guard case .tuple(let parts) = element, parts.count == 2, case .atom(let key) = parts[0] else { return nil }
            pairs.append((key.name, parts[1]))
        }
        return pairs
    }

    static func keywordKey(_ name: String) -> String {
        if ElixirAtom.isIdentifier(name) || ElixirAtom.moduleAlias(name) == nil && name.first?.isUppercase == true
            && name.unicodeScalars.allSatisfy(ElixirAtom.isASCIIWord) {
            return name + ":"
        }
        return ElixirAtom.quoted(name) + ":"
    }

    static func functionName(_ name: String) -> String { ElixirAtom.functionName(name) }
}
