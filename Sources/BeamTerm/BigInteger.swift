// Integers beyond 64 bits as the external format carries them (SMALL_BIG_EXT / LARGE_BIG_EXT):
// a sign and a little-endian magnitude. Only what beamtrace needs: compare, print, parse.

public struct BigInteger: Sendable, Hashable, Comparable, CustomStringConvertible {
    public private(set) var isNegative: Bool
    /// Little-endian base-256 digits without trailing zero bytes; empty for zero.
    public private(set) var magnitude: [UInt8]

    public init(isNegative: Bool, magnitude: [UInt8]) {
        var digits = magnitude
        while let last = digits.last, last == 0 { digits.removeLast() }
        self.magnitude = digits
        self.isNegative = digits.isEmpty ? false : isNegative
    }

    public init(_ value: Int64) {
        var m = value.magnitude
        var digits: [UInt8] = []
        while m > 0 {
            digits.append(UInt8(truncatingIfNeeded: m))
            m >>= 8
        }
        self.init(isNegative: value < 0, magnitude: digits)
    }

    /// The value when it fits in Int64.
    public var int64Value: Int64? {
        guard magnitude.count <= 8 else { return nil }
        var m: UInt64 = 0
        for byte in magnitude.reversed() { m = m << 8 | UInt64(byte) }
        if isNegative {
            if m <= UInt64(Int64.max) { return -Int64(m) }
            if m == UInt64(Int64.max) + 1 { return Int64.min }
            return nil
        }
        return m <= UInt64(Int64.max) ? Int64(m) : nil
    }

    public static func < (lhs: BigInteger, rhs: BigInteger) -> Bool {
        if lhs.isNegative != rhs.isNegative { return lhs.isNegative }
        let magnitudeLess = BigInteger.magnitudeLess(lhs.magnitude, rhs.magnitude)
        if lhs.isNegative { return BigInteger.magnitudeLess(rhs.magnitude, lhs.magnitude) }
        return magnitudeLess
    }

    static func magnitudeLess(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        if a.count != b.count { return a.count < b.count }
        for i in stride(from: a.count - 1, through: 0, by: -1) where a[i] != b[i] {
            return a[i] < b[i]
        }
        return false
    }

    /// Decimal, as Erlang prints it.
    public var description: String {
        if magnitude.isEmpty { return "0" }
        // Repeated division by 10^19 over 32-bit limbs.
        var limbs = BigInteger.limbs(of: magnitude)
        var chunks: [UInt64] = []
        let divisor: UInt64 = 10_000_000_000_000_000_000
        while !limbs.isEmpty {
            var remainder: UInt64 = 0
            for i in stride(from: limbs.count - 1, through: 0, by: -1) {
                let (q, r) = divisor.dividingFullWidth((high: remainder >> 32, low: (remainder << 32) | UInt64(limbs[i])))
                limbs[i] = UInt32(truncatingIfNeeded: q)
                remainder = r
            }
            while let last = limbs.last, last == 0 { limbs.removeLast() }
            chunks.append(remainder)
        }
        var text = isNegative ? "-" : ""
        text += String(chunks.removeLast())
        for chunk in chunks.reversed() {
            let digits = String(chunk)
            text += String(repeating: "0", count: 19 - digits.count) + digits
        }
        return text
    }

    /// Parses optional sign and decimal digits (Erlang's `_` separators allowed).
    public init?(decimal text: Substring) {
        var negative = false
        var digits = text
        if let first = digits.first, first == "-" || first == "+" {
            negative = first == "-"
            digits = digits.dropFirst()
        }
        guard !digits.isEmpty else { return nil }
        var values: [Int] = []
        for character in digits {
            if character == "_" { continue }
            guard let digit = character.wholeNumberValue, character.isASCII else { return nil }
            values.append(digit)
        }
        self.init(digits: values, base: 10, isNegative: negative)
    }

    /// From digits (most significant first) in a base from 2 to 36.
    public init(digits: [Int], base: Int, isNegative: Bool = false) {
        var limbs: [UInt32] = []
        for digit in digits {
            var carry = UInt64(digit)
            for i in limbs.indices {
                let product = UInt64(limbs[i]) * UInt64(base) + carry
                limbs[i] = UInt32(truncatingIfNeeded: product)
                carry = product >> 32
            }
            if carry > 0 { limbs.append(UInt32(carry)) }
        }
        var bytes: [UInt8] = []
        for limb in limbs {
            for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: limb >> UInt32(shift))) }
        }
        self.init(isNegative: isNegative, magnitude: bytes)
    }

    private static func limbs(of magnitude: [UInt8]) -> [UInt32] {
        var limbs = [UInt32](repeating: 0, count: (magnitude.count + 3) / 4)
        for (i, byte) in magnitude.enumerated() { limbs[i / 4] |= UInt32(byte) << UInt32((i % 4) * 8) }
        return limbs
    }

    /// The nearest double, for comparing with floats.
    public var doubleValue: Double {
        var value = 0.0
        for byte in magnitude.reversed() { value = value * 256 + Double(byte) }
        return isNegative ? -value : value
    }
}
