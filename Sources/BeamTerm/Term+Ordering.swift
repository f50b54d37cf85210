// Erlang's standard term order and exact equality (=:=), used for map key order and `==`.
// number < atom < reference < fun < port < pid < tuple < map < nil < list < bit string.

extension Term: Equatable, Hashable, Comparable {
    public static func == (lhs: Term, rhs: Term) -> Bool { compare(lhs, rhs) == 0 }
    public static func < (lhs: Term, rhs: Term) -> Bool { compare(lhs, rhs) < 0 }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .integer(let value): hasher.combine(0); hasher.combine(value)
        case .bigInteger(let value): hasher.combine(0); hasher.combine(value)
        case .float(let value): hasher.combine(1); hasher.combine(value == 0 ? 0.0 : value)
        case .atom(let atom): hasher.combine(2); hasher.combine(atom)
        case .reference(let reference): hasher.combine(3); hasher.combine(reference)
        case .fun(let fun): hasher.combine(4); hasher.combine(fun)
        case .export(let module, let function, let arity):
            hasher.combine(4); hasher.combine(module); hasher.combine(function); hasher.combine(arity)
        case .port(let port): hasher.combine(5); hasher.combine(port)
        case .pid(let pid): hasher.combine(6); hasher.combine(pid)
        case .tuple(let elements): hasher.combine(7); hasher.combine(elements)
        case .map(let pairs): hasher.combine(8); hasher.combine(pairs)
        case .list(let elements):
            hasher.combine(9); hasher.combine(elements.count)
            for element in elements { element.hash(into: &hasher) }
        case .string(let bytes):
            hasher.combine(9); hasher.combine(bytes.count)
            for byte in bytes { Term.integer(Int64(byte)).hash(into: &hasher) }
        case .improperList(let elements, let tail):
            hasher.combine(10); hasher.combine(elements); hasher.combine(tail)
        case .binary(let bytes): hasher.combine(11); hasher.combine(bytes)
        case .bitBinary(let bytes, let bits): hasher.combine(12); hasher.combine(bytes); hasher.combine(bits)
        }
    }

    private var typeRank: Int {
        switch self {
        case .integer, .bigInteger, .float: return 0
        case .atom: return 1
        case .reference: return 2
        case .fun, .export: return 3
        case .port: return 4
        case .pid: return 5
        case .tuple: return 6
        case .map: return 7
        case .list(let elements): return elements.isEmpty ? 8 : 9
        case .string(let bytes): return bytes.isEmpty ? 8 : 9
        case .improperList: return 9
        case .binary, .bitBinary: return 10
        }
    }

    /// Exact term order: negative, zero or positive. Integers and floats of equal value are not
    /// equal here (=:=); the integer sorts first, as in map keys.
    public static func compare(_ lhs: Term, _ rhs: Term) -> Int {
        let lr = lhs.typeRank, rr = rhs.typeRank
        if lr != rr { return lr < rr ? -1 : 1 }
        if lr == 8 { return 0 }  // both []
        switch (lhs, rhs) {
        case (.integer(let a), .integer(let b)): return a == b ? 0 : (a < b ? -1 : 1)
        case (.float(let a), .float(let b)): return a == b ? 0 : (a < b ? -1 : 1)
        case (.atom(let a), .atom(let b)): return compareAtoms(a, b)
        case (.tuple(let a), .tuple(let b)):
            if a.count != b.count { return a.count < b.count ? -1 : 1 }
            return compareSequences(a, b)
        case (.map(let a), .map(let b)):
            if a.count != b.count { return a.count < b.count ? -1 : 1 }
            for (x, y) in zip(a, b) {
                let c = compare(x.key, y.key)
                if c != 0 { return c }
            }
            for (x, y) in zip(a, b) {
                let c = compare(x.value, y.value)
                if c != 0 { return c }
            }
            return 0
        case (.binary, _), (.bitBinary, _): return compareBits(lhs, rhs)
        case (.pid(let a), .pid(let b)):
            let c = compareAtoms(a.node, b.node)
            if c != 0 { return c }
            for (x, y) in [(a.serial, b.serial), (a.id, b.id), (a.creation, b.creation)] where x != y {
                return x < y ? -1 : 1
            }
            return 0
        case (.port(let a), .port(let b)):
            let c = compareAtoms(a.node, b.node)
            if c != 0 { return c }
            if a.id != b.id { return a.id < b.id ? -1 : 1 }
            return a.creation == b.creation ? 0 : (a.creation < b.creation ? -1 : 1)
        case (.reference(let a), .reference(let b)):
            let c = compareAtoms(a.node, b.node)
            if c != 0 { return c }
            if a.ids.count != b.ids.count { return a.ids.count < b.ids.count ? -1 : 1 }
            for (x, y) in zip(a.ids.reversed(), b.ids.reversed()) where x != y { return x < y ? -1 : 1 }
            return a.creation == b.creation ? 0 : (a.creation < b.creation ? -1 : 1)
        default:
            break
        }
        if lr == 0 { return compareNumbers(lhs, rhs) }
        if lr == 3 { return compareFunctions(lhs, rhs) }
        return compareLists(lhs, rhs)
    }

    private static func compareAtoms(_ a: Atom, _ b: Atom) -> Int {
        if a.name == b.name { return 0 }
        return a < b ? -1 : 1
    }

    private static func compareSequences(_ a: [Term], _ b: [Term]) -> Int {
        for (x, y) in zip(a, b) {
            let c = compare(x, y)
            if c != 0 { return c }
        }
        return a.count == b.count ? 0 : (a.count < b.count ? -1 : 1)
    }

    private static func compareNumbers(_ lhs: Term, _ rhs: Term) -> Int {
        func big(_ term: Term) -> BigInteger? {
            switch term {
            case .integer(let v): return BigInteger(v)
            case .bigInteger(let v): return v
            default: return nil
            }
        }
        if let a = big(lhs), let b = big(rhs) { return a == b ? 0 : (a < b ? -1 : 1) }
        let a = lhs.numericDouble, b = rhs.numericDouble
        if a != b { return a < b ? -1 : 1 }
        // Same value, one integer and one float: the integer first.
        if case .float = lhs { return 1 }
        return -1
    }

    var numericDouble: Double {
        switch self {
        case .integer(let v): return Double(v)
        case .bigInteger(let v): return v.doubleValue
        case .float(let v): return v
        default: return .nan
        }
    }

    private static func compareFunctions(_ lhs: Term, _ rhs: Term) -> Int {
        switch (lhs, rhs) {
        case (.export(let m1, let f1, let a1), .export(let m2, let f2, let a2)):
            let c = compareAtoms(m1, m2)
            if c != 0 { return c }
            let d = compareAtoms(f1, f2)
            if d != 0 { return d }
            return a1 == a2 ? 0 : (a1 < a2 ? -1 : 1)
        case (.fun(let a), .fun(let b)):
            let c = compareAtoms(a.module, b.module)
            if c != 0 { return c }
            if a.index != b.index { return a.index < b.index ? -1 : 1 }
            if a.oldUniq != b.oldUniq { return a.oldUniq < b.oldUniq ? -1 : 1 }
            if a.uniq != b.uniq { return a.uniq.lexicographicallyPrecedes(b.uniq) ? -1 : 1 }
            if a.pid != b.pid { return Term.compare(.pid(a.pid), .pid(b.pid)) }
            return compareSequences(a.freeVars, b.freeVars)
        case (.fun, .export): return -1
        default: return 1
        }
    }

    private static func compareBits(_ lhs: Term, _ rhs: Term) -> Int {
        func parts(_ term: Term) -> ([UInt8], Int) {
            switch term {
            case .binary(let bytes): return (bytes, bytes.count * 8)
            case .bitBinary(let bytes, let bits): return (bytes, max(0, bytes.count - 1) * 8 + Int(bits))
            default: return ([], 0)
            }
        }
        let (a, aBits) = parts(lhs), (b, bBits) = parts(rhs)
        for (x, y) in zip(a, b) where x != y { return x < y ? -1 : 1 }
        return aBits == bBits ? 0 : (aBits < bBits ? -1 : 1)
    }

    /// Lists (including strings and improper lists), element by element, tails compared last.
    private static func compareLists(_ lhs: Term, _ rhs: Term) -> Int {
        func split(_ term: Term) -> ([Term], Term) {
            switch term {
            case .list(let elements): return (elements, .nil)
            case .string(let bytes): return (bytes.map { .integer(Int64($0)) }, .nil)
            case .improperList(let elements, let tail): return (elements, tail)
            default: return ([], term)
            }
        }
        if case .string(let a) = lhs, case .string(let b) = rhs {
            if a == b { return 0 }
            return a.lexicographicallyPrecedes(b) ? -1 : 1
        }
        let (a, aTail) = split(lhs), (b, bTail) = split(rhs)
        for (x, y) in zip(a, b) {
            let c = compare(x, y)
            if c != 0 { return c }
        }
        if a.count == b.count { return compare(aTail, bTail) }
        // One ran out: compare its tail with the rest of the other list.
        if a.count < b.count {
            let rest: Term = bTail == .nil ? .list(Array(b[a.count...])) : .improperList(Array(b[a.count...]), tail: bTail)
            return compare(aTail, rest)
        }
        let rest: Term = aTail == .nil ? .list(Array(a[b.count...])) : .improperList(Array(a[b.count...]), tail: aTail)
        return compare(rest, bTail)
    }
}
