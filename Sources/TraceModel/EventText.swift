// Prints events for people, one line each, the way dbg's handler and redbug do:
// `14:52:20.159690 <0.80.0> (btwl_named) call btwl:f(1)`, `... returned from btwl:f/1 -> 2`,
// `... << {job,1}`, `... {job,1} ! <0.85.0>`. Times come from `TimeText`; pids name their node in a
// capture of several nodes (`<mx2@vm.362.0>`), as payloads print them; terms print in Erlang
// syntax, or Elixir's (`MyApp.Worker.handle_call/3`, `#PID<0.80.0>`, `%{a: 1}`) with `elixir`.
import BeamTerm

public struct EventPrinter: Sendable {
    public var time: TimeText
    public var elixir: Bool { didSet { cache = TextCache() } }
    public let dictionaries: TraceDictionaries
    /// Terms longer than this are cut with `...` (nesting beyond 20 levels prints as `...`).
    public var maxWidth: Int? { didSet { termWriter = Self.writer(maxWidth, localNode) } }
    private let localNode: Atom?
    private var termWriter: ErlangTermWriter
    /// Printed dictionary entries (processes, functions), each made once: ids repeat on every event.
    private var cache = TextCache()

    public init(dictionaries: TraceDictionaries, time: TimeText, elixir: Bool = false, maxWidth: Int? = 400) {
        self.dictionaries = dictionaries
        self.time = time
        self.elixir = elixir
        self.maxWidth = maxWidth
        let local = dictionaries.localNode.map { Atom(dictionaries.nodeName($0)) }
        localNode = local
        termWriter = Self.writer(maxWidth, local)
    }

    static func writer(_ width: Int?, _ local: Atom?) -> ErlangTermWriter {
        ErlangTermWriter(options: ErlangPrintOptions(maxDepth: 20, maxWidth: width, localNode: local))
    }

    public func term(_ term: Term) -> String {
        elixir ? term.elixirText(maxDepth: 20, maxWidth: maxWidth)
            : term.erlangText(ErlangPrintOptions(maxDepth: 20, maxWidth: maxWidth, localNode: localNode))
    }

    /// Appends the text of one payload term (at `offset` in `bytes`, advanced past it); false when
    /// the bytes there are not a whole term.
    public func writeTerm(_ bytes: UnsafeRawBufferPointer, offset: inout Int, into out: inout [UInt8]) -> Bool {
        if !elixir { return termWriter.write(bytes, offset: &offset, into: &out) }
        guard let term = try? TermDecoder().decode(bytes, offset: &offset, versioned: false) else { return false }
        out.append(contentsOf: self.term(term).utf8)
        return true
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
        var out: [UInt8] = []
        write(event, payload: payload, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the line (without its newline) to `out`: the fast path of `line`, for streams.
    public mutating func write(_ event: TraceEvent, payload: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        if !event.flags.contains(.noTimestamp) {
            time.write(event.time, into: &out)
            out.append(32)
        }
        writeBody(event, payload: payload, into: &out)
    }

    /// What happened, without the time.
    public func describe(_ event: TraceEvent, payload: UnsafeRawBufferPointer) -> String {
        var copy = self
        var out: [UInt8] = []
        copy.writeBody(event, payload: payload, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Where the payload's terms are: raw ranges printed from the bytes, or decoded terms (a cut
    /// payload); nil when it cannot be read (an old capture's byte-cut payload, damage).
    public enum Terms {
        case raw(UnsafeRawBufferPointer, TermStarts)
        case decoded([Term])

        public var count: Int {
            switch self {
            case .raw(_, let starts): return starts.count
            case .decoded(let terms): return terms.count
            }
        }
    }

    /// Where each term of a payload starts (a trace message has at most a few).
    public struct TermStarts: Sendable {
        var offsets: (Int, Int, Int, Int) = (0, 0, 0, 0)
        public private(set) var count = 0

        public subscript(_ i: Int) -> Int {
            switch i {
            case 0: return offsets.0
            case 1: return offsets.1
            case 2: return offsets.2
            default: return offsets.3
            }
        }

        mutating func append(_ offset: Int) -> Bool {
            switch count {
            case 0: offsets.0 = offset
            case 1: offsets.1 = offset
            case 2: offsets.2 = offset
            case 3: offsets.3 = offset
            default: return false
            }
            count += 1
            return true
        }
    }

    /// The payload's terms: raw ranges for the fast path, decoded terms for a cut payload (or one of
    /// more terms than a trace message has); nil when it cannot be read (an old capture's byte-cut
    /// payload, damage).
    public func terms(_ payload: UnsafeRawBufferPointer, flags: EventFlags) -> Terms? {
        if flags.contains(.payloadTruncated) {
            return Payload.cut(payload, flags: flags).map { .decoded($0.terms) }
        }
        var starts = TermStarts()
        var scan = TermCursor(payload)
        while scan.offset < payload.count {
            guard starts.append(scan.offset) else {
                return Payload.terms(payload, flags: flags).map { .decoded($0) }
            }
            guard scan.skipTerm() else { return nil }
        }
        return .raw(payload, starts)
    }

    private mutating func writeBody(_ event: TraceEvent, payload: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        let mark = out.count
        let terms = self.terms(payload, flags: event.flags)
        if !writeBody(event, payload: payload, terms: terms, into: &out) {
            // A term the fast walk accepted but cannot print (damage the decoder refuses): print the
            // event as if its payload did not decode.
            out.removeSubrange(mark...)
            _ = writeBody(event, payload: payload, terms: nil, into: &out)
        }
    }

    /// False when a raw term failed to print.
    private mutating func writeBody(_ event: TraceEvent, payload: UnsafeRawBufferPointer, terms: Terms?,
                                    into out: inout [UInt8]) -> Bool {
        var ok = true
        let kind = event.kind
        if kind == .drop {
            out.append(contentsOf: "dropped ".utf8)
            NumberText.append(event.value, to: &out)
            out.append(contentsOf: " trace messages".utf8)
            return true
        }
        if kind == .seqTrace {
            out.append(contentsOf: "seq_trace label ".utf8)
            NumberText.append(event.value, to: &out)
            out.append(contentsOf: ": ".utf8)
            writeArg(0, terms, event, payload, &out, &ok)
            return ok
        }
        if kind == .sample && event.pid == 0 {
            out.append(contentsOf: "sample node ".utf8)
            out.append(contentsOf: dictionaries.nodeName(event.node).utf8)
            out.append(32)
            writeArg(0, terms, event, payload, &out, &ok)
            return ok
        }
        if kind == .marker {
            out.append(contentsOf: "marker ".utf8)
            NumberText.append(event.value, to: &out)
            out.append(32)
            writeArg(0, terms, event, payload, &out, &ok)
            return ok
        }
        appendProcessWithName(event.pid, &out)
        out.append(32)
        switch kind {
        case .call:
            out.append(contentsOf: "call ".utf8)
            if event.flags.contains(.arityOnly) {
                appendFunction(event.mfa, &out)
            } else {
                appendCallee(event.mfa, &out)
                out.append(40)
                if !appendArguments(terms, &out, ok: &ok) { writeArg(0, terms, event, payload, &out, &ok) }
                out.append(41)
            }
            if event.flags.contains(.hasExtra) {
                out.append(contentsOf: " (".utf8)
                writeArg(1, terms, event, payload, &out, &ok)
                out.append(41)
            }
        case .returnFrom:
            out.append(contentsOf: "returned from ".utf8)
            appendFunction(event.mfa, &out)
            out.append(contentsOf: " -> ".utf8)
            writeArg(0, terms, event, payload, &out, &ok)
        case .exceptionFrom:
            out.append(contentsOf: "exception from ".utf8)
            appendFunction(event.mfa, &out)
            out.append(32)
            writeArg(0, terms, event, payload, &out, &ok)
        case .returnTo:
            out.append(contentsOf: "returned to ".utf8)
            appendFunction(event.mfa, &out)
        case .send, .sendToNonExistingProcess:
            writeArg(0, terms, event, payload, &out, &ok)
            out.append(contentsOf: " ! ".utf8)
            if event.flags.contains(.destinationInPayload) { writeArg(1, terms, event, payload, &out, &ok) } else { appendProcessWithName(event.peer, &out) }
            if kind == .sendToNonExistingProcess { out.append(contentsOf: " (no such process)".utf8) }
        case .receive:
            out.append(contentsOf: "<< ".utf8)
            writeArg(0, terms, event, payload, &out, &ok)
        case .spawn, .spawned:
            out.append(contentsOf: (kind == .spawn ? "spawn " : "spawned by ").utf8)
            appendProcess(event.peer, &out)
            out.append(contentsOf: " as ".utf8)
            appendCallee(event.mfa, &out)
            out.append(40)
            writeArg(0, terms, event, payload, &out, &ok)
            out.append(41)
        case .exit:
            out.append(contentsOf: "exit ".utf8)
            writeArg(0, terms, event, payload, &out, &ok)
        case .link, .unlink, .gettingLinked, .gettingUnlinked:
            out.append(contentsOf: kind.otpName.utf8)
            out.append(32)
            if event.flags.contains(.destinationInPayload) { writeArg(0, terms, event, payload, &out, &ok) } else { appendProcess(event.peer, &out) }
        case .register, .unregister:
            let name = dictionaries.atom(AtomID(truncatingIfNeeded: event.value))
            out.append(contentsOf: kind.otpName.utf8)
            out.append(32)
            out.append(contentsOf: (elixir ? ElixirAtom.literal(name) : ErlangAtom.quoted(name)).utf8)
        case .in, .out, .inExiting, .outExiting, .outExited:
            out.append(contentsOf: kind.otpName.utf8)
            out.append(32)
            if event.mfa != 0 {
                appendFunction(event.mfa, &out)
            } else if event.value != 0 {
                out.append(contentsOf: dictionaries.atom(AtomID(truncatingIfNeeded: event.value)).utf8)
            } else {
                out.append(48)
            }
        case .open:
            out.append(contentsOf: "open by ".utf8)
            appendProcess(event.peer, &out)
            out.append(contentsOf: " driver ".utf8)
            writeArg(0, terms, event, payload, &out, &ok)
        case .sample:
            out.append(contentsOf: "sample queue ".utf8)
            NumberText.append(event.value, to: &out)
            out.append(32)
            writeArg(0, terms, event, payload, &out, &ok)
        default:
            out.append(contentsOf: kind.otpName.utf8)
            out.append(32)
            writeArg(0, terms, event, payload, &out, &ok)
        }
        return ok
    }

    /// Payload term `i` (nothing when there is none; an old capture's byte-cut payload says its size).
    private func writeArg(_ i: Int, _ terms: Terms?, _ event: TraceEvent, _ payload: UnsafeRawBufferPointer,
                          _ out: inout [UInt8], _ ok: inout Bool) {
        guard let terms, i < terms.count else {
            if event.flags.contains(.payloadTruncated) {
                // A payload cut to depth 0 keeps no term.
                let cut = payload.count >= 2 && payload[0] == Payload.cutTag
                out.append(contentsOf: (cut ? "..." : "<<\(payload.count) bytes, cut>>").utf8)
            }
            return
        }
        switch terms {
        case .raw(let bytes, let starts):
            var offset = starts[i]
            if !writeTerm(bytes, offset: &offset, into: &out) { ok = false }
        case .decoded(let decoded):
            out.append(contentsOf: term(decoded[i]).utf8)
        }
    }

    /// A call's argument list, `1, {a,b}`; false (nothing written) when the payload's first term
    /// is not a proper list.
    private func appendArguments(_ terms: Terms?, _ out: inout [UInt8], ok: inout Bool) -> Bool {
        guard let terms, terms.count > 0 else { return false }
        switch terms {
        case .decoded(let decoded):
            // A cut argument list: `m:f(1, 2, ...)`.
            if case .improperList(let args, let tail) = decoded[0], CutMarker.isMarker(tail) {
                out.append(contentsOf: (args.map(term) + ["..."]).joined(separator: ", ").utf8)
                return true
            }
            guard let args = decoded[0].listElements else { return false }
            out.append(contentsOf: args.map(term).joined(separator: ", ").utf8)
            return true
        case .raw(let bytes, let starts):
            var scan = TermCursor(bytes, offset: starts[0])
            switch scan.peek() {
            case ExternalTag.nil:
                return true
            case ExternalTag.string:
                _ = scan.u8()
                guard let n = scan.u16(), scan.remaining >= n else { return false }
                for i in 0..<n {
                    if i > 0 { out.append(44); out.append(32) }
                    let value = bytes.load(fromByteOffset: scan.offset + i, as: UInt8.self)
                    if elixir {
                        out.append(contentsOf: term(.integer(Int64(value))).utf8)
                    } else {
                        NumberText.append(Int64(value), to: &out)
                    }
                }
                return true
            case ExternalTag.list:
                // Only a proper list is an argument list: check the tail first.
                var end = scan
                guard let n = end.listHeader() else { return false }
                for _ in 0..<n where !end.skipTerm() { return false }
                guard end.peek() == ExternalTag.nil else { return false }
                _ = scan.listHeader()
                for i in 0..<n {
                    if i > 0 { out.append(44); out.append(32) }
                    var offset = scan.offset
                    if !writeTerm(bytes, offset: &offset, into: &out) {
                        ok = false
                        return true
                    }
                    scan.offset = offset
                }
                return true
            default:
                return false
            }
        }
    }

    private mutating func appendProcessWithName(_ id: ProcessID, _ out: inout [UInt8]) {
        if TextCache.append(cache.processWithName, id, &out) { return }
        TextCache.store(&cache.processWithName, id, processWithName(id), &out)
    }

    private mutating func appendProcess(_ id: ProcessID, _ out: inout [UInt8]) {
        if TextCache.append(cache.process, id, &out) { return }
        TextCache.store(&cache.process, id, process(id), &out)
    }

    private mutating func appendFunction(_ id: FunctionID, _ out: inout [UInt8]) {
        if TextCache.append(cache.function, id, &out) { return }
        TextCache.store(&cache.function, id, function(id), &out)
    }

    /// `mod:fun`, `'Elixir.Mod':fun` as `Mod.fun`, or `undefined`.
    private mutating func appendCallee(_ id: FunctionID, _ out: inout [UInt8]) {
        if TextCache.append(cache.callee, id, &out) { return }
        TextCache.store(&cache.callee, id, callee(id), &out)
    }

    private func callee(_ id: FunctionID) -> String {
        let d = dictionaries
        guard let m = d.function(id) else { return "undefined" }
        let module = d.atom(m.module)
        let fn = d.atom(m.function)
        if elixir { return Self.elixirModule(module) + "." + ElixirAtom.functionName(fn) }
        if let alias = ElixirAtom.moduleAlias(module) { return alias + "." + ElixirAtom.functionName(fn) }
        return "\(ErlangAtom.quoted(module)):\(ErlangAtom.quoted(fn))"
    }

    /// `MyApp.Worker` or `:gen_server`.
    static func elixirModule(_ module: String) -> String {
        ElixirAtom.moduleAlias(module) ?? ElixirAtom.literal(module)
    }
}

/// Printed texts by dictionary id.
struct TextCache: Sendable {
    var processWithName: [[UInt8]?] = []
    var process: [[UInt8]?] = []
    var function: [[UInt8]?] = []
    var callee: [[UInt8]?] = []

    /// Appends the cached text; false when there is none yet.
    @inline(__always)
    static func append(_ table: [[UInt8]?], _ id: UInt32, _ out: inout [UInt8]) -> Bool {
        let i = Int(id)
        guard i < table.count, let bytes = table[i] else { return false }
        out.append(contentsOf: bytes)
        return true
    }

    static func store(_ table: inout [[UInt8]?], _ id: UInt32, _ text: String, _ out: inout [UInt8]) {
        let i = Int(id)
        let bytes = Array(text.utf8)
        // Ids are dense; an absurd one (damage) is printed without being cached.
        if i < 1 << 24 {
            if i >= table.count { table.append(contentsOf: repeatElement(nil, count: i + 1 - table.count)) }
            table[i] = bytes
        }
        out.append(contentsOf: bytes)
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
