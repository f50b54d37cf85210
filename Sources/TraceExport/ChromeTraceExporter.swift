// Chrome's Trace Event JSON (what chrome://tracing and ui.perfetto.dev open), streamed: one
// process per node and one thread per Erlang process (`M` metadata naming them by registered name
// or initial call), `B`/`E` slices for traced calls (nested per thread, in time order), `X` for a
// call that started before the capture, `i` instants, `s`/`f` flows from each send to the receive
// it was matched to, `C` counters for queue lengths, memory and run queues. Times are microseconds
// from the stream's start.
import CaptureStore
import Foundation
import TraceAnalysis
import TraceModel

public final class ChromeTraceExporter: AnalysisStreamConsumer {
    public struct Options: Sendable {
        /// Annotate slices with arguments and return values (printed in Erlang syntax).
        public var arguments = true
        public var termWidth = 120
        public init() {}
    }

    /// Past this, chrome://tracing struggles: the CLI suggests perfetto.
    public static let largeFileBytes: Int64 = 200 << 20

    public let options: Options
    let out: ExportOutput
    /// A `let` (started over in `begin`): its calls per event cost no retain.
    private let text: ExportText
    /// Printed terms, reused.
    @exclusivity(unchecked) private var scratch: [UInt8] = []
    private var base: Int64 = 0
    @exclusivity(unchecked) private var first = true
    /// Quoted function and process names, made on first use.
    @exclusivity(unchecked) private var functionNames = QuotedNames()
    @exclusivity(unchecked) private var processNames = QuotedNames()
    private var kindNames: [[UInt8]] = EventKind.allCases.map { JSONText.quotedBytes($0.otpName) }
    @exclusivity(unchecked) private var threadSeen: [Bool] = []
    @exclusivity(unchecked) private var nodeSeen: [Bool] = []
    private var counterNames: [UInt64: [UInt8]] = [:]
    private var tidBase: Int64 = 1
    @exclusivity(unchecked) public private(set) var stats = ExportStats()

    public init(output: ExportOutput, options: Options = Options()) {
        out = output
        self.options = options
        text = ExportText(termWidth: options.termWidth)
    }

    deinit {
        functionNames.deallocate()
        processNames.deallocate()
    }

    public func begin(_ context: StreamContext) {
        text.begin(context)
        base = context.startTime
        threadSeen = Array(repeating: false, count: context.dictionaries.processes.count + 1)
        nodeSeen = Array(repeating: false, count: context.dictionaries.nodes.count + 1)
        tidBase = Int64(context.dictionaries.nodes.count) + 1
        out.write("{\"displayTimeUnit\":\"ns\",\"otherData\":{\"capture\":")
        out.write(JSONText.quoted(context.meta.captureID))
        out.write(",\"start_ns\":\"\(context.startTime)\"},\"traceEvents\":[\n")
    }

    public func end(_ analysis: CaptureAnalysis) {
        out.write("\n]}\n")
        stats.bytes = out.bytesWritten
    }

    // MARK: stream

    public func spanBegan(_ span: Span, arguments: StreamPayload) {
        let tid = thread(span.pid, node: span.node)
        let node = nodeOf(span)
        open("B")
        common(node: node, tid: tid, time: span.start)
        out.put(",\"name\":")
        writeFunctionName(span.mfa)
        out.put(",\"cat\":\"call\"")
        if options.arguments {
            scratch.removeAll(keepingCapacity: true)
            if text.appendArguments(arguments, to: &scratch) {
                out.put(",\"args\":{\"args\":")
                writeScratch()
                out.write(byte: UInt8(ascii: "}"))
            }
        }
        out.write(byte: UInt8(ascii: "}"))
        stats.slices += 1
    }

    public func spanEnded(_ span: Span, result: StreamPayload) {
        let tid = thread(span.pid, node: span.node)
        let node = nodeOf(span)
        if !span.startKnown {
            // Started before the capture: a complete event, which viewers place by its own start.
            open("X")
            common(node: node, tid: tid, time: span.start)
            out.write(",\"dur\":")
            out.write(microsFromNanos: span.total)
            out.write(",\"name\":")
            writeFunctionName(span.mfa)
            out.write(",\"cat\":\"call\",\"args\":{\"info\":\"started before the capture\"")
            if span.ending != .returned { out.write(",\"ending\":\"\(span.ending.rawValue)\"") }
            out.write("}}")
            stats.slices += 1
            return
        }
        open("E")
        common(node: node, tid: tid, time: span.end)
        scratch.removeAll(keepingCapacity: true)
        let value = options.arguments && text.appendTerm(result, to: &scratch)
        if span.ending != .returned || value {
            out.put(",\"args\":{")
            var comma = false
            if span.ending != .returned {
                out.write("\"ending\":\"\(span.ending.rawValue)\"")
                comma = true
            }
            if value {
                if comma { out.put(",\"result\":") } else { out.put("\"result\":") }
                writeScratch()
            }
            out.write(byte: UInt8(ascii: "}"))
        }
        out.write(byte: UInt8(ascii: "}"))
    }

    public func instant(_ instant: StreamInstant, payload: StreamPayload) {
        let e = instant.event
        // Node-wide: drops and session markers (no process), and system_monitor alerts, which arrive after the
        // traced activity they describe.
        if e.pid == 0 || e.kind == .monitor {
            let node: NodeID
            if e.pid == 0 {
                node = processFor(node: e.node)
            } else {
                _ = thread(e.pid, node: e.node)
                node = nodeOf(pid: e.pid, e.node)
            }
            open("i")
            out.write(",\"s\":\"p\",\"pid\":")
            out.write(decimal: Int64(node))
            out.write(",\"tid\":0,\"ts\":")
            out.write(microsFromNanos: e.time - base)
            nameAndDetail(e, payload)
            stats.instants += 1
            return
        }
        let tid = thread(e.pid, node: e.node)
        let node = nodeOf(pid: e.pid, e.node)
        open("i")
        out.put(",\"s\":\"t\"")
        common(node: node, tid: tid, time: e.time)
        nameAndDetail(e, payload)
        stats.instants += 1
        switch e.kind {
        case .send:
            open("s")
            out.put(",\"id\":")
            out.write(decimal: instant.flow)
            common(node: node, tid: tid, time: e.time)
            out.put(",\"name\":\"message\",\"cat\":\"message\"}")
            stats.flowsStarted += 1
        case .receive:
            if let matched = instant.matched {
                open("f")
                out.put(",\"id\":")
                out.write(decimal: matched.flow)
                common(node: node, tid: tid, time: e.time)
                out.put(",\"name\":\"message\",\"cat\":\"message\",\"bp\":\"e\"}")
                stats.flowsEnded += 1
            }
        default:
            break
        }
    }

    public func counter(_ counter: StreamCounter) {
        let node = processFor(node: counter.node)
        let key = UInt64(counter.pid) << 8 | UInt64(StreamCounter.Kind.allCases.firstIndex(of: counter.kind) ?? 0)
            | (counter.estimated ? 1 << 7 : 0)
        let name: [UInt8]
        if let known = counterNames[key] {
            name = known
        } else {
            name = JSONText.quotedBytes(text.counterName(counter))
            counterNames[key] = name
        }
        open("C")
        out.write(",\"pid\":")
        out.write(decimal: Int64(node))
        out.write(",\"ts\":")
        out.write(microsFromNanos: counter.time - base)
        out.write(",\"name\":")
        out.write(name)
        out.write(",\"args\":{\"\(counter.kind.rawValue)\":")
        out.write(decimal: counter.value)
        out.write("}}")
        stats.counters += 1
    }

    // MARK: pieces

    /// Starts an event record (and flushes the output first when its buffer is full).
    @inline(__always)
    private func open(_ phase: StaticString) {
        out.reserve()
        if first {
            first = false
        } else {
            out.write(UInt8(ascii: ","), UInt8(ascii: "\n"))
        }
        out.put("{\"ph\":\"")
        out.put(phase)
        out.write(byte: UInt8(ascii: "\""))
    }

    @inline(__always)
    private func common(node: NodeID, tid: Int64, time: Int64) {
        out.put(",\"pid\":")
        out.write(decimal: Int64(node))
        out.put(",\"tid\":")
        out.write(decimal: tid)
        out.put(",\"ts\":")
        out.write(microsFromNanos: time - base)
    }

    private func nameAndDetail(_ e: TraceEvent, _ payload: StreamPayload) {
        out.put(",\"name\":")
        out.write(kindNames[Int(e.kind.rawValue)])
        switch e.kind {
        case .send, .receive, .spawn, .spawned, .link, .unlink, .gettingLinked, .gettingUnlinked:
            if e.peer != 0 {
                out.put(",\"args\":{\"peer\":")
                writeProcessName(e.peer)
                out.write(byte: UInt8(ascii: "}"))
            }
        case .exit, .monitor, .marker:
            scratch.removeAll(keepingCapacity: true)
            if text.appendTerm(payload, to: &scratch) {
                out.put(",\"args\":{\"reason\":")
                writeScratch()
                out.write(byte: UInt8(ascii: "}"))
            }
        case .drop:
            out.write(",\"args\":{\"lost\":")
            out.write(decimal: e.value)
            out.write(byte: UInt8(ascii: "}"))
        default:
            break
        }
        out.write(byte: UInt8(ascii: "}"))
    }

    /// The printed term in `scratch` as a JSON string.
    @inline(__always)
    private func writeScratch() {
        scratch.withUnsafeBytes { out.write(jsonQuoted: $0) }
    }

    @inline(__always)
    private func writeFunctionName(_ mfa: FunctionID) {
        if !functionNames.write(Int(mfa), to: out) {
            functionNames.add(Int(mfa), JSONText.quotedBytes(text.function(mfa)))
            _ = functionNames.write(Int(mfa), to: out)
        }
    }

    @inline(__always)
    private func writeProcessName(_ pid: ProcessID) {
        if !processNames.write(Int(pid), to: out) {
            processNames.add(Int(pid), text.quotedProcess(pid))
            _ = processNames.write(Int(pid), to: out)
        }
    }

    private func nodeOf(_ span: Span) -> NodeID { nodeOf(pid: span.pid, span.node) }

    private func nodeOf(pid: ProcessID, _ fallback: NodeID) -> NodeID {
        processFor(node: text.node(of: pid, fallback))
    }

    /// The JSON process of a node, named on first use.
    private func processFor(node: NodeID) -> NodeID {
        let index = Int(node)
        if index >= nodeSeen.count { nodeSeen.append(contentsOf: repeatElement(false, count: index - nodeSeen.count + 1)) }
        if !nodeSeen[index] {
            nodeSeen[index] = true
            open("M")
            out.write(",\"pid\":")
            out.write(decimal: Int64(node))
            out.write(",\"tid\":0,\"name\":\"process_name\",\"args\":{\"name\":")
            out.write(JSONText.quoted(text.node(node)))
            out.write("}}")
        }
        return node
    }

    /// The JSON thread of an Erlang process, named on first use.
    private func thread(_ pid: ProcessID, node eventNode: NodeID) -> Int64 {
        let index = Int(pid)
        let tid = tidBase + Int64(pid)
        if index < threadSeen.count, threadSeen[index] { return tid }
        if index >= threadSeen.count { threadSeen.append(contentsOf: repeatElement(false, count: index - threadSeen.count + 1)) }
        threadSeen[index] = true
        let node = nodeOf(pid: pid, eventNode)
        open("M")
        out.write(",\"pid\":")
        out.write(decimal: Int64(node))
        out.write(",\"tid\":")
        out.write(decimal: tid)
        out.write(",\"name\":\"thread_name\",\"args\":{\"name\":")
        out.write(JSONText.quoted(text.process(pid)))
        out.write("}}")
        return tid
    }
}

/// Quoted names by id (functions, processes) in one buffer: each written with one copy, no array per name.
struct QuotedNames {
    private var bytes = RawBytes(capacity: 4096)
    private var ranges: [Range<Int>?] = []

    func deallocate() { bytes.deallocate() }

    /// Writes the name of `id` if it was added.
    @inline(__always)
    func write(_ id: Int, to out: ExportOutput) -> Bool {
        guard id < ranges.count, let range = ranges[id] else { return false }
        out.write(UnsafeRawBufferPointer(rebasing: bytes.bytes[range]))
        return true
    }

    mutating func add(_ id: Int, _ quoted: [UInt8]) {
        if id >= ranges.count { ranges.append(contentsOf: repeatElement(nil, count: id - ranges.count + 1)) }
        let start = bytes.count
        quoted.withUnsafeBytes { bytes.append($0) }
        ranges[id] = start..<bytes.count
    }
}
