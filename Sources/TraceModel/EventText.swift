// Prints events for people, one line each, the way dbg's handler and redbug do:
// `14:52:20.159690 <0.80.0> (btwl_named) call btwl:f(1)`, `... returned from btwl:f/1 -> 2`,
// `... << {job,1}`, `... {job,1} ! <0.85.0>`. Times come from `TimeText`; pids name their node in a
// capture of several nodes (`<mx2@vm.362.0>`), as payloads print them; terms print in Erlang
// syntax, or Elixir's (`MyApp.Worker.handle_call/3`, `#PID<0.80.0>`, `%{a: 1}`) with `elixir`.
import BeamTerm

public struct EventPrinter: Sendable {
    public var time: TimeText
    public var elixir: Bool
    public let dictionaries: TraceDictionaries
    /// Terms longer than this are cut with `...` (nesting beyond 20 levels prints as `...`).
    public var maxWidth: Int?
    private let localNode: Atom?

    public init(dictionaries: TraceDictionaries, time: TimeText, elixir: Bool = false, maxWidth: Int? = 400) {
        self.dictionaries = dictionaries
        self.time = time
        self.elixir = elixir
        self.maxWidth = maxWidth
        localNode = dictionaries.localNode.map { Atom(dictionaries.nodeName($0)) }
    }

    public func term(_ term: Term) -> String {
        elixir ? term.elixirText(maxDepth: 20, maxWidth: maxWidth)
            : term.erlangText(ErlangPrintOptions(maxDepth: 20, maxWidth: maxWidth, localNode: localNode))
    }

    public func function(_ id: FunctionID) -> String { dictionaries.functionText(id, elixir: elixir) }

    public func process(_ id: ProcessID) -> String {
        let text = dictionaries.processText(id)
        return elixir && !dictionaries.elixirSyntax && text.hasPrefix("<") ? "#PID" + text : text
    }

    /// The process with its registered name (or initial call) when known: `<0.80.0> (btwl_named)`.
    public func processWithName(_ id: ProcessID) -> String {
        let d = dictionaries
        var text = process(id)
        if let entry = d.process(id) {
            if entry.registeredName != 0 {
                let name = d.atom(entry.registeredName)
                text += " (" + (elixir ? ElixirAtom.literal(name) : (ElixirAtom.moduleAlias(name) ?? name)) + ")"
            } else if entry.initialCall != 0 {
                text += " (" + function(entry.initialCall) + ")"
            }
        }
        return text
    }

    /// One line: time, process (with its name), what happened.
    public mutating func line(_ event: TraceEvent, payload: UnsafeRawBufferPointer) -> String {
        let body = describe(event, payload: payload)
        if event.flags.contains(.noTimestamp) { return body }
        return time.text(event.time) + " " + body
    }

    /// What happened, without the time.
    public func describe(_ event: TraceEvent, payload: UnsafeRawBufferPointer) -> String {
        let d = dictionaries
        let who = processWithName(event.pid)
        let terms = Payload.terms(payload, flags: event.flags)
        func arg(_ i: Int) -> String {
            guard let terms, i < terms.count else {
                return event.flags.contains(.payloadTruncated) ? "<<\(payload.count) bytes, cut>>" : ""
            }
            return term(terms[i])
        }
        let mfa = d.function(event.mfa)
        let callee: String = mfa.map { m in
            let module = d.atom(m.module)
            let fn = d.atom(m.function)
            if elixir { return Self.elixirModule(module) + "." + ElixirAtom.functionName(fn) }
            if let alias = ElixirAtom.moduleAlias(module) { return alias + "." + ElixirAtom.functionName(fn) }
            return "\(ErlangAtom.quoted(module)):\(ErlangAtom.quoted(fn))"
        } ?? "undefined"
        switch event.kind {
        case .call:
            var text: String
            if event.flags.contains(.arityOnly) {
                text = "\(who) call \(function(event.mfa))"
            } else if let terms, let args = terms.first?.listElements {
                text = "\(who) call \(callee)(\(args.map(term).joined(separator: ", ")))"
            } else {
                text = "\(who) call \(callee)(\(arg(0)))"
            }
            if event.flags.contains(.hasExtra) { text += " (\(arg(1)))" }
            return text
        case .returnFrom: return "\(who) returned from \(function(event.mfa)) -> \(arg(0))"
        case .exceptionFrom: return "\(who) exception from \(function(event.mfa)) \(arg(0))"
        case .returnTo: return "\(who) returned to \(function(event.mfa))"
        case .send, .sendToNonExistingProcess:
            let to = event.flags.contains(.destinationInPayload) ? arg(1) : processWithName(event.peer)
            return "\(who) \(arg(0)) ! \(to)" + (event.kind == .sendToNonExistingProcess ? " (no such process)" : "")
        case .receive: return "\(who) << \(arg(0))"
        case .spawn: return "\(who) spawn \(process(event.peer)) as \(callee)(\(arg(0)))"
        case .spawned: return "\(who) spawned by \(process(event.peer)) as \(callee)(\(arg(0)))"
        case .exit: return "\(who) exit \(arg(0))"
        case .link, .unlink, .gettingLinked, .gettingUnlinked:
            let other = event.flags.contains(.destinationInPayload) ? arg(0) : process(event.peer)
            return "\(who) \(event.kind.otpName) \(other)"
        case .register, .unregister:
            let name = d.atom(AtomID(truncatingIfNeeded: event.value))
            return "\(who) \(event.kind.otpName) \(elixir ? ElixirAtom.literal(name) : ErlangAtom.quoted(name))"
        case .in, .out, .inExiting, .outExiting, .outExited:
            let at = event.mfa != 0 ? function(event.mfa)
                : (event.value != 0 ? d.atom(AtomID(truncatingIfNeeded: event.value)) : "0")
            return "\(who) \(event.kind.otpName) \(at)"
        case .open: return "\(who) open by \(process(event.peer)) driver \(arg(0))"
        case .drop: return "dropped \(event.value) trace messages"
        case .seqTrace: return "seq_trace label \(event.value): \(arg(0))"
        case .sample where event.pid == 0: return "sample node \(d.nodeName(event.node)) \(arg(0))"
        case .sample: return "\(who) sample queue \(event.value) \(arg(0))"
        case .marker: return "marker \(event.value) \(arg(0))"
        default: return "\(who) \(event.kind.otpName) \(arg(0))"
        }
    }

    /// `MyApp.Worker` or `:gen_server`.
    static func elixirModule(_ module: String) -> String {
        ElixirAtom.moduleAlias(module) ?? ElixirAtom.literal(module)
    }
}

public enum EventText {
    /// One line with raw nanosecond times (kept for callers without a capture's time settings).
    public static func line(_ event: TraceEvent, payload: UnsafeRawBufferPointer, dictionaries d: TraceDictionaries,
                            maxWidth: Int? = 400) -> String {
        var printer = EventPrinter(dictionaries: d, time: TimeText(style: .ns, start: 0, timeBase: "none"),
                                   maxWidth: maxWidth)
        return printer.line(event, payload: payload)
    }
}

extension TraceDictionaries {
    /// `functionText`, or in Elixir syntax (`:gen_server.call/3`, `MyApp.Worker.handle_call/3`).
    public func functionText(_ id: FunctionID, elixir: Bool) -> String {
        guard elixir != elixirSyntax else { return functionText(id) }
        var other = self
        other.elixirSyntax = elixir
        guard elixir, let mfa = function(id) else { return other.functionText(id) }
        return EventPrinter.elixirModule(atom(mfa.module)) + "." + ElixirAtom.functionName(atom(mfa.function))
            + "/\(mfa.arity)"
    }

    /// True when most modules of the capture's functions are Elixir modules (`Elixir.…`): such a
    /// capture prints in Elixir syntax unless asked otherwise.
    public var prefersElixir: Bool {
        var elixir = Set<AtomID>()
        var erlang = Set<AtomID>()
        for id in tracedFunctions {
            guard let mfa = function(id) else { continue }
            if atom(mfa.module).hasPrefix("Elixir.") { elixir.insert(mfa.module) } else { erlang.insert(mfa.module) }
        }
        return !elixir.isEmpty && elixir.count >= erlang.count
    }

    /// Functions of events (calls, returns, schedules...), leaving out those known only as the
    /// initial call of some process (every proc_lib process of a node has one).
    public var tracedFunctions: [FunctionID] {
        var initial = Set<FunctionID>()
        for entry in processes.dropFirst() where entry.initialCall != 0 { initial.insert(entry.initialCall) }
        let all = (1..<max(functions.count, 1)).map { FunctionID($0) }
        let traced = all.filter { !initial.contains($0) }
        return traced.isEmpty ? all : traced
    }
}
