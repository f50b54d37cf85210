// `beamtrace record`: record a live session from one or more nodes into a capture. Thin: parses
// the options into a `RecordingOptions`, runs a `TraceSession`, shows a status line on a terminal,
// turns SIGINT/SIGTERM into a clean stop, and prints the summary.
import ArgumentParser
import BeamDistribution
import Dispatch
import Foundation
import TraceModel
import TraceSession

struct RecordCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "record",
        abstract: "Record trace events from live nodes into a capture.",
        discussion: """
            PATTERN: mod, mod:fun, mod:fun/arity, Elixir Mod.fun/arity, or mod:fun(A, B) when Guard -> actions \
            (actions: return, exception, caller, process_dump), or a head followed by a raw match spec \
            'mod:fun/2 [{'_',[],[{return_trace}]}]'. Calls are traced with their return_from/exception_from \
            unless --calls-only. Limits are on by default (--duration 30s, --max-events 1000000, \
            --max-rate 200000/s per node); the limit that ends a session is recorded as its stop reason. \
            Ctrl-C stops cleanly (exit 130). Every way out leaves no tracing on the nodes; a start that fails \
            says so and that the node was checked clean.

            Examples:
              beamtrace record --node app@host 'my_server:handle_call/3' -o cap.btrace
              beamtrace record --node app@host MyApp.Worker.handle_call/3 --args --print --max-events 10 --no-capture
              beamtrace record --node a@host --node b@host my_server --events calls,send,receive --duration 2m -o cap.btrace
              beamtrace record --node app@host my_server --procs '<0.85.0>' --until-queue 10000 --after 5s -o hang.btrace
            """
    )

    @Option(name: .long, help: "A node to record, name@host (repeat for several).")
    var node: [String] = []

    @Argument(help: "Function patterns to trace.")
    var patterns: [String] = []

    @OptionGroup var connection: DistributionCommandOptions

    @Option(name: [.short, .customLong("output")], help: "The capture directory to create (required unless --no-capture).")
    var output: String?

    @Option(help: "Processes: all, new, existing, <0.N.S>, <node@host.N.S> or a registered name (comma separated or repeated; default: all). Each is checked on the node before anything is switched on.")
    var procs: [String] = []

    @Option(help: "Event sets: calls, send, receive, messages, procs, running, gc (comma separated; default: calls).")
    var events: String?

    @Flag(name: .customLong("print"), help: "Print each event as it arrives, one line each (time, process and name, call with arguments, return value, message), like redbug.")
    var printEvents = false

    @Flag(help: "Print the summary as JSON.")
    var json = false

    @Flag(help: "With --print: do not keep a capture (it is written to a temporary directory and removed).")
    var noCapture = false

    @OptionGroup var times: TimeOptions
    @OptionGroup var syntax: SyntaxOptions

    @Flag(help: "Trace calls without their return_from/exception_from.")
    var callsOnly = false

    @Flag(help: "Record call arguments (by default only the arity).")
    var args = false

    @Flag(help: "Global scope (tp: exported functions called from other modules) instead of local (tpl).")
    var global = false

    @Flag(name: .customLong("i-know"), help: "Accept broad patterns ('_', erlang, lists, ...).")
    var iKnow = false

    @Flag(help: "Use strict_monotonic_timestamp (unique, ordered times; slightly more costly).")
    var strictTimestamps = false

    @Flag(help: ArgumentHelp("Stop the recording (exit 1) at the first trace message or batch that does not decode; "
                             + "default: skip it, count it, go on. Either way every good event before it is kept."))
    var strict = false

    @Option(help: "Stop after this long (units ns us ms s m h, e.g. 30s, 5m, 2h; `none` for no time limit).")
    var duration: DurationArgument = DurationArgument(.seconds(30))

    @Option(help: ArgumentHelp("Stop after exactly this many trace events (e.g. 1000000, 500k, 5M; `none` for no "
                               + "limit; default 1000000, none with --ring).", valueName: "count"))
    var maxEvents: CountArgument?

    @Option(help: "Per node: events per second beyond which the agent drops and counts (e.g. 200000/s, none).")
    var maxRate: CountArgument = CountArgument(200_000)

    @Option(help: "Stop --after seconds after some process's message queue first exceeds N.")
    var untilQueue: Int?

    @Option(help: "With --until-queue: how long to keep recording after the queue exceeded N.")
    var after: DurationArgument = DurationArgument(.seconds(5))

    @Option(help: "Flight recorder: keep only the newest SIZE of the capture (e.g. 256MiB).")
    var ring: SizeArgument?

    @Option(help: "Sample queues, memory and reductions this often (e.g. 100ms; `off` to disable).")
    var sample: DurationArgument = DurationArgument(.milliseconds(100))

    @Option(help: "At most this many processes per sample (the longest queues).")
    var sampleTop = 50

    @Flag(help: "Do not subscribe to system_monitor events.")
    var noSystemMonitor = false

    @Option(help: "system_monitor: report garbage collections longer than this many milliseconds.")
    var longGc = 100

    @Option(help: "system_monitor: report a process running longer than this many milliseconds without a break.")
    var longSchedule = 100

    @Option(help: "system_monitor: report heaps larger than this many words.")
    var largeHeap = 8 << 20

    @Option(help: "Payload bytes kept per event (arguments, messages, return values); larger ones are kept cut to a depth, as io_lib:format(\"~P\") prints them.")
    var payloadLimit = 256

    @Option(help: "agent, or ip (OTP's ip trace port: listens on all interfaces without authentication).")
    var transport: Transport = .agent

    @Flag(help: "No status line.")
    var quiet = false

    func validate() throws {
        guard !node.isEmpty else { throw ValidationError("give at least one --node name@host") }
        guard output != nil || noCapture else { throw ValidationError("give -o CAPTURE (or --print --no-capture)") }
        guard !noCapture || printEvents else { throw ValidationError("--no-capture only makes sense with --print") }
        guard !(noCapture && output != nil) else { throw ValidationError("--no-capture and -o exclude each other") }
        guard sampleTop > 0 else { throw ValidationError("--sample-top must be positive") }
        guard longGc > 0, longSchedule > 0, largeHeap > 0 else {
            throw ValidationError("--long-gc, --long-schedule and --large-heap must be positive")
        }
        _ = try makeSpec()
    }

    func makeSpec() throws -> TraceSpec {
        let scope: TracePattern.Scope = global ? .global : .local
        do {
            let parsed = try patterns.map { try TracePattern(parsing: $0, scope: scope) }
            let selectors = try procs.flatMap { $0.split(separator: ",").map(String.init) }
                .map { try ProcessSelector(parsing: $0) }
            var eventSet: EventSet = .calls
            if let events { eventSet = try EventSet(parsing: events) }
            let spec = TraceSpec(patterns: parsed, processes: selectors.isEmpty ? [.all] : selectors, events: eventSet,
                                 callsOnly: callsOnly, arguments: args, strictTimestamps: strictTimestamps,
                                 allowBroad: iKnow)
            try spec.validate()
            return spec
        } catch let error as TraceSpecError {
            throw ValidationError(error.message)
        }
    }

    func run() throws {
        let spec = try makeSpec()
        let cookie = try connection.resolveCookie()
        let logger = connection.logging.bootstrap(label: "beamtrace.session")
        var temporary: URL?
        if noCapture {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("beamtrace-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
            temporary = directory
        }
        defer { if let temporary { try? FileManager.default.removeItem(at: temporary) } }
        let path = output ?? temporary?.appendingPathComponent("capture.btrace").path ?? "capture.btrace"
        var options = RecordingOptions(nodes: node, cookie: cookie, spec: spec, output: path,
                                       distribution: connection.distributionOptions)
        options.localName = connection.name
        options.setupTimeout = connection.timeout(default: 30)
        options.limits.duration = duration.value
        options.limits.maxEvents = maxEvents.map(\.value) ?? (ring == nil ? 1_000_000 : nil)
        options.limits.maxRate = maxRate.value
        options.limits.untilQueue = untilQueue
        options.limits.after = after.value ?? .seconds(5)
        options.limits.ringBytes = ring?.bytes
        options.sampleInterval = sample.value
        options.sampleTop = sampleTop
        options.systemMonitor = !noSystemMonitor
        options.refineClocks = !noCapture  // a capture nobody keeps needs no rewrite
        options.longGCMilliseconds = longGc
        options.longScheduleMilliseconds = longSchedule
        options.largeHeapWords = largeHeap
        options.payloadLimit = payloadLimit
        options.strict = strict
        options.transport = transport
        options.commandLine = Self.withoutCookie(CommandLine.arguments)
        if untilQueue != nil && options.sampleInterval == nil {
            throw ValidationError("--until-queue needs sampling (do not combine it with --sample off)")
        }
        let session = TraceSession(options: options, logger: logger)
        let interactive = !quiet && !printEvents && isatty(STDERR_FILENO) != 0
        let status = StatusLine(enabled: interactive)

        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        var sources: [any DispatchSourceSignal] = []
        for (number, name) in [(SIGINT, "SIGINT"), (SIGTERM, "SIGTERM")] {
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { session.requestStop("\(name) received") }
            source.resume()
            sources.append(source)
        }
        defer { sources.forEach { $0.cancel() } }

        let live = printEvents ? LivePrinter(capture: path, times: times, syntax: syntax) : nil
        live?.start()
        let summary: RecordingSummary
        do {
            summary = try runBlocking { try await session.run(progress: status) }
        } catch {
            live?.finish()
            status.clear()
            printError("error: \(error)")
            printError("nothing was recorded")
            throw ExitCode.failure
        }
        live?.finish()
        status.clear()
        if json {
            try printSummaryJSON(summary, kept: !noCapture)
        } else {
            printSummary(summary, toStandardError: printEvents, kept: !noCapture)
        }
        for problem in summary.problems { printError("warning: \(problem)") }
        if let failure = summary.failure {
            printError("error: the recording stopped because \(failure); the capture holds the \(summary.eventsInCapture) "
                       + "events written before (beamtrace info \(summary.output)); no tracing was left on the nodes")
            throw ExitCode.failure
        }
        if summary.stopReason.hasPrefix("SIGINT") { throw ExitCode(130) }
    }

    func printSummary(_ summary: RecordingSummary, toStandardError: Bool, kept: Bool) {
        var lines: [String] = []
        lines.append("recorded \(summary.events) events (\(summary.drops) dropped) from \(summary.nodes.count) node(s) "
                     + (kept ? "into \(summary.output), \(summary.bytesWritten) bytes" : "(no capture kept)"))
        lines.append("stopped: \(summary.stopReason)")
        if summary.messagesSkipped > 0 || summary.bytesSkipped > 0 {
            let places = summary.skipped.prefix(3).map { "\($0.source) byte \($0.offset) (\($0.why))" }
            lines.append("skipped: \(summary.messagesSkipped) trace message(s) that did not decode, \(summary.bytesSkipped) "
                         + "bytes, at " + places.joined(separator: "; ")
                         + (summary.skipped.count > 3 ? "; and \(summary.skipped.count - 3) more place(s)" : ""))
        }
        if let failure = summary.failure {
            lines[0] = "recorded \(summary.events) events (\(summary.drops) dropped) from \(summary.nodes.count) node(s); "
                + "the capture \(summary.output) holds the \(summary.eventsInCapture) events written before the failure"
            lines[1] = "stopped by an error: \(failure)"
        }
        if let clock = summary.clockRefinement {
            let moved = clock.nodes.filter { $0.correctionNs != 0 }
                .map { "\($0.name) \($0.correctionNs > 0 ? "+" : "")\(DurationText.text($0.correctionNs))" }
            let local = clock.sameNodePairs.map { " (and \($0) within a node)" } ?? ""
            var text = "clocks: \(clock.pairs) cross-node send→receive pairs\(local), \(clock.violationsBefore) receive(s) "
                + "stamped before their send"
            if !moved.isEmpty { text += "; offsets refined: " + moved.joined(separator: ", ") }
            if clock.movedReceives > 0 {
                text += "; \(clock.movedReceives) receive(s) moved after their send (up to \(DurationText.text(clock.maxMoveNs)))"
            }
            let cyclic = clock.cyclicReceives.map { $0 > 0 ? " (\($0) in a cycle of mismatched pairs)" : "" } ?? ""
            lines.append(text + "; \(clock.violationsAfter) left" + cyclic)
        }
        for node in summary.nodes {
            var line = "  \(node.name) (OTP \(node.otpRelease ?? "?")): \(node.events) events, \(node.drops) dropped"
            if !node.dropsByReason.isEmpty {
                line += " (" + node.dropsByReason.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
                    .joined(separator: ", ") + ")"
            }
            line += node.cleanedUp ? ", cleaned up" : ", \(node.endReason)"
            lines.append(line)
        }
        if toStandardError { printError(lines.joined(separator: "\n")) } else { print(lines.joined(separator: "\n")) }
    }

    func printSummaryJSON(_ summary: RecordingSummary, kept: Bool) throws {
        let object: [String: Any] = [
            "output": kept ? summary.output : NSNull(), "events": summary.events, "drops": summary.drops,
            "bytes_written": summary.bytesWritten, "start_reason": summary.startReason,
            "stop_reason": summary.stopReason, "problems": summary.problems,
            "failure": summary.failure ?? NSNull(), "events_in_capture": summary.eventsInCapture,
            "messages_skipped": summary.messagesSkipped, "bytes_skipped": summary.bytesSkipped,
            "skipped": summary.skipped.map { ["node": $0.source, "offset": $0.offset, "bytes": $0.bytes, "why": $0.why] },
            "duration_s": Double(summary.duration.components.seconds)
                + Double(summary.duration.components.attoseconds) / 1e18,
            "nodes": summary.nodes.map { node -> [String: Any] in
                ["name": node.name, "otp_release": node.otpRelease ?? NSNull(), "events": node.events,
                 "drops": node.drops, "drops_by_reason": node.dropsByReason,
                 "clock_offset_start_ns": node.clockOffsetStartNs.map { $0 as Any } ?? NSNull(),
                 "clock_offset_end_ns": node.clockOffsetEndNs.map { $0 as Any } ?? NSNull(),
                 "end_reason": node.endReason, "cleaned_up": node.cleanedUp]
            },
        ]
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])
        print(String(decoding: data, as: UTF8.self))
    }

    static func withoutCookie(_ arguments: [String]) -> [String] {
        var result: [String] = []
        var skipNext = false
        for argument in arguments {
            if skipNext {
                result.append("<cookie>")
                skipNext = false
            } else if argument == "--cookie" {
                result.append(argument)
                skipNext = true
            } else if argument.hasPrefix("--cookie=") {
                result.append("--cookie=<cookie>")
            } else {
                result.append(argument)
            }
        }
        return result
    }
}

/// The status line on stderr: events/s, total, drops, bytes, per-node state. Nothing when not a terminal.
final class StatusLine: RecordingProgress, @unchecked Sendable {
    let enabled: Bool
    private let lock = NSLock()
    private var shown = false

    init(enabled: Bool) { self.enabled = enabled }

    func update(_ status: RecordingStatus) {
        guard enabled else { return }
        let seconds = status.elapsed.components.seconds
        let nodes = status.nodes.map { "\($0.name) \($0.state)" }.joined(separator: ", ")
        let line = String(format: "\r\u{1B}[K%3lds  %8.0f ev/s  %d events  %d dropped  %@  [%@]", seconds,
                          status.eventsPerSecond, status.events, status.drops,
                          ByteCountFormatter.string(fromByteCount: status.bytesWritten, countStyle: .binary), nodes)
        lock.withLock {
            shown = true
            FileHandle.standardError.write(Data(line.utf8))
        }
    }

    func clear() {
        lock.withLock {
            if shown { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
            shown = false
        }
    }
}

/// A duration with its unit (`30s`, `100ms`, `5m`, `2h`; see `DurationText`), or `none`/`off`.
struct DurationArgument: ExpressibleByArgument {
    var value: Duration?
    init(_ value: Duration?) { self.value = value }
    init?(argument: String) {
        let text = argument.lowercased()
        if text == "none" || text == "off" {
            value = nil
            return
        }
        guard let ns = try? DurationText.parse(argument), ns > 0 else { return nil }
        value = .nanoseconds(ns)
    }
    var defaultValueDescription: String {
        guard let value else { return "none" }
        let ns = value.components.seconds * 1_000_000_000 + value.components.attoseconds / 1_000_000_000
        return ns % 1_000_000_000 == 0 ? "\(ns / 1_000_000_000)s" : "\(ns / 1_000_000)ms"
    }
}

/// `1000000`, `500k`, `5M` (capital M: a lower-case m is minutes everywhere), `200000/s`, or `none`.
struct CountArgument: ExpressibleByArgument {
    var value: Int?
    init(_ value: Int?) { self.value = value }
    init?(argument: String) {
        var text = argument
        if text.hasSuffix("/s") { text.removeLast(2) }
        if text.lowercased() == "none" || text.lowercased() == "off" {
            value = nil
            return
        }
        var scale = 1
        if text.hasSuffix("k") || text.hasSuffix("K") {
            scale = 1_000
            text.removeLast()
        } else if text.hasSuffix("M") {
            scale = 1_000_000
            text.removeLast()
        }
        guard let scaled = DurationText.scaled(text, by: Int64(scale)), scaled > 0, scaled < 1 << 50 else { return nil }
        value = Int(scaled)
    }
    var defaultValueDescription: String { value.map(String.init) ?? "none" }
}

/// `256MiB`, `1GiB`, `500MB`, `64KiB`, `4096B` (a unit is required: `m` alone means minutes elsewhere).
struct SizeArgument: ExpressibleByArgument {
    var bytes: Int
    init?(argument: String) {
        let units: [(String, Int64)] = [("kib", 1024), ("mib", 1_048_576), ("gib", 1_073_741_824), ("kb", 1_000),
                                        ("mb", 1_000_000), ("gb", 1_000_000_000), ("b", 1)]
        let text = argument.lowercased()
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let value = DurationText.scaled(String(text.dropLast(suffix.count)), by: scale), value > 0,
                  value < 1 << 50 else { return nil }
            bytes = Int(value)
            return
        }
        return nil
    }
}
