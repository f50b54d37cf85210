// `beamtrace index --rebuild CAPTURE`: rewrites the index sidecars from the segments.
import ArgumentParser
import CaptureStore

struct IndexCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "index", abstract: "Check or rebuild a capture's index.")

    @Argument(help: "The capture directory.") var capture: String
    @Flag(help: "Rewrite the index files from the segments.") var rebuild = false

    func run() throws {
        do {
            let reader = try CaptureReader(opening: capture)
            for problem in reader.problems { print("problem: \(problem)") }
            if rebuild {
                let entries = try reader.rebuildIndex()
                print("rebuilt the index: \(entries) records in \(reader.segmentNumbers.count) segment(s)")
            } else {
                print("\(reader.blocks.count) blocks in \(reader.segmentNumbers.count) segment(s); \(reader.problems.count) problem(s)")
            }
        } catch {
            throw ValidationError("\(error)")
        }
    }
}
