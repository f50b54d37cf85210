// The trace-message decoder against real OTP trace messages: a tracer process of the test's own
// collects what OTP sends it (every timestamp flavour, arity-only calls, match-spec extras, ports,
// seq_trace) and prints term_to_binary of each; every field the decoder fills is checked against
// BeamTerm's general decoding of the same bytes.
import BeamTerm
import Foundation
import Testing
import TestSupport
@testable import TraceModel

@Suite struct DecoderTests {
    static let source = #"""
-module(bt_vec).
-export([main/0, f/2, g/1]).

f(X, Y) -> {X, Y}.
g(X) -> erlang:error({bad, X}).

main() ->
    Tracer = spawn(fun() -> collect([]) end),
    [run(F, Tracer) || F <- [[timestamp], [monotonic_timestamp], [strict_monotonic_timestamp], [], [arity, monotonic_timestamp]]],
    seq(Tracer),
    Tracer ! {dump, self()},
    receive {msgs, Ms} -> [io:format("~s~n", [binary:encode_hex(term_to_binary(M))]) || M <- Ms] end.

collect(Acc) ->
    receive
        {dump, From} -> From ! {msgs, lists:reverse(Acc)};
        M -> collect([M | Acc])
    end.

run(Flags, Tracer) ->
    P = spawn(fun() -> receive go -> work() end end),
    erlang:trace_pattern({bt_vec, f, '_'}, [{'_', [], [{return_trace}, {message, {caller}}]}], [local]),
    erlang:trace_pattern({bt_vec, g, '_'}, [{'_', [], [{exception_trace}]}], [local]),
    erlang:trace(P, true, [call, return_to, send, 'receive', procs, set_on_spawn, running, exiting, garbage_collection,
                           {tracer, Tracer} | Flags]),
    erlang:trace(new_ports, true, [ports, {tracer, Tracer} | [F || F <- Flags, F =/= arity]]),
    R = monitor(process, P),
    P ! go,
    receive {'DOWN', R, _, _, _} -> ok end,
    erlang:trace(new_ports, false, [ports]),
    timer:sleep(20).

work() ->
    f(1, [a, "b"]),
    catch g(x),
    register(bt_vec_p, self()),
    unregister(bt_vec_p),
    Q = spawn_link(fun() -> receive stop -> ok end end),
    unlink(Q),
    link(Q),
    Q ! stop,
    Dead = spawn(fun() -> ok end),
    timer:sleep(5),
    Dead ! late,
    self() ! hi,
    receive hi -> ok end,
    receive after 0 -> ok end,
    A = alias(), A ! x, receive x -> ok end,
    erlang:garbage_collect(),
    Port = open_port({spawn, "true"}, []),
    catch port_close(Port),
    exit(done).

seq(Tracer) ->
    seq_trace:set_system_tracer(Tracer),
    P = spawn(fun() -> receive _ -> ok end end),
    seq_trace:set_token(label, 17),
    seq_trace:set_token(send, true),
    seq_trace:set_token(timestamp, true),
    P ! traced,
    seq_trace:set_token([]),
    timer:sleep(20).
"""#

    static let vectors: [[UInt8]] = {
        guard let output = try? Erlang.run(module: "bt_vec", source: source) else { return [] }
        return output.split(separator: "\n").compactMap { [UInt8](hex: $0.trimmingCharacters(in: .whitespaces)) }
    }()

    func nanoseconds(_ term: Term) -> Int64? {
        switch term {
        case .integer(let ns): return ns
        case .tuple(let parts) where parts.count == 3:
            guard let mega = parts[0].int64Value, let sec = parts[1].int64Value, let micro = parts[2].int64Value else { return nil }
            return (mega * 1_000_000 + sec) * 1_000_000_000 + micro * 1000
        case .tuple(let parts) where parts.count == 2: return parts[0].int64Value
        default: return nil
        }
    }

    @Test func decodesEveryOTPTraceMessage() throws {
        let vectors = Self.vectors
        #expect(vectors.count > 100)
        var decoder = TraceMessageDecoder(options: TraceDecoderOptions(payloadLimit: 100_000))
        var kindsSeen = Set<EventKind>()
        var timestampShapes = Set<String>()
        for bytes in vectors {
            let term = try TermDecoder().decode(bytes)
            guard case .tuple(let elements) = term, case .atom(let head) = elements[0] else {
                Issue.record("not a tuple: \(term)")
                continue
            }
            var batch = EventBatch()
            try decoder.decode(bytes, into: &batch)
            #expect(batch.count == 1)
            let event = batch[0]
            kindsSeen.insert(event.kind)
            let d = decoder.dictionaries
            let payload = Payload.terms(batch.payload(0), flags: event.flags) ?? []
            if head.name == "seq_trace" {
                #expect(event.kind == .seqTrace)
                #expect(event.value == elements[1].int64Value)
                #expect(payload == [elements[2]])
                if elements.count == 4 { #expect(event.time == nanoseconds(elements[3])) }
                continue
            }
            let timestamped = head.name == "trace_ts"
            let body = timestamped ? Array(elements.dropLast()) : elements
            if timestamped {
                #expect(event.time == nanoseconds(elements[elements.count - 1]), "\(term)")
                switch elements[elements.count - 1] {
                case .integer: timestampShapes.insert("monotonic")
                case .tuple(let p): timestampShapes.insert(p.count == 3 ? "now" : "strict")
                default: break
                }
            } else {
                #expect(event.flags.contains(.noTimestamp))
            }
            guard case .atom(let tag) = body[2] else { continue }
            #expect(event.kind.otpName == tag.name, "\(term)")
            #expect(d.processTerm(event.pid) == body[1], "\(term)")
            func mfaText(_ t: Term, arity: Int? = nil) -> String? {
                guard case .tuple(let mfa) = t, mfa.count == 3, case .atom(let m) = mfa[0], case .atom(let f) = mfa[1] else { return nil }
                let a = arity ?? Int(mfa[2].int64Value ?? Int64(mfa[2].listElements?.count ?? -1))
                return "\(ErlangAtom.quoted(m.name)):\(ErlangAtom.quoted(f.name))/\(a)"
            }
            switch event.kind {
            case .call:
                #expect(d.functionText(event.mfa) == mfaText(body[3]))
                if case .tuple(let mfa) = body[3], mfa[2].isList {
                    #expect(payload.first == mfa[2])
                } else {
                    #expect(event.flags.contains(.arityOnly))
                }
                if body.count > 4 {
                    #expect(event.flags.contains(.hasExtra))
                    #expect(payload.last == body[4])
                }
            case .returnFrom, .exceptionFrom:
                #expect(d.functionText(event.mfa) == mfaText(body[3]))
                #expect(payload == [body[4]])
            case .returnTo, .in, .out, .outExited, .inExiting, .outExiting:
                if case .tuple = body[3] { #expect(d.functionText(event.mfa) == mfaText(body[3])) } else { #expect(event.mfa == 0) }
            case .send, .sendToNonExistingProcess:
                #expect(payload.first == body[3])
                if event.flags.contains(.destinationInPayload) {
                    #expect(payload.count == 2 && payload[1] == body[4])
                } else {
                    #expect(d.processTerm(event.peer) == body[4])
                }
            case .receive, .exit, .closed, .gcMajorStart, .gcMajorEnd, .gcMinorStart, .gcMinorEnd, .gcMaxHeapSize:
                #expect(payload == [body[3]])
            case .spawn, .spawned:
                #expect(d.processTerm(event.peer) == body[3])
                #expect(d.functionText(event.mfa) == mfaText(body[4]))
            case .link, .unlink, .gettingLinked, .gettingUnlinked:
                #expect(d.processTerm(event.peer) == body[3])
            case .register, .unregister:
                #expect(Term.atom(d.atom(AtomID(event.value))) == body[3])
            case .open:
                #expect(event.flags.contains(.tracedPort))
                #expect(d.processTerm(event.peer) == body[3])
                #expect(payload == [body[4]])
            default:
                Issue.record("unexpected kind \(event.kind)")
            }
        }
        let expectedKinds: Set<EventKind> = [.call, .returnFrom, .exceptionFrom, .returnTo, .send, .sendToNonExistingProcess,
                                             .receive, .spawn, .spawned, .exit, .link, .unlink, .gettingLinked,
                                             .gettingUnlinked, .register, .unregister, .in, .out, .outExited,
                                             .gcMajorStart, .gcMajorEnd, .open, .closed, .seqTrace]
        #expect(expectedKinds.isSubset(of: kindsSeen), "missing: \(expectedKinds.subtracting(kindsSeen))")
        #expect(timestampShapes == ["now", "monotonic", "strict"])
    }

    @Test func payloadCapTruncatesAndRedactKeepsShape() throws {
        let vectors = Self.vectors
        #expect(!vectors.isEmpty)
        var capped = TraceMessageDecoder(options: TraceDecoderOptions(payloadLimit: 4))
        var redacting = TraceMessageDecoder(options: TraceDecoderOptions(payloadLimit: 10_000, redact: true))
        var sawTruncated = false, sawRedacted = false
        for bytes in vectors {
            var a = EventBatch(), b = EventBatch()
            try capped.decode(bytes, into: &a)
            try redacting.decode(bytes, into: &b)
            if a.flags[0].contains(.payloadTruncated) {
                sawTruncated = true
                // Cut to a depth that fits the 4 bytes (here: none, so only the 2-byte header).
                #expect(a.payload(0).count <= 4)
                #expect(a.payload(0).withUnsafeBytes { Payload.cut($0, flags: a.flags[0]) } != nil)
            }
            if b.flags[0].contains(.payloadRedacted) {
                sawRedacted = true
                // The redacted payload still decodes, and holds no integers other than 0.
                let terms = Payload.terms(b.payload(0), flags: b.flags[0])
                #expect(terms != nil)
                if let terms, case .tuple(let parts)? = terms.first, parts.count == 2, parts[0] == .atom("bad") {
                    #expect(parts[1] == .atom("x"))
                }
            }
        }
        #expect(sawTruncated && sawRedacted)
    }

    @Test func malformedInputIsAnErrorWithAnOffset() {
        var decoder = TraceMessageDecoder()
        var batch = EventBatch()
        // {trace, <pid>, bogus_tag} with a real pid from term_to_binary.
        let pid: [UInt8] = [88, 100, 0, 13] + Array("nonode@nohost".utf8) + [0, 0, 0, 80, 0, 0, 0, 0, 0, 0, 0, 0]
        let bogus: [UInt8] = [131, 104, 3, 100, 0, 5] + Array("trace".utf8) + pid + [100, 0, 5] + Array("bogus".utf8)
        #expect(throws: TraceDecodingError.self) { try decoder.decode(bogus, into: &batch) }
        do {
            try decoder.decode(Array(bogus.prefix(20)), into: &batch)
            Issue.record("a cut message decoded")
        } catch {
            #expect(error.offset > 0)
        }
        #expect(batch.isEmpty)
    }
}
