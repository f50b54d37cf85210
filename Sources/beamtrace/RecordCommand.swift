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
            Ctrl-C stops cleanly. Every way out leaves no tracing on the nodes.
            """
    )

    @Option(name: .long, help: "A node to record, name@host (repeat for several).")
    var node: [String] = []

    @Argument(help: "Function patterns to trace.")
    var patterns: [String] = []

    @OptionGroup var connection: DistributionCommandOptions

    @Option(name: [.short, .customLong("output")], help: "The capture directory to create.")
    var output: String

    @Option(help: "Processes: all, new, existing, <X.Y.Z> or a registered name (comma separated or repeated).")
    var procs: [String] = []

    @Option(help: "Event sets: calls, send, receive, messages, procs, running, gc (comma separated).")
    var events: String?

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

    @Option(help: "Stop after this long (e.g. 30s, 5m, 2h; `none` for no time limit).")
    var duration: DurationArgument = DurationArgument(.seconds(30))

    @Option(help: "Stop after this many events (e.g. 1000000, 5M; `none` for no limit).")
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

    @Option(help: "Payload bytes kept per event (arguments, messages, return values).")
    var payloadLimit = 256

    @Option(help: "agent (default) or ip (OTP's ip trace port: listens on all interfaces without authentication).")
    var transport: String = "agent"

    @Flag(help: "No status line.")
    var quiet = false

    func validate() throws {
        guard !node.isEmpty else { throw ValidationError("give at least one --node name@host") }
        guard Transport(rawValue: transport) != nil else { throw ValidationError("--transport is agent or ip") }
        guard sampleTop > 0 else { throw ValidationError("--sample-top must be positive") }
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
        var options = RecordingOptions(nodes: node, cookie: cookie, spec: spec, output: output,
                                       distribution: connection.distributionOptions)
        options.localName = connection.name
        options.limits.duration = duration.value
        options.limits.maxEvents = maxEvents.map(\.value) ?? (ring == nil ? 1_000_000 : nil)
        options.limits.maxRate = maxRate.value
        options.limits.untilQueue = untilQueue
        options.limits.after = after.value ?? .seconds(5)
        options.limits.ringBytes = ring?.bytes
        options.sampleInterval = sample.value
        options.sampleTop = sampleTop
        options.systemMonitor = !noSystemMonitor
        options.payloadLimit = payloadLimit
        options.transport = Transport(rawValue: transport) ?? .agent
        options.commandLine = Self.withoutCookie(CommandLine.arguments)
        if untilQueue != nil && options.sampleInterval == nil {
            throw ValidationError("--until-queue needs sampling (do not combine it with --sample off)")
        }
        let session = TraceSession(options: options)
        let interactive = !quiet && isatty(STDERR_FILENO) != 0
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

        let summary: RecordingSummary
        do {
            summary = try runBlocking { try await session.run(progress: status) }
        } catch {
            status.clear()
            printError("error: \(error)")
            printError("nothing was recorded; no tracing was left on the nodes")
            throw ExitCode.failure
        }
        status.clear()
        var lines: [String] = []
        lines.append("recorded \(summary.events) events (\(summary.drops) dropped) from \(summary.nodes.count) node(s) "
                     + "into \(summary.output), \(summary.bytesWritten) bytes")
        lines.append("stopped: \(summary.stopReason)")
        if let clock = summary.clockRefinement {
            let moved = clock.nodes.filter { $0.correctionNs != 0 }
                .map { "\($0.name) \($0.correctionNs > 0 ? "+" : "")\(DurationText.text($0.correctionNs))" }
            var text = "clocks: \(clock.pairs) cross-node send→receive pairs, \(clock.violationsBefore) receive(s) stamped "
                + "before their send"
            if !moved.isEmpty { text += "; offsets refined: " + moved.joined(separator: ", ") }
            if clock.movedReceives > 0 {
                text += "; \(clock.movedReceives) receive(s) moved after their send (up to \(DurationText.text(clock.maxMoveNs)))"
            }
            lines.append(text + "; \(clock.violationsAfter) left")
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
        if let failure = summary.failure {
            lines[0] = "recorded \(summary.events) events (\(summary.drops) dropped) from \(summary.nodes.count) node(s); "
                + "the capture \(summary.output) holds the \(summary.eventsInCapture) events written before the failure"
            lines[1] = "stopped by an error: \(failure)"
        }
        print(lines.joined(separator: "\n"))
        for problem in summary.problems { printError("warning: \(problem)") }
        if let failure = summary.failure {
            printError("error: the recording stopped because \(failure); what was written before is readable "
                       + "(beamtrace info \(summary.output)); no tracing was left on the nodes")
            throw ExitCode.failure
        }
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

/// `30s`, `100ms`, `5m`, `2h`, a plain number of seconds, or `none`/`off`.
struct DurationArgument: ExpressibleByArgument {
    var value: Duration?
    init(_ value: Duration?) { self.value = value }
    init?(argument: String) {
        let text = argument.lowercased()
        if text == "none" || text == "off" || text == "0" {
            value = nil
            return
        }
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let number = Double(text.dropLast(suffix.count)), number > 0 else { return nil }
            value = .milliseconds(Int64(number * scale * 1000))
            return
        }
        guard let number = Double(text), number > 0 else { return nil }
        value = .milliseconds(Int64(number * 1000))
    }
    var defaultValueDescription: String {
        guard let value else { return "none" }
        return "\(value)"
    }
}

/// `1000000`, `500k`, `5M`, `200000/s`, or `none`.
struct CountArgument: ExpressibleByArgument {
    var value: Int?
    init(_ value: Int?) { self.value = value }
    init?(argument: String) {
        var text = argument.lowercased()
        if text.hasSuffix("/s") { text.removeLast(2) }
        if text == "none" || text == "off" {
            value = nil
            return
        }
        var scale = 1.0
        if text.hasSuffix("k") { scale = 1e3; text.removeLast() } else if text.hasSuffix("m") { scale = 1e6; text.removeLast() }
        guard let number = Double(text), number > 0, number * scale < 1e15 else { return nil }
        value = Int(number * scale)
    }
    var defaultValueDescription: String { value.map(String.init) ?? "none" }
}

/// `256MiB`, `1GiB`, `500MB`, `64KiB` or bytes.
struct SizeArgument: ExpressibleByArgument {
    var bytes: Int
    init?(argument: String) {
        let units: [(String, Double)] = [("kib", 1024), ("mib", 1_048_576), ("gib", 1_073_741_824), ("kb", 1e3), ("mb", 1e6),
                                         ("gb", 1e9), ("k", 1024), ("m", 1_048_576), ("g", 1_073_741_824), ("b", 1)]
        let text = argument.lowercased()
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let number = Double(text.dropLast(suffix.count)), number > 0 else { return nil }
            bytes = Int(number * scale)
            return
        }
        guard let number = Int(text), number > 0 else { return nil }
        bytes = number
    }
}
