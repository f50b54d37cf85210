// The one ingest loop for trace-port frames (`<<Op:8, Size:32/big, Body>>`), used by import
// (files, wrap sets, ttb, ip streams, stdin) and by live recording (agent batches, the ip port):
// frames → the trace-message decoder → a batch, under one set of rules. A frame whose body does
// not decode is counted and skipped; bytes that are not a frame (a bad tag, an absurd or damaged
// length) are skipped up to the next frame that decodes; with `strict` the first bad frame stops
// the input, after every good event before it is in the batch. Everything skipped is recorded with
// where it was.
import TraceModel

/// Bytes of an input that were skipped, and why.
public struct IngestDamage: Sendable, Hashable, CustomStringConvertible {
    public var source: String
    /// Byte offset in the source where the skipped bytes start.
    public var offset: Int64
    public var bytes: Int64
    public var why: String
    public var description: String { "\(source): skipped \(bytes) bytes at byte \(offset) (\(why))" }
}

/// A strict ingest stopped at bad input.
public struct IngestStopped: Error, Sendable, CustomStringConvertible {
    public var damage: IngestDamage
    public var description: String {
        "\(damage.source): bad input at byte \(damage.offset) (\(damage.why)); stopped there (--strict)"
    }
}

public struct FrameIngest: Sendable {
    /// Stop at the first bad frame instead of skipping it.
    public var strict: Bool
    /// Largest trace message accepted; a longer length is damage, not a frame.
    public var maxFrameSize = 64 << 20
    /// Frames whose body did not decode as a trace message.
    public private(set) var framesSkipped = 0
    /// Bytes skipped in all (bad frames and bytes between frames).
    public private(set) var bytesSkipped: Int64 = 0
    /// Trace messages the input itself says were lost (drop frames).
    public private(set) var dropped: Int64 = 0
    /// Where bytes were skipped (the first 100 places; `damageCount` counts them all).
    public private(set) var damage: [IngestDamage] = []
    public private(set) var damageCount = 0
    /// A partial frame at the very end of the input (a file cut while being written), if any.
    public private(set) var tail: IngestDamage?

    /// While resynchronizing: where the skipped run began, why, and whether it began as an
    /// incomplete last frame (then, if nothing decodes after it, it is a torn tail).
    private var skipping: (start: Int64, why: String, asTail: Bool)?

    public init(strict: Bool = false) { self.strict = strict }

    public var isClean: Bool { damageCount == 0 }

    /// Records skipped bytes (with `strict`, throws `IngestStopped` after recording them).
    mutating func noteDamage(_ d: IngestDamage) throws {
        damageCount += 1
        bytesSkipped += d.bytes
        if damage.count < 100 { damage.append(d) }
        if strict { throw IngestStopped(damage: d) }
    }

    mutating func noteFrameSkipped() { framesSkipped += 1 }
    mutating func noteDropped(_ count: Int64) { dropped += count }

    @inline(__always)
    private static func u32(_ b: UnsafeRawBufferPointer, _ o: Int) -> Int {
        Int(b[o]) << 24 | Int(b[o + 1]) << 16 | Int(b[o + 2]) << 8 | Int(b[o + 3])
    }

    /// Consumes whole frames of `buffer` (which starts at byte `streamOffset` of `source`), decoding
    /// into `batch` until it has grown by `limit` events. Returns the bytes consumed: the rest (a
    /// partial frame) comes again with more bytes, or with `atEnd` it is the input's tail.
    public mutating func consume(_ buffer: UnsafeRawBufferPointer, streamOffset: Int64, source: String, atEnd: Bool,
                                 limit: Int = .max, decoder: inout TraceMessageDecoder,
                                 into batch: inout EventBatch) throws -> Int {
        let n = buffer.count
        let target = limit >= Int.max - batch.count ? Int.max : batch.count + limit
        var p = 0
        while p < n && batch.count < target {
            if let skip = skipping {
                // Resynchronizing: the next offset where a whole frame decodes.
                guard n - p >= 6 else {
                    if atEnd { p = n }
                    break
                }
                if buffer[p] == 0, buffer[p + 5] == 131 {
                    let size = Self.u32(buffer, p + 1)
                    if size <= maxFrameSize {
                        if n - p - 5 < size && !atEnd { break }  // it may be a frame: wait for its bytes
                        if n - p - 5 >= size {
                            let before = batch.count
                            if (try? decoder.decode(UnsafeRawBufferPointer(rebasing: buffer[(p + 5)..<(p + 5 + size)]),
                                                    into: &batch)) != nil, batch.count > before {
                                skipping = nil
                                let at = streamOffset + Int64(p)
                                try noteDamage(IngestDamage(source: source, offset: skip.start, bytes: at - skip.start,
                                                        why: skip.why + "; resumed at the next frame, byte \(at)"))
                                p += 5 + size
                                continue
                            }
                        }
                    }
                }
                p += 1
                continue
            }
            guard n - p >= 5 else { break }
            let op = buffer[p]
            let size = Self.u32(buffer, p + 1)
            let at = streamOffset + Int64(p)
            switch op {
            case 0:
                guard size <= maxFrameSize else {
                    try startSkipping(at, "a frame claims \(size) bytes, more than \(maxFrameSize >> 20) MiB", source)
                    p += 1
                    continue
                }
                guard n - p - 5 >= size else {
                    guard atEnd else { return p }
                    // The last frame is incomplete: a torn tail, unless frames follow inside it.
                    skipping = (at, "a frame claims \(size) bytes, past the end of the input", true)
                    p += 1
                    continue
                }
                let body = UnsafeRawBufferPointer(rebasing: buffer[(p + 5)..<(p + 5 + size)])
                do {
                    try decoder.decode(body, into: &batch)
                    p += 5 + size
                } catch {
                    // Skip exactly this frame when a frame (or the end) follows it; else its length is suspect.
                    let next = p + 5 + size
                    let framed = next == n && atEnd
                        || (next + 5 <= n && (buffer[next] == 1 || (buffer[next] == 0 && Self.u32(buffer, next + 1) <= maxFrameSize)))
                    if framed {
                        framesSkipped += 1
                        try noteDamage(IngestDamage(source: source, offset: at, bytes: Int64(5 + size),
                                                why: "a trace message that does not decode: \(error)"))
                        p = next
                    } else if next + 5 > n && !atEnd {
                        return p  // decide once the next header is here
                    } else {
                        try startSkipping(at, "a trace message that does not decode: \(error)", source)
                        p += 1
                    }
                }
            case 1:
                decoder.appendDrop(count: Int64(size), into: &batch)
                dropped += Int64(size)
                p += 5
            default:
                try startSkipping(at, "bad frame tag \(op) (expected 0 or 1)", source)
                p += 1
            }
        }
        return p
    }

    private mutating func startSkipping(_ at: Int64, _ why: String, _ source: String) throws {
        if strict { throw IngestStopped(damage: IngestDamage(source: source, offset: at, bytes: 0, why: why)) }
        skipping = (at, why, false)
    }

    /// Ends an input at byte `end` of `source`: a skipped run still open is recorded (or, when it
    /// began as an incomplete last frame and nothing decoded after it, kept as the torn `tail`).
    public mutating func finish(source: String, at end: Int64) throws {
        guard let skip = skipping else { return }
        skipping = nil
        guard end > skip.start else { return }
        let d = IngestDamage(source: source, offset: skip.start, bytes: end - skip.start, why: skip.why)
        if skip.asTail {
            tail = d
            bytesSkipped += d.bytes
        } else {
            try noteDamage(IngestDamage(source: source, offset: skip.start, bytes: end - skip.start,
                                    why: skip.why + "; nothing decodable after it"))
        }
    }
}
