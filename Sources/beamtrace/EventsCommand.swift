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
        for problem in reader.problems.dropFirst(known) {
            FileHandle.standardError.write(Data("warning: \(problem)\n".utf8))
        }
        return more
    }
}

/// Buffered stdout for events: text lines through `EventPrinter.write`, or JSON written byte by byte
/// (one object per line, no JSONSerialization and no String per event), in large writes.
struct EventOutput {
    let json: Bool
    let limit: Int
    var printed = 0
    var buffer: [UInt8] = []
    /// The time printer carried across `--follow` rounds (so the date prints once).
    var time: TimeText?
    /// JSON-escaped texts of dictionary entries, each made once (ids repeat on every event).
    private var processJSON: [[UInt8]?] = []
    private var nameJSON: [[UInt8]?] = []
    private var functionJSON: [[UInt8]?] = []
    private var nodeJSON: [[UInt8]?] = []
    private var scratch: [UInt8] = []
    static let flushSize = 1 << 20

    init(json: Bool, limit: Int) {
        self.json = json
        self.limit = limit
        buffer.reserveCapacity(Self.flushSize + (1 << 16))
    }

    mutating func write(_ event: TraceEvent, payload: UnsafeRawBufferPointer, printer: inout EventPrinter,
                        reader: CaptureReader) -> Bool {
        guard printed < limit else { return false }
        printed += 1
        if json {
            writeJSON(event, payload: payload, printer: &printer)
        } else {
            printer.write(event, payload: payload, into: &buffer)
        }
        buffer.append(10)
        if buffer.count >= Self.flushSize { flush() }
        return printed < limit
    }

    mutating func flush() {
        guard !buffer.isEmpty else { return }
        buffer.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = Foundation.write(1, raw.baseAddress! + done, raw.count - done)
                if n > 0 {
                    done += n
                } else if n < 0 && errno == EINTR {
                    continue
                } else {
                    break  // stdout closed (a pipe into head): nothing more can be written
                }
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }

    private static func cached(_ cache: inout [[UInt8]?], _ key: UInt32, into buffer: inout [UInt8],
                               _ make: () -> String) {
        let i = Int(key)
        if i < cache.count, let bytes = cache[i] {
            buffer.append(contentsOf: bytes)
            return
        }
        var bytes: [UInt8] = []
        appendString(make().utf8, to: &bytes)
        if i < 1 << 24 {
            if i >= cache.count { cache.append(contentsOf: repeatElement(nil, count: i + 1 - cache.count)) }
            cache[i] = bytes
        }
        buffer.append(contentsOf: bytes)
    }

    private mutating func writeJSON(_ event: TraceEvent, payload: UnsafeRawBufferPointer, printer: inout EventPrinter) {
        let d = printer.dictionaries
        buffer.append(contentsOf: "{\"kind\":\"".utf8)
        buffer.append(contentsOf: event.kind.otpName.utf8)
        buffer.append(34)
        if event.mfa != 0 {
            buffer.append(contentsOf: ",\"mfa\":".utf8)
            Self.cached(&functionJSON, event.mfa, into: &buffer) { printer.function(event.mfa) }
        }
        buffer.append(contentsOf: ",\"node\":".utf8)
        Self.cached(&nodeJSON, UInt32(event.node), into: &buffer) { d.nodeName(event.node) }
        if let terms = printer.terms(payload, flags: event.flags) {
            buffer.append(contentsOf: ",\"payload\":[".utf8)
            for i in 0..<terms.count {
                if i > 0 { buffer.append(44) }
                scratch.removeAll(keepingCapacity: true)
                switch terms {
                case .raw(let bytes, let starts):
                    var offset = starts[i]
                    if !printer.writeTerm(bytes, offset: &offset, into: &scratch) { scratch.removeAll() }
                case .decoded(let decoded):
                    scratch.append(contentsOf: printer.term(decoded[i]).utf8)
                }
                Self.appendString(scratch, to: &buffer)
            }
            buffer.append(93)
            if event.flags.contains(.payloadTruncated) {
                buffer.append(contentsOf: ",\"payload_truncated\":true".utf8)
            }
        } else if !payload.isEmpty {
            buffer.append(contentsOf: ",\"payload_truncated\":true".utf8)
        }
        if event.peer != 0 {
            buffer.append(contentsOf: ",\"peer\":".utf8)
            Self.cached(&processJSON, event.peer, into: &buffer) { printer.process(event.peer) }
        }
        buffer.append(contentsOf: ",\"pid\":".utf8)
        Self.cached(&processJSON, event.pid, into: &buffer) { printer.process(event.pid) }
        if let entry = d.process(event.pid), entry.registeredName != 0 {
            buffer.append(contentsOf: ",\"name\":".utf8)
            Self.cached(&nameJSON, event.pid, into: &buffer) { d.atom(entry.registeredName) }
        }
        buffer.append(contentsOf: ",\"time\":".utf8)
        NumberText.append(event.time, to: &buffer)
        buffer.append(contentsOf: ",\"time_text\":\"".utf8)
        printer.time.writeInstant(event.time, into: &buffer)  // digits, signs, dates: nothing to escape
        buffer.append(contentsOf: "\",\"value\":".utf8)
        NumberText.append(event.value, to: &buffer)
        buffer.append(125)
    }

    private static let hex = Array("0123456789abcdef".utf8)

    private static func appendString(_ text: some Sequence<UInt8>, to buffer: inout [UInt8]) {
        buffer.append(34)
        for byte in text {
            switch byte {
            case 34: buffer.append(92); buffer.append(34)
            case 92: buffer.append(92); buffer.append(92)
            case 10: buffer.append(92); buffer.append(110)
            case 13: buffer.append(92); buffer.append(114)
            case 9: buffer.append(92); buffer.append(116)
            case 0..<32:
                buffer.append(contentsOf: [92, 117, 48, 48, hex[Int(byte >> 4)], hex[Int(byte & 15)]])
            default: buffer.append(byte)
            }
        }
        buffer.append(34)
    }
}
