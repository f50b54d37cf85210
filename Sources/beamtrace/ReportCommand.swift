// `beamtrace report CAPTURE [--vs OTHER] -o report.html`: one self-contained HTML page to attach to
// a review (TraceExport.HTMLReport).
import ArgumentParser
import CaptureStore
import Foundation
import TraceExport

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write a self-contained HTML report: recording, hang verdict, queues, latency, busiest processes.",
        discussion: "With --vs OTHER the report compares CAPTURE (before) with OTHER (after), as `diff` does.")

    @Argument(help: "The capture directory.") var capture: String
    @Option(help: "A capture to compare with (after a change).") var vs: String?
    @Option(name: .shortAndLong, help: "The HTML file to write (- for standard output).") var output: String
    @Option(help: "Functions shown.") var topFunctions = 8
    @Option(help: "Processes shown in the timeline overview.") var topProcesses = 12

    func run() throws {
        let reader = try AnalysisIO.open(capture)
        let other = try vs.map { try AnalysisIO.open($0) }
        var options = ReportOptions()
        options.topFunctions = max(1, topFunctions)
        options.topProcesses = max(1, topProcesses)
        let known = reader.problems.count, otherKnown = other?.problems.count ?? 0
        let page: String
        do {
            page = try HTMLReport.build(HTMLReport.Input(path: capture, reader: reader),
                                        vs: other.map { HTMLReport.Input(path: vs ?? "", reader: $0) },
                                        options: options, progress: TerminalProgress.standardError)
        } catch {
            throw CLIError("reading \(capture) failed (no report written): \(error)")
        }
        AnalysisIO.warn(reader.problems.dropFirst(known))
        if let other { AnalysisIO.warn(other.problems.dropFirst(otherKnown)) }
        do {
            let out = try ExportOutput(path: output)
            out.write(page)
            try out.finish()
        } catch {
            throw CLIError("\(error)")
        }
        if output != "-" {
            FileHandle.standardError.write(Data("wrote \(output) (\(page.utf8.count) bytes)\n".utf8))
        }
    }
}
