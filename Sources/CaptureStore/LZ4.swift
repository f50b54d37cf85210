// The one file that calls liblz4 (through CLZ4): block compression of columns.
import CLZ4

enum LZ4 {
    static func compressBound(_ count: Int) -> Int { Int(LZ4_compressBound(Int32(clamping: count))) }

    /// Compresses `source` into `destination`; returns the compressed size, or 0 when it does not fit.
    static func compress(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) -> Int {
        guard let src = source.baseAddress, let dst = destination.baseAddress, source.count > 0 else { return 0 }
        return Int(LZ4_compress_default(src.assumingMemoryBound(to: CChar.self), dst.assumingMemoryBound(to: CChar.self),
                                        Int32(clamping: source.count), Int32(clamping: destination.count)))
    }

    /// Decompresses exactly `destination.count` bytes; false when the input is corrupt.
    static func decompress(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) -> Bool {
        if destination.count == 0 { return source.count == 0 || source.count == 1 }
        guard let src = source.baseAddress, let dst = destination.baseAddress else { return false }
        let n = LZ4_decompress_safe(src.assumingMemoryBound(to: CChar.self), dst.assumingMemoryBound(to: CChar.self),
                                    Int32(clamping: source.count), Int32(clamping: destination.count))
        return Int(n) == destination.count
    }
}
