// The one error the term decoder throws: what was wrong, at which byte, and what was expected there.

public struct TermDecodingError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Reason: Sendable, Equatable {
        case truncated
        case badVersion(UInt8)
        case unknownTag(UInt8)
        case invalidValue
        case lengthTooLarge(UInt64)
        case tooDeep(limit: Int)
        case invalidUTF8
        case atomCacheMiss(index: Int)
        case compression
        /// A compressed term says it inflates to more than the decoder's limit.
        case inflatesTooLarge(size: UInt64, limit: Int)
        case trailingBytes(count: Int)
    }

    public var reason: Reason
    /// Byte offset in the input where the problem was found.
    public var offset: Int
    /// What the decoder expected at that offset.
    public var expected: String

    public init(_ reason: Reason, offset: Int, expected: String) {
        self.reason = reason
        self.offset = offset
        self.expected = expected
    }

    public var description: String {
        let what: String
        switch reason {
        case .truncated: what = "input ends early"
        case .badVersion(let v): what = "version byte is \(v), not 131"
        case .unknownTag(let tag): what = "unknown tag \(tag)"
        case .invalidValue: what = "invalid value"
        case .lengthTooLarge(let n): what = "length \(n) is larger than the input can hold"
        case .tooDeep(let limit): what = "term nests deeper than \(limit) levels"
        case .invalidUTF8: what = "atom is not valid UTF-8"
        case .atomCacheMiss(let index): what = "atom cache reference \(index) has no entry"
        case .compression: what = "compressed term does not inflate to its stated size"
        case .inflatesTooLarge(let size, let limit):
            what = "compressed term would inflate to \(size) bytes, more than the limit of \(limit) bytes"
        case .trailingBytes(let count): what = "\(count) bytes follow the term"
        }
        return "bad external term at byte \(offset): \(what) (expected \(expected))"
    }
}
