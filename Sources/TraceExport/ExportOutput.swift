// Where an export goes: a file written through a large buffer (or standard output for "-"). The
// file is written next to its final name and renamed into place when the export finishes, so a
// failed export never leaves a file that looks complete.
import Foundation

public final class ExportOutput {
    public let path: String
    private let temporaryPath: String?
    private let fd: Int32
    @exclusivity(unchecked) var buffer: [UInt8] = []
    private let flushAt = 1 << 20
    public private(set) var bytesFlushed: Int64 = 0
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
        buffer.reserveCapacity(flushAt + (64 << 10))
    }

    deinit {
        if !closed { abandon() }
    }

    /// Bytes written so far (flushed or buffered).
    public var bytesWritten: Int64 { bytesFlushed + Int64(buffer.count) }

    @inline(__always)
    public func write(_ bytes: [UInt8]) {
        buffer.append(contentsOf: bytes)
        if buffer.count >= flushAt { try? flush() }
    }

    @inline(__always)
    public func write(_ bytes: UnsafeRawBufferPointer) {
        buffer.append(contentsOf: bytes)
        if buffer.count >= flushAt { try? flush() }
    }

    @inline(__always)
    public func write(_ text: String) {
        var text = text
        text.withUTF8 { buffer.append(contentsOf: $0) }
        if buffer.count >= flushAt { try? flush() }
    }

    /// A literal (no String on the hot path).
    @inline(__always)
    public func put(_ text: StaticString) {
        text.withUTF8Buffer { buffer.append(contentsOf: $0) }
    }

    /// Flushes when the buffer is full: records written straight into `buffer` call it once each.
    @inline(__always)
    func reserve() {
        if buffer.count >= flushAt { try? flush() }
    }

    @inline(__always)
    public func write(byte: UInt8) {
        buffer.append(byte)
    }

    /// A decimal integer.
    @inline(__always)
    public func write(decimal value: Int64) {
        if value < 0 {
            buffer.append(UInt8(ascii: "-"))
            if value == .min { write("9223372036854775808"); return }
            write(decimal: -value)
            return
        }
        if value < 10 { buffer.append(UInt8(48 + value)); return }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = value
        var count = 0
        withUnsafeMutableBytes(of: &digits) { raw in
            while n > 0 {
                raw[19 - count] = UInt8(48 + n % 10)
                n /= 10
                count += 1
            }
            buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: raw[(20 - count)...]))
        }
    }

    /// Nanoseconds as microseconds with three decimals (`12.345`).
    @inline(__always)
    public func write(microsFromNanos ns: Int64) {
        if ns < 0 {
            buffer.append(UInt8(ascii: "-"))
            write(microsFromNanos: ns == .min ? .max : -ns)
            return
        }
        write(decimal: ns / 1000)
        let fraction = ns % 1000
        buffer.append(UInt8(ascii: "."))
        buffer.append(UInt8(48 + fraction / 100))
        buffer.append(UInt8(48 + (fraction / 10) % 10))
        buffer.append(UInt8(48 + fraction % 10))
    }

    public func flush() throws {
        var offset = 0
        while offset < buffer.count {
            let n = buffer.withUnsafeBytes { raw in
                Foundation.write(fd, raw.baseAddress! + offset, raw.count - offset)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw ExportError("writing \(path) failed: \(String(cString: strerror(errno)))")
            }
            offset += n
        }
        bytesFlushed += Int64(buffer.count)
        buffer.removeAll(keepingCapacity: true)
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
        guard let temporaryPath else { return }
        Foundation.close(fd)
        unlink(temporaryPath)
    }
}

public struct ExportError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
