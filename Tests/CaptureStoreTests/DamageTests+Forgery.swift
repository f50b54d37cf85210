// Forgery, not just damage: index entries changed on purpose with their own CRC recomputed, and a
// block summary changed with the block's CRC recomputed. Every field of an entry is confirmed by the
// block it points at (its summary, or for blocks written before summaries a scan), so each forgery
// is reported and every answer — info's totals, --kind, --from/--to, --pid, function queries,
// latency --mfa — stays that of the sound capture.
import Foundation
import Testing
import TestSupport
@testable import CaptureStore
import TraceModel

/// Recomputes an index entry's own CRC (its last 4 bytes) after it was changed on purpose.
func recrcEntry(_ bytes: inout [UInt8], _ base: Int) {
    let crc = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[base..<(base + 116)])) }
    for i in 0..<4 { bytes[base + 116 + i] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(i))) }
}

func u32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
    (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[at + $1]) << (8 * UInt32($1)) }
}

func putU32(_ bytes: inout [UInt8], _ at: Int, _ value: UInt32) {
    for i in 0..<4 { bytes[at + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(i))) }
}

/// Adds `delta` to the little-endian integer of `width` bytes at `at`.
func add(_ bytes: inout [UInt8], _ at: Int, _ width: Int, _ delta: Int64) {
    var v: UInt64 = 0
    for i in 0..<width { v |= UInt64(bytes[at + i]) << (8 * UInt64(i)) }
    v = v &+ UInt64(bitPattern: delta)
    for i in 0..<width { bytes[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) }
}

extension DamageTests {
    /// The entries of the index file `path`: (byte offset of the entry, record type).
    func indexEntries(_ path: String) throws -> [(base: Int, type: UInt8)] {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        return stride(from: 32, to: bytes.count - 119, by: 120).map { ($0, bytes[$0]) }
    }

    /// Each way of forging a block's entry (docs/FORMAT.md "Index sidecar" offsets), chosen to change
    /// an answer if it were believed: a block hidden from kind, time, pid, node or function queries,
    /// a different count, or a pointer elsewhere.
    static var forgeries: [(String, (inout [UInt8], Int) -> Void)] { [
        ("type", { b, e in b[e] = 2 }),
        ("record flags", { b, e in b[e + 1] ^= 1 }),
        ("segment", { b, e in add(&b, e + 4, 4, 1) }),
        ("offset", { b, e in add(&b, e + 8, 8, 20) }),
        ("length", { b, e in add(&b, e + 16, 4, 4) }),
        ("count", { b, e in add(&b, e + 20, 4, -1) }),
        ("sequence", { b, e in add(&b, e + 24, 8, 1) }),
        ("time min", { b, e in add(&b, e + 32, 8, 1_000) }),
        ("time max", { b, e in add(&b, e + 40, 8, -1_000) }),
        ("pid min", { b, e in putU32(&b, e + 48, u32(b, e + 52)) }),
        ("pid max", { b, e in putU32(&b, e + 52, u32(b, e + 48)) }),
        ("kinds", { b, e in for i in 0..<8 { b[e + 56 + i] = 0 } }),
        ("function filter", { b, e in for i in 0..<32 { b[e + 64 + i] = 0 } }),
        ("nodes", { b, e in for i in 0..<8 { b[e + 96 + i] = 0 } }),
        ("max queue", { b, e in add(&b, e + 104, 4, 7) }),
        ("drops", { b, e in add(&b, e + 108, 4, 3) }),
        ("record crc", { b, e in b[e + 112] ^= 1 }),
    ] }

    @Test func everyIndexFieldForgedWithItsCRCRecomputedIsReportedAndChangesNoAnswer() throws {
        let sound = try CaptureReader(opening: fixture.capture)
        let expectedSummary = try sound.summary()
        let expectedLatency = try CLI.run(["latency", fixture.capture, "--mfa", "bt_work:add/2", "--json"])
        let index = try #require(try fixture.files(fixture.capture, ".btidx").dropFirst().first)
        let block = try #require(try indexEntries(index).first { $0.type == 3 })
        for (name, forge) in Self.forgeries {
            let path = try fixture.copy("forged-entry")
            let target = path + "/" + URL(fileURLWithPath: index).lastPathComponent
            try mutate(target) { bytes in
                forge(&bytes, block.base)
                recrcEntry(&bytes, block.base)
            }
            let reader = try #require(try check(path, "forged \(name)"))
            #expect(reader.problems.contains { $0.kind == .staleIndex }, "a forged \(name) was believed: \(reader.problems)")
            #expect(try Answers(reader, window: fixture.window) == fixture.expected, "forged \(name)")
            #expect(try reader.summary() == expectedSummary, "info after a forged \(name)")
            #expect(reader.indexSummary().summary == nil, "info must not count from an index it could not trust")
            if name == "function filter" {
                let latency = try CLI.run(["latency", path, "--mfa", "bt_work:add/2", "--json"])
                #expect(latency == expectedLatency, "latency --mfa after a forged \(name)")
            }
        }
    }

    @Test func infoFromTheBlockSummariesEqualsInfoFromEveryEvent() throws {
        let reader = try CaptureReader(opening: fixture.capture)
        #expect(reader.segmentNumbers.count > 2)
        let (fromIndex, why) = reader.indexSummary()
        let quick = try #require(fromIndex, "\(why ?? "")")
        #expect(reader.blocksDecompressed == 0, "counting from the summaries decodes no block")
        let full = try reader.summary()
        #expect(quick == full)
        #expect(full.events == fixture.expected.events && full.processesSeen.count > 3 && !full.callsByFunction.isEmpty)
        let info = try CLI.runCapturing(["info", fixture.capture, "--json"])
        let verify = try CLI.runCapturing(["info", fixture.capture, "--json", "--verify"])
        #expect(info.status == 0 && verify.status == 0, "\(info.stderr) \(verify.stderr)")
        let a = try #require(try JSONSerialization.jsonObject(with: Data(info.stdout.utf8)) as? [String: Any])
        let b = try #require(try JSONSerialization.jsonObject(with: Data(verify.stdout.utf8)) as? [String: Any])
        #expect(a["counted_from"] as? String == "index" && b["counted_from"] as? String == "blocks")
        for key in ["events", "kinds", "functions", "processes", "nodes", "events_by_node", "start_ns", "end_ns", "drops"] {
            #expect((a[key] as? NSObject) == (b[key] as? NSObject), "info \(key): \(a[key] ?? "-") vs \(b[key] ?? "-")")
        }
    }

    @Test func aForgedBlockSummaryIsReportedAndItsEventsAreRead() throws {
        let segment = try #require(try fixture.files(fixture.capture, ".btseg").dropFirst().first)
        let expectedSummary = try CaptureReader(opening: fixture.capture).summary()
        let path = try fixture.copy("forged-summary")
        let target = path + "/" + URL(fileURLWithPath: segment).lastPathComponent
        let block = try #require(try segmentRecords(segment).first { $0.type == 3 })
        try mutate(target) { bytes in
            // The event count of the summary's fixed part (4 bytes after its start), CRC recomputed.
            let bodyEnd = block.offset + block.length - 8
            add(&bytes, bodyEnd - 128 + 4, 4, 1)
            Self.recrc(&bytes, block.offset, block.length)
        }
        let reader = try #require(try check(path, "forged summary"))
        #expect(reader.problems.contains { $0.kind == .badSummary }, "\(reader.problems)")
        #expect(try Answers(reader, window: fixture.window) == fixture.expected)
        #expect(try reader.summary() == expectedSummary)
        let info = try CLI.runCapturing(["info", path, "--json"])
        #expect(info.stderr.contains("bad_summary") || info.stderr.contains("summary"), "\(info.stderr)")
        #expect(info.stderr.contains("counted by decoding every block"), "\(info.stderr)")
    }

    /// Every block of every segment in an encoding this build does not know (as a newer beamtrace
    /// could write one), CRCs recomputed: each block is skipped and its events counted as lost, but
    /// the warnings are the first such block and one line counting the rest, not a line per block;
    /// `index --json` still lists each.
    @Test func blocksInAnUnknownEncodingWarnOnceWithTheirCount() throws {
        let path = try fixture.copy("unknown-encoding")
        let sound = try CaptureReader(opening: fixture.capture)
        let total = sound.blocks.reduce(0) { $0 + Int($1.count) }
        var forged = 0
        for segment in try fixture.files(path, ".btseg") {
            let blocks = try segmentRecords(segment).filter { $0.type == 3 }
            var crcs: [Int: UInt32] = [:]
            try mutate(segment) { bytes in
                for block in blocks {
                    // The block header's encoding byte: after its 36 bytes and the column count
                    // (docs/FORMAT.md "Block").
                    bytes[block.offset + Format.recordHeaderSize + 37] = 0x7E
                    Self.recrc(&bytes, block.offset, block.length)
                    crcs[block.offset] = u32(bytes, block.offset + block.length - 8)
                }
            }
            // The index as that writer would have written it: each entry's record CRC (byte 112)
            // is the forged record's, the entry's own CRC recomputed.
            let index = String(segment.dropLast(".btseg".count)) + ".btidx"
            let entries = try indexEntries(index)
            try mutate(index) { bytes in
                for entry in entries {
                    let offset = Int(u32(bytes, entry.base + 8)) | Int(u32(bytes, entry.base + 12)) << 32
                    guard let crc = crcs[offset] else { continue }
                    putU32(&bytes, entry.base + 112, crc)
                    recrcEntry(&bytes, entry.base)
                }
            }
            forged += blocks.count
        }
        #expect(forged == sound.blocks.count && forged > 20, "\(forged) of \(sound.blocks.count) blocks")
        for command in [["hang", path], ["events", path], ["latency", path]] {
            let run = try CLI.runCapturing(command)
            let warnings = run.stderr.split(separator: "\n").filter { $0.hasPrefix("warning: ") }
            #expect(warnings.count == 2, "\(command[0]): \(warnings.count) warning lines:\n\(run.stderr.prefix(2000))")
            #expect(run.stderr.contains("block has unknown encoding 126"), "\(run.stderr.prefix(2000))")
            #expect(run.stderr.contains("\(forged - 1) more like it"), "\(run.stderr.prefix(2000))")
            #expect(run.stderr.contains("\(total) event(s) lost in all"), "\(run.stderr.prefix(2000))")
        }
        let reader = try CaptureReader(opening: path)
        _ = try reader.events()
        #expect(reader.problems.filter { $0.detail.contains("unknown encoding 126") }.count == forged)
    }

    @Test func aForgedEntryOfACaptureWrittenBeforeSummariesIsFoundByTheScan() throws {
        // traces/ ships format-2 captures whose blocks carry no summaries (written before them).
        let shipped = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("traces/healthy.btrace").path
        let soundReader = try CaptureReader(opening: shipped)
        #expect(soundReader.problems.isEmpty, "\(soundReader.problems)")
        #expect(!soundReader.blocks.contains { $0.hasSummary })
        let times = soundReader.blocks.map(\.timeMin).sorted()
        let window = times[times.count / 3]...times[max(times.count / 3, 2 * times.count / 3)]
        let expected = try Answers(soundReader, window: window)
        let expectedSummary = try soundReader.summary()
        #expect(soundReader.indexSummary().summary == nil)
        let index = try #require(try fixture.files(shipped, ".btidx").first)
        let block = try #require(try indexEntries(index).first { $0.type == 3 })
        for (name, forge) in Self.forgeries where ["kinds", "pid min", "nodes", "function filter", "drops"].contains(name) {
            let path = try fixture.copy("forged-legacy")
            try FileManager.default.removeItem(atPath: path)
            try FileManager.default.copyItem(atPath: shipped, toPath: path)
            try mutate(path + "/" + URL(fileURLWithPath: index).lastPathComponent) { bytes in
                forge(&bytes, block.base)
                recrcEntry(&bytes, block.base)
            }
            let reader = try CaptureReader(opening: path)
            #expect(reader.problems.contains { $0.kind == .staleIndex }, "a forged \(name) was believed")
            #expect(try Answers(reader, window: window) == expected, "forged \(name)")
            #expect(try reader.summary() == expectedSummary)
        }
    }
}
