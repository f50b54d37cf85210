// Memory stays flat while exporting: the peak resident size of `beamtrace export` (the operating
// system's own accounting of the finished child, read by a Python parent that runs nothing else)
// on a synthetic capture four times larger is about the same as on the smaller one.
import Foundation
import Testing
import TestSupport

@Suite("export memory does not grow with the capture", .serialized)
struct MemoryTests {
    func beamtrace() throws -> String {
        try #require(BuiltProducts.executable("beamtrace"), "the beamtrace executable was not built")
    }

    /// Peak RSS in KiB of one run of `arguments`.
    func peakKiB(_ arguments: [String]) throws -> Int {
        let output = try Shell.run("/usr/bin/env", ["python3", "-c", """
            import resource, subprocess, sys
            done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if done.returncode != 0: sys.exit(done.stderr.decode()[-2000:])
            print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
            """] + arguments, timeout: 600)
        return Int(output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    // What may grow until it saturates, whatever the capture's size, is the replay's own: the
    // reader's pool of decoded blocks, latency reservoirs (20,000 durations per function). So the
    // exporter is measured against the replay alone (`latency-csv`) on the same capture: what it adds
    // must not grow with the capture (kept spans or events would add tens of MiB at 1M events).
    @Test("perfetto and speedscope: what exporting adds to the replay's memory does not grow from 250k to 1M events",
          arguments: ["perfetto", "speedscope"])
    func flat(format: String) throws {
        let cli = try beamtrace()
        let directory = try Erlang.temporaryDirectory("bt-memory")
        defer { try? FileManager.default.removeItem(at: directory) }
        var added: [Int] = []
        var peaks: [Int] = []
        for events in [250_000, 1_000_000] {
            let capture = directory.appendingPathComponent("synth-\(events)").path
            try Shell.run(cli, ["synth", "-o", capture, "--events", "\(events)", "--seed", "3"], timeout: 300)
            let out = directory.appendingPathComponent("out-\(events).\(format)").path
            let exporting = try peakKiB([cli, "export", capture, "--format", format, "--no-args", "-o", out])
            let replaying = try peakKiB([cli, "export", capture, "--format", "latency-csv", "-o", out + ".csv"])
            let size = (try FileManager.default.attributesOfItem(atPath: out)[.size] as? Int) ?? 0
            #expect(size > events, "\(format) wrote \(size) bytes for \(events) events")
            peaks.append(exporting)
            added.append(exporting - replaying)
        }
        #expect(peaks[0] > 0)
        #expect(added[1] - added[0] < 5 * 1024,
                "\(format) adds \(added[0]) KiB to the replay at 250k events, \(added[1]) KiB at 1M (peaks \(peaks))")
        #expect(peaks[1] - peaks[0] < 20 * 1024, "\(format): peaks \(peaks) KiB")
    }
}
