// Import takes exactly what it is given and keeps every good event: shell globs over a wrap set,
// sibling files, repeated arguments, a bad frame after N good ones, a damaged length field, and a
// full disk (a file size limit on the child) for import and `index --rebuild`. Expected counts
// come from OTP's dbg:trace_client on the same bytes.
import Foundation
import Testing
import TestSupport
@testable import CaptureStore
import TraceModel

extension CLI {
    /// Runs beamtrace with a file size limit of `kib` KiB (writes beyond it fail with EFBIG, as a
    /// full disk fails them with ENOSPC; SIGXFSZ is ignored so the process sees the error).
    static func runLimited(_ arguments: [String], kib: Int) throws -> Shell.Result {
        guard let beamtrace = BuiltProducts.executable("beamtrace") else {
            throw ErlangError.failed(command: "beamtrace", status: -1, output: "the beamtrace executable was not built")
        }
        return try Shell.runCapturing("/bin/bash", ["-c", "ulimit -f \(kib); trap '' XFSZ; exec \"$0\" \"$@\"", beamtrace]
                                      + arguments, timeout: 300)
    }
}

/// Frame boundaries of a trace-port file: (offset, whole length).
func traceFrames(_ bytes: [UInt8]) -> [(offset: Int, length: Int)] {
    var frames: [(Int, Int)] = []
    var offset = 0
    while offset + 5 <= bytes.count {
        let size = Int(bytes[offset + 1]) << 24 | Int(bytes[offset + 2]) << 16 | Int(bytes[offset + 3]) << 8 | Int(bytes[offset + 4])
        let length = bytes[offset] == 1 ? 5 : 5 + size
        frames.append((offset, length))
        offset += length
    }
    return frames
}

@Suite(.serialized) struct ImportInputTests {
    func events(_ counts: Workload.Counts) -> Int { counts.kinds.values.reduce(0, +) }

    @Test func aShellGlobOverAWrapSetImportsEachEventOnceAndSiblingsAreNotMerged() throws {
        let dir = try Erlang.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let prefix = dir.appendingPathComponent("cap_wrap").path
        _ = try Workload.run("bt_work:wrap(\"\(prefix)\", 6000)")
        // What `beamtrace import cap_wrap*.trc` receives from the shell.
        let glob = try FileManager.default.contentsOfDirectory(atPath: dir.path)
            .filter { $0.hasPrefix("cap_wrap") && $0.hasSuffix(".trc") }.sorted().map { dir.path + "/" + $0 }
        #expect(glob.count == 4)
        let list = glob.map { "\"\($0)\"" }.joined(separator: ",")
        let expected = Workload.parseCounts(try Workload.run("bt_work:count_files([\(list)])"))
        let fromGlob = dir.appendingPathComponent("glob").path
        let output = try CLI.run(["import"] + glob + ["-o", fromGlob])
        #expect(try Workload.infoCounts(fromGlob).0 == expected)
        for file in glob { #expect(output.contains(file)) }
        // The same pattern quoted (the shell did not expand it): the same files, each once.
        let quoted = dir.appendingPathComponent("quoted").path
        _ = try CLI.run(["import", dir.path + "/cap_wrap*.trc", glob[0], "-o", quoted])
        #expect(try Workload.infoCounts(quoted).0 == expected)
        // The prefix names the set; --wrap with one of its files too; repeats are read once.
        let byPrefix = dir.appendingPathComponent("prefix").path
        _ = try CLI.run(["import", prefix, "-o", byPrefix])
        #expect(try Workload.infoCounts(byPrefix).0 == expected)
        let byWrap = dir.appendingPathComponent("wrap").path
        _ = try CLI.run(["import", "--wrap", glob[0], "-o", byWrap])
        #expect(try Workload.infoCounts(byWrap).0 == expected)
        let repeated = dir.appendingPathComponent("repeated").path
        let twice = try CLI.run(["import", prefix, glob[1], glob[1], dir.path + "/./" + URL(fileURLWithPath: glob[2]).lastPathComponent,
                                 "-o", repeated])
        #expect(try Workload.infoCounts(repeated).0 == expected)
        #expect(twice.contains("from 4 file(s)"))
        // One file of the set alone is that file alone.
        let single = Workload.parseCounts(try Workload.run("bt_work:count(\"\(glob[0])\")"))
        let one = dir.appendingPathComponent("one").path
        _ = try CLI.run(["import", glob[0], "-o", one])
        #expect(try Workload.infoCounts(one).0 == single)

        // Sibling runs: run1.trace is imported alone, never merged with run2.trace.
        let run1 = dir.appendingPathComponent("run1.trace").path
        let run2 = dir.appendingPathComponent("run2.trace").path
        _ = try Workload.run("bt_work:file(\"\(run1)\", 300)")
        _ = try Workload.run("bt_work:file(\"\(run2)\", 500)")
        let run1Counts = Workload.parseCounts(try Workload.run("bt_work:count(\"\(run1)\")"))
        let capture = dir.appendingPathComponent("run1cap").path
        let summary = try CLI.run(["import", run1, "-o", capture])
        #expect(try Workload.infoCounts(capture).0 == run1Counts)
        #expect(summary.contains("from 1 file(s)") && summary.contains("run1.trace") && !summary.contains("run2"))
    }

    @Test func aBadFrameAfterNGoodOnesKeepsTheN() throws {
        let dir = try Erlang.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let trace = dir.appendingPathComponent("t.trc").path
        _ = try Workload.run("bt_work:file(\"\(trace)\", 3000)")
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: trace)))
        let frames = traceFrames(bytes)
        let n = 20_000
        #expect(frames.count > n + 1000)
        let cut = frames[n].offset
        // The first N frames, counted by OTP.
        let prefixFile = dir.appendingPathComponent("prefix.trc").path
        try Data(bytes[0..<cut]).write(to: URL(fileURLWithPath: prefixFile))
        let before = events(Workload.parseCounts(try Workload.run("bt_work:count(\"\(prefixFile)\")")))
        let all = events(Workload.parseCounts(try Workload.run("bt_work:count(\"\(trace)\")")))
        // A well-framed message that is not a trace tuple ({1}), inserted after frame N.
        var damaged = bytes
        damaged.insert(contentsOf: [0, 0, 0, 0, 5, 131, 104, 1, 97, 1], at: cut)
        let bad = dir.appendingPathComponent("bad.trc").path
        try Data(damaged).write(to: URL(fileURLWithPath: bad))

        let strictCapture = dir.appendingPathComponent("strict").path
        let strict = try CLI.runCapturing(["import", "--strict", bad, "-o", strictCapture])
        #expect(strict.status == 1)
        #expect(strict.stderr.contains("at byte \(cut)"))
        #expect(strict.stderr.contains("the \(before) events before it are kept in \(strictCapture)"))
        let kept = try CaptureReader(opening: strictCapture)
        #expect(try Workload.infoCounts(strictCapture).1["events"] as? Int == before)
        #expect(kept.problems.isEmpty)

        let skipCapture = dir.appendingPathComponent("skip").path
        let skipped = try CLI.runCapturing(["import", bad, "-o", skipCapture])
        #expect(skipped.status == 2)
        #expect(skipped.stderr.contains("skipped 10 bytes at byte \(cut)"))
        #expect(skipped.stdout.contains("imported \(all) events"))
        #expect(try Workload.infoCounts(skipCapture).1["events"] as? Int == all)
    }

    @Test func aDamagedLengthNearSixtyFourMiBIsDamageNotATail() throws {
        let dir = try Erlang.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let trace = dir.appendingPathComponent("t.trc").path
        _ = try Workload.run("bt_work:file(\"\(trace)\", 2000)")
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: trace)))
        let frames = traceFrames(bytes)
        let victim = frames[frames.count / 3]
        #expect(bytes[victim.offset] == 0)
        let all = events(Workload.parseCounts(try Workload.run("bt_work:count(\"\(trace)\")")))
        let claimed = (64 << 20) - 7
        bytes[victim.offset + 1] = UInt8(claimed >> 24); bytes[victim.offset + 2] = UInt8((claimed >> 16) & 255)
        bytes[victim.offset + 3] = UInt8((claimed >> 8) & 255); bytes[victim.offset + 4] = UInt8(claimed & 255)
        let bad = dir.appendingPathComponent("bad.trc").path
        try Data(bytes).write(to: URL(fileURLWithPath: bad))
        let capture = dir.appendingPathComponent("cap").path
        let result = try CLI.runCapturing(["import", bad, "-o", capture])
        #expect(result.status == 2)
        #expect(result.stderr.contains("at byte \(victim.offset)") && result.stderr.contains("claims \(claimed) bytes"))
        #expect(!result.stderr.contains("incomplete trace frame"))
        // Only the frame whose length was damaged is lost.
        #expect(try Workload.infoCounts(capture).1["events"] as? Int == all - 1)
    }

    @Test func aFullDiskStopsImportAndIndexRebuildWithNonZeroExitAndWhatWasWrittenStaysReadable() throws {
        let dir = try Erlang.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let trace = dir.appendingPathComponent("t.trc").path
        _ = try Workload.run("bt_work:file(\"\(trace)\", 8000)")
        let sound = dir.appendingPathComponent("sound").path
        _ = try CLI.run(["import", trace, "-o", sound])
        // A limit that lets the first few blocks of the first segment in, not all of them.
        let blocks = try segmentRecords(sound + "/" + Format.segmentName(1)).filter { $0.type == 3 }
        #expect(blocks.count >= 4)
        let limit = (blocks[2].offset + blocks[2].length) / 1024 + 1
        let capture = dir.appendingPathComponent("cap").path
        let result = try CLI.runLimited(["import", trace, "-o", capture], kib: limit)
        #expect(result.status == 1)
        #expect(result.stderr.contains("events before it are kept in \(capture)"))
        let reader = try CaptureReader(opening: capture)
        #expect(reader.problems.contains { $0.kind == .unsealed })
        var events = 0
        try reader.forEach { _, _ in events += 1; return true }
        #expect(events > 0)
        #expect(result.stderr.contains("the \(events) events before it"), "read \(events): \(reader.problems)")

        // index --rebuild: the new index does not fit; no temporary file, the old index stays.
        let index = sound + "/" + Format.indexName(1)
        let old = try Data(contentsOf: URL(fileURLWithPath: index))
        #expect(old.count > 1024)
        let rebuild = try CLI.runLimited(["index", "--rebuild", sound], kib: 1)
        #expect(rebuild.status == 1)
        #expect(rebuild.stderr.contains("the old index is left as it was"))
        #expect(!FileManager.default.fileExists(atPath: index + ".tmp"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: index)) == old)
        #expect(try CaptureReader(opening: sound).problems.isEmpty)
    }
}
