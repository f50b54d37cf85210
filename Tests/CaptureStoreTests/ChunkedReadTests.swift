// Import reads a file a chunk at a time, one chunk ahead of the decoder (ChunkReader): frames cut by
// chunk boundaries, and frames larger than a chunk and than the room kept for a carried-over part,
// import exactly as with the default chunks, and a file cut inside such a frame keeps what it kept.
import Foundation
import Testing
import TestSupport
@testable import CaptureStore
import TraceModel

@Suite(.serialized) struct ChunkedReadTests {
    static let source = #"""
    -module(bt_chunks).
    -export([run/1, count/1]).

    echo() -> receive {From, Msg} -> From ! {self(), byte_size(Msg)}, echo(); stop -> ok end.

    %% Messages of every size around 64 KiB chunks and the 256 KiB carry-over room, up to 5 MB.
    run(File) ->
        E = spawn(fun echo/0),
        dbg:tracer(port, dbg:trace_port(file, File)),
        dbg:p(self(), [send, 'receive', monotonic_timestamp]),
        Sizes = [1, 1000, 65530, 65536, 70000, 262144, 300000, 5000000] ++ lists:seq(1, 2000),
        [begin E ! {self(), binary:copy(<<"x">>, S)}, receive {E, S} -> ok end end || S <- Sizes],
        E ! stop,
        dbg:flush_trace_port(),
        dbg:stop_clear().

    \#(Workload.counter)
    """#

    static func erl(_ dir: URL, _ call: String) throws -> String {
        try Erlang.compile(module: "bt_chunks", source: source, in: dir)
        guard let erl = Erlang.executable("erl") else { throw ErlangError.notInstalled }
        return try Shell.run(erl, ["-noshell", "-pa", dir.path, "-eval", "\(call), erlang:halt(0)."], timeout: 120,
                             workingDirectory: dir)
    }

    @Test func smallChunksImportAsTheDefaultDoes() throws {
        let dir = try Erlang.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let trace = dir.appendingPathComponent("t.trc").path
        _ = try Self.erl(dir, "bt_chunks:run(\"\(trace)\")")
        let expected = Workload.parseCounts(try Self.erl(dir, "bt_chunks:count(\"\(trace)\")"))
        #expect((expected.kinds["send"] ?? 0) > 2000)

        let whole = dir.appendingPathComponent("whole").path
        _ = try CLI.run(["import", trace, "-o", whole])
        var importer = Importer()
        importer.chunkSize = 64 << 10
        let small = dir.appendingPathComponent("small").path
        let report = try importer.run(sources: [trace], output: small)
        #expect(!report.isDamaged)
        #expect(report.warnings.isEmpty)
        let (counts, _) = try Workload.infoCounts(small)
        #expect(counts == expected)
        let listing = try CLI.run(["events", whole])
        #expect(listing.contains("<<\"xxxx"))
        #expect(try CLI.run(["events", small]) == listing)

        // Cut inside the 5 MB message: both keep the events before it and name the same byte.
        let data = try Data(contentsOf: URL(fileURLWithPath: trace))
        let bytes = [UInt8](data)
        var run = 0
        var inside: Int?
        for (i, byte) in bytes.enumerated() {
            run = byte == UInt8(ascii: "x") ? run + 1 : 0
            if run == 3_000_000 {
                inside = i
                break
            }
        }
        guard let inside else {
            Issue.record("the 5 MB message is not in the trace")
            return
        }
        let cut = dir.appendingPathComponent("cut.trc").path
        try Data(bytes[..<inside]).write(to: URL(fileURLWithPath: cut))
        let cutWhole = try Importer().run(sources: [cut], output: dir.appendingPathComponent("cut-whole").path)
        let cutSmall = try importer.run(sources: [cut], output: dir.appendingPathComponent("cut-small").path)
        #expect(cutSmall.events == cutWhole.events)
        #expect(cutSmall.events > 8)
        #expect(cutSmall.warnings == cutWhole.warnings)
        #expect(cutSmall.warnings.count == 1)
        #expect(cutSmall.warnings.first?.contains("incomplete trace frame") == true)
    }
}
