// Every event written is read back identical: seeded random streams (several blocks, several
// segments, small blocks) and an OTP capture against the decoder's own output.
import Foundation
import Testing
import TestSupport
@testable import CaptureStore
import TraceModel

@Suite struct RoundTripTests {
    func write(_ batch: EventBatch, dictionaries: TraceDictionaries, to path: String, options: CaptureWriter.Options) throws {
        let writer = try CaptureWriter(creating: path, options: options)
        var index = 0
        // Uneven appends, so blocks fill across calls.
        while index < batch.count {
            let n = min(batch.count - index, 777)
            var part = EventBatch()
            for i in index..<(index + n) { part.append(batch[i], payload: batch.payload(i)) }
            try writer.append(part, dictionaries: dictionaries)
            index += n
        }
        try writer.close(stopReason: "test")
    }

    /// Writes `batch` into a new capture of `blockEvents`-event blocks and gives `body` its reader,
    /// checked to have no problems; the capture is removed after.
    func withCapture(of batch: EventBatch, dictionaries: TraceDictionaries, blockEvents: Int,
                     _ body: (CaptureReader) throws -> Void) throws {
        let dir = try Erlang.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("cap").path
        var options = CaptureWriter.Options()
        options.blockEvents = blockEvents
        try write(batch, dictionaries: dictionaries, to: path, options: options)
        let reader = try CaptureReader(opening: path)
        #expect(reader.problems.isEmpty)
        try body(reader)
    }

    @Test(arguments: [UInt64(1), 2, 3])
    func randomStreamsReadBackIdentical(seed: UInt64) throws {
        let dir = try Erlang.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var generator = SyntheticEvents(seed: seed)
        var batch = EventBatch()
        generator.generate(40_000, into: &batch)
        var options = CaptureWriter.Options()
        options.blockEvents = 1000 + Int(seed) * 500
        options.segmentBytes = 100_000
        let path = dir.appendingPathComponent("cap").path
        try write(batch, dictionaries: generator.dictionaries, to: path, options: options)
        let reader = try CaptureReader(opening: path)
        #expect(reader.problems.isEmpty)
        #expect(reader.segmentNumbers.count > 1)
        let events = try reader.events()
        #expect(events.count == batch.count)
        var same = events.count == batch.count
        for i in 0..<min(events.count, batch.count) where events[i].event != batch[i] || events[i].payload != Array(batch.payload(i)) {
            same = false
            break
        }
        #expect(same)
        #expect(reader.dictionaries.functions == generator.dictionaries.functions)
        #expect(reader.dictionaries.processes == generator.dictionaries.processes)
    }

    @Test func outOfOrderEventsComeBackInTimeOrder() throws {
        let dir = try Erlang.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var generator = SyntheticEvents(seed: 9)
        var batch = EventBatch()
        generator.generate(20_000, into: &batch)
        // Step back in time across "processes", as OTP's file order does.
        var shuffled = EventBatch()
        var order = Array(0..<batch.count)
        for i in stride(from: 0, to: order.count - 7, by: 7) { order.swapAt(i, i + 6) }
        for i in order { shuffled.append(batch[i], payload: batch.payload(i)) }
        var options = CaptureWriter.Options()
        options.blockEvents = 500
        let path = dir.appendingPathComponent("cap").path
        try write(shuffled, dictionaries: generator.dictionaries, to: path, options: options)
        let events = try CaptureReader(opening: path).events()
        #expect(events.map(\.event) == (0..<batch.count).map { batch[$0] })
    }

    /// A new capture's meta says when it was made, in UTC to the second as ISO 8601 (formatted
    /// with the C library, not Foundation's formatter): between coreutils' `date -u` read before and
    /// after the write, and in its format.
    @Test func createdAtIsTheUTCTimeOfWriting() throws {
        let dir = try Erlang.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let beamtrace = try #require(BuiltProducts.executable("beamtrace"))
        let path = dir.appendingPathComponent("cap").path
        // Written by a process whose local time is 5 h 30 min from UTC (a POSIX TZ, no tzdata
        // needed): a local time in `createdAt` would miss the window by that much.
        var environment = ProcessInfo.processInfo.environment
        environment["TZ"] = "XYZ-5:30"
        let before = try #require(Int(try coreutilsDate(["-u", "+%s"])))
        let run = try Shell.runCapturing(beamtrace, ["synth", "-o", path, "--events", "10"], environment: environment)
        #expect(run.status == 0, "\(run.stderr)")
        let after = try #require(Int(try coreutilsDate(["-u", "+%s"])))
        let created = try CaptureReader(opening: path).meta.createdAt
        let seconds = try #require(Int(try coreutilsDate(["-u", "-d", created, "+%s"])))
        #expect((before...after).contains(seconds), "\(created) not within \(before)...\(after)")
        #expect(created == (try coreutilsDate(["-u", "-d", "@\(seconds)", "+%Y-%m-%dT%H:%M:%SZ"])))
    }

    /// Blocks the caller encodes itself while the writer is behind (CaptureWriter.seal) are the
    /// very blocks the writer encodes: every block record of a capture whose caller encoded every
    /// block is byte for byte that of one the writer encoded, over several segments, with events out
    /// of time order (the sort), copies of recent payloads, drops (each header counts those before
    /// it) and pids first seen mid-capture (the dictionaries as of each block).
    @Test func blocksEncodedByTheCallerAreTheWritersBytes() throws {
        let dir = try Erlang.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var generator = SyntheticEvents(seed: 11)
        var batch = EventBatch()
        generator.generate(30_000, into: &batch)
        var order = Array(0..<batch.count)
        for i in stride(from: 0, to: order.count - 5, by: 5) { order.swapAt(i, i + 4) }
        var shuffled = EventBatch()
        for (p, k) in order.enumerated() {
            if p % 1_000 == 999 {
                shuffled.append(TraceEvent(time: batch.times[k], kind: .drop, value: Int64(p / 1_000)), payload: [])
            }
            // Every third event repeats the payload of the one before it: copies within reach.
            shuffled.append(batch[k], payload: batch.payload(p % 3 == 0 && p > 0 ? order[p - 1] : k))
        }
        func write(_ name: String, callerEncodes: Bool) throws -> String {
            var options = CaptureWriter.Options()
            options.blockEvents = 700
            options.segmentBytes = 96 << 10
            options.callerEncodesAlways = callerEncodes
            // The writer's own blocks on the caller's thread, in order: none can be the caller's.
            options.background = callerEncodes
            let path = dir.appendingPathComponent(name).path
            try self.write(shuffled, dictionaries: generator.dictionaries, to: path, options: options)
            return path
        }
        let byWriter = try write("writer", callerEncodes: false)
        let byCaller = try write("caller", callerEncodes: true)
        func blocks(_ path: String) throws -> [[UInt8]] {
            let segments = try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasSuffix(".btseg") }.sorted()
            return try segments.flatMap { name -> [[UInt8]] in
                let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path + "/" + name)))
                return try segmentRecords(path + "/" + name).filter { $0.type == 3 }
                    .map { Array(bytes[$0.offset..<($0.offset + $0.length)]) }
            }
        }
        let written = try blocks(byWriter)
        #expect(written.count > 40)
        #expect(try blocks(byCaller) == written)
        let reader = try CaptureReader(opening: byCaller)
        #expect(reader.problems.isEmpty, "\(reader.problems)")
        #expect(reader.segmentNumbers.count > 2)
        #expect(try reader.events().map(\.event) == (try CaptureReader(opening: byWriter).events().map(\.event)))
    }

    /// A pid a message names before its process is known is stored as it came; once the process is
    /// in the dictionaries the same encoder compacts it, as a fresh encoder does: what a block is
    /// stored as never depends on what its encoder met before (the writer and its caller encode
    /// blocks of one capture, in whatever turns the two threads take).
    @Test func aPidNamedBeforeItsProcessIsKnownIsCompactedOnceItIs() throws {
        var dictionaries = TraceDictionaries()
        let node = dictionaries.intern(node: "a@host")
        let sender = dictionaries.intern(process: .pid(node: node, id: 80, serial: 0, creation: 1))
        // {<0.81.0>, 70000} with <0.81.0> as NEW_PID_EXT, its node as ATOM_EXT (as trace ports write it).
        let named: [UInt8] = [88, 100, 0, 6] + Array("a@host".utf8) + [0, 0, 0, 81, 0, 0, 0, 0, 0, 0, 0, 1]
        var batch = EventBatch()
        for i in 0..<50 {
            // {<0.81.0>, 70000 + i}: no two the same (no copies).
            let n = UInt32(70_000 + i)
            let message: [UInt8] = [104, 2] + named + [98, UInt8(n >> 24), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)]
            batch.append(TraceEvent(time: 1_000 + Int64(i), node: node, pid: sender, kind: .send, peer: sender),
                         payload: message)
        }
        func encode(_ encoder: inout BlockEncoder, _ d: TraceDictionaries) -> (body: [UInt8], stored: Int) {
            var body = ByteWriter()
            var entry = IndexEntry(kind: .block, segment: 1, offset: 0, recordLength: 0)
            encoder.encode(batch, dictionaries: d, sequence: 1, droppedBefore: 0, into: &body, entry: &entry)
            return (body.bytes, encoder.payloadBuffers.payload.count)
        }
        var early = BlockEncoder()
        let unknown = encode(&early, dictionaries)
        _ = dictionaries.intern(process: .pid(node: node, id: 81, serial: 0, creation: 1))
        let later = encode(&early, dictionaries)
        var fresh = BlockEncoder()
        let known = encode(&fresh, dictionaries)
        #expect(later.body == known.body)
        // Compacted once known: each payload's 23 bytes of pid became a code of two.
        #expect(known.stored <= unknown.stored - 50 * 20, "\(unknown.stored) → \(known.stored) stored bytes")
    }

    @Test func otpCaptureReadsBackAsDecoded() throws {
        try expectReadsBackAsDecoded { trace in "bt_work:file(\"\(trace)\", 1500)" }
    }

    /// OTP's own bytes for integers of every width (payload integers have a column of their own in
    /// block encoding 1) come back exactly, across blocks.
    /// Block encoding 1 keeps integer contexts in a small table: two processes whose contexts share
    /// a slot, one sending integers and the other only a pid in between, read back exactly (the
    /// pid-only payload enters no context, on writing as on reading).
    @Test func integerContextsSharingASlotReadBackExactly() throws {
        var dictionaries = TraceDictionaries()
        let node = dictionaries.intern(node: "shared@localhost")
        let pids = (0..<4096).map { dictionaries.intern(process: .pid(node: node, id: UInt32(80 + $0), serial: 0, creation: 1)) }
        // Two processes whose send contexts take the same slot: entering the second evicts the first.
        func evicts(_ a: ProcessID, _ b: ProcessID) -> Bool {
            var table = PayloadIntegers()
            table.begin(pid: a, kind: EventKind.send.rawValue, mfa: 0)
            table.record(7)
            table.begin(pid: b, kind: EventKind.send.rawValue, mfa: 0)
            table.begin(pid: a, kind: EventKind.send.rawValue, mfa: 0)
            return table.predicted == 0
        }
        let pair = pids.dropFirst().lazy.map { (pids[0], $0) }.first { evicts($0.0, $0.1) }
        let (a, b) = try #require(pair, "no two of 4096 processes share a slot")
        // {n, Int} with an INTEGER_EXT, and a bare pid (NEW_PID_EXT of a process in the dictionaries).
        func counter(_ v: Int32) -> [UInt8] {
            let u = UInt32(bitPattern: v)
            return [104, 2, 100, 0, 1, UInt8(ascii: "n"), 98,
                    UInt8(u >> 24), UInt8(truncatingIfNeeded: u >> 16), UInt8(truncatingIfNeeded: u >> 8), UInt8(truncatingIfNeeded: u)]
        }
        let name = Array("shared@localhost".utf8)
        let pidTerm: [UInt8] = [88, 100, 0, UInt8(name.count)] + name + [0, 0, 0, 80, 0, 0, 0, 0, 0, 0, 0, 1]
        var batch = EventBatch()
        let payloads: [(ProcessID, [UInt8])] = [(a, counter(100_001)), (b, pidTerm), (a, counter(100_002)),
                                                (b, pidTerm), (a, counter(-5_000_000))]
        for (i, (pid, payload)) in payloads.enumerated() {
            batch.append(TraceEvent(time: 1_000 + Int64(i), node: node, pid: pid, kind: .send, peer: pids[1]),
                         payload: payload)
        }
        let dir = try Erlang.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("cap").path
        try write(batch, dictionaries: dictionaries, to: path, options: CaptureWriter.Options())
        let events = try CaptureReader(opening: path).events()
        #expect(events.map(\.payload) == payloads.map(\.1))
    }

    /// The decoder keeps the bytes of pids it expanded in a small table by process id and writes
    /// payloads into a buffer of its own that grows: processes whose ids share a table slot (ids
    /// 1,024 apart), a node whose name is too long for a slot, payloads larger than the buffer's
    /// first size, a copy of one made after it grew, and a pass reading only sends and receives
    /// (the others walked) all read back exactly.
    @Test func pidsSharingASlotAndLargePayloadsReadBackExactly() throws {
        var dictionaries = TraceDictionaries()
        let short = "s@h", long = "a-node-whose-name-is-longer-than-forty-bytes@host.example"
        let shortNode = dictionaries.intern(node: short), longNode = dictionaries.intern(node: long)
        var pids: [ProcessID] = []
        var terms: [[UInt8]] = []
        for k in 0..<2_100 {
            let (node, name) = k % 7 == 3 ? (longNode, long) : (shortNode, short)
            let number = UInt32(100 + k), creation: UInt32 = 7
            pids.append(dictionaries.intern(process: .pid(node: node, id: number, serial: 0, creation: creation)))
            let n = Array(name.utf8)
            var term: [UInt8] = [88, 100, 0, UInt8(n.count)] + n
            for word in [number, 0, creation] { term += [UInt8(word >> 24), UInt8(truncatingIfNeeded: word >> 16),
                                                        UInt8(truncatingIfNeeded: word >> 8), UInt8(truncatingIfNeeded: word)] }
            terms.append(term)
        }
        // {Self, Other, <<Bytes>>, N}: the binary is empty or large; N an INTEGER_EXT.
        func message(_ a: Int, _ b: Int, binary: Int, _ v: Int32) -> [UInt8] {
            let u = UInt32(bitPattern: v)
            var m: [UInt8] = [104, 4] + terms[a] + terms[b]
            m += [109, UInt8(binary >> 24), UInt8(truncatingIfNeeded: binary >> 16), UInt8(truncatingIfNeeded: binary >> 8),
                  UInt8(truncatingIfNeeded: binary)]
            m += (0..<binary).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            m += [98, UInt8(u >> 24), UInt8(truncatingIfNeeded: u >> 16), UInt8(truncatingIfNeeded: u >> 8), UInt8(truncatingIfNeeded: u)]
            return m
        }
        var batch = EventBatch()
        var expected: [[UInt8]] = []
        var time: Int64 = 1_000
        func add(_ kind: EventKind, _ a: Int, _ payload: [UInt8]) {
            batch.append(TraceEvent(time: time, node: shortNode, pid: pids[a], kind: kind, peer: pids[(a + 1) % pids.count]),
                         payload: payload)
            expected.append(payload)
            time += 1
        }
        for round in 0..<3 {
            for k in 0..<pids.count {
                // Slot-sharing pairs: k and k ± 1,024.
                let other = (k + 1_024) % pids.count
                let big = round == 1 && k % 500 == 0 ? 300_000 : 0
                let m = message(k, other, binary: big, Int32(k * 3 + round))
                add(.send, k, m)
                add(.receive, other, m)  // stored as a copy of the send
                let call = message(other, k, binary: 0, Int32(-k))
                add(.call, k, call)  // walked by a pass of sends and receives
                // Now and then a receive stored as a copy of the call: that block is read expanding
                // every payload, then the unread ones are dropped.
                if k % 300 == 0 { add(.receive, k, call) }
            }
        }
        try withCapture(of: batch, dictionaries: dictionaries, blockEvents: 4_000) { reader in
            let events = try reader.events()
            #expect(events.count == expected.count)
            // Compared as one Bool: a failure would print megabytes of payloads.
            let same = events.map(\.payload) == expected
            #expect(same, "payloads read back differ")
            // Sends and receives only: calls walked, not expanded, and come back empty.
            var read: [[UInt8]] = []
            try reader.forEach(columns: EventColumns(payloadsOf: [.send, .receive], peers: true)) { _, payload in
                read.append(Array(payload))
                return true
            }
            let wanted = zip(batch.kinds, expected).map { $0.0 == .call ? [] : $0.1 }
            let sameRead = read == wanted
            #expect(sameRead, "payloads read by a pass of sends and receives differ")
        }
    }

    /// A server's receives after many callers' sends: each receive equals the send 17 to 255 events
    /// before it (stored as a far copy), and reads back exactly, also when only receives are read
    /// (the sends they copy are walked, not kept).
    @Test func receivesFarAfterTheirSendsReadBackExactly() throws {
        var dictionaries = TraceDictionaries()
        let node = dictionaries.intern(node: "s@h")
        let server = dictionaries.intern(process: .pid(node: node, id: 1, serial: 0, creation: 1))
        let client = dictionaries.intern(process: .pid(node: node, id: 2, serial: 0, creation: 1))
        var batch = EventBatch()
        var time: Int64 = 1
        // {work, K, <<K's bytes>>}: every message distinct, longer than a copy's two bytes.
        func message(_ k: Int) -> [UInt8] {
            [104, 3, 119, 4] + Array("work".utf8) + [98, 0, 0, UInt8(k >> 8), UInt8(k & 0xFF), 109, 0, 0, 0, 8]
                + (0..<8).map { UInt8(truncatingIfNeeded: k &* 7 &+ $0) }
        }
        var k = 0
        for gap in [17, 40, 128, 254, 255] {
            let first = k
            for _ in 0..<gap { batch.append(TraceEvent(time: time, node: node, pid: client, kind: .send, peer: server),
                                           payload: message(k)); k += 1; time += 1 }
            for j in first..<k { batch.append(TraceEvent(time: time, node: node, pid: server, kind: .receive, peer: client),
                                              payload: message(j)); time += 1 }
        }
        // Each receive is stored as 0xF3 and its distance: at most two bytes beyond the sends'.
        var encoder = BlockEncoder()
        var body = ByteWriter()
        var entry = IndexEntry(kind: .block, segment: 1, offset: 0, recordLength: 0)
        encoder.encode(batch, dictionaries: dictionaries, sequence: 1, droppedBefore: 0, into: &body, entry: &entry)
        let sendBytes = (0..<batch.count).filter { batch.kinds[$0] == .send }.reduce(0) { $0 + batch.payload($1).count }
        #expect(encoder.payloadBuffers.payload.count <= sendBytes + 2 * k)
        try withCapture(of: batch, dictionaries: dictionaries, blockEvents: 8_000) { reader in
            let expected = (0..<batch.count).map { Array(batch.payload($0)) }
            #expect(try reader.events().map(\.payload) == expected)
            var received: [[UInt8]] = []
            try reader.forEach(columns: EventColumns(payloadsOf: [.receive], peers: true)) { _, payload in
                received.append(Array(payload))
                return true
            }
            #expect(received == zip(batch.kinds, expected).map { $0.0 == .receive ? $0.1 : [] })
        }
    }

    /// The encoder's walk on every cut of a payload that holds each kind of code (a known pid, an
    /// unknown one, a pid whose node is a SMALL_ATOM_UTF8, a reference, INTEGER_EXT, SMALL_BIG_EXT,
    /// a list, a binary, a float) and on two whole terms back to back: a cut that is not whole terms is kept
    /// as it is, a whole one compacted, and every one reads back byte for byte.
    @Test func everyCutOfAPayloadWithCodesReadsBackExactly() throws {
        var dictionaries = TraceDictionaries()
        let name = Array("n@h".utf8)
        let node = dictionaries.intern(node: "n@h")
        let known = dictionaries.intern(process: .pid(node: node, id: 77, serial: 1, creation: 3))
        func words(_ w: [UInt32]) -> [UInt8] {
            w.flatMap { [UInt8($0 >> 24), UInt8(truncatingIfNeeded: $0 >> 16), UInt8(truncatingIfNeeded: $0 >> 8), UInt8(truncatingIfNeeded: $0)] }
        }
        let knownPid: [UInt8] = [88, 100, 0, UInt8(name.count)] + name + words([77, 1, 3])
        let unknownPid: [UInt8] = [88, 100, 0, UInt8(name.count)] + name + words([78, 0, 3])
        let smallAtomPid: [UInt8] = [88, 119, UInt8(name.count)] + name + words([77, 1, 3])
        let reference: [UInt8] = [90, 0, 2, 119, UInt8(name.count)] + name + words([3, 1, 2])
        let message: [UInt8] = [104, 9] + knownPid + unknownPid + smallAtomPid + reference
            + [98, 0xFF, 0xFF, 0xFE, 0x0C]                       // -500
            + [110, 5, 1, 1, 2, 3, 4, 5]                          // a 5-digit negative big
            + [108, 0, 0, 0, 2, 97, 7, 119, 2, 0x6F, 0x6B, 106]   // [7, ok]
            + [109, 0, 0, 0, 3, 1, 2, 3]
            + [70, 64, 9, 33, 251, 84, 68, 45, 24]                // 3.141592653589793
        let payloads = (0...message.count).map { Array(message[..<$0]) } + [message + knownPid]
        var batch = EventBatch()
        for (k, payload) in payloads.enumerated() {
            batch.append(TraceEvent(time: Int64(k), node: node, pid: known, kind: .send, peer: known), payload: payload)
        }
        var encoder = BlockEncoder()
        var body = ByteWriter()
        var entry = IndexEntry(kind: .block, segment: 1, offset: 0, recordLength: 0)
        encoder.encode(batch, dictionaries: dictionaries, sequence: 1, droppedBefore: 0, into: &body, entry: &entry)
        // The whole message loses its known pids and integers to codes: far fewer bytes stored.
        let inputBytes = payloads.reduce(0) { $0 + $1.count }
        #expect(encoder.payloadBuffers.payload.count < inputBytes - 2 * (knownPid.count - 2))
        try withCapture(of: batch, dictionaries: dictionaries, blockEvents: 1_000) { reader in
            let same = try reader.events().map(\.payload) == payloads
            #expect(same, "a cut payload read back differs")
        }
    }

    /// A block's events are sorted by time, ties in arrival order, with their payloads: nearly in
    /// order (a few late, as trace messages arrive) and far out of order (reversed, where insertion
    /// gives up for a full sort), against the order a stable sort of the indices gives.
    @Test func outOfOrderEventsAreSortedStablyWithTheirPayloads() {
        var dictionaries = TraceDictionaries()
        let node = dictionaries.intern(node: "s@h")
        let pid = dictionaries.intern(process: .pid(node: node, id: 1, serial: 0, creation: 1))
        let n = 5_000
        let shapes: [(String, (Int) -> Int64)] = [
            ("a few late", { i in i % 97 == 0 ? Int64(i - 40) : Int64(i) }),
            ("reversed, with ties", { i in Int64((n - i) / 3) }),
        ]
        for (what, time) in shapes {
            var batch = EventBatch()
            for i in 0..<n {
                // A payload of i's own length and bytes (some empty), the value says which event it was.
                let payload = (0..<(i % 7)).map { UInt8(truncatingIfNeeded: i &+ $0) }
                batch.append(TraceEvent(time: time(i), node: node, pid: pid, kind: i % 2 == 0 ? .send : .receive,
                                        value: Int64(i)), payload: payload)
            }
            let expected = (0..<n).sorted { a, b in batch.times[a] != batch.times[b] ? batch.times[a] < batch.times[b] : a < b }
            var encoder = BlockEncoder()
            let sorted = encoder.sortedByTime(batch)
            #expect(sorted.values == expected.map { Int64($0) }, "\(what)")
            #expect(sorted.times == expected.map { batch.times[$0] }, "\(what)")
            #expect(sorted.kinds == expected.map { batch.kinds[$0] }, "\(what)")
            let payloads = (0..<n).map { Array(sorted.payload($0)) }
            #expect(payloads == expected.map { Array(batch.payload($0)) }, "\(what)")
        }
    }

    @Test func otpIntegersOfEveryWidthReadBackExactly() throws {
        let events = try expectReadsBackAsDecoded { trace in "bt_work:integers(\"\(trace)\", 40)" }
        // Big integers (SMALL_BIG_EXT) were in the payloads.
        let bigs = events.filter { $0.event.kind == .send && $0.payload.contains(110) }.count
        #expect(bigs > 1000)
    }

    @discardableResult
    func expectReadsBackAsDecoded(_ call: (String) -> String) throws -> [RecordedEvent] {
        let dir = try Erlang.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let trace = dir.appendingPathComponent("t.trc").path
        _ = try Workload.run(call(trace))
        // Decode the file directly.
        let direct = try DirectDecode.of(trace)
        var options = CaptureWriter.Options()
        options.blockEvents = 1000
        let capture = dir.appendingPathComponent("cap").path
        _ = try Importer(writerOptions: options).run(sources: [trace], output: capture)
        let reader = try CaptureReader(opening: capture)
        let events = try reader.events()
        // Same events, each with its payload; the capture is in time order.
        let expected = direct.events
        #expect(events.count == expected.count)
        #expect(events == expected)
        #expect(reader.dictionaries.atoms == direct.decoder.dictionaries.atoms)
        return events
    }
}
