// File access for segments and index files: created 0600, appended with write(2), read with pread(2).
import Foundation
import SystemPackage

enum SegmentIO {
    static let fileMode: FilePermissions = [.ownerReadWrite]

    static func createDirectory(_ path: String) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw CaptureError(.io, "\(path) exists and is not a directory") }
            let contents = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
            if contents.contains(where: { Format.segmentNumber(fromName: $0) != nil }) {
                throw CaptureError(.invalidArgument, "\(path) already holds a capture; choose a new directory")
            }
            return
        }
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch {
            throw CaptureError(.io, "cannot create capture directory \(path): \(error.localizedDescription)")
        }
    }

    static func create(_ path: String) throws -> FileDescriptor {
        do {
            return try FileDescriptor.open(FilePath(path), .writeOnly, options: [.create, .exclusiveCreate, .append],
                                           permissions: fileMode)
        } catch {
            throw CaptureError(.io, "cannot create \(path): \(error)")
        }
    }

    static func openForReading(_ path: String) throws -> FileDescriptor {
        do {
            return try FileDescriptor.open(FilePath(path), .readOnly)
        } catch {
            throw CaptureError(.io, "cannot open \(path): \(error)")
        }
    }

    static func writeAll(_ fd: FileDescriptor, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        do {
            _ = try fd.writeAll(bytes)
        } catch {
            throw CaptureError(.io, "cannot write \(path): \(error)")
        }
    }

    static func size(_ fd: FileDescriptor) -> Int64 {
        (try? fd.seek(offset: 0, from: .end)) ?? 0
    }

    /// Reads up to `count` bytes at `offset` (fewer at the end of the file).
    static func read(_ fd: FileDescriptor, at offset: Int64, count: Int, into buffer: inout [UInt8]) throws -> Int {
        if buffer.count < count { buffer = Array(repeating: 0, count: count) }
        var done = 0
        while done < count {
            let n = try buffer.withUnsafeMutableBytes { raw in
                try fd.read(fromAbsoluteOffset: offset + Int64(done),
                            into: UnsafeMutableRawBufferPointer(rebasing: raw[done..<count]))
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    /// fsync(2); a failure (EIO, ENOSPC on some file systems) means written data may be lost.
    static func sync(_ fd: FileDescriptor, path: String) throws {
        if fsync(fd.rawValue) != 0 {
            let code = errno
            throw CaptureError(.io, "cannot sync \(path) to disk: \(String(cString: strerror(code)))")
        }
    }

    /// Makes created and renamed names in `directory` durable (best effort: some file systems refuse).
    static func syncDirectory(_ directory: String) {
        guard let fd = try? FileDescriptor.open(FilePath(directory), .readOnly) else { return }
        _ = fsync(fd.rawValue)
        try? fd.close()
    }

    /// Frames a record body: magic, type, length, body, CRC32C of type..body, length again.
    static func frame(type: Format.RecordType, body: UnsafeRawBufferPointer, into w: inout ByteWriter) {
        let start = w.bytes.count
        w.u32(Format.recordMagic)
        w.u8(type.rawValue); w.u8(0); w.u16(0)
        w.u32(UInt32(body.count))
        w.bytes.append(contentsOf: body)
        let crc = w.bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[(start + 4)...])) }
        w.u32(crc)
        w.u32(UInt32(body.count))
    }
}
