// The one place BeamTerm calls zlib: inflating compressed terms (tag 80) and deflating on request.
import CZlib

enum Inflate {
    /// Inflates a zlib stream that must produce exactly `expectedSize` bytes.
    /// Returns the bytes and how many input bytes the stream used, or nil if it is not such a stream.
    static func inflate(_ input: UnsafeRawBufferPointer, expectedSize: Int) -> ([UInt8], Int)? {
        guard let inputBase = input.baseAddress else { return nil }
        var output = [UInt8](repeating: 0, count: expectedSize)
        var stream = z_stream()
        guard inflateInit_(&stream, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else { return nil }
        defer { inflateEnd(&stream) }
        let status: Int32 = output.withUnsafeMutableBytes { out in
            stream.next_in = UnsafeMutablePointer(mutating: inputBase.assumingMemoryBound(to: Bytef.self))
            stream.avail_in = uInt(min(input.count, Int(UInt32.max)))
            // One extra byte of room would be needed to notice overlong output; zlib reports
            // Z_BUF_ERROR / Z_OK instead of Z_STREAM_END in that case, which we reject.
            stream.next_out = out.baseAddress?.assumingMemoryBound(to: Bytef.self)
            stream.avail_out = uInt(expectedSize)
            return CZlib.inflate(&stream, Z_FINISH)
        }
        guard status == Z_STREAM_END, Int(stream.total_out) == expectedSize else { return nil }
        return (output, Int(stream.total_in))
    }

    /// Deflates `input` as `term_to_binary(T, [compressed])` does (zlib format).
    static func deflate(_ input: [UInt8], level: Int32 = 6) -> [UInt8]? {
        var destinationLength = compressBound(uLong(input.count))
        var output = [UInt8](repeating: 0, count: Int(destinationLength))
        let status = output.withUnsafeMutableBufferPointer { out in
            input.withUnsafeBufferPointer { source in
                compress2(out.baseAddress, &destinationLength, source.baseAddress, uLong(input.count), level)
            }
        }
        guard status == Z_OK else { return nil }
        output.removeSubrange(Int(destinationLength)...)
        return output
    }
}
