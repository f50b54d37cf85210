// The one function matcher every command uses (record patterns, events/latency/timeline filters):
// `mod`, `mod:fun`, `mod:fun/arity`, quoted atoms (`'My Mod':f/1`), Elixir's `Mod`, `Mod.fun`,
// `Mod.fun/arity`, `:ets.lookup/2`, and the atom form `'Elixir.Mod':fun/arity` — all naming the
// same {Module, Function, Arity} as OTP's atoms spell it (`Elixir.MyApp.Worker`).
import Foundation

public struct FunctionMatcherError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

public struct FunctionMatcher: Sendable, Hashable, CustomStringConvertible {
    /// The module atom (`gen_server`, `Elixir.MyApp.Worker`).
    public var module: String
    /// nil: any function (`mod`, `mod:_`).
    public var function: String?
    /// nil: any arity.
    public var arity: Int?
    /// As typed.
    public var text: String

    public static let help = "mod, mod:fun, mod:fun/arity, Mod, Mod.fun or Mod.fun/arity"

    public init(module: String, function: String? = nil, arity: Int? = nil) {
        self.module = module
        self.function = function
        self.arity = arity
        text = module + (function.map { ":" + $0 } ?? "") + (arity.map { "/\($0)" } ?? "")
    }

    /// Parses a function as typed (no argument list: patterns strip theirs first).
    public init(parsing typed: String) throws(FunctionMatcherError) {
        text = typed
        var head = Substring(typed.trimmingCharacters(in: .whitespaces))
        if let slash = head.lastIndex(of: "/"), !head[slash...].contains("'") {
            guard let value = Int(head[head.index(after: slash)...]), value >= 0, value <= 255 else {
                throw FunctionMatcherError("\(typed): the arity after `/` must be a number 0–255")
            }
            arity = value
            head = head[..<slash]
        }
        if let colon = Self.unquotedColon(head) {
            module = try Self.unquote(head[..<colon], typed)
            let functionText = try Self.unquote(head[head.index(after: colon)...], typed)
            function = functionText == "_" ? nil : functionText
        } else if let first = head.first, first.isUppercase {
            // Elixir: Mod.Sub.fun or Mod.Sub (a lower-case last part is the function).
            let parts = head.split(separator: ".")
            if let last = parts.last, let initial = last.first, !initial.isUppercase, parts.count >= 2 {
                module = "Elixir." + parts.dropLast().joined(separator: ".")
                function = String(last)
            } else {
                module = "Elixir." + parts.joined(separator: ".")
            }
            if module.hasPrefix("Elixir.Elixir.") { module.removeFirst(7) }
        } else if head.hasPrefix(":"), let dot = head.lastIndex(of: "."), dot > head.index(after: head.startIndex) {
            // Elixir's view of an Erlang module: :ets.lookup/2.
            module = String(head[head.index(after: head.startIndex)..<dot])
            function = String(head[head.index(after: dot)...])
        } else {
            module = try Self.unquote(head, typed)
        }
        if module.hasPrefix(":") { module.removeFirst() }
        guard !module.isEmpty, !module.contains(" ") || typed.contains("'") else {
            throw FunctionMatcherError("\(typed): expected \(Self.help)")
        }
        if function == nil, arity != nil {
            throw FunctionMatcherError("\(typed): an arity needs a function name")
        }
    }

    public func matches(module m: String, function f: String, arity a: Int) -> Bool {
        guard m == module else { return false }
        if let function, function != f { return false }
        if let arity, arity != a { return false }
        return true
    }

    public func matches(_ mfa: MFA, in d: TraceDictionaries) -> Bool {
        matches(module: d.atom(mfa.module), function: d.atom(mfa.function), arity: Int(mfa.arity))
    }

    /// Matches a function as `functionText` printed it (`mod:fun/2`, `MyApp.Worker.handle_call/3`).
    public func matches(printed: String) -> Bool {
        guard let other = try? FunctionMatcher(parsing: printed), let f = other.function, let a = other.arity else {
            return false
        }
        return matches(module: other.module, function: f, arity: a)
    }

    public var description: String { text }

    private static func unquotedColon(_ text: Substring) -> Substring.Index? {
        var quoted = false
        for index in text.indices {
            if text[index] == "'" { quoted.toggle() }
            if text[index] == ":" && !quoted && index != text.startIndex { return index }
        }
        return nil
    }

    private static func unquote(_ text: Substring, _ whole: String) throws(FunctionMatcherError) -> String {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed.hasPrefix("'") {
            guard trimmed.count >= 2, trimmed.hasSuffix("'") else { throw FunctionMatcherError("\(whole): unbalanced quote") }
            return String(trimmed.dropFirst().dropLast())
        }
        guard !trimmed.isEmpty, trimmed.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "@" || $0 == "."
                                                      || $0 == "?" || $0 == "!" })
        else { throw FunctionMatcherError("\(whole): `\(trimmed)` is not an atom") }
        return trimmed
    }
}
