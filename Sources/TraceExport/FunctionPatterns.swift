// `--exclude` and `--mfa` patterns for exports: `mod`, `mod:fun`, `mod:fun/arity`, with `*`
// matching any run of characters (`lists:*`, `*:handle_*`).
import TraceModel

public struct FunctionPatterns: Sendable {
    public let patterns: [String]

    public init(_ patterns: [String]) { self.patterns = patterns }

    public var isEmpty: Bool { patterns.isEmpty }

    /// True when `mfa` (`mod:fun/arity`) matches one of the patterns.
    public func matches(_ mfa: String) -> Bool {
        patterns.contains { pattern in
            if pattern.contains("*") { return Self.glob(Array(pattern.utf8), Array(mfa.utf8)) }
            return mfa == pattern || mfa.hasPrefix(pattern + ":") || mfa.hasPrefix(pattern + "/")
        }
    }

    /// By FunctionID: which functions of the dictionaries match.
    public func table(_ dictionaries: TraceDictionaries) -> [Bool] {
        (0..<dictionaries.functions.count).map { $0 != 0 && matches(dictionaries.functionText(FunctionID($0))) }
    }

    static func glob(_ pattern: [UInt8], _ text: [UInt8]) -> Bool {
        var p = 0, t = 0, star = -1, mark = 0
        while t < text.count {
            if p < pattern.count, pattern[p] == UInt8(ascii: "*") {
                star = p
                mark = t
                p += 1
            } else if p < pattern.count, pattern[p] == text[t] {
                p += 1
                t += 1
            } else if star >= 0 {
                p = star + 1
                mark += 1
                t = mark
            } else {
                return false
            }
        }
        while p < pattern.count, pattern[p] == UInt8(ascii: "*") { p += 1 }
        return p == pattern.count
    }
}
