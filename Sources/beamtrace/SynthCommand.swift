// `beamtrace synth -o CAPTURE --events N --seed S`: writes a seeded synthetic capture (for tests,
// crash drills and benchmarks). Prints each block's worth as it goes when --progress is set.
import ArgumentParser
import CaptureStore
import Foundation
import TraceModel

struct SynthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "synth", abstract: "Write a seeded synthetic capture.",
                                                    shouldDisplay: false)

    @Option(name: .shortAndLong) var output: String
    @Option var events = 100_000
    @Option var seed: UInt64 = 1
    @Option var blockEvents = 16_384
    @Option var segmentKib = 64 << 10
    @Option var retainKib: Int?
    @Option(help: "Close a block this many milliseconds after its first event.") var blockMs = 100
    @Option(help: "Events per append call.") var chunk = 1000
    @Option(help: "Sleep this many microseconds after each append (to make crash tests land mid-stream).") var pauseUs = 0

    func run() throws {
        var options = CaptureWriter.Options()
        options.blockEvents = blockEvents
        options.segmentBytes = segmentKib << 10
        options.retainBytes = retainKib.map { $0 << 10 }
        options.blockInterval = .milliseconds(blockMs)
        do {
            let writer = try CaptureWriter(creating: output, options: options)
            var generator = SyntheticEvents(seed: seed)
            var batch = EventBatch()
            var written = 0
            while written < events {
                batch.removeAll()
                let n = min(chunk, events - written)
                generator.generate(n, into: &batch)
                try writer.append(batch, dictionaries: generator.dictionaries)
                written += n
                if pauseUs > 0 { usleep(UInt32(pauseUs)) }
            }
            try writer.close(stopReason: "done")
            print("wrote \(written) events")
        } catch {
            throw CLIError("\(error)")
        }
    }
}
