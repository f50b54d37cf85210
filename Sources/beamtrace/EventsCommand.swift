// `beamtrace events CAPTURE [filters] [--limit] [--json] [--follow]`: the events in time order,
// one line each (dbg/redbug style), or one JSON object per line; `--follow` tails a capture that is
// being recorded until its session stops.
import ArgumentParser
import BeamTerm
import CaptureStore
import Foundation
import TraceModel

struct EventsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events", abstract: "List a capture's events in time order.",
        discussion: """
            Examples:
              beamtrace events cap.btrace --mfa MyApp.Worker.handle_call/3 --time rel
              beamtrace events cap.btrace --node a@host --pid '<0.85.0>' --kind call,return_from
              beamtrace events cap.btrace --from 1.5s --to 2s --limit 100
              beamtrace events live.btrace --follow      (while beamtrace record writes it)
            Unknown nodes, processes, names and functions are errors that list what the capture has.
            """)

    @Argument(help: "The capture directory.") var capture: String
    @Option(help: ArgumentHelp("From this instant: \(InstantArgument.help).", valueName: "instant")) var from: String?
    @Option(help: ArgumentHelp("Up to this instant (inclusive).", valueName: "instant")) var to: String?
    @Option(help: "Only these nodes (name@host).") var node: [String] = []
    @Option(help: "Only these processes: <0.80.0> (with --node in a capture of several nodes), <node@host.80.0>, or a registered name.")
    var pid: [String] = []
    @Option(help: ArgumentHelp("Only these functions: \(FunctionMatcher.help).", valueName: "function")) var mfa: [String] = []
    @Option(help: "Only these kinds (OTP tag names, comma-separated).") var kind: [String] = []
    @Option(help: "Stop after this many events.") var limit: Int?
    @Flag(help: "One JSON object per line.") var json = false
    @Flag(help: "Keep printing events as a recording appends them, until its session stops.") var follow = false
    @OptionGroup var times: TimeOptions
    @OptionGroup var syntax: SyntaxOptions

    func run() throws {
        var opened: CaptureReader?
        // A capture being created has its directory before its first segment: --follow waits.
        let deadline = Date().addingTimeInterval(follow ? 10 : 0)
        while opened == nil {
            do {
                opened = try CaptureReader(opening: capture)
            } catch let error as CaptureError where follow && error.code == .notACapture && Date() < deadline {
                Thread.sleep(forTimeInterval: 0.1)
            } catch {
                throw CLIError("cannot open capture \(capture): \(error)")
            }
        }
        guard let reader = opened else { throw CLIError("cannot open capture \(capture)") }
        var output = EventOutput(json: json, limit: limit ?? .max)
        if follow {
            try Follower(command: self).run(first: reader, output: &output)
            return
        }
        _ = try emit(reader, output: &output, after: nil)
        output.flush()
    }

    func query(_ reader: CaptureReader) throws -> EventQuery {
        do {
            return try EventQuery.parse(reader: reader, start: reader.blocks.map(\.timeMin).min(), from: from, to: to,
                                        nodes: node, pids: pid, functions: mfa, kinds: kind)
        } catch let error as CaptureError where error.code == .invalidArgument {
            throw ValidationError(error.message)
        }
    }

    /// Prints the matching events (those `after.accept` lets through); false once the limit is reached.
    func emit(_ reader: CaptureReader, output: inout EventOutput, after: Follower.Window?) throws -> Bool {
        var query = try query(reader)
        if let after, let low = after.low { query.from = max(query.from ?? .min, low) }
        let elixir = syntax.useElixir(reader.dictionaries)
        var printer = EventPrinter(dictionaries: reader.dictionaries,
                                   time: output.time ?? times.text(for: reader), elixir: elixir)
        let known = reader.problems.count
        var more = true
        do {
            try reader.forEach(matching: query) { event, payload in
                if let after, !after.accept(event, payload: payload) { return true }
                more = output.write(event, payload: payload, printer: &printer, reader: reader)
                return more
            }
        } catch {
            throw CLIError("reading \(capture) failed: \(error)")
        }
        output.time = printer.time
        output.endRound()
        AnalysisIO.warn(reader.problems.dropFirst(known))
        return more
    }
}

/// Buffered stdout for events: text lines through `EventPrinter.write`, JSON through `EventJSON`
/// (TraceModel), in large writes.
struct EventOutput: ~Copyable {
    let json: Bool
    let limit: Int
    var printed = 0
    var buffer = TextBuffer(capacity: EventOutput.flushSize * 2)
    /// The time printer carried across `--follow` rounds (so the date prints once).
    var time: TimeText?
    private var jsonWriter = EventJSON()
    // Small enough that the buffer stays in the cache between flushes (a 1 MiB one did not: every
    // line paid a cache miss on its first byte).
    static let flushSize = 1 << 16

    init(json: Bool, limit: Int) {
        self.json = json
        self.limit = limit
    }

    /// A `--follow` round is over: the next one prints with a new printer (and newer dictionaries),
    /// so nothing printed from this one's is kept.
    mutating func endRound() { jsonWriter = EventJSON() }

    mutating func write(_ event: TraceEvent, payload: UnsafeRawBufferPointer, printer: inout EventPrinter,
                        reader: CaptureReader) -> Bool {
        guard printed < limit else { return false }
        printed += 1
        if json {
            jsonWriter.write(event, payload: payload, printer: &printer, into: &buffer)
        } else {
            printer.write(event, payload: payload, into: &buffer)
        }
        buffer.append(10)
        if buffer.count >= Self.flushSize { flush() }
        return printed < limit
    }

    mutating func flush() {
        guard !buffer.isEmpty else { return }
        // Stops quietly when stdout is closed (a pipe into head): nothing more can be written.
        buffer.withUnsafeBytes { AnalysisIO.writeStandardOutput($0) }
        buffer.removeAll()
    }
}
