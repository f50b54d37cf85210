// The Erlang term as a Swift value: what the External Term Format decodes to and encodes from.
// Equality is Erlang's exact equality (=:=): a STRING_EXT equals the same list of small integers,
// map equality ignores the order the pairs arrived in, floats compare by value (0.0 =:= -0.0 as on OTP 25).

/// An Erlang term.
public enum Term: Sendable {
    /// An integer that fits in 64 bits. Larger ones are always `.bigInteger`.
    case integer(Int64)
    /// An integer outside the 64-bit range.
    case bigInteger(BigInteger)
    case float(Double)
    case atom(Atom)
    case tuple([Term])
    /// A proper list; `[]` is `.list([])`.
    case list([Term])
    /// A list of bytes as `STRING_EXT` carries it; equal to the `.list` of the same small integers.
    case string([UInt8])
    /// `[E1, E2 | Tail]` where Tail is not a list.
    indirect case improperList([Term], tail: Term)
    case binary([UInt8])
    /// A bit string: `bytes` holds the bits, the last byte's `trailingBits` high bits are used (1...7).
    case bitBinary([UInt8], trailingBits: UInt8)
    case pid(Pid)
    case port(Port)
    case reference(Reference)
    indirect case fun(Fun)
    /// `fun M:F/A`.
    case export(module: Atom, function: Atom, arity: Int)
    /// Pairs in Erlang term order of their keys.
    case map([MapPair])
}

public struct MapPair: Sendable, Hashable {
    public var key: Term
    public var value: Term
    public init(_ key: Term, _ value: Term) {
        self.key = key
        self.value = value
    }
}

/// An atom's text; stored as Swift `String`.
public struct Atom: Sendable, Hashable, Comparable, ExpressibleByStringLiteral, CustomStringConvertible {
    public var name: String
    public init(_ name: String) { self.name = name }
    public init(stringLiteral value: String) { self.name = value }
    public static func < (lhs: Atom, rhs: Atom) -> Bool {
        // Erlang orders atoms by their characters (code points), not by Swift's grapheme order.
        lhs.name.unicodeScalars.lexicographicallyPrecedes(rhs.name.unicodeScalars) { $0.value < $1.value }
    }
    public var description: String { name }
}

public struct Pid: Sendable, Hashable {
    public var node: Atom
    public var id: UInt32
    public var serial: UInt32
    public var creation: UInt32
    public init(node: Atom, id: UInt32, serial: UInt32, creation: UInt32) {
        self.node = node
        self.id = id
        self.serial = serial
        self.creation = creation
    }
}

public struct Port: Sendable, Hashable {
    public var node: Atom
    public var id: UInt64
    public var creation: UInt32
    public init(node: Atom, id: UInt64, creation: UInt32) {
        self.node = node
        self.id = id
        self.creation = creation
    }
}

public struct Reference: Sendable, Hashable {
    public var node: Atom
    public var creation: UInt32
    /// The reference's words, in the order the external format carries them.
    public var ids: [UInt32]
    public init(node: Atom, creation: UInt32, ids: [UInt32]) {
        self.node = node
        self.creation = creation
        self.ids = ids
    }
}

/// A fun as `NEW_FUN_EXT` (or the old `FUN_EXT`) describes it.
public struct Fun: Sendable, Hashable {
    public var arity: Int
    /// MD5 of the module's code (16 bytes); empty for the old `FUN_EXT`.
    public var uniq: [UInt8]
    public var index: UInt32
    public var module: Atom
    public var oldIndex: Int64
    public var oldUniq: Int64
    public var pid: Pid
    public var freeVars: [Term]
    /// True when it came as the old `FUN_EXT` (tag 117), which has no arity nor MD5.
    public var isOldFormat: Bool

    public init(arity: Int, uniq: [UInt8], index: UInt32, module: Atom, oldIndex: Int64, oldUniq: Int64,
                pid: Pid, freeVars: [Term], isOldFormat: Bool = false) {
        self.arity = arity
        self.uniq = uniq
        self.index = index
        self.module = module
        self.oldIndex = oldIndex
        self.oldUniq = oldUniq
        self.pid = pid
        self.freeVars = freeVars
        self.isOldFormat = isOldFormat
    }
}

extension Term {
    public static let `nil` = Term.list([])
    public static let `true` = Term.atom("true")
    public static let `false` = Term.atom("false")

    public static func atom(_ name: String) -> Term { .atom(Atom(name)) }

    /// Any integer, choosing `.integer` or `.bigInteger` so the representation stays canonical.
    public static func integer(_ big: BigInteger) -> Term {
        if let small = big.int64Value { return .integer(small) }
        return .bigInteger(big)
    }

    /// A map from pairs in any order; duplicate keys keep the last value, as `maps:from_list/1` does.
    public static func map(unordered pairs: [MapPair]) -> Term {
        // A stable sort keeps equal keys in arrival order, so the last of them is the one to keep.
        let sorted = pairs.enumerated().sorted { a, b in
            let order = Term.compare(a.element.key, b.element.key)
            return order != 0 ? order < 0 : a.offset < b.offset
        }.map(\.element)
        var result: [MapPair] = []
        result.reserveCapacity(sorted.count)
        for pair in sorted {
            if let last = result.last, last.key == pair.key {
                result[result.count - 1] = pair
            } else {
                result.append(pair)
            }
        }
        return .map(result)
    }

    /// The elements of a proper list, also for `.string`; nil for anything else.
    public var listElements: [Term]? {
        switch self {
        case .list(let elements): return elements
        case .string(let bytes): return bytes.map { .integer(Int64($0)) }
        default: return nil
        }
    }

    public var atomValue: Atom? {
        if case .atom(let atom) = self { return atom }
        return nil
    }

    public var tupleElements: [Term]? {
        if case .tuple(let elements) = self { return elements }
        return nil
    }

    public var int64Value: Int64? {
        if case .integer(let value) = self { return value }
        return nil
    }

    public var isList: Bool {
        switch self {
        case .list, .string, .improperList: return true
        default: return false
        }
    }

    /// True when the term contains a pid, port, reference or fun, which have no literal syntax.
    public var hasOpaqueParts: Bool {
        switch self {
        case .pid, .port, .reference, .fun: return true
        case .tuple(let elements), .list(let elements): return elements.contains { $0.hasOpaqueParts }
        case .improperList(let elements, let tail): return tail.hasOpaqueParts || elements.contains { $0.hasOpaqueParts }
        case .map(let pairs): return pairs.contains { $0.key.hasOpaqueParts || $0.value.hasOpaqueParts }
        default: return false
        }
    }
}
