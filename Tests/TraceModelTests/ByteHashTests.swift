// ByteHash indexes every in-memory table over raw bytes by its low bits: those bits must follow
// every byte of the input, the last ones too (an integer's low byte is the one that changes).
import Testing
@testable import TraceModel

@Suite struct ByteHashTests {
    /// The low 12 bits over 256 inputs that differ in one byte only, at each place of inputs of
    /// every length from 4 to 24: nearly as many distinct values as inputs.
    @Test func lowBitsFollowEveryByte() {
        var worst = Int.max
        var worstCase = ""
        for length in 4...24 {
            for place in 0..<length {
                var bytes = [UInt8](repeating: 0x5A, count: length)
                var seen = Set<UInt64>()
                for value in 0...255 {
                    bytes[place] = UInt8(value)
                    let h = bytes.withUnsafeBytes { ByteHash.of($0) }
                    seen.insert((h >> 1) & 0xFFF)
                }
                if seen.count < worst {
                    worst = seen.count
                    worstCase = "length \(length), byte \(place)"
                }
            }
        }
        // 256 values into 4,096 buckets: about 8 collide by chance; a byte the low bits ignore gives 1.
        #expect(worst >= 230, "only \(worst) distinct low-bit values (\(worstCase))")
    }
}
