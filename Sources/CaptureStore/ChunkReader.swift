// Reads an import source's file a chunk at a time, one chunk ahead of the decoder, on a queue of its
// own: the copy out of the page cache (read(2)) runs on the other core while the decoder works on the
// chunk before. Each chunk comes back joined to the bytes the decoder had left over (a partial frame),
// copied into room kept in front of it, so the decoder always sees whole frames contiguously.
import Dispatch
import SystemPackage

final class ChunkReader: @unchecked Sendable {
    /// Room kept before each chunk for the partial frame carried over from the one before.
    static let headroom = 256 << 10

    private let fd: FileDescriptor
    /// Read on a background queue (false: in `next`, on the caller's thread, as for standard input,
    /// which may block for as long as its writer likes).
    private let ahead: Bool
    private let buffers: [UnsafeMutableRawBufferPointer]
    /// For a carried-over part longer than the headroom (a frame larger than that): the part and
    /// the new chunk, joined.
    private var overflow = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    private let queue = DispatchQueue(label: "beamtrace.import.read")
    private let done = DispatchSemaphore(value: 0)
    /// The buffer being read into (ahead) and the outcome, set on the queue before `done` is signalled.
    private var reading: Int?
    private var outcome: Result<Int, any Error> = .success(0)
    private var current = 1
    private var atEnd = false

    init(_ fd: FileDescriptor, chunkSize: Int, ahead: Bool) {
        self.fd = fd
        self.ahead = ahead
        buffers = (0..<2).map { _ in
            UnsafeMutableRawBufferPointer.allocate(byteCount: Self.headroom + chunkSize, alignment: 16)
        }
        if ahead { start(0) }
    }

    deinit {
        wait()
        for buffer in buffers { buffer.deallocate() }
        overflow.deallocate()
    }

    /// Waits for a read under way (before the descriptor is closed).
    func wait() {
        if reading != nil {
            done.wait()
            reading = nil
        }
    }

    private func start(_ index: Int) {
        reading = index
        queue.async { [self] in
            outcome = Result { try fd.read(into: UnsafeMutableRawBufferPointer(rebasing: buffers[index][Self.headroom...])) }
            done.signal()
        }
    }

    /// The bytes `keeping` (the caller's leftover, which may lie in the last chunk returned) followed
    /// by the next chunk of the file, and how many new bytes that is (0 at the end of the file).
    /// The returned bytes stay valid until the next call.
    func next(keeping leftover: UnsafeRawBufferPointer) throws -> (bytes: UnsafeRawBufferPointer, read: Int) {
        let index = 1 - current
        let count: Int
        if atEnd {
            count = 0
        } else if ahead {
            if reading == nil { start(index) }
            done.wait()
            reading = nil
            count = try outcome.get()
        } else {
            count = try fd.read(into: UnsafeMutableRawBufferPointer(rebasing: buffers[index][Self.headroom...]))
        }
        if count == 0 { atEnd = true }
        let buffer = buffers[index]
        let bytes: UnsafeRawBufferPointer
        if leftover.count <= Self.headroom {
            let begin = Self.headroom - leftover.count
            if let from = leftover.baseAddress, let to = buffer.baseAddress {
                (to + begin).copyMemory(from: from, byteCount: leftover.count)
            }
            bytes = UnsafeRawBufferPointer(rebasing: buffer[begin..<(Self.headroom + count)])
        } else {
            let joined = UnsafeMutableRawBufferPointer.allocate(byteCount: leftover.count + count, alignment: 16)
            joined.copyMemory(from: leftover)
            UnsafeMutableRawBufferPointer(rebasing: joined[leftover.count...])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: buffer[Self.headroom..<(Self.headroom + count)]))
            overflow.deallocate()
            overflow = joined
            bytes = UnsafeRawBufferPointer(joined)
        }
        current = index
        // The other buffer's bytes were copied out: read the next chunk into it while these are decoded.
        if ahead && !atEnd { start(1 - index) }
        return (bytes, count)
    }
}
