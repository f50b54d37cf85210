// `mod:fun/arity` written straight into a byte buffer (50,000 rows of `latency` for a module of
// generated functions): the module's part is worked out once per module and kept, and a function
// name that needs no quoting is copied from the atom's bytes. Anything else (quotes, names beyond
// ASCII, Elixir operators) goes through `TraceDictionaries.functionText`'s own rules, so both
// always print the same text.
import BeamTerm

public struct FunctionTextWriter {
    /// How a module's function names print after its prefix.
    private enum Style { case erlang, elixir }

    private let dictionaries: TraceDictionaries
    /// The module whose prefix (`mod:`, `Mod.`, `:mod.`) is kept.
    private var module = AtomID.max
    private var prefix: [UInt8] = []
    private var style = Style.erlang

    public init(_ dictionaries: TraceDictionaries) {
        self.dictionaries = dictionaries
    }

    /// Appends `dictionaries.functionText(id)`.
    public mutating func append(_ id: FunctionID, to out: inout TextBuffer) {
        guard let mfa = dictionaries.function(id) else {
            out.append("undefined")
            return
        }
        if mfa.module != module { setModule(mfa.module) }
        prefix.withUnsafeBytes { out.append(bytes: $0) }
        var name = dictionaries.atom(mfa.function)
        let plain = name.withUTF8 { bytes in
            let plain = style == .erlang ? Self.isPlainErlang(bytes) : Self.isPlainElixir(bytes)
            if plain { out.append(bytes: UnsafeRawBufferPointer(bytes)) }
            return plain
        }
        if !plain {
            out.append(utf8: style == .erlang ? ErlangAtom.quoted(name) : ElixirAtom.functionName(name))
        }
        out.append(47)
        NumberText.append(Int64(mfa.arity), to: &out)
    }

    private mutating func setModule(_ atom: AtomID) {
        module = atom
        let text = dictionaries.atom(atom)
        if let alias = ElixirAtom.moduleAlias(text) {
            prefix = Array((alias + ".").utf8)
            style = .elixir
        } else if dictionaries.elixirSyntax {
            prefix = Array((ElixirAtom.literal(text) + ".").utf8)
            style = .elixir
        } else {
            prefix = Array((ErlangAtom.quoted(text) + ":").utf8)
            style = .erlang
        }
    }

    /// An Erlang atom that prints bare: ASCII, a lowercase letter then letters, digits, `_` and `@`,
    /// and no reserved word (those are all lowercase letters of at most 7: such names take the long way).
    static func isPlainErlang(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let first = bytes.first, first >= 97, first <= 122 else { return false }
        var onlyLetters = true
        for byte in bytes.dropFirst() {
            switch byte {
            case 97...122: continue
            case 65...90, 48...57, 95, 64: onlyLetters = false
            default: return false
            }
        }
        return !onlyLetters || bytes.count > 7
    }

    /// An Elixir function name that prints bare: ASCII, `_` or a lowercase letter, then letters,
    /// digits, `_` and `@`, with one `?` or `!` at the end at most (operators take the long way).
    static func isPlainElixir(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let first = bytes.first, first == 95 || (first >= 97 && first <= 122) else { return false }
        var body = bytes.dropFirst()
        if let last = body.last, last == 63 || last == 33 { body = body.dropLast() }
        for byte in body {
            switch byte {
            case 97...122, 65...90, 48...57, 95, 64: continue
            default: return false
            }
        }
        return true
    }
}
