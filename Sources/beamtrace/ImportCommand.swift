// `beamtrace import SOURCE... -o CAPTURE`: dbg files, wrap sets, ttb directories, ip streams, stdin.
// Exit status: 0 all imported; 2 imported, but damaged input was skipped (listed on stderr);
// 1 the import stopped (the message says what was kept and where).
import ArgumentParser
import CaptureStore
import Foundation
import TraceModel

struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import OTP trace files (dbg file port, wrap sets, ttb upload directories, ip streams) into a capture.",
        discussion: """
            SOURCE is a trace file (that file alone), a wrap set named by its prefix (w for w0.trc, w1.trc, ...; \
            or any of its files with --wrap), a ttb upload directory, or - for stdin. Each file is read once \
            however often it is named; several sources are merged by time. A frame that does not decode is \
            skipped and counted (--strict stops there instead); every good event before a failure is kept. \
            Exit status: 0 everything imported, 2 imported but damaged input was skipped, 1 the import stopped.
            Examples:
              beamtrace import trace.trc -o cap.btrace
              beamtrace import 'wrap*.trc' -o cap.btrace --payload-limit 1024   (a pattern the shell did not expand)
              beamtrace import w --wrap -o cap.btrace   (the wrap set w0.trc, w1.trc, ...)
              beamtrace import ttb_upload_mytrace-20261201-145220 -o cap.btrace --json
            """
    )

    @Argument(help: "Trace sources.") var sources: [String]
    @Option(name: .shortAndLong, help: "The capture directory to create.") var output: String
    @Option(help: "Keep at most this many bytes of each event's arguments/message/return value (larger ones are cut to a depth, as io_lib:format(\"~P\") prints them).") var payloadLimit = 256
    @Flag(help: "Keep only the shape of arguments, messages, return values and reasons.") var redact = false
    @Option(help: "Rotate segments at this many MiB.") var segmentMib = 64
    @Flag(help: "Stop at the first bad frame (default: skip it, count it, go on).") var strict = false
    @Flag(help: "A file of a wrap set stands for the whole set.") var wrap = false
    @Flag(help: "Print the summary as JSON.") var json = false

    func validate() throws {
        guard !sources.isEmpty else { throw ValidationError("give at least one SOURCE") }
        guard payloadLimit >= 0 else { throw ValidationError("--payload-limit must be >= 0") }
        guard segmentMib > 0, segmentMib <= 4096 else { throw ValidationError("--segment-mib must be 1 to 4096") }
    }

    func run() throws {
        var writerOptions = CaptureWriter.Options()
        writerOptions.segmentBytes = segmentMib << 20
        var importer = Importer(decoderOptions: TraceDecoderOptions(payloadLimit: payloadLimit, redact: redact),
                                writerOptions: writerOptions, strict: strict, wrap: wrap)
        importer.progress = TerminalProgress.standardError
        let report: ImportReport
        do {
            report = try importer.run(sources: sources, output: output)
        } catch let failure as ImportFailure {
            Self.warn(failure.report)
            throw CLIError(failure.description)
        } catch {
            throw CLIError("\(error)")
        }
        Self.warn(report)
        let files = report.files.map { $0 == "-" ? "stdin" : $0 }
        if json {
            let object: [String: Any] = ["output": output, "events": report.events, "drops": report.drops,
                                         "files": report.files, "warnings": report.warnings,
                                         "frames_skipped": report.framesSkipped, "bytes_skipped": report.bytesSkipped,
                                         "damage": report.damage.map(\.description)]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("imported \(report.events) events from \(files.count) file(s) into \(output): \(files.joined(separator: ", "))")
            if report.isDamaged {
                print("skipped \(report.framesSkipped) undecodable frame(s) and \(report.bytesSkipped) byte(s) of damaged "
                      + "input in \(report.damage.count) place(s) (listed above)")
            }
        }
        if report.isDamaged { throw ExitCode(2) }
    }

    static func warn(_ report: ImportReport) {
        for warning in report.warnings { FileHandle.standardError.write(Data("warning: \(warning)\n".utf8)) }
        for damage in report.damage { FileHandle.standardError.write(Data("warning: \(damage)\n".utf8)) }
    }
}
