// `beamtrace export --format otlp` into a real OTLP/HTTP receiver that decodes each request with the
// OpenTelemetry project's own protobuf definitions (PyPI `opentelemetry-proto`): span counts, parent
// links, traces and durations against the analysis of the same capture, exceptions as span events,
// arguments, resource attributes; a 503 is retried without sending any span twice.
import CaptureStore
import Foundation
import Testing
import TestSupport
import TraceAnalysis

@Suite("export: otlp", .serialized)
struct OTLPTests {
    /// Every span of the analysis stream.
    final class Collect: AnalysisStreamConsumer {
        var spans: [Int: Span] = [:]
        func spanEnded(_ span: Span, result: StreamPayload) { spans[span.id] = span }
    }

    func beamtrace() throws -> String {
        try #require(BuiltProducts.executable("beamtrace"), "the beamtrace executable was not built")
    }

    func requireReceiver() throws {
        let check = try Shell.runCapturing("/usr/bin/env", ["python3", "-c",
                                           "import opentelemetry.proto.collector.trace.v1.trace_service_pb2"])
        try #require(check.status == 0, "PyPI opentelemetry-proto is missing (scripts/bootstrap installs it): \(check.stderr)")
    }

    /// The receiver's spans: one JSON object per span.
    func received(_ file: URL) throws -> [[String: Any]] {
        let text = (try? String(contentsOf: file, encoding: .utf8)) ?? ""
        return try text.split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    @Test("spans of a real OTP workload: counts, parents, traces and durations as the analysis; exceptions and arguments")
    func workload() throws {
        try requireReceiver()
        let run = try ClickHouseTests.workload.get()
        let directory = try Erlang.temporaryDirectory("bt-otlp")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("spans.jsonl")
        // The first request is refused with 503: the exporter tries it again.
        let receiver = try PythonServer(Self.receiver, [file.path, "1"])
        defer { receiver.stop() }
        let result = try Shell.runCapturing(try beamtrace(), ["export", run.capture, "--format", "otlp", "--endpoint",
                                                              "http://127.0.0.1:\(receiver.port)", "--batch", "100"],
                                            timeout: 120)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("1 retries"), "\(result.stderr)")

        let reader = try CaptureReader(opening: run.capture)
        let analysis = Collect()
        try AnalysisStream.run(reader, into: analysis)
        let spans = try received(file)
        #expect(spans.count == analysis.spans.count)
        #expect(receiver.output.contains("refused request 1"))

        let d = reader.dictionaries
        let byID = Dictionary(spans.map { ($0["span_id"] as? String ?? "", $0) }, uniquingKeysWith: { a, _ in a })
        #expect(byID.count == spans.count, "span ids are unique")
        // Parent links: every parent is a received span of the same trace; the pairs of names as the analysis nests them.
        var pairs: [String] = [], expectedPairs: [String] = []
        for span in spans {
            let name = span["name"] as? String ?? ""
            if let parent = span["parent_span_id"] as? String, !parent.isEmpty {
                let p = try #require(byID[parent], "parent \(parent) of \(name) was not received")
                #expect(p["trace_id"] as? String == span["trace_id"] as? String)
                pairs.append((p["name"] as? String ?? "") + " > " + name)
            } else {
                pairs.append("root > " + name)
            }
        }
        for span in analysis.spans.values {
            let name = d.functionText(span.mfa)
            expectedPairs.append((span.parent < 0 ? "root" : d.functionText(analysis.spans[span.parent]?.mfa ?? 0)) + " > " + name)
        }
        #expect(pairs.sorted() == expectedPairs.sorted())
        let traces = Set(spans.compactMap { $0["trace_id"] as? String })
        #expect(traces.count == analysis.spans.values.filter { $0.parent < 0 }.count)
        #expect(pairs.filter { $0 == "bt_export:handle_call/3 > bt_export:store/2" }.count == 2 * (run.integer("calls") ?? 0))

        // Durations per process and function, as the analysis measured them.
        func key(_ pid: String, _ name: String, _ duration: Int64, _ depth: Int64) -> String { "\(pid) \(name) \(depth) \(duration)" }
        let got = spans.map { span -> String in
            let attributes = span["attributes"] as? [String: Any] ?? [:]
            let start = (span["start"] as? NSNumber)?.int64Value ?? 0, end = (span["end"] as? NSNumber)?.int64Value ?? 0
            return key(attributes["beam.pid"] as? String ?? "", span["name"] as? String ?? "", end - start,
                       (attributes["beam.depth"] as? NSNumber)?.int64Value ?? -1)
        }
        let expected = analysis.spans.values.map { key(d.processText($0.pid), d.functionText($0.mfa), $0.total, Int64($0.depth)) }
        #expect(got.sorted() == expected.sorted())

        // The caught exception: a span event with the class and reason, status ERROR.
        let work = try #require(spans.first { $0["name"] as? String == "bt_export:work/1" })
        let events = work["events"] as? [[String: Any]] ?? []
        #expect(events.count == 1)
        #expect(events.first?["name"] as? String == "exception")
        let exception = events.first?["attributes"] as? [String: Any] ?? [:]
        #expect(exception["exception.type"] as? String == "error")
        #expect(exception["exception.message"] as? String == "boom")
        #expect(work["status_code"] as? Int == 2)
        // Arguments and return values as recorded; the process and the code location.
        let store = try #require(spans.first { $0["name"] as? String == "bt_export:store/2" })
        let attributes = store["attributes"] as? [String: Any] ?? [:]
        #expect((attributes["beam.arguments"] as? String)?.hasPrefix("({") == true, "\(attributes)")
        #expect((attributes["beam.return_value"] as? String)?.hasPrefix("{{") == true, "\(attributes)")
        #expect(attributes["beam.pid"] as? String == run.pid("kv"))
        #expect(attributes["beam.process.name"] as? String == "kv")
        #expect(attributes["code.namespace"] as? String == "bt_export")
        #expect(attributes["code.function"] as? String == "store/2")
        let resource = store["resource"] as? [String: Any] ?? [:]
        #expect(resource["service.name"] as? String == reader.meta.nodes.first?.name ?? d.nodeName(1), "\(resource)")
        #expect(resource["process.runtime.name"] as? String == "BEAM")
    }

    @Test("the shipped live capture: a resource per node with its OTP release, one span per analysed call")
    func shipped() throws {
        try requireReceiver()
        let directory = try Erlang.temporaryDirectory("bt-otlp")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("spans.jsonl")
        let receiver = try PythonServer(Self.receiver, [file.path, "0"])
        defer { receiver.stop() }
        let result = try Shell.runCapturing(try beamtrace(), ["export", ExportTests.shipped, "--format", "otlp",
                                                              "--endpoint", "http://127.0.0.1:\(receiver.port)"], timeout: 120)
        #expect(result.status == 0, "\(result.stderr)")
        let reader = try CaptureReader(opening: ExportTests.shipped)
        let analysis = Collect()
        try AnalysisStream.run(reader, into: analysis)
        let spans = try received(file)
        #expect(spans.count == analysis.spans.count)
        let node = try #require(reader.meta.nodes.first)
        let release = try #require(node.otpRelease)
        for span in spans.prefix(50) {
            let resource = span["resource"] as? [String: Any] ?? [:]
            #expect(resource["service.name"] as? String == node.name)
            #expect(resource["beam.otp_release"] as? String == release)
            #expect(resource["beamtrace.capture"] as? String == reader.meta.captureID)
        }
        // The capture's clock is the system's: start times are the capture's own.
        let first = analysis.spans.values.map(\.start).min() ?? 0
        #expect(spans.compactMap { ($0["start"] as? NSNumber)?.int64Value }.min() == first)
    }

    @Test("a collector that rejects a request (400) stops the export at once: its message, and how many spans went")
    func rejected() throws {
        try requireReceiver()
        let run = try ClickHouseTests.workload.get()
        let directory = try Erlang.temporaryDirectory("bt-otlp")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("spans.jsonl")
        let receiver = try PythonServer(Self.receiver, [file.path, "0", "3"])
        defer { receiver.stop() }
        let result = try Shell.runCapturing(try beamtrace(), ["export", run.capture, "--format", "otlp", "--endpoint",
                                                              "http://127.0.0.1:\(receiver.port)", "--batch", "100"],
                                            timeout: 120)
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("HTTP 400: spans rejected by the test"), "\(result.stderr)")
        #expect(result.stderr.contains("200 spans were sent before"), "\(result.stderr)")
        // Not tried again (a 400 will not pass: a 4th request would have been taken) and nothing after it sent.
        #expect(receiver.output.contains("rejected request 3"), "\(receiver.output)")
        #expect(try received(file).count == 200)
    }

    /// An OTLP/HTTP receiver: decodes with opentelemetry-proto, writes one JSON line per span (the 2nd
    /// argument: how many requests to refuse with 503 first; the 3rd: a request to reject with 400).
    static let receiver = #"""
import http.server, json, os, socketserver, sys, threading
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as ts
out, refuse = sys.argv[1], int(sys.argv[2])
reject = int(sys.argv[3]) if len(sys.argv) > 3 else 0
count = [0]
lock = threading.Lock()
def value(v):
    kind = v.WhichOneof('value')
    return getattr(v, kind) if kind else None
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def log_message(self, *args): pass
    def reply(self, status, body=b''):
        self.send_response(status)
        self.send_header('Content-Type', 'application/x-protobuf')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
        with lock:
            count[0] += 1
            n = count[0]
        if self.path != '/v1/traces' or self.headers.get('Content-Type') != 'application/x-protobuf':
            print('bad request %s %s' % (self.path, self.headers.get('Content-Type')), flush=True)
            return self.reply(400)
        if n <= refuse:
            print('refused request %d' % n, flush=True)
            return self.reply(503)
        if n == reject:
            print('rejected request %d' % n, flush=True)
            return self.reply(400, b'spans rejected by the test')
        request = ts.ExportTraceServiceRequest()
        request.ParseFromString(body)
        lines = []
        for rs in request.resource_spans:
            resource = {a.key: value(a.value) for a in rs.resource.attributes}
            for ss in rs.scope_spans:
                for s in ss.spans:
                    lines.append(json.dumps({
                        'trace_id': s.trace_id.hex(), 'span_id': s.span_id.hex(), 'parent_span_id': s.parent_span_id.hex(),
                        'name': s.name, 'kind': s.kind, 'start': s.start_time_unix_nano, 'end': s.end_time_unix_nano,
                        'attributes': {a.key: value(a.value) for a in s.attributes},
                        'events': [{'name': e.name, 'time': e.time_unix_nano,
                                    'attributes': {a.key: value(a.value) for a in e.attributes}} for e in s.events],
                        'status_code': s.status.code, 'resource': resource, 'scope': ss.scope.name}))
        with lock:
            with open(out, 'a') as f:
                for line in lines: f.write(line + '\n')
        self.reply(200, ts.ExportTraceServiceResponse().SerializeToString())
"""#
}
