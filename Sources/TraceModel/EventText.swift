// Prints events the way dbg's default handler does, one line each:
// `(<0.80.0>) call m:f(1,2)`, `(<0.80.0>) returned from m:f/2 -> ok`, `(<0.80.0>) << msg`...
import BeamTerm

public enum EventText {
    public static func line(_ event: TraceEvent, payload: UnsafeRawBufferPointer, dictionaries d: TraceDictionaries,
                            maxWidth: Int? = 400) -> String {
        let who = "(\(d.processText(event.pid)))"
        let terms = Payload.terms(payload, flags: event.flags)
        let options = ErlangPrintOptions(maxDepth: 20, maxWidth: maxWidth)
        func term(_ i: Int) -> String {
            if event.flags.contains(.payloadTruncated) { return "<<truncated \(payload.count) bytes>>" }
            guard let terms, i < terms.count else { return "" }
            return terms[i].erlangText(options)
        }
        let mfa = d.function(event.mfa)
        let fn = mfa.map { "\(ErlangAtom.quoted(d.atom($0.module))):\(ErlangAtom.quoted(d.atom($0.function)))" } ?? "undefined"
        var text: String
        switch event.kind {
        case .call:
            if event.flags.contains(.arityOnly) {
                text = "\(who) call \(d.functionText(event.mfa))"
            } else if let terms, let args = terms.first?.listElements {
                text = "\(who) call \(fn)(\(args.map { $0.erlangText(options) }.joined(separator: ",")))"
            } else {
                text = "\(who) call \(fn)(\(term(0)))"
            }
            if event.flags.contains(.hasExtra) { text += " (\(term(1)))" }
        case .returnFrom: text = "\(who) returned from \(d.functionText(event.mfa)) -> \(term(0))"
        case .exceptionFrom: text = "\(who) exception from \(d.functionText(event.mfa)) \(term(0))"
        case .returnTo: text = "\(who) returned to \(d.functionText(event.mfa))"
        case .send, .sendToNonExistingProcess:
            let to = event.flags.contains(.destinationInPayload) ? term(1) : d.processText(event.peer)
            text = "\(who) \(term(0)) ! \(to)" + (event.kind == .sendToNonExistingProcess ? " (no such process)" : "")
        case .receive: text = "\(who) << \(term(0))"
        case .spawn: text = "\(who) spawn \(d.processText(event.peer)) as \(fn)(\(term(0)))"
        case .spawned: text = "\(who) spawned by \(d.processText(event.peer)) as \(fn)(\(term(0)))"
        case .exit: text = "\(who) exit \(term(0))"
        case .link, .unlink, .gettingLinked, .gettingUnlinked:
            let other = event.flags.contains(.destinationInPayload) ? term(0) : d.processText(event.peer)
            text = "\(who) \(event.kind.otpName) \(other)"
        case .register, .unregister: text = "\(who) \(event.kind.otpName) \(ErlangAtom.quoted(d.atom(AtomID(truncatingIfNeeded: event.value))))"
        case .in, .out, .inExiting, .outExiting, .outExited:
            text = "\(who) \(event.kind.otpName) \(event.mfa != 0 ? d.functionText(event.mfa) : (event.value != 0 ? d.atom(AtomID(truncatingIfNeeded: event.value)) : "0"))"
        case .open: text = "\(who) open by \(d.processText(event.peer)) driver \(term(0))"
        case .drop: text = "dropped \(event.value) trace messages"
        case .seqTrace: text = "seq_trace label \(event.value): \(term(0))"
        default: text = "\(who) \(event.kind.otpName) \(term(0))"
        }
        if !event.flags.contains(.noTimestamp) { text = "\(event.time) " + text }
        return text
    }
}
