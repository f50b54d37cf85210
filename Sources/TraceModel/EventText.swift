// Prints events for people, one line each, the way dbg's handler and redbug do:
// `14:52:20.159690 <0.80.0> (btwl_named) call btwl:f(1)`, `... returned from btwl:f/1 -> 2`,
// `... << {job,1}`, `... {job,1} ! <0.85.0>`. Times come from `TimeText`; pids name their node in a
// capture of several nodes (`<mx2@vm.362.0>`), as payloads print them; terms print in Erlang
// syntax, or Elixir's (`MyApp.Worker.handle_call/3`, `#PID<0.80.0>`, `%{a: 1}`) with `elixir`.
// Lines are written into a `TextBuffer`; what repeats from event to event (a process with its name,
// `call mod:fun(`, `returned from mod:fun/1 -> `) is printed once and copied after that.
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

    /// `writeTerm` into a `TextBuffer`.
    public func writeTerm(_ bytes: UnsafeRawBufferPointer, offset: inout Int, into out: inout TextBuffer) -> Bool {
        if !elixir { return termWriter.write(bytes, offset: &offset, into: &out) }
        guard let term = try? TermDecoder().decode(bytes, offset: &offset, versioned: false) else { return false }
        out.append(utf8: self.term(term))
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
        var out = TextBuffer(capacity: 256)
        write(event, payload: payload, into: &out)
        return out.string()
    }

    /// Appends the line (without its newline) to `out`: the fast path of `line`, for streams.
    public mutating func write(_ event: TraceEvent, payload: UnsafeRawBufferPointer, into out: inout TextBuffer) {
        if !event.flags.contains(.noTimestamp) {
            time.write(event.time, into: &out)
            out.append(32)
        }
        writeBody(event, payload: payload, into: &out)
    }

    /// `write` into an array.
    public mutating func write(_ event: TraceEvent, payload: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        var text = TextBuffer(capacity: 256)
        write(event, payload: payload, into: &text)
        text.withUnsafeBytes { out.append(contentsOf: $0) }
    }

    /// What happened, without the time.
    public func describe(_ event: TraceEvent, payload: UnsafeRawBufferPointer) -> String {
        var copy = self
        var out = TextBuffer(capacity: 256)
        copy.writeBody(event, payload: payload, into: &out)
        return out.string()
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

    private mutating func writeBody(_ event: TraceEvent, payload: UnsafeRawBufferPointer, into out: inout TextBuffer) {
        let mark = out.count
        var walk = TermWalk(payload, flags: event.flags)
        // Raw terms are found as they print; the ones the line does not print are checked after.
        if !writeBody(event, payload: payload, terms: &walk, into: &out) || !walk.finish() {
            // A term that does not print or is not whole (damage the decoder refuses): print the
            // event as if its payload did not decode.
            out.truncate(to: mark)
            var none = TermWalk.unreadable
            _ = writeBody(event, payload: payload, terms: &none, into: &out)
        }
    }

    /// False when a raw term failed to print.
    private mutating func writeBody(_ event: TraceEvent, payload: UnsafeRawBufferPointer, terms: inout TermWalk,
                                    into out: inout TextBuffer) -> Bool {
        var ok = true
        let kind = event.kind
        if kind == .drop {
            out.append("dropped ")
            NumberText.append(event.value, to: &out)
            out.append(" trace messages")
            return true
        }
        if kind == .seqTrace {
            out.append("seq_trace label ")
            NumberText.append(event.value, to: &out)
            out.append(": ")
            writeArg(0, &terms, event, payload, &out, &ok)
            return ok
        }
        if kind == .sample && event.pid == 0 {
            out.append("sample node ")
            out.append(utf8: dictionaries.nodeName(event.node))
            out.append(32)
            writeArg(0, &terms, event, payload, &out, &ok)
            return ok
        }
        if kind == .marker {
            out.append("marker ")
            NumberText.append(event.value, to: &out)
            out.append(32)
            writeArg(0, &terms, event, payload, &out, &ok)
            return ok
        }
        let arityOnly = event.flags.contains(.arityOnly)
        // The head of the line, up to the first term: `<0.80.0> (worker) call m:f(`.
        let head = HeadCache.Key(a: event.pid, b: event.mfa, c: UInt32(kind.rawValue) + 1 | (arityOnly ? 0x100 : 0))
        if !cache.heads.append(head, &out) {
            let start = out.count
            writeHead(event, arityOnly: arityOnly, into: &out)
            cache.heads.store(head, from: start, of: out)
        }
        switch kind {
        case .call:
            if !arityOnly {
                if !appendArguments(&terms, &out, ok: &ok) { writeArg(0, &terms, event, payload, &out, &ok) }
                out.append(41)
            }
            if event.flags.contains(.hasExtra) {
                out.append(" (")
                writeArg(1, &terms, event, payload, &out, &ok)
                out.append(41)
            }
        case .returnFrom:
            writeArg(0, &terms, event, payload, &out, &ok)
        case .exceptionFrom:
            writeArg(0, &terms, event, payload, &out, &ok)
        case .returnTo:
            break
        case .send, .sendToNonExistingProcess:
            writeArg(0, &terms, event, payload, &out, &ok)
            out.append(" ! ")
            if event.flags.contains(.destinationInPayload) { writeArg(1, &terms, event, payload, &out, &ok) } else { appendProcessWithName(event.peer, &out) }
            if kind == .sendToNonExistingProcess { out.append(" (no such process)") }
        case .receive:
            writeArg(0, &terms, event, payload, &out, &ok)
        case .spawn, .spawned:
            out.append(kind == .spawn ? "spawn " : "spawned by ")
            appendProcess(event.peer, &out)
            out.append(" as ")
            appendCallee(event.mfa, &out)
            out.append(40)
            writeArg(0, &terms, event, payload, &out, &ok)
            out.append(41)
        case .exit:
            out.append("exit ")
            writeArg(0, &terms, event, payload, &out, &ok)
        case .link, .unlink, .gettingLinked, .gettingUnlinked:
            out.append(utf8: kind.otpName)
            out.append(32)
            if event.flags.contains(.destinationInPayload) { writeArg(0, &terms, event, payload, &out, &ok) } else { appendProcess(event.peer, &out) }
        case .register, .unregister:
            let name = dictionaries.atom(AtomID(truncatingIfNeeded: event.value))
            out.append(utf8: kind.otpName)
            out.append(32)
            out.append(utf8: elixir ? ElixirAtom.literal(name) : ErlangAtom.quoted(name))
        case .in, .out, .inExiting, .outExiting, .outExited:
            out.append(utf8: kind.otpName)
            out.append(32)
            if event.mfa != 0 {
                appendFunction(event.mfa, &out)
            } else if event.value != 0 {
                out.append(utf8: dictionaries.atom(AtomID(truncatingIfNeeded: event.value)))
            } else {
                out.append(48)
            }
        case .open:
            out.append("open by ")
            appendProcess(event.peer, &out)
            out.append(" driver ")
            writeArg(0, &terms, event, payload, &out, &ok)
        case .sample:
            out.append("sample queue ")
            NumberText.append(event.value, to: &out)
            out.append(32)
            writeArg(0, &terms, event, payload, &out, &ok)
        default:
            out.append(utf8: kind.otpName)
            out.append(32)
            writeArg(0, &terms, event, payload, &out, &ok)
        }
        return ok
    }

    /// The process with its name, a space, and what the kind prints before the payload's first term.
    private mutating func writeHead(_ event: TraceEvent, arityOnly: Bool, into out: inout TextBuffer) {
        appendProcessWithName(event.pid, &out)
        out.append(32)
        switch event.kind {
        case .call:
            out.append("call ")
            if arityOnly {
                appendFunction(event.mfa, &out)
            } else {
                appendCallee(event.mfa, &out)
                out.append(40)
            }
        case .returnFrom:
            out.append("returned from ")
            appendFunction(event.mfa, &out)
            out.append(" -> ")
        case .exceptionFrom:
            out.append("exception from ")
            appendFunction(event.mfa, &out)
            out.append(32)
        case .returnTo:
            out.append("returned to ")
            appendFunction(event.mfa, &out)
        case .receive:
            out.append("<< ")
        default:
            break
        }
    }

    /// Payload term `i` (nothing when there is none; an old capture's byte-cut payload says its size).
    private func writeArg(_ i: Int, _ terms: inout TermWalk, _ event: TraceEvent, _ payload: UnsafeRawBufferPointer,
                          _ out: inout TextBuffer, _ ok: inout Bool) {
        switch terms.source {
        case .raw:
            guard var offset = terms.seek(i) else { break }
            if writeTerm(terms.bytes, offset: &offset, into: &out) { terms.printed(i, end: offset) } else { ok = false }
            return
        case .decoded:
            if i < terms.decoded.count {
                out.append(utf8: term(terms.decoded[i]))
                return
            }
        case .unreadable:
            break
        }
        if event.flags.contains(.payloadTruncated) {
            // A payload cut to depth 0 keeps no term.
            let cut = payload.count >= 2 && payload[0] == Payload.cutTag
            out.append(utf8: cut ? "..." : "<<\(payload.count) bytes, cut>>")
        }
    }

    /// A call's argument list, `1, {a,b}`; false (nothing written) when the payload's first term
    /// is not a proper list.
    private func appendArguments(_ terms: inout TermWalk, _ out: inout TextBuffer, ok: inout Bool) -> Bool {
        switch terms.source {
        case .unreadable:
            return false
        case .decoded:
            guard let first = terms.decoded.first else { return false }
            // A cut argument list: `m:f(1, 2, ...)`.
            if case .improperList(let args, let tail) = first, CutMarker.isMarker(tail) {
                out.append(utf8: (args.map(term) + ["..."]).joined(separator: ", "))
                return true
            }
            guard let args = first.listElements else { return false }
            out.append(utf8: args.map(term).joined(separator: ", "))
            return true
        case .raw:
            let bytes = terms.bytes
            guard let start = terms.seek(0) else { return false }
            var scan = TermCursor(bytes, offset: start)
            switch scan.peek() {
            case ExternalTag.nil:
                terms.printed(0, end: start + 1)
                return true
            case ExternalTag.string:
                _ = scan.u8()
                guard let n = scan.u16(), scan.remaining >= n else { return false }
                for i in 0..<n {
                    if i > 0 { out.append(44, 32) }
                    let value = bytes.load(fromByteOffset: scan.offset + i, as: UInt8.self)
                    if elixir {
                        out.append(utf8: term(.integer(Int64(value))))
                    } else {
                        NumberText.append(Int64(value), to: &out)
                    }
                }
                terms.printed(0, end: scan.offset + n)
                return true
            case ExternalTag.list:
                // Only a proper list is an argument list: an improper one prints as the term it is.
                let mark = out.count
                guard let n = scan.listHeader() else { return false }
                for i in 0..<n {
                    if i > 0 { out.append(44, 32) }
                    var offset = scan.offset
                    if !writeTerm(bytes, offset: &offset, into: &out) {
                        ok = false
                        return true
                    }
                    scan.offset = offset
                }
                guard scan.peek() == ExternalTag.nil else {
                    out.truncate(to: mark)
                    return false
                }
                terms.printed(0, end: scan.offset + 1)
                return true
            default:
                return false
            }
        }
    }

    private mutating func appendProcessWithName(_ id: ProcessID, _ out: inout TextBuffer) {
        if cache.append(.processWithName, id, &out) { return }
        cache.store(.processWithName, id, processWithName(id), &out)
    }

    private mutating func appendProcess(_ id: ProcessID, _ out: inout TextBuffer) {
        if cache.append(.process, id, &out) { return }
        cache.store(.process, id, process(id), &out)
    }

    private mutating func appendFunction(_ id: FunctionID, _ out: inout TextBuffer) {
        if cache.append(.function, id, &out) { return }
        cache.store(.function, id, function(id), &out)
    }

    /// `mod:fun`, `'Elixir.Mod':fun` as `Mod.fun`, or `undefined`.
    private mutating func appendCallee(_ id: FunctionID, _ out: inout TextBuffer) {
        if cache.append(.callee, id, &out) { return }
        cache.store(.callee, id, callee(id), &out)
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

/// A payload's terms as a line prints them, first to last: raw terms found one after the other as
/// they print (no scan ahead), or the decoded terms of a cut payload.
struct TermWalk {
    enum Source { case raw, decoded, unreadable }

    let source: Source
    /// The payload (`raw`).
    let bytes: UnsafeRawBufferPointer
    /// The terms of a cut payload (`decoded`).
    let decoded: [Term]
    /// The raw term at `offset` is term number `index`.
    private var index = 0
    private var offset = 0
    /// A raw term could not be skipped: the payload is not a sequence of whole terms.
    private var broken = false

    static var unreadable: TermWalk {
        TermWalk(source: .unreadable, bytes: UnsafeRawBufferPointer(start: nil, count: 0), decoded: [])
    }

    private init(source: Source, bytes: UnsafeRawBufferPointer, decoded: [Term]) {
        self.source = source
        self.bytes = bytes
        self.decoded = decoded
    }

    init(_ payload: UnsafeRawBufferPointer, flags: EventFlags) {
        bytes = payload
        if flags.contains(.payloadTruncated) {
            let cut = Payload.cut(payload, flags: flags)
            source = cut == nil ? .unreadable : .decoded
            decoded = cut?.terms ?? []
        } else {
            source = .raw
            decoded = []
        }
    }

    /// Where raw term `i` starts (skipping the terms before it); nil when the payload has none.
    @inline(__always)
    mutating func seek(_ i: Int) -> Int? {
        guard source == .raw, !broken else { return nil }
        if i == index { return offset < bytes.count ? offset : nil }
        return skip(to: i)
    }

    private mutating func skip(to i: Int) -> Int? {
        if i < index { index = 0; offset = 0 }
        var cursor = TermCursor(bytes, offset: offset)
        while index < i {
            guard cursor.offset < bytes.count else { return nil }
            guard cursor.skipTerm() else { broken = true; return nil }
            index += 1
        }
        offset = cursor.offset
        return offset < bytes.count ? offset : nil
    }

    /// Raw term `i` printed, ending at `end`.
    @inline(__always)
    mutating func printed(_ i: Int, end: Int) {
        index = i + 1
        offset = end
    }

    /// True when the rest of a raw payload is whole terms (the line printed the payload fairly).
    @inline(__always)
    mutating func finish() -> Bool {
        guard source == .raw else { return true }
        if broken { return false }
        return offset >= bytes.count || skipsToEnd()
    }

    private func skipsToEnd() -> Bool {
        var cursor = TermCursor(bytes, offset: offset)
        while cursor.offset < bytes.count {
            guard cursor.skipTerm() else { return false }
        }
        return true
    }
}

/// Printed texts by dictionary id, and the heads of lines (`<0.80.0> (worker) call m:f(`) by what
/// makes them: bytes in one arena, found by (offset, length) spans, so a hit copies bytes and
/// touches no reference count.
struct TextCache: Sendable {
    /// Offset << 24 | (length + 1) into `arena` by id; 0 when not printed yet.
    var processWithName: [UInt64] = []
    var process: [UInt64] = []
    var function: [UInt64] = []
    var callee: [UInt64] = []
    var arena: [UInt8] = []

    /// Line heads (`<0.80.0> (worker) call m:f(`).
    var heads = HeadCache()

    @inline(__always)
    static func span(_ spans: [UInt64], _ id: UInt32) -> UInt64 {
        let i = Int(id)
        return i < spans.count ? spans[i] : 0
    }

    enum Table { case processWithName, process, function, callee }

    @inline(__always)
    func span(_ table: Table, _ id: UInt32) -> UInt64 {
        switch table {
        case .processWithName: return Self.span(processWithName, id)
        case .process: return Self.span(process, id)
        case .function: return Self.span(function, id)
        case .callee: return Self.span(callee, id)
        }
    }

    /// Appends the cached text; false when there is none yet.
    @inline(__always)
    func append(_ table: Table, _ id: UInt32, _ out: inout TextBuffer) -> Bool {
        let span = span(table, id)
        guard span != 0 else { return false }
        Self.copy(arena, span, &out)
        return true
    }

    @inline(__always)
    static func copy(_ arena: [UInt8], _ span: UInt64, _ out: inout TextBuffer) {
        let offset = Int(span >> 24)
        let length = Int(span & 0xFF_FFFF) - 1
        arena.withUnsafeBytes { out.append(bytes: UnsafeRawBufferPointer(rebasing: $0[offset..<(offset + length)])) }
    }

    mutating func store(_ table: Table, _ id: UInt32, _ text: String, _ out: inout TextBuffer) {
        let i = Int(id)
        let bytes = Array(text.utf8)
        // Ids are dense; an absurd one (damage) or a text too long for a span is printed without being cached.
        if i < 1 << 24, bytes.count < 0xFF_FFFF, arena.count < 1 << 39 {
            let span = UInt64(arena.count) << 24 | UInt64(bytes.count + 1)
            switch table {
            case .processWithName: Self.set(&processWithName, i, span)
            case .process: Self.set(&process, i, span)
            case .function: Self.set(&function, i, span)
            case .callee: Self.set(&callee, i, span)
            }
            arena.append(contentsOf: bytes)
        }
        out.append(contentsOf: bytes)
    }

    static func set(_ spans: inout [UInt64], _ i: Int, _ span: UInt64) {
        if i >= spans.count { spans.append(contentsOf: repeatElement(0, count: i + 1 - spans.count)) }
        spans[i] = span
    }
}

/// Pieces of printed lines by the three ids that make them, direct-mapped by a hash of the key (a
/// slot is overwritten by the next key that maps to it), bytes in one arena.
struct HeadCache: Sendable {
    struct Key: Equatable, Sendable {
        var a: UInt32 = 0
        var b: UInt32 = 0
        /// Never 0 in a used slot.
        var c: UInt32 = 0
    }

    static let slots = 4096
    private var keys: [Key] = []
    private var spans: [UInt64] = []
    private var arena: [UInt8] = []
    /// Pieces are forgotten once their arena holds this much (a capture of many processes).
    static let arenaLimit = 1 << 20

    @inline(__always)
    static func slot(_ key: Key) -> Int {
        let h = (key.a &* 0x9E37_79B1) ^ (key.b &* 0x85EB_CA77) ^ (key.c &* 0xC2B2_AE3D)
        return Int(h >> 20)  // 12 bits: `slots`
    }

    /// Appends the piece for `key`; false when there is none.
    @inline(__always)
    func append(_ key: Key, _ out: inout TextBuffer) -> Bool {
        let i = Self.slot(key)
        guard i < keys.count, keys[i] == key else { return false }
        TextCache.copy(arena, spans[i], &out)
        return true
    }

    /// Remembers `out`'s bytes from `start` on as the piece for `key`.
    mutating func store(_ key: Key, from start: Int, of out: borrowing TextBuffer) {
        let length = out.count - start
        guard length < 4096 else { return }
        if keys.isEmpty || arena.count + length > Self.arenaLimit {
            keys = [Key](repeating: Key(), count: Self.slots)
            spans = [UInt64](repeating: 0, count: Self.slots)
            arena.removeAll(keepingCapacity: true)
        }
        let i = Self.slot(key)
        keys[i] = key
        spans[i] = UInt64(arena.count) << 24 | UInt64(length + 1)
        out.withUnsafeBytes { arena.append(contentsOf: UnsafeRawBufferPointer(rebasing: $0[start...])) }
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
