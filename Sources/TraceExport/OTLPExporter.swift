// `beamtrace export CAPTURE --format otlp --endpoint http://HOST:4318`: call spans as OpenTelemetry
// traces over OTLP/HTTP protobuf (POST /v1/traces, an ExportTraceServiceRequest written with our own
// ProtobufWriter). One trace per top-level call: a process's outermost traced call is a root span and
// everything it calls is in its trace. A resource per node (service.name = the node, its OTP release),
// span names `mod:fun/arity`, the process as attributes, exceptions as span events, arguments and
// return values as attributes when recorded. Ids are derived from the capture id and span number, so
// exporting again sends the same ids.
import CaptureStore
import Foundation
import TraceAnalysis
import TraceModel

public struct OTLPExportOptions: Sendable {
    public var endpoint: HTTPEndpoint
    /// Spans per request.
    public var batchSpans = 2000
    /// Tries after the first on a broken connection or a 429/502/503/504 answer.
    public var retries = 5
    public var retryDelay = 0.25
    public var timeout = 60.0
    /// Arguments and return values as span attributes.
    public var arguments = true
    public var query: EventQuery = .all
    public var functions = FunctionPatterns([])

    public init(endpoint: HTTPEndpoint) { self.endpoint = endpoint }
}

public struct OTLPExportSummary: Sendable {
    public var spans = 0
    public var traces = 0
    public var requests = 0
    public var retried = 0
    public var bytes: Int64 = 0
    public var events = 0
}

public enum OTLPExporter {
    public static func export(_ reader: CaptureReader, options: OTLPExportOptions,
                              progress: (any ProgressReporter)? = nil) throws -> OTLPExportSummary {
        let sender = OTLPSpans(reader: reader, options: options)
        let target: any AnalysisStreamConsumer = options.functions.isEmpty ? sender
            : SpanFilter(sender, functions: options.functions, dictionaries: reader.dictionaries)
        let analysis = try AnalysisStream.run(reader, analysis: AnalysisOptions(query: options.query, latency: .none),
                                              into: target, progress: progress, task: "export otlp")
        if let error = sender.error { throw error }
        try sender.flush()
        var summary = sender.summary
        summary.events = analysis.events
        return summary
    }

    /// 64-bit mix (SplitMix64's finalizer) of a seed and a value: span and trace ids.
    @inline(__always)
    static func mix(_ seed: UInt64, _ value: UInt64) -> UInt64 {
        var z = seed &+ value &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    static func bigEndian(_ value: UInt64) -> [UInt8] { withUnsafeBytes(of: value.bigEndian) { Array($0) } }
}

/// A KeyValue (opentelemetry/proto/common/v1/common.proto) as field `field` of the message being written.
extension ProtobufWriter {
    mutating func attribute(_ field: UInt32, _ key: String, _ value: String) {
        message(field) { kv in
            kv.string(1, key)
            kv.message(2) { $0.string(1, value) }
        }
    }

    mutating func attribute(_ field: UInt32, _ key: String, int value: Int64) {
        message(field) { kv in
            kv.string(1, key)
            kv.message(2) { $0.int(3, value) }
        }
    }

    mutating func attribute(_ field: UInt32, _ key: String, bool value: Bool) {
        message(field) { kv in
            kv.string(1, key)
            kv.message(2) { $0.uint(2, value ? 1 : 0) }
        }
    }
}

final class OTLPSpans: AnalysisStreamConsumer {
    let options: OTLPExportOptions
    let client: HTTPClient
    let dictionaries: TraceDictionaries
    let meta: CaptureMeta
    let seed: UInt64
    /// Added to capture times to get Unix nanoseconds (0 when the capture's clock is the system's).
    var unixOffset: Int64 = 0
    var text: ExportText?
    private var roots: [Int: Int] = [:]
    private var arguments: [Int: String] = [:]
    /// Encoded spans per node waiting for the next request.
    private var pending: [NodeID: [[UInt8]]] = [:]
    private var pendingCount = 0
    private(set) var summary = OTLPExportSummary()
    private(set) var error: Error?
    private var functionNames: [String?]

    init(reader: CaptureReader, options: OTLPExportOptions) {
        self.options = options
        client = HTTPClient(options.endpoint, timeout: options.timeout)
        dictionaries = reader.dictionaries
        meta = reader.meta
        var seed: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in meta.captureID.utf8 { seed = (seed ^ UInt64(byte)) &* 0x100_0000_01B3 }
        self.seed = seed
        functionNames = Array(repeating: nil, count: reader.dictionaries.functions.count + 1)
    }

    func begin(_ context: StreamContext) {
        text = ExportText(context, termWidth: 4096)
        if meta.timeBase != "system" {
            // Monotonic or unknown clocks: the capture's start is put at its creation time.
            let created = ISO8601DateFormatter().date(from: meta.createdAt) ?? Date()
            unixOffset = Int64(created.timeIntervalSince1970 * 1e9) - context.startTime
        }
    }

    private func spanID(_ id: Int) -> [UInt8] {
        let value = OTLPExporter.mix(seed, UInt64(bitPattern: Int64(id)))
        return OTLPExporter.bigEndian(value == 0 ? 1 : value)
    }

    private func traceID(_ root: Int) -> [UInt8] {
        OTLPExporter.bigEndian(OTLPExporter.mix(seed ^ 0x7472_6163_6573, UInt64(bitPattern: Int64(root))))
            + OTLPExporter.bigEndian(OTLPExporter.mix(seed, UInt64(bitPattern: Int64(root)) ^ 0xFFFF_0000))
    }

    private func name(_ mfa: FunctionID) -> String {
        let index = Int(mfa)
        if index < functionNames.count, let name = functionNames[index] { return name }
        let name = dictionaries.functionText(mfa)
        if index < functionNames.count { functionNames[index] = name }
        return name
    }

    func spanBegan(_ span: Span, arguments payload: StreamPayload) {
        roots[span.id] = span.parent < 0 ? span.id : (roots[span.parent] ?? span.parent)
        if options.arguments, let args = text?.arguments(payload) { arguments[span.id] = args }
    }

    func spanEnded(_ span: Span, result: StreamPayload) {
        let root = roots.removeValue(forKey: span.id) ?? (span.parent < 0 ? span.id : (roots[span.parent] ?? span.parent))
        let args = arguments.removeValue(forKey: span.id)
        guard error == nil, let text else { return }
        if span.parent < 0 { summary.traces += 1 }
        var w = ProtobufWriter(capacity: 256)
        w.message(1, traceID(root))
        w.message(2, spanID(span.id))
        if span.parent >= 0 { w.message(4, spanID(span.parent)) }
        let mfa = name(span.mfa)
        w.string(5, mfa)
        w.uint(6, 1)  // SPAN_KIND_INTERNAL
        w.fixed64(7, UInt64(bitPattern: span.start &+ unixOffset))
        w.fixed64(8, UInt64(bitPattern: span.end &+ unixOffset))
        let a: UInt32 = 9  // Span.attributes
        w.attribute(a, "beam.pid", dictionaries.processText(span.pid))
        if let process = dictionaries.nameText(span.pid) { w.attribute(a, "beam.process.name", process) }
        if let entry = dictionaries.function(span.mfa) {
            w.attribute(a, "code.namespace", dictionaries.atom(entry.module))
            w.attribute(a, "code.function", dictionaries.atom(entry.function) + "/\(entry.arity)")
        }
        w.attribute(a, "beam.depth", int: Int64(span.depth))
        w.attribute(a, "beam.self_time_ns", int: span.selfTime)
        w.attribute(a, "beam.ending", span.ending.rawValue)
        if !span.startKnown { w.attribute(a, "beam.start_known", bool: false) }
        if let args { w.attribute(a, "beam.arguments", args) }
        let outcome = text.term(result)
        if span.ending != .exception, options.arguments, let outcome { w.attribute(a, "beam.return_value", outcome) }
        if span.ending == .exception {
            let (kind, reason) = Self.classAndReason(outcome ?? "")
            w.message(11) { event in
                event.fixed64(1, UInt64(bitPattern: span.end &+ unixOffset))
                event.string(2, "exception")
                event.attribute(3, "exception.type", kind)
                event.attribute(3, "exception.message", reason)
            }
            w.message(15) { status in
                status.string(2, "\(kind): \(reason)")
                status.uint(3, 2)  // STATUS_CODE_ERROR
            }
        }
        let node = text.node(of: span.pid, span.node)
        pending[node, default: []].append(w.bytes)
        pendingCount += 1
        summary.spans += 1
        if pendingCount >= options.batchSpans {
            do { try flush() } catch { self.error = error }
        }
    }

    /// `{error,boom}` → ("error", "boom"); anything else is the reason of an unknown class.
    static func classAndReason(_ text: String) -> (String, String) {
        guard text.hasPrefix("{"), text.hasSuffix("}"), let comma = text.firstIndex(of: ",") else { return ("error", text) }
        let kind = String(text[text.index(after: text.startIndex)..<comma])
        guard ["error", "exit", "throw"].contains(kind) else { return ("error", text) }
        return (kind, String(text[text.index(after: comma)..<text.index(before: text.endIndex)]))
    }

    /// Sends the waiting spans as one ExportTraceServiceRequest.
    func flush() throws {
        guard pendingCount > 0 else { return }
        var request = ProtobufWriter(capacity: 1 << 16)
        for (node, spans) in pending.sorted(by: { $0.key < $1.key }) {
            request.message(1) { resourceSpans in
                resourceSpans.message(1) { resource in
                    let nodeName = node == 0 ? "session" : dictionaries.nodeName(node)
                    resource.attribute(1, "service.name", nodeName)
                    resource.attribute(1, "beam.node", nodeName)
                    if let release = meta.nodes.first(where: { $0.name == nodeName })?.otpRelease {
                        resource.attribute(1, "beam.otp_release", release)
                        resource.attribute(1, "process.runtime.version", release)
                    }
                    resource.attribute(1, "process.runtime.name", "BEAM")
                    resource.attribute(1, "beamtrace.capture", meta.captureID)
                }
                resourceSpans.message(2) { scopeSpans in
                    scopeSpans.message(1) { scope in scope.string(1, "beamtrace") }
                    for span in spans { scopeSpans.message(2, span) }
                }
            }
        }
        let count = pendingCount
        pending.removeAll(keepingCapacity: true)
        pendingCount = 0
        try post(request.bytes, spans: count)
    }

    private func post(_ body: [UInt8], spans: Int) throws {
        let target = options.endpoint.path.hasSuffix("/v1/traces") ? options.endpoint.path
            : (options.endpoint.path.hasSuffix("/") ? options.endpoint.path : options.endpoint.path + "/") + "v1/traces"
        var last = ""
        for attempt in 0...max(0, options.retries) {
            if attempt > 0 {
                summary.retried += 1
                Thread.sleep(forTimeInterval: min(10, options.retryDelay * Double(1 << min(attempt - 1, 6))))
            }
            do {
                let response = try client.request("POST", target, headers: [("Content-Type", "application/x-protobuf")],
                                                  body: body)
                if (200..<300).contains(response.status) {
                    summary.requests += 1
                    summary.bytes += Int64(body.count)
                    return
                }
                last = "HTTP \(response.status): " + String(response.text.prefix(300))
                // OTLP/HTTP: 429, 502, 503 and 504 may pass later; anything else will not.
                guard [429, 502, 503, 504].contains(response.status) else { break }
            } catch let error as HTTPError where error.code == .transport {
                last = error.message
            }
        }
        throw HTTPError(code: .status, message: "the collector at \(options.endpoint) refused spans (\(last)); "
                        + "\(summary.spans - spans) spans were sent before")
    }
}
