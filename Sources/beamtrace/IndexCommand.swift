// `beamtrace index [--rebuild] CAPTURE`: checks a capture (every problem printed; exit 2 when there is
// any) or rewrites the index sidecars from a full, CRC-checked read of the segments.
import ArgumentParser
import CaptureStore
import Foundation

struct IndexCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "index", abstract: "Check a capture, or rebuild its index.",
        discussion: "Without --rebuild: exit 0 when nothing is wrong, 2 when problems were found (printed). "
            + "--rebuild rewrites each segment's index from the segments themselves (never from the old index).")

    @Argument(help: "The capture directory.") var capture: String
    @Flag(help: "Rewrite the index files from the segments.") var rebuild = false
    @Flag(help: "Print the result as JSON.") var json = false

    func run() throws {
        let reader: CaptureReader
        do {
            reader = try CaptureReader(opening: capture, trustIndex: !rebuild)
        } catch {
            throw CLIError("\(error)")
        }
        if !json {
            AnalysisIO.warn(reader.problems)
        }
        var object: [String: Any] = ["capture": capture, "blocks": reader.blocks.count,
                                     "segments": reader.segmentNumbers.count,
                                     "problems": reader.problems.map { $0.fields as [String: Any] }]
        if rebuild {
            let entries: Int
            do { entries = try reader.rebuildIndex() } catch { throw CLIError("\(error)") }
            object["rebuilt_records"] = entries
            if json { try printJSON(object) } else {
                print("rebuilt the index: \(entries) records in \(reader.segmentNumbers.count) segment(s)")
            }
        } else {
            if json { try printJSON(object) } else {
                print("\(reader.blocks.count) blocks in \(reader.segmentNumbers.count) segment(s); \(reader.problems.count) problem(s)")
            }
            if !reader.problems.isEmpty { throw ExitCode(2) }
        }
    }

    private func printJSON(_ object: [String: Any]) throws {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])
        print(String(decoding: data, as: UTF8.self))
    }
}
