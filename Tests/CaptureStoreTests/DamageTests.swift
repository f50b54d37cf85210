// Damage in every file kind of a real capture (a dbg trace of the bt_work workload imported into
// several segments): bit flips in blocks, dictionaries, meta, headers and index sidecars,
// truncation at random offsets and at record boundaries, removed and foreign segments, garbage,
// each field of an index entry. For every case: no crash, and the answers are those of the sound
// capture or the damage is in `problems`.
import Foundation
import Testing
import TestSupport
@testable import CaptureStore
import TraceModel

/// What the tests compare: totals and filtered answers (the filters go through index pruning).
struct Answers: Equatable {
    var events = 0
    var checksum: UInt64 = 0
    var receives = 0
    var window = 0
    var echoEvents = 0
    var addEvents = 0

    init(_ reader: CaptureReader, window: ClosedRange<Int64>) throws {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ v: UInt64) { hash = (hash ^ v) &* 0x100_0000_01b3 }
        try reader.forEach { event, payload in
            events += 1
            mix(UInt64(bitPattern: event.time)); mix(UInt64(event.kind.rawValue)); mix(UInt64(event.pid))
            mix(UInt64(event.mfa)); mix(UInt64(event.peer)); mix(UInt64(bitPattern: event.value))
            mix(UInt64(payload.count))
            if payload.count >= 8 { mix(payload.loadUnaligned(fromByteOffset: payload.count - 8, as: UInt64.self)) }
            return true
        }
        // Names resolve through the dictionaries, so dictionary damage shows up as a different answer.
        for atom in reader.dictionaries.atoms { for byte in atom.utf8 { mix(UInt64(byte)) } }
        checksum = hash
        func count(_ query: EventQuery) throws -> Int {
            var n = 0
            try reader.forEach(matching: query) { _, _ in n += 1; return true }
            return n
        }
        receives = try count(EventQuery(kinds: [.receive]))
        self.window = try count(EventQuery(from: window.lowerBound, to: window.upperBound))
        echoEvents = try count(EventQuery(pids: Set(reader.dictionaries.processes(named: "bt_echo"))))
        let adds = reader.dictionaries.functions.indices.dropFirst()
            .filter { reader.dictionaries.functionText(FunctionID($0)) == "bt_work:add/2" }.map { FunctionID($0) }
        addEvents = try count(EventQuery(functions: Set(adds)))
    }
}

/// Removed when the test process exits.
nonisolated(unsafe) var damageFixtureRoot: String?

/// A real capture made once for the suite.
final class DamageFixture: @unchecked Sendable {
    let root: URL
    let capture: String
    let expected: Answers
    let window: ClosedRange<Int64>
    let foreign: String

    static let shared = Result { try DamageFixture() }

    init() throws {
        root = try Erlang.temporaryDirectory("bt-damage")
        damageFixtureRoot = root.path
        atexit { if let root = damageFixtureRoot { try? FileManager.default.removeItem(atPath: root) } }
        let trace = root.appendingPathComponent("t.trc").path
        _ = try Workload.run("bt_work:file(\"\(trace)\", 800)")
        var options = CaptureWriter.Options()
        options.segmentBytes = 8 << 10
        options.blockEvents = 256
        capture = root.appendingPathComponent("cap").path
        _ = try Importer(writerOptions: options).run(sources: [trace], output: capture)
        foreign = root.appendingPathComponent("other").path
        _ = try Importer(writerOptions: options).run(sources: [trace], output: foreign)
        let reader = try CaptureReader(opening: capture)
        let times = reader.blocks.map(\.timeMin).sorted()
        window = times[times.count / 3]...times[2 * times.count / 3]
        expected = try Answers(reader, window: window)
    }

    /// A copy of the capture to damage.
    func copy(_ name: String) throws -> String {
        let path = root.appendingPathComponent("case-\(name)").path
        try? FileManager.default.removeItem(atPath: path)
        try FileManager.default.copyItem(atPath: capture, toPath: path)
        return path
    }

    func files(_ capture: String, _ suffix: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: capture).filter { $0.hasSuffix(suffix) }.sorted()
            .map { capture + "/" + $0 }
    }
}

/// Records of a segment file: (offset, type, whole length).
func segmentRecords(_ path: String) throws -> [(offset: Int, type: UInt8, length: Int)] {
    let data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    var result: [(Int, UInt8, Int)] = []
    let version = Int(data[8])
    var offset = version == 1 ? 32 : 48
    while offset + 20 <= data.count {
        let length = Int(data[offset + 8]) | Int(data[offset + 9]) << 8 | Int(data[offset + 10]) << 16 | Int(data[offset + 11]) << 24
        result.append((offset, data[offset + 4], length + 20))
        offset += length + 20
    }
    return result
}

func mutate(_ path: String, _ change: (inout [UInt8]) -> Void) throws {
    var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    change(&bytes)
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

@Suite(.serialized) struct DamageTests {
    let fixture: DamageFixture

    init() throws { fixture = try DamageFixture.shared.get() }

    /// Opens a damaged copy: never a trap; an error only as a CaptureError; otherwise the answers
    /// equal the sound capture's or the damage is reported.
    @discardableResult
    func check(_ path: String, _ what: String) throws -> CaptureReader? {
        let reader: CaptureReader
        do {
            reader = try CaptureReader(opening: path)
        } catch let error as CaptureError {
            #expect(!error.message.isEmpty, "\(what)")
            return nil
        }
        let answers = try Answers(reader, window: fixture.window)
        if answers != fixture.expected {
            #expect(!reader.problems.isEmpty, "\(what): the answers changed and nothing was reported")
        }
        return reader
    }

    @Test func theSoundCaptureHasNoProblems() throws {
        let reader = try CaptureReader(opening: fixture.capture)
        #expect(reader.problems.isEmpty)
        #expect(reader.isSealed)
        #expect(reader.segmentNumbers.count >= 4)
        #expect(fixture.expected.events > 5_000)
        #expect(fixture.expected.receives > 0 && fixture.expected.addEvents > 0 && fixture.expected.echoEvents > 0)
    }

    @Test func singleBitFlipsInEveryFileKind() throws {
        var generator = SplitMix64(seed: 10)
        let segments = try fixture.files(fixture.capture, ".btseg")
        let indexes = try fixture.files(fixture.capture, ".btidx")
        var cases = 0, reported = 0
        // Per record type of the segments, plus headers and the index sidecars.
        var targets: [(String, String, Range<Int>)] = []
        for segment in segments {
            targets.append(("header", segment, 0..<48))
            for record in try segmentRecords(segment) {
                let name = ["", "meta", "dictionary", "block", "seal"][Int(min(record.type, 4))]
                targets.append((name, segment, record.offset..<(record.offset + record.length)))
            }
        }
        for index in indexes {
            let size = try Data(contentsOf: URL(fileURLWithPath: index)).count
            targets.append(("index", index, 0..<size))
        }
        for kind in ["header", "meta", "dictionary", "block", "seal", "index"] {
            let ofKind = targets.filter { $0.0 == kind }
            #expect(!ofKind.isEmpty, "no \(kind) in the capture")
            for _ in 0..<(kind == "block" || kind == "index" ? 15 : 8) {
                let (_, file, range) = ofKind[Int(generator.next() % UInt64(ofKind.count))]
                let at = range.lowerBound + Int(generator.next() % UInt64(range.count))
                let bit = UInt8(1) << UInt8(generator.next() % 8)
                let path = try fixture.copy("flip")
                let target = path + "/" + URL(fileURLWithPath: file).lastPathComponent
                try mutate(target) { $0[at] ^= bit }
                let reader = try check(path, "\(kind) bit flip at \(target):\(at)")
                cases += 1
                if reader?.problems.isEmpty == false { reported += 1 }
            }
        }
        #expect(cases == 62)
        // Nearly every flip outside unused bytes is noticed.
        #expect(reported > cases / 2)
    }

    @Test func truncationAtRandomOffsetsAndAtRecordBoundaries() throws {
        var generator = SplitMix64(seed: 11)
        let segments = try fixture.files(fixture.capture, ".btseg")
        for _ in 0..<16 {
            let victim = segments[Int(generator.next() % UInt64(segments.count))]
            let size = try Data(contentsOf: URL(fileURLWithPath: victim)).count
            let cut = Int(generator.next() % UInt64(size))
            let path = try fixture.copy("cut")
            let target = path + "/" + URL(fileURLWithPath: victim).lastPathComponent
            try mutate(target) { $0.removeSubrange(cut...) }
            let reader = try check(path, "cut \(target) at \(cut)")
            #expect(reader?.problems.isEmpty != true, "a cut at \(cut) of \(target) went unreported")
        }
        // Exactly at a record boundary: every record still checks, but the capture is incomplete.
        for victim in [segments[1], segments[segments.count - 1]] {
            let records = try segmentRecords(victim)
            for record in records.dropFirst(2).prefix(8) {
                let path = try fixture.copy("boundary")
                let target = path + "/" + URL(fileURLWithPath: victim).lastPathComponent
                try mutate(target) { $0.removeSubrange(record.offset...) }
                let reader = try #require(try check(path, "cut \(target) at record \(record.offset)"))
                #expect(!reader.problems.isEmpty, "a cut at record boundary \(record.offset) of \(victim) went unreported")
            }
        }
    }

    @Test func removedMiddleAndLastSegmentsAreReportedWithWhatWasLost() throws {
        let sound = try CaptureReader(opening: fixture.capture)
        let segments = try fixture.files(fixture.capture, ".btseg")
        let middle = segments[segments.count / 2]
        let middleEvents = sound.blocks.filter { Int($0.segment) == Format.segmentNumber(fromName:
            URL(fileURLWithPath: middle).lastPathComponent) }.reduce(0) { $0 + Int($1.count) }
        var path = try fixture.copy("no-middle")
        try FileManager.default.removeItem(atPath: path + "/" + URL(fileURLWithPath: middle).lastPathComponent)
        var reader = try #require(try check(path, "middle segment removed"))
        let missing = try #require(reader.problems.first { $0.kind == .missingSegment })
        #expect(missing.eventsLost == Int64(middleEvents))
        #expect(try Answers(reader, window: fixture.window).events == fixture.expected.events - middleEvents)

        path = try fixture.copy("no-last")
        for suffix in [".btseg", ".btidx"] {
            try FileManager.default.removeItem(atPath: path + "/" + URL(fileURLWithPath: segments[segments.count - 1])
                .deletingPathExtension().lastPathComponent + suffix)
        }
        reader = try #require(try check(path, "last segment removed"))
        #expect(reader.problems.contains { $0.kind == .missingSegment })
        #expect(!reader.isSealed)
    }

    @Test func aForeignSegmentIsNotMerged() throws {
        let path = try fixture.copy("foreign")
        let name = "/" + Format.segmentName(2)
        try FileManager.default.removeItem(atPath: path + name)
        try FileManager.default.removeItem(atPath: path + "/" + Format.indexName(2))
        try FileManager.default.copyItem(atPath: fixture.foreign + name, toPath: path + name)
        let reader = try #require(try check(path, "foreign segment"))
        #expect(reader.problems.contains { $0.kind == .foreignSegment && $0.segment == 2 })
        #expect(reader.problems.contains { $0.kind == .missingSegment })
        let answers = try Answers(reader, window: fixture.window)
        #expect(answers.events < fixture.expected.events)
    }

    @Test func reorderedSegmentsAreReportedAndReadInTheirOwnOrder() throws {
        let path = try fixture.copy("reordered")
        let fm = FileManager.default
        for suffix in [".btseg", ".btidx"] {
            let two = path + "/segment-00000002" + suffix, three = path + "/segment-00000003" + suffix
            try fm.moveItem(atPath: two, toPath: two + ".x")
            try fm.moveItem(atPath: three, toPath: two)
            try fm.moveItem(atPath: two + ".x", toPath: three)
        }
        let reader = try #require(try check(path, "segments 2 and 3 swapped"))
        #expect(reader.problems.filter { $0.kind == .misplacedSegment }.count >= 2)
        #expect(try Answers(reader, window: fixture.window) == fixture.expected)
    }

    @Test func garbageAppendedIsReportedAndChangesNothing() throws {
        let path = try fixture.copy("garbage")
        let last = try fixture.files(path, ".btseg").last ?? ""
        var generator = SplitMix64(seed: 12)
        try mutate(last) { bytes in for _ in 0..<5000 { bytes.append(UInt8(truncatingIfNeeded: generator.next())) } }
        let reader = try #require(try check(path, "garbage appended"))
        #expect(!reader.problems.isEmpty)
        #expect(try Answers(reader, window: fixture.window) == fixture.expected)
    }

    @Test func aFlippedIndexEntryIsCheckedAndRebuildWritesNoBadEntry() throws {
        // Field offsets of a 120-byte entry (docs/FORMAT.md). A flip fails the entry's own CRC; every
        // field forged with that CRC recomputed is DamageTests+Forgery.swift.
        let fields: [(String, Int)] = [("type", 0), ("offset", 8), ("kinds", 56), ("record crc", 112), ("entry crc", 116)]
        let index = try #require(try fixture.files(fixture.capture, ".btidx").dropFirst().first)
        for (name, fieldOffset) in fields {
            let path = try fixture.copy("index-field")
            let target = path + "/" + URL(fileURLWithPath: index).lastPathComponent
            // The fourth entry is a block (meta, dictionary, then blocks).
            try mutate(target) { $0[32 + 120 * 3 + fieldOffset] ^= 0x10 }
            let reader = try #require(try check(path, "index field \(name)"))
            #expect(reader.problems.contains { $0.kind == .staleIndex }, "a flipped \(name) went unnoticed")
            #expect(try Answers(reader, window: fixture.window) == fixture.expected, "index field \(name)")
            _ = try reader.rebuildIndex()
            let rebuilt = try CaptureReader(opening: path)
            #expect(rebuilt.problems.isEmpty, "after rebuilding (\(name)): \(rebuilt.problems)")
            #expect(try Answers(rebuilt, window: fixture.window) == fixture.expected)
        }
    }

    @Test func metaAndDictionaryDamageBehindAValidCRCIsReported() throws {
        let first = try #require(try fixture.files(fixture.capture, ".btseg").first)
        let records = try segmentRecords(first)
        // Meta: bad JSON with a good CRC.
        var path = try fixture.copy("meta")
        var target = path + "/" + URL(fileURLWithPath: first).lastPathComponent
        let meta = try #require(records.first { $0.type == 1 })
        try mutate(target) { bytes in
            bytes[meta.offset + 12] = UInt8(ascii: "[")
            Self.recrc(&bytes, meta.offset, meta.length)
        }
        var reader = try #require(try check(path, "bad meta JSON"))
        #expect(reader.problems.contains { $0.kind == .badMeta && $0.segment == 1 })
        // Dictionary: an id near 2^31 (used to fill placeholders up to it) and a cut entry.
        let dictionary = try #require(records.first { $0.type == 2 })
        for (what, change) in [("huge id", { (b: inout [UInt8], body: Int) in
                                    b[body + 1] = 0xFF; b[body + 2] = 0xFF; b[body + 3] = 0xFF; b[body + 4] = 0xFF; b[body + 5] = 0x07 }),
                               ("unknown entry type", { (b: inout [UInt8], body: Int) in b[body + 40] = 0x7F })] {
            path = try fixture.copy("dictionary")
            target = path + "/" + URL(fileURLWithPath: first).lastPathComponent
            try mutate(target) { bytes in
                change(&bytes, dictionary.offset + 12)
                Self.recrc(&bytes, dictionary.offset, dictionary.length)
            }
            reader = try #require(try check(path, "dictionary: \(what)"))
            #expect(reader.problems.contains { $0.kind == .badDictionary }, "dictionary \(what) not reported")
            #expect(reader.dictionaries.atoms.count < 1 << 20)
        }
    }

    /// Recomputes a record's CRC after its body was changed on purpose.
    static func recrc(_ bytes: inout [UInt8], _ offset: Int, _ length: Int) {
        let crc = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[(offset + 4)..<(offset + length - 8)])) }
        for i in 0..<4 { bytes[offset + length - 8 + i] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(i))) }
    }

    @Test func infoAndIndexCommandsReportProblems() throws {
        let path = try fixture.copy("cli")
        let segments = try fixture.files(path, ".btseg")
        try FileManager.default.removeItem(atPath: segments[1])
        let info = try CLI.runCapturing(["info", path, "--json"])
        #expect(info.status == 0)
        #expect(info.stderr.contains("warning: segment"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(info.stdout.utf8)) as? [String: Any])
        let problems = try #require(object["problems"] as? [[String: Any]])
        #expect(problems.contains { $0["kind"] as? String == "missing_segment" && ($0["events_lost"] as? Int ?? 0) > 0 })
        let check = try CLI.runCapturing(["index", path])
        #expect(check.status == 2)
        #expect(try CLI.runCapturing(["index", fixture.capture]).status == 0)
    }
}
