// `beamtrace import SOURCE... -o CAPTURE`: dbg files, wrap sets, ttb directories, ip streams, stdin.
import ArgumentParser
import CaptureStore
import Foundation
import TraceModel

struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import OTP trace files (dbg file port, wrap sets, ttb upload directories, ip streams) into a capture.",
        discussion: "SOURCE is a trace file, a wrap set (one of its files or its prefix), a ttb upload directory, or - for stdin. Several sources are merged by time."
    )

    @Argument(help: "Trace sources.") var sources: [String]
    @Option(name: .shortAndLong, help: "The capture directory to create.") var output: String
    @Option(help: "Keep at most this many bytes of each event's arguments/message/return value.") var payloadLimit = 256
    @Flag(help: "Keep only the shape of arguments, messages, return values and reasons.") var redact = false
    @Option(help: "Rotate segments at this many MiB.") var segmentMib = 64

    func validate() throws {
        guard !sources.isEmpty else { throw ValidationError("give at least one SOURCE") }
        guard payloadLimit >= 0 else { throw ValidationError("--payload-limit must be >= 0") }
    }

    func run() throws {
        var writerOptions = CaptureWriter.Options()
        writerOptions.segmentBytes = segmentMib << 20
        var importer = Importer(decoderOptions: TraceDecoderOptions(payloadLimit: payloadLimit, redact: redact),
                                writerOptions: writerOptions)
        importer.progress = TerminalProgress.standardError
        do {
            let report = try importer.run(sources: sources, output: output)
            for warning in report.warnings { FileHandle.standardError.write(Data("warning: \(warning)\n".utf8)) }
            print("imported \(report.events) events from \(report.files.count) file(s) into \(output)")
        } catch {
            throw ValidationError("\(error)")
        }
    }
}
