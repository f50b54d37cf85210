// Walks the records of one segment file from a given offset, checking each one's framing and
// CRC: the basis of recovery (a torn tail is cut, a corrupt record is skipped and reported) and of
// rebuilding the index.
import SystemPackage
import TraceModel

struct ScannedRecord {
    var type: Format.RecordType
    var offset: Int64
    var length: Int
    /// The body (a copy).
    var body: [UInt8]
    /// The CRC-32C in its trailer (checked).
    var crc: UInt32
    /// The record's flags byte (`Format.RecordFlag`).
    var flags: UInt8 = 0
}

enum SegmentScanner {
    /// Checks a whole record held in `bytes` (starting at its magic): its type and body range, or why not.
    static func check(_ bytes: UnsafeRawBufferPointer) -> Result<(Format.RecordType, Range<Int>), RecordCheckFailure> {
        var c = ByteCursor(bytes)
        guard let magic = c.u32(), magic == Format.recordMagic else { return .failure(.init("no record magic")) }
        guard let typeRaw = c.u8(), c.u8() != nil, c.u16() != nil, let length = c.u32() else { return .failure(.init("header cut short")) }
        guard let type = Format.RecordType(rawValue: typeRaw) else { return .failure(.init("unknown record type \(typeRaw)")) }
        let end = Format.recordHeaderSize + Int(length)
        guard bytes.count >= end + Format.recordTrailerSize else { return .failure(.init("record cut short")) }
        let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[4..<end]))
        var t = ByteCursor(bytes, offset: end)
        guard let stored = t.u32(), let trailerLength = t.u32() else { return .failure(.init("trailer cut short")) }
        guard trailerLength == length else { return .failure(.init("trailer length \(trailerLength) differs from header \(length)")) }
        guard stored == crc else { return .failure(.init("CRC32C mismatch")) }
        return .success((type, Format.recordHeaderSize..<end))
    }

    /// Scans records from `start` to the end of the file. Calls `found` for every good record and
    /// returns what was wrong between them (the closure is free to record problems of its own).
    static func scan(fd: FileDescriptor, segment: Int, from start: Int64, fileSize: Int64,
                     found: (ScannedRecord) -> Void) -> [CaptureProblem] {
        var problems: [CaptureProblem] = []
        scan(fd: fd, segment: segment, from: start, fileSize: fileSize, problems: &problems, found: found)
        return problems
    }

    private static func scan(fd: FileDescriptor, segment: Int, from start: Int64, fileSize: Int64,
                             problems: inout [CaptureProblem], found: (ScannedRecord) -> Void) {
        var offset = start
        var buffer: [UInt8] = []
        while offset < fileSize {
            let available = fileSize - offset
            if available < Int64(Format.recordOverhead) {
                problems.append(CaptureProblem(kind: .tornTail, segment: segment, offset: offset, bytes: available,
                                               detail: "an incomplete record header"))
                return
            }
            guard let header = try? SegmentIO.read(fd, at: offset, count: Format.recordHeaderSize, into: &buffer),
                  header == Format.recordHeaderSize else {
                problems.append(CaptureProblem(kind: .tornTail, segment: segment, offset: offset, bytes: available,
                                               detail: "the segment cannot be read from here"))
                return
            }
            let (magic, length): (UInt32, Int64) = buffer.withUnsafeBytes { raw in
                var c = ByteCursor(raw)
                let m = c.u32() ?? 0
                _ = c.u32()
                return (m, Int64(c.u32() ?? 0))
            }
            let total = Int64(Format.recordOverhead) + length
            if magic == Format.recordMagic, total <= available {
                let got = (try? SegmentIO.read(fd, at: offset, count: Int(total), into: &buffer)) ?? 0
                let result: Result<(Format.RecordType, Range<Int>), RecordCheckFailure> = got == Int(total)
                    ? buffer.withUnsafeBytes { SegmentScanner.check(UnsafeRawBufferPointer(rebasing: $0[0..<Int(total)])) }
                    : .failure(.init("the record cannot be read"))
                switch result {
                case .success(let (type, range)):
                    let crc = buffer.withUnsafeBytes { raw -> UInt32 in
                        var c = ByteCursor(raw, offset: range.upperBound)
                        return c.u32() ?? 0
                    }
                    found(ScannedRecord(type: type, offset: offset, length: Int(total), body: Array(buffer[range]), crc: crc,
                                        flags: buffer[5]))
                    offset += total
                    continue
                case .failure(let failure):
                    let why = failure.why
                    // A bad record: skip it if something good follows, else it is the torn tail.
                    if let next = nextRecord(fd: fd, after: offset + 4, fileSize: fileSize) {
                        problems.append(CaptureProblem(kind: .corruptRecord, segment: segment, offset: offset,
                                                       bytes: next - offset, detail: why))
                        offset = next
                        continue
                    }
                    problems.append(CaptureProblem(kind: .tornTail, segment: segment, offset: offset, bytes: available,
                                                   detail: why))
                    return
                }
            }
            if let next = nextRecord(fd: fd, after: offset + 1, fileSize: fileSize) {
                problems.append(CaptureProblem(kind: magic == Format.recordMagic ? .corruptRecord : .garbage,
                                               segment: segment, offset: offset, bytes: next - offset,
                                               detail: magic == Format.recordMagic ? "record length runs past the next record" : "no record magic"))
                offset = next
                continue
            }
            problems.append(CaptureProblem(kind: .tornTail, segment: segment, offset: offset, bytes: available,
                                           detail: magic == Format.recordMagic ? "the last record is incomplete" : "no record magic"))
            return
        }
    }

    /// The offset of the next whole, CRC-valid record at or after `from`, if any.
    static func nextRecord(fd: FileDescriptor, after from: Int64, fileSize: Int64) -> Int64? {
        var chunk: [UInt8] = []
        var position = from
        let chunkSize = 1 << 20
        var candidate: [UInt8] = []
        while position < fileSize {
            let n = (try? SegmentIO.read(fd, at: position, count: min(chunkSize + 3, Int(fileSize - position)), into: &chunk)) ?? 0
            if n < 4 { return nil }
            var i = 0
            while i + 4 <= n {
                if chunk[i] == 0x42, chunk[i + 1] == 0x54, chunk[i + 2] == 0x52, chunk[i + 3] == 0x43 {
                    let at = position + Int64(i)
                    if at + Int64(Format.recordHeaderSize) <= fileSize,
                       (try? SegmentIO.read(fd, at: at, count: Format.recordHeaderSize, into: &candidate)) == Format.recordHeaderSize {
                        let length = candidate.withUnsafeBytes { raw -> Int64 in
                            var c = ByteCursor(raw, offset: 8)
                            return Int64(c.u32() ?? 0)
                        }
                        let total = Int64(Format.recordOverhead) + length
                        if at + total <= fileSize,
                           (try? SegmentIO.read(fd, at: at, count: Int(total), into: &candidate)) == Int(total) {
                            let ok = candidate.withUnsafeBytes {
                                if case .success = check(UnsafeRawBufferPointer(rebasing: $0[0..<Int(total)])) { return true }
                                return false
                            }
                            if ok { return at }
                        }
                    }
                }
                i += 1
            }
            position += Int64(max(n - 3, 1))
        }
        return nil
    }
}

struct RecordCheckFailure: Error {
    var why: String
    init(_ why: String) { self.why = why }
}
