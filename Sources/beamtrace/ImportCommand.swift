// `beamtrace import SOURCE... -o CAPTURE`: dbg files, wrap sets, ttb directories, ip streams, stdin.
import ArgumentParser
import CaptureStore
import Foundation
import TraceModel

struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import OTP trace files (dbg file port, wrap sets, ttb upload directories, ip streams) into a capture.",
        discussion: """
            SOURCE is a trace file, a wrap set (one of its files or its prefix), a ttb upload directory, or - for \
            stdin. Several sources are merged by time.
            Examples:
              beamtrace import trace.trc -o cap.btrace
              beamtrace import 'wrap*.trc' -o cap.btrace --payload-limit 1024
              beamtrace import ttb_upload_mytrace-20261201-145220 -o cap.btrace --json
            """
    )

    @Argument(help: "Trace sources.") var sources: [String]
    @Option(name: .shortAndLong, help: "The capture directory to create.") var output: String
    @Option(help: "Keep at most this many bytes of each event's arguments/message/return value.") var payloadLimit = 256
    @Flag(help: "Keep only the shape of arguments, messages, return values and reasons.") var redact = false
    @Option(help: "Rotate segments at this many MiB.") var segmentMib = 64
    @Flag(help: "Print the summary as JSON.") var json = false

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
        let report: ImportReport
        do {
            report = try importer.run(sources: sources, output: output)
        } catch {
            throw CLIError("\(error)")
        }
        for warning in report.warnings { FileHandle.standardError.write(Data("warning: \(warning)\n".utf8)) }
        if json {
            let object: [String: Any] = ["output": output, "events": report.events, "drops": report.drops,
                                         "files": report.files, "warnings": report.warnings]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("imported \(report.events) events from \(report.files.count) file(s) into \(output)")
        }
    }
}
