// Where an export goes: a file written through a large buffer (or standard output for "-"). The
// file is written next to its final name and renamed into place when the export finishes, so a
// failed export never leaves a file that looks complete. Full buffers are written by a thread of
// their own while the export fills the other one: the write calls (for Chrome JSON, a large part
// of the work) leave the exporting thread.
import Foundation

public final class ExportOutput {
    public let path: String
    private let temporaryPath: String?
    private let fd: Int32
    /// The write buffer: `count` bytes at `base`. Every write makes room first (a flush when full),
    /// so writers put bytes through the pointer with no array, retain or uniqueness check per event.
    @exclusivity(unchecked) private var base: UnsafeMutablePointer<UInt8>
    @exclusivity(unchecked) private var count = 0
    /// The other buffer, being written while `base` fills.
    @exclusivity(unchecked) private var spare: UnsafeMutablePointer<UInt8>
    private let capacity: Int
    private let flushAt = 1 << 20
    /// Bytes handed to the writer (written, or being written).
    public private(set) var bytesFlushed: Int64 = 0
    private let writer: BackgroundWriter
    /// The first write that failed: later bytes are dropped and `finish` throws it.
    private var failure: ExportError?
    private var closed = false

    /// Creates `path` ("-" for standard output).
    public init(path: String) throws {
        self.path = path
        if path == "-" {
            fd = STDOUT_FILENO
            temporaryPath = nil
        } else {
            let temporary = path + ".partial"
            unlink(temporary)
            // 0600, as captures are: an export holds the arguments and messages the capture holds.
            let opened = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            guard opened >= 0 else {
                throw ExportError("cannot create \(temporary): \(String(cString: strerror(errno)))")
            }
            fd = opened
            temporaryPath = temporary
        }
        capacity = flushAt + (64 << 10)
        base = .allocate(capacity: capacity)
        spare = .allocate(capacity: capacity)
        writer = BackgroundWriter(fd: fd, path: path)
    }

    deinit {
        if !closed { abandon() }
        writer.wait()
        base.deallocate()
        spare.deallocate()
    }

    /// Bytes written so far (flushed or buffered).
    public var bytesWritten: Int64 { bytesFlushed + Int64(count) }

    /// Makes room for `n` more bytes (at most the buffer's size), flushing what is buffered if needed.
    @inline(__always)
    func room(_ n: Int) {
        if count + n > capacity { drain() }
    }

    /// Flushes when the buffer is past its flush mark: records written piece by piece call it once each.
    @inline(__always)
    func reserve() {
        if count >= flushAt { drain() }
    }

    /// Hands the full buffer to the writer and goes on in the other one (once the writer is done with it).
    private func drain() {
        writer.wait()
        if failure == nil { failure = writer.failure }
        if failure == nil, count > 0 {
            writer.write(base, count)
            bytesFlushed += Int64(count)
            swap(&base, &spare)
        }
        count = 0
    }

    @inline(__always)
    public func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { write($0) }
    }

    @inline(__always)
    public func write(_ bytes: UnsafeRawBufferPointer) {
        let n = bytes.count
        guard n > 0, let source = bytes.baseAddress else { return }
        if count + n > capacity {
            drain()
            if n > capacity {
                // Larger than the buffer: straight to the file, after what is before it.
                writer.wait()
                if failure == nil { failure = writer.failure }
                if failure == nil { failure = BackgroundWriter.writeAll(fd, source, n, path: path) }
                bytesFlushed += Int64(n)
                return
            }
        }
        (base + count).update(from: source.assumingMemoryBound(to: UInt8.self), count: n)
        count += n
        if count >= flushAt { drain() }
    }

    @inline(__always)
    public func write(_ text: String) {
        var text = text
        text.withUTF8 { write(UnsafeRawBufferPointer($0)) }
    }

    /// A literal (no String on the hot path).
    @inline(__always)
    public func put(_ text: StaticString) {
        text.withUTF8Buffer { write(UnsafeRawBufferPointer($0)) }
    }

    @inline(__always)
    public func write(byte: UInt8) {
        if count >= capacity { drain() }
        base[count] = byte
        count += 1
    }

    /// Two bytes (`,` and a newline between records, ...).
    @inline(__always)
    public func write(_ a: UInt8, _ b: UInt8) {
        room(2)
        base[count] = a
        base[count + 1] = b
        count += 2
    }

    /// UTF-8 `text` as a JSON string literal, quotes included (JSONText's escapes); text that needs
    /// no escape, the common case, is copied as it is.
    @inline(__always)
    func write(jsonQuoted text: UnsafeRawBufferPointer) {
        var plain = true
        for c in text where c == 34 || c == 92 || c < 0x20 || c == 0xE2 {
            plain = false
            break
        }
        guard plain else {
            var quoted: [UInt8] = []
            JSONText.appendQuoted(Array(text), to: &quoted)
            write(quoted)
            return
        }
        write(byte: 34)
        write(text)
        write(byte: 34)
    }

    /// A protobuf varint.
    @inline(__always)
    public func write(varint value: UInt64) {
        room(10)
        count += ProtobufWriter.store(varint: value, at: base + count)
    }

    /// A decimal integer.
    @inline(__always)
    public func write(decimal value: Int64) {
        room(20)
        if value < 0 {
            base[count] = UInt8(ascii: "-")
            count += 1
            if value == .min { write("9223372036854775808"); return }
            write(decimal: -value)
            return
        }
        count += Self.digits(UInt64(value), at: base + count)
    }

    /// Writes `value`'s decimal digits at `p`; returns how many.
    @inline(__always)
    private static func digits(_ value: UInt64, at p: UnsafeMutablePointer<UInt8>) -> Int {
        if value < 10 {
            p[0] = UInt8(truncatingIfNeeded: 48 &+ value)
            return 1
        }
        var length = 1
        var probe = value
        while probe >= 10 {
            probe /= 10
            length += 1
        }
        var n = value
        var i = length
        while i > 0 {
            i -= 1
            p[i] = UInt8(truncatingIfNeeded: 48 &+ n % 10)
            n /= 10
        }
        return length
    }

    /// Nanoseconds as microseconds with three decimals (`12.345`).
    @inline(__always)
    public func write(microsFromNanos ns: Int64) {
        room(26)
        if ns < 0 {
            base[count] = UInt8(ascii: "-")
            count += 1
            write(microsFromNanos: ns == .min ? .max : -ns)
            return
        }
        let whole = UInt64(ns) / 1000
        let fraction = UInt64(ns) % 1000
        count += Self.digits(whole, at: base + count)
        let p = base + count
        p[0] = UInt8(ascii: ".")
        p[1] = UInt8(truncatingIfNeeded: 48 &+ fraction / 100)
        p[2] = UInt8(truncatingIfNeeded: 48 &+ (fraction / 10) % 10)
        p[3] = UInt8(truncatingIfNeeded: 48 &+ fraction % 10)
        count += 4
    }

    /// Writes everything buffered and waits until it is written.
    public func flush() throws {
        drain()
        writer.wait()
        if failure == nil { failure = writer.failure }
        if let failure { throw failure }
    }

    /// Writes what is left and puts the file in place.
    public func finish() throws {
        try flush()
        closed = true
        guard let temporaryPath else { return }
        guard Foundation.close(fd) == 0 else {
            throw ExportError("closing \(temporaryPath) failed: \(String(cString: strerror(errno)))")
        }
        guard rename(temporaryPath, path) == 0 else {
            throw ExportError("cannot move \(temporaryPath) to \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Removes the unfinished file.
    public func abandon() {
        closed = true
        writer.wait()
        guard let temporaryPath else { return }
        Foundation.close(fd)
        unlink(temporaryPath)
    }
}

public struct ExportError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Writes full export buffers on a thread of its own, one at a time: `write` returns at once, `wait`
/// returns when the last one is written. Its state is touched by the writing thread only between
/// a `write` and the `wait` after it.
final class BackgroundWriter: @unchecked Sendable {
    private let fd: Int32
    private let path: String
    private let queue = DispatchQueue(label: "beamtrace.export.write")
    private let pending = DispatchGroup()
    /// The first failed write (read after `wait`).
    private(set) var failure: ExportError?

    init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    func write(_ bytes: UnsafeMutablePointer<UInt8>, _ count: Int) {
        let address = UInt(bitPattern: bytes)
        queue.async(group: pending) { [self] in
            guard failure == nil, let source = UnsafeRawPointer(bitPattern: address) else { return }
            failure = Self.writeAll(fd, source, count, path: path)
        }
    }

    func wait() { pending.wait() }

    /// Writes all `n` bytes (retrying short writes and interrupts); the error, if any.
    static func writeAll(_ fd: Int32, _ source: UnsafeRawPointer, _ n: Int, path: String) -> ExportError? {
        var offset = 0
        while offset < n {
            let written = Foundation.write(fd, source + offset, n - offset)
            if written < 0 {
                if errno == EINTR { continue }
                return ExportError("writing \(path) failed: \(String(cString: strerror(errno)))")
            }
            offset += written
        }
        return nil
    }
}
