// Oversized arguments and return values recorded live from a real node are kept cut to what
// `io_lib:format("~P", [Term, Depth])` shows: what beamtrace prints equals what OTP prints for the
// depth recorded, and the bytes kept stay within the payload limit. The agent's cut (on the node)
// and the import cut (in the recorder's decoder) give the same bytes for the same message. Every
// exporter that prints payload text (csv, chrome's args, perfetto's debug annotations) prints a cut
// payload as the cut term, as OTP prints it at the exporter's depth and width.
import BeamDistribution
import BeamTerm
import CaptureStore
import Foundation
import Testing
import TestSupport
import TraceModel
@testable import TraceSession

@Suite(.serialized) struct PayloadCutTests {
    /// Big terms of every kind: deep, long lists, big binaries (text and not), maps, strings.
    static let source = #"""
    -module(btcut).
    -export([echo/1, terms/0, run/0, printed/2, agent_cut/2]).
    echo(T) -> T.
    deep(0) -> leaf;
    deep(N) -> {N, deep(N - 1)}.
    terms() ->
        [deep(200),
         lists:seq(1, 5000),
         << <<(I rem 251)>> || I <- lists:seq(1, 100000) >>,
         binary:copy(<<"the quick brown fox ">>, 2000),
         maps:from_list([{I, {I, [I, I, I], <<"value">>}} || I <- lists:seq(1, 20)]),
         maps:from_list([{list_to_atom("k" ++ integer_to_list(I)), I} || I <- lists:seq(1, 200)]),
         lists:flatten(lists:duplicate(100, "hello world ")),
         {a, lists:seq(1, 300), #{b => <<1, 2, 3, 4, 5, 6, 7, 8, 9>>, c => "text"}, <<"abc", 1, 2, 3, 4, 5, 6>>},
         [{I, <<I>>, [I, I]} || I <- lists:seq(1, 100)],
         lists:foldr(fun(X, Acc) -> [X | Acc] end, improper_tail, lists:seq(1, 200))].
    run() -> [echo(T) || T <- terms()], ok.
    %% What OTP prints for term I (or its one-element argument list) cut at Depth.
    printed(I, Depth) ->
        T = lists:nth(I, terms()),
        [unicode:characters_to_binary(io_lib:format("~0tP", [X, Depth])) || X <- [[T], T]].
    %% The trace message of a call with term I, cut by the agent's rules; and the uncut message.
    agent_cut(I, Limit) ->
        Msg = {trace_ts, self(), call, {btcut, echo, [lists:nth(I, terms())]}, {1, 2, 3}},
        {term_to_binary(beamtrace_agent:cut_message(Msg, Limit)), term_to_binary(Msg)}.
    """#

    static let termCount = 10

    static let directory: Result<URL, Error> = Result {
        let directory = try Erlang.temporaryDirectory()
        try Erlang.compile(module: "btcut", source: source, in: directory)
        return directory
    }

    /// A node with btcut loaded (the caller stops it).
    static func startNode() async throws -> TracedNode {
        try await TracedNode.start(extraArguments: ["-pa", try directory.get().path])
    }

    /// Records btcut's big terms going through `btcut:echo/1` with arguments, payloads cut at
    /// `limit` bytes; returns the capture's path once the node is checked clean.
    func recordCut(_ node: TracedNode, limit: Int) async throws -> String {
        let output = try temporaryCapturePath()
        var options = try recordingOptions([node], patterns: ["btcut:echo/1"], output: output)
        options.spec.arguments = true
        options.payloadLimit = limit
        _ = try await record(options, nodes: [node]) { try await node.rpc("btcut", "run") }
        try await expectClean(node)
        return output
    }

    @Test func liveOversizedPayloadsPrintAsOTPsDepthLimitedPrint() async throws {
        let node = try await Self.startNode()
        defer { Task { await node.stop() } }
        let capture = try ReadCapture(try await recordCut(node, limit: 256))
        let calls = capture.events.filter { $0.event.kind == .call }
        let returns = capture.events.filter { $0.event.kind == .returnFrom }
        #expect(calls.count == Self.termCount && returns.count == Self.termCount)
        var printer = EventPrinter(dictionaries: capture.dictionaries,
                                   time: TimeText(style: .ns, start: 0, timeBase: "none"), maxWidth: nil)
        for (i, (call, ret)) in zip(calls, returns).enumerated() {
            for (event, which) in [(call, 0), (ret, 1)] {
                #expect(event.event.flags.contains(.payloadTruncated), "term \(i + 1) was not cut")
                #expect(event.payload.count <= 256, "term \(i + 1): \(event.payload.count) bytes kept")
                let cut = try #require(event.payload.withUnsafeBytes { Payload.cut($0, flags: event.event.flags) })
                #expect(cut.depth >= 1 && cut.depth <= TermCut.maxDepth)
                let reply = try await node.rpc("btcut", "printed", [.integer(Int64(i + 1)), .integer(Int64(cut.depth))])
                guard case .list(let texts) = reply, texts.count == 2, case .binary(let expected) = texts[which] else {
                    Issue.record("unexpected reply \(reply)")
                    continue
                }
                let ours = try #require(cut.terms.first).erlangText()
                let otp = String(decoding: expected, as: UTF8.self)
                if i + 1 == 7 {
                    // A long string: ~P prints it whole; beamtrace keeps 4 * (Depth - 1) characters
                    // of it and ends it in `...` (docs/FORMAT.md).
                    let kept = try #require(ours.range(of: "\"...")).lowerBound
                    #expect(otp.hasPrefix(String(ours[..<kept])), "term 7: \(ours)")
                    #expect(ours[..<kept].count >= 4 * (cut.depth - 2))
                } else if i + 1 == 6 {
                    // A map of more than 32 keys: ~P prints its pairs in iteration order, beamtrace
                    // sorted by key (docs/FORMAT.md): the same pairs, the same count.
                    #expect(ours.count == expected.count, "term 6 at depth \(cut.depth): \(ours)")
                } else {
                    #expect(ours == otp, "term \(i + 1) at depth \(cut.depth)")
                }
            }
            // The event line prints the cut arguments as the call's arguments, ending in `...`.
            let line = call.payload.withUnsafeBytes { printer.line(call.event, payload: $0) }
            #expect(line.contains("call btcut:echo("), "\(line)")
        }
    }

    /// What an exporter shows of a printed term: at most 120 characters, the rest cut to `...`.
    static func exportWidth(_ text: String) -> String {
        let scalars = Array(text.unicodeScalars)
        guard scalars.count > 120 else { return text }
        var kept = String.UnicodeScalarView()
        kept.append(contentsOf: scalars.prefix(117))
        return String(kept) + "..."
    }

    /// Each export's payload texts, in time order: the calls' arguments and the returned values.
    static let exportedTexts = #"""
    import csv, json, sys
    from perfetto.protos.perfetto.trace import perfetto_trace_pb2 as pb
    rows = list(csv.DictReader(open(sys.argv[1], newline='')))
    out = {'csv': {'call': [r['payload'] for r in rows if r['kind'] == 'call'],
                   'return_from': [r['payload'] for r in rows if r['kind'] == 'return_from']}}
    chrome = json.load(open(sys.argv[2]))
    events = chrome['traceEvents'] if isinstance(chrome, dict) else chrome
    out['chrome'] = {'call': [e['args']['args'] for e in events if e.get('ph') == 'B' and 'args' in e.get('args', {})],
                     'return_from': [e['args']['result'] for e in events
                                     if e.get('ph') == 'E' and 'result' in e.get('args', {})]}
    trace = pb.Trace()
    trace.ParseFromString(open(sys.argv[3], 'rb').read())
    names = {}
    perfetto = {'call': [], 'return_from': []}
    for p in trace.packet:
        if p.HasField('interned_data'):
            for n in p.interned_data.debug_annotation_names: names[n.iid] = n.name
        if p.HasField('track_event'):
            for a in p.track_event.debug_annotations:
                name = a.name if a.HasField('name') else names.get(a.name_iid)
                if name == 'args': perfetto['call'].append(a.string_value)
                elif name == 'result': perfetto['return_from'].append(a.string_value)
    out['perfetto'] = perfetto
    print(json.dumps(out))
    """#

    @Test func exportsPrintCutPayloadsAsTheCutTerm() async throws {
        let node = try await Self.startNode()
        defer { Task { await node.stop() } }
        // Small enough that most cuts are shallower than the 8 levels exports print, so OTP's ~P
        // of the whole term is what they must show.
        let output = try await recordCut(node, limit: 64)

        // The cut terms and their depths, as the capture holds them.
        let capture = try ReadCapture(output)
        var cuts: [String: [(depth: Int, term: Term)]] = [:]
        for kind in [EventKind.call, .returnFrom] {
            cuts[kind.otpName] = try capture.events.filter { $0.event.kind == kind }.map { event in
                #expect(event.event.flags.contains(.payloadTruncated))
                let cut = try #require(event.payload.withUnsafeBytes { Payload.cut($0, flags: event.event.flags) })
                return (cut.depth, try #require(cut.terms.first))
            }
            #expect(cuts[kind.otpName]?.count == Self.termCount)
        }

        let files = try Erlang.temporaryDirectory("bt-cut-export")
        defer { try? FileManager.default.removeItem(at: files) }
        var paths: [String] = []
        for format in ["csv", "chrome", "perfetto"] {
            let path = files.appendingPathComponent("out.\(format)").path
            let run = try beamtrace(["export", output, "--format", format, "-o", path])
            #expect(run.status == 0, "\(format): \(run.err)")
            paths.append(path)
        }
        try PythonModules.ensure("perfetto.protos.perfetto.trace.perfetto_trace_pb2", packages: ["perfetto", "protobuf"])
        let script = files.appendingPathComponent("texts.py").path
        try Self.exportedTexts.write(toFile: script, atomically: true, encoding: .utf8)
        let dump = try Shell.runCapturing("/usr/bin/env", ["python3", script] + paths, timeout: 120)
        let texts = try #require(try JSONSerialization.jsonObject(with: Data(dump.stdout.utf8)) as? [String: [String: [String]]],
                                 "\(dump.stderr)")
        for format in ["csv", "chrome", "perfetto"] {
            for kind in ["call", "return_from"] {
                let shown = texts[format]?[kind] ?? []
                var againstOTP = 0
                #expect(shown.count == Self.termCount, "\(format) \(kind): \(shown)")
                for (i, text) in shown.prefix(Self.termCount).enumerated() {
                    #expect(!text.contains("truncated") && !text.contains("bytes, cut"), "\(format) \(kind) \(i + 1): \(text)")
                    guard let (depth, term) = cuts[kind]?[i] else { continue }
                    // An argument list cut at depth D holds its argument at D - 1.
                    if kind == "call" {
                        // [Arg], or [Arg | cut] when the list itself was cut after it.
                        var argument: Term?
                        var listCut = false
                        switch term {
                        case .list(let elements): argument = elements.first
                        case .improperList(let elements, let tail):
                            argument = elements.first
                            listCut = CutMarker.isMarker(tail)
                        default: break
                        }
                        guard let argument else {
                            Issue.record("\(format) term \(i + 1): the cut arguments \(term.erlangText()) hold no argument")
                            continue
                        }
                        let suffix = listCut ? ",...)" : ")"
                        #expect(text.hasPrefix("(") && text.hasSuffix(suffix), "\(format) \(kind) \(i + 1): \(text)")
                        let printed = String(text.dropFirst().dropLast(suffix.count))
                        if try await compare(printed, argument, depth: depth - 1, term: i + 1, node: node,
                                             what: "\(format) \(kind)") { againstOTP += 1 }
                    } else {
                        if try await compare(text, term, depth: depth, term: i + 1, node: node,
                                             what: "\(format) \(kind)") { againstOTP += 1 }
                    }
                }
                // Most of the cuts are shallow enough for the export to show all of them.
                #expect(againstOTP >= Self.termCount / 2, "\(format) \(kind): \(againstOTP) compared with OTP")
            }
        }
    }

    /// `printed`, an export's text of `term` (term number `index` of btcut:terms/0 as the capture
    /// keeps it, cut to `~P` depth `depth`), is that cut term printed within the export's limits (8
    /// levels, 120 characters) by the `Term` printer (not the byte walk exporters use); and where
    /// those limits cut nothing more (depth 8 or less), what OTP's `~P` prints of the whole term.
    /// True when compared with OTP's.
    func compare(_ printed: String, _ term: Term, depth: Int, term index: Int, node: TracedNode,
                 what: String) async throws -> Bool {
        let byTerm = Self.exportWidth(term.erlangText(ErlangPrintOptions(maxDepth: 8)))
        #expect(printed == byTerm, "\(what) term \(index): \(printed) but the Term printer gives \(byTerm)")
        #expect(printed.contains("..."), "\(what) term \(index): \(printed) shows no cut")
        guard depth <= 8 else { return false }
        let reply = try await node.rpc("btcut", "printed", [.integer(Int64(index)), .integer(Int64(depth))])
        guard case .list(let texts) = reply, texts.count == 2, case .binary(let expected) = texts[1] else {
            Issue.record("unexpected reply \(reply)")
            return false
        }
        let otp = Self.exportWidth(String(decoding: expected, as: UTF8.self))
        if index == 7 {
            // A long string: ~P prints it whole; beamtrace keeps 4 * (Depth - 1) characters (docs/FORMAT.md).
            let kept = printed.range(of: "\"...").map { String(printed[..<$0.lowerBound]) } ?? printed
            #expect(otp.hasPrefix(kept), "\(what) term 7: \(printed) vs OTP's \(otp)")
        } else if index == 6 {
            // A map of more than 32 keys: ~P prints its pairs in iteration order, beamtrace sorted by key.
            #expect(printed.count == otp.count, "\(what) term 6 at depth \(depth): \(printed) vs OTP's \(otp)")
        } else {
            #expect(printed == otp, "\(what) term \(index) at depth \(depth): \(printed) vs OTP's \(otp)")
        }
        return true
    }

    @Test func agentCutAndImportCutKeepTheSameBytes() async throws {
        let node = try await Self.startNode()
        defer { Task { await node.stop() } }
        // The agent's source, loaded as the session would (compiled on the node).
        let loader = AgentLoader(connection: node.control, node: node.name)
        try await loader.load()
        defer { Task { await loader.unload() } }
        for limit in [256, 1024] {
            for i in 1...Self.termCount {
                let reply = try await node.rpc("btcut", "agent_cut", [.integer(Int64(i)), .integer(Int64(limit))])
                guard case .tuple(let parts) = reply, parts.count == 2, case .binary(let agentCut) = parts[0],
                      case .binary(let whole) = parts[1] else {
                    Issue.record("unexpected reply \(reply)")
                    continue
                }
                var decoder = TraceMessageDecoder(options: TraceDecoderOptions(payloadLimit: limit))
                var batch = EventBatch()
                try decoder.decode(agentCut, into: &batch)
                try decoder.decode(whole, into: &batch)
                #expect(batch.count == 2)
                // Term 6, a map of 200 keys: the agent keeps the first pairs in maps:iterator order (as
                // ~P prints them), the import those first in the file; both keep the same number.
                #expect(batch.flags[0] == batch.flags[1], "term \(i), limit \(limit)")
                if i != 6 {
                    #expect(Array(batch.payload(0)) == Array(batch.payload(1)), "term \(i), limit \(limit)")
                }
                #expect(batch.payload(0).count <= limit)
            }
        }
    }
}
