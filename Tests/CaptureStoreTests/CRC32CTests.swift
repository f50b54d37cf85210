// CRC-32C: the processor's instruction and the software table give the same checksums (every
// record of every capture is checked with it, so a capture written by either reads with either).
import Testing
@testable import CaptureStore

@Suite struct CRC32CTests {
    @Test func knownCheckValue() {
        // The standard check value of CRC-32C ("123456789").
        let bytes = Array("123456789".utf8)
        #expect(CRC32C.checksum(bytes) == 0xE306_9283)
        #expect(bytes.withUnsafeBytes { CRC32C.software($0) } == 0xE306_9283)
    }

    @Test func instructionAndTableAgree() {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        let bytes: [UInt8] = (0..<70_000).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
        var same = true
        bytes.withUnsafeBytes { all in
            // Every length up to 70 at every alignment, and long runs, with and without a seed.
            for start in 0..<8 {
                for length in 0...70 {
                    let part = UnsafeRawBufferPointer(rebasing: all[start..<(start + length)])
                    for seed: UInt32 in [0, 0xDEAD_BEEF] where CRC32C.checksum(part, seed: seed) != CRC32C.software(part, seed: seed) {
                        same = false
                    }
                }
            }
            for length in [4_096, 65_537, 69_990] {
                let part = UnsafeRawBufferPointer(rebasing: all[3..<(3 + length)])
                if CRC32C.checksum(part) != CRC32C.software(part) { same = false }
            }
        }
        #expect(same)
    }
}
