// Byte layout constants of the capture format (all integers little-endian). docs/FORMAT.md is
// the prose version of this file; keep the two in step.

enum Format {
    /// The version this beamtrace writes; it reads 1 and 2.
    static let version: UInt32 = 2
    static let readableVersions: ClosedRange<UInt32> = 1...2
    /// Segment file header: "BTSEG\0\0\0" | version u32 | segment number u32 | capture id (16 bytes);
    /// version 2 adds | first block sequence u64 | events before this segment u64.
    static let segmentMagic: [UInt8] = Array("BTSEG".utf8) + [0, 0, 0]
    static let segmentHeaderSizeV1 = 32
    static let segmentHeaderSize = 48
    static func segmentHeaderSize(version: UInt32) -> Int { version == 1 ? segmentHeaderSizeV1 : segmentHeaderSize }
    /// Record: "BTRC" | type u8 | flags u8 | reserved u16 | body length u32 | body | crc32c u32 | body length u32.
    static let recordMagic: UInt32 = 0x4352_5442  // "BTRC" read as little-endian u32
    static let recordHeaderSize = 12
    static let recordTrailerSize = 8
    static let recordOverhead = 20

    enum RecordType: UInt8 {
        case meta = 1
        case dictionary = 2
        case block = 3
        /// Version 2: the last record of a segment, written when it is closed (rotation or close).
        case seal = 4
    }

    /// Record flags (byte 5 of a record): what a record carries besides its usual body.
    enum RecordFlag {
        /// A block whose body ends with its `BlockSummary` (after the columns).
        static let summary: UInt8 = 1
    }

    /// Seal body: segment number u32 | final u8 (1: the capture was closed here) | 3 reserved |
    /// blocks u32 | records before the seal u32 | events u64 | first block sequence u64 | last block sequence u64.
    static let sealBodySize = 40

    /// Block body: fixed header, then the column directory, then column data.
    /// sequence u64 | time min i64 | time max i64 | count u32 | dropped before u64 | column count u8 | 3 reserved
    static let blockHeaderSize = 40
    /// Column directory entry: codec u8 | 3 reserved | raw length u32 | stored length u32.
    static let columnEntrySize = 12

    /// How a block's columns are laid out (body byte 37). Encoding 0: the ten columns of format
    /// versions 1 and 2 (time as zigzag varint deltas, integers inline in payloads). Encoding 1:
    /// the time delta's low byte in column 0 and the rest in column 10, payload integers in column
    /// 11. Encoding 2 (written since): encoding 1 and the payloads' marks in column 12. Readers
    /// before each refuse its blocks by their column count.
    enum BlockEncoding: UInt8 {
        case plain = 0
        case shaped = 1
        /// Encoding 1 and a column of where each compacted payload's codes are (docs/FORMAT.md):
        /// reading expands them without walking the terms around them.
        case marked = 2

        var columnCount: Int {
            switch self {
            case .plain: 10
            case .shaped: 12
            case .marked: 13
            }
        }
    }
    static let maxColumnCount = 13

    enum Column: Int, CaseIterable {
        case time = 0, node, pid, kind, flags, mfa, peer, value, payloadLength, payloadBytes
        /// Encodings 1 and 2.
        case timeHigh, payloadIntegers
        /// Encoding 2 only.
        case payloadMarks
    }

    enum Codec: UInt8 {
        case raw = 0
        case lz4 = 1
    }

    /// Index file: "BTIDX\0\0\0" | version u32 | entry size u32 | capture id (16 bytes), then entries.
    /// Index version 2 entries end with the record's CRC-32C and the entry's own CRC-32C.
    static let indexMagic: [UInt8] = Array("BTIDX".utf8) + [0, 0, 0]
    static let indexVersion: UInt32 = 2
    static let indexHeaderSize = 32
    static let indexEntrySizeV1 = 112
    static let indexEntrySize = 120

    static func segmentName(_ number: Int) -> String {
        let digits = String(number)
        return "segment-" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits + ".btseg"
    }
    static func indexName(_ number: Int) -> String {
        let digits = String(number)
        return "segment-" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits + ".btidx"
    }
    static func segmentNumber(fromName name: String) -> Int? {
        guard name.hasPrefix("segment-"), name.hasSuffix(".btseg") else { return nil }
        return Int(name.dropFirst(8).dropLast(6))
    }
}
