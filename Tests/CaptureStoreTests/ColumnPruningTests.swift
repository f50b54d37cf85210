// Column pruning (EventColumns): a pass that reads only some payloads (and maybe no peers) gets
// exactly the events of a full read, the payloads it asked for byte for byte as OTP wrote them, and
// empty payloads for the rest — on real dbg traces (block encodings 2 and 1: integers and pids
// moved out of the payloads, copies of earlier payloads; encoding 2 says where they were) and on
// the shipped captures (encoding 0).
import Foundation
import Testing
import TestSupport
@testable import CaptureStore
import TraceModel

@Suite(.serialized) struct ColumnPruningTests {
    static let selections: [EventColumns] = [
        EventColumns(payloadsOf: [.exceptionFrom], peers: false),  // what `latency` reads
        EventColumns(payloadsOf: [.receive], peers: true),  // receives copy the sends they follow
        EventColumns(payloadsOf: [.send, .returnFrom], peers: true),
        EventColumns(payloadsOf: [.send, .receive, .exit, .spawned, .sample, .monitor], peers: true),  // `hang`
        EventColumns(payloadKinds: 0, peers: false),
    ]

    @Test func otpTracesReadPrunedAsDecodedFromTheFile() throws {
        for call in ["bt_work:file(\"%@\", 600)", "bt_work:integers(\"%@\", 6)"] {
            let dir = try Erlang.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: dir) }
            let trace = dir.appendingPathComponent("t.trc").path
            _ = try Workload.run(call.replacingOccurrences(of: "%@", with: trace))
            let expected = try Self.decodedDirectly(trace)
            #expect(expected.contains { $0.event.kind == .exceptionFrom } || call.contains("integers"))
            for encoding in [Format.BlockEncoding.marked, .shaped] {
                var options = CaptureWriter.Options()
                options.blockEvents = 1000
                options.blockEncoding = encoding
                let capture = dir.appendingPathComponent("cap-\(encoding.rawValue)").path
                _ = try Importer(writerOptions: options).run(sources: [trace], output: capture)
                #expect(try Self.blockEncodings(capture) == [encoding.rawValue], "\(call)")
                for columns in Self.selections {
                    let reader = try CaptureReader(opening: capture)
                    let pruned = try Self.read(reader, columns)
                    Self.expectPruned(pruned, of: expected, columns, "\(call) encoding \(encoding.rawValue) \(columns)")
                }
            }
        }
    }

    /// The encodings (byte 37 of the body) of a capture's blocks, read from its segments' records.
    static func blockEncodings(_ capture: String) throws -> Set<UInt8> {
        let reader = try CaptureReader(opening: capture)
        var encodings: Set<UInt8> = []
        for entry in reader.blocks {
            let segment = try Data(contentsOf: URL(fileURLWithPath: capture + "/" + Format.segmentName(Int(entry.segment))))
            let record = [UInt8](segment[Int(entry.offset)..<Int(entry.offset) + Int(entry.recordLength)])
            let body = record.withUnsafeBytes { raw -> [UInt8]? in
                guard case .success(let (_, range)) = SegmentScanner.check(raw) else { return nil }
                return Array(raw[range])
            }
            guard let body, body.count > 40 else {
                Issue.record("block \(entry.sequence) does not check")
                continue
            }
            encodings.insert(body[37])
        }
        return encodings
    }

    @Test func shippedCapturesReadPrunedAsReadWhole() throws {
        let traces = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("traces")
        let names = try FileManager.default.contentsOfDirectory(atPath: traces.path).filter { $0.hasSuffix(".btrace") }
        #expect(names.count >= 5)
        for name in names {
            let path = traces.appendingPathComponent(name).path
            let whole = try CaptureReader(opening: path).events()
            for columns in Self.selections {
                let pruned = try Self.read(try CaptureReader(opening: path), columns)
                Self.expectPruned(pruned, of: whole, columns, "\(name) \(columns)")
            }
        }
    }

    @Test func aPassWithoutPayloadsDecompressesNoPayloadColumn() throws {
        // A block with only calls and returns, read for exceptions: its payload columns are left alone,
        // so a payload column that does not even decompress goes unnoticed by that pass, while a full
        // read reports it.
        var batch = EventBatch()
        var dictionaries = TraceDictionaries()
        let node = dictionaries.intern(node: "a@host")
        let pid = dictionaries.intern(process: .pid(node: node, id: 80, serial: 0, creation: 1))
        let mfa = dictionaries.intern(module: "m", function: "f", arity: 1)
        let argument: [UInt8] = [108, 0, 0, 0, 1] + [107, 0, 40] + Array(repeating: 7, count: 40) + [106]
        for i in 0..<200 {
            batch.append(TraceEvent(time: 1_000 + Int64(i) * 10, node: node, pid: pid, kind: i % 2 == 0 ? .call : .returnFrom,
                                    mfa: mfa), payload: i % 2 == 0 ? argument : [97, UInt8(i & 0xFF)])
        }
        var encoder = BlockEncoder()
        var body = ByteWriter()
        var entry = IndexEntry(kind: .block, segment: 1, offset: 0, recordLength: 0)
        encoder.encode(batch, dictionaries: dictionaries, sequence: 1, droppedBefore: 0, into: &body, entry: &entry)
        // Damage the payload column's stored bytes (column 9) after the directory.
        let directory = 40
        var offset = directory + 12 * Int(body.bytes[36])
        for column in 0..<9 {
            offset += Int(UInt32(littleEndian: body.bytes.withUnsafeBytes {
                $0.loadUnaligned(fromByteOffset: directory + 12 * column + 8, as: UInt32.self)
            }))
        }
        #expect(body.bytes[directory + 12 * 9] == Format.Codec.lz4.rawValue)
        for k in 0..<8 { body.bytes[offset + k] = 0xFF }
        var decoder = BlockDecoder()
        var decoded = EventBatch()
        let whole = body.bytes.withUnsafeBytes { decoder.decode($0, dictionaries: dictionaries, into: &decoded) }
        #expect(whole != nil)
        let pruned = body.bytes.withUnsafeBytes {
            decoder.decode($0, dictionaries: dictionaries, into: &decoded,
                           reading: EventColumns(payloadsOf: [.exceptionFrom], peers: false))
        }
        #expect(pruned == nil)
        #expect(decoded.count == 200 && decoded.payloadBytes.isEmpty)
        #expect(decoded.times == batch.times && decoded.kinds == batch.kinds && decoded.mfas == batch.mfas)
    }

    /// Encoding 2's mark column says where a compacted payload's codes are: read back exactly, and
    /// a mark that points past the payload or at a plain byte is reported, never trusted.
    @Test func damagedMarksAreReportedNotTrusted() throws {
        var batch = EventBatch()
        var dictionaries = TraceDictionaries()
        let node = dictionaries.intern(node: "a@host")
        let pid = dictionaries.intern(process: .pid(node: node, id: 80, serial: 0, creation: 1))
        // {<0.80.0>, 70000}: a pid of the dictionary and an INTEGER_EXT, both compacted.
        let pidBytes: [UInt8] = [88, 100, 0, 6] + Array("a@host".utf8) + [0, 0, 0, 80, 0, 0, 0, 0, 0, 0, 0, 1]
        let message: [UInt8] = [104, 2] + pidBytes + [98, 0, 1, 17, 112]
        for i in 0..<2 {
            batch.append(TraceEvent(time: 1_000 + Int64(i), node: node, pid: pid, kind: .send, peer: pid),
                         payload: message + [97, UInt8(i)])
        }
        var encoder = BlockEncoder()
        var body = ByteWriter()
        var entry = IndexEntry(kind: .block, segment: 1, offset: 0, recordLength: 0)
        encoder.encode(batch, dictionaries: dictionaries, sequence: 1, droppedBefore: 0, into: &body, entry: &entry)
        #expect(body.bytes[36] == 13 && body.bytes[37] == Format.BlockEncoding.marked.rawValue)
        // The mark column (12), stored raw (it is short): per payload 1 + 2 plain bytes before the
        // pid, 1 + none between it and the integer, and the 0 that ends the payload's marks.
        let directory = 40
        func stored(_ column: Int) -> Int {
            Int(body.bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: directory + 12 * column + 8, as: UInt32.self) })
        }
        let markColumn = Format.Column.payloadMarks.rawValue
        let offset = directory + 12 * 13 + (0..<markColumn).reduce(0) { $0 + stored($1) }
        #expect(body.bytes[directory + 12 * markColumn] == Format.Codec.raw.rawValue)
        #expect(Array(body.bytes[offset..<offset + stored(markColumn)]) == [3, 1, 0, 3, 1, 0])
        func decoded(_ bytes: [UInt8]) -> (String?, EventBatch) {
            var decoder = BlockDecoder()
            var out = EventBatch()
            let failure = bytes.withUnsafeBytes { decoder.decode($0, dictionaries: dictionaries, into: &out) }
            return (failure, out)
        }
        let (failure, whole) = decoded(body.bytes)
        #expect(failure == nil)
        #expect((0..<2).map { Array(whole.payload($0)) } == (0..<2).map { Array(batch.payload($0)) })
        for (damage, what) in [(2, "a mark at a plain byte"), (61, "a mark past the payload")] {
            var damaged = body.bytes
            damaged[offset] = UInt8(damage)
            let (failure, _) = decoded(damaged)
            #expect(failure?.contains("compacted payload does not expand") == true, "\(what): \(failure ?? "decoded")")
        }
        var extra = body.bytes
        extra[offset + 4] = 0  // the second payload's marks end after one code: a byte of the column is left over
        #expect(decoded(extra).0 != nil)
    }

    static func read(_ reader: CaptureReader, _ columns: EventColumns) throws -> [RecordedEvent] {
        var events: [RecordedEvent] = []
        try reader.forEach(matching: .all, columns: columns) { event, payload in
            events.append(RecordedEvent(event: event, payload: Array(payload)))
            return true
        }
        #expect(reader.problems.isEmpty)
        return events
    }

    static func expectPruned(_ pruned: [RecordedEvent], of expected: [RecordedEvent], _ columns: EventColumns,
                             _ what: String) {
        #expect(pruned.count == expected.count, "\(what)")
        var payloadsRead = 0
        for (got, want) in zip(pruned, expected) {
            var event = want.event
            if !columns.peers { event.peer = 0 }
            let wanted = columns.payloadKinds >> UInt64(event.kind.rawValue) & 1 != 0
            if got.event != event || got.payload != (wanted ? want.payload : []) {
                Issue.record("\(what): \(got) where \(event) \(wanted ? want.payload : [])")
                return
            }
            if wanted && !want.payload.isEmpty { payloadsRead += 1 }
        }
        let asked = expected.filter { columns.payloadKinds >> UInt64($0.event.kind.rawValue) & 1 != 0 && !$0.payload.isEmpty }
        #expect(payloadsRead == asked.count, "\(what)")
    }

    /// The trace file decoded by the trace-message decoder, in the capture's order (time, then file order).
    static func decodedDirectly(_ trace: String) throws -> [RecordedEvent] {
        try DirectDecode.of(trace).events
    }
}
