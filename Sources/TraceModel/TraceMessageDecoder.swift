// Decodes OTP trace messages (`term_to_binary` of `{trace | trace_ts | seq_trace, ...}` tuples, as
// trace ports write them) straight into the columns of an `EventBatch`. Atoms, pids and functions
// are interned through raw-byte tables, so the common kinds allocate nothing per event; arguments,
// messages, return values and reasons are copied as raw ETF into the payload column (capped, or
// reduced to their shape with `redact`).
import BeamTerm

/// What clock a capture's times come from.
public enum TimeBase: UInt8, Sendable, Hashable, Codable {
    /// No timestamps seen (yet).
    case none = 0
    /// `monotonic_timestamp` / `strict_monotonic_timestamp`: the node's monotonic nanoseconds.
    case monotonic = 1
    /// `timestamp` / `cpu_timestamp` (`{Mega, Sec, Micro}`): nanoseconds since 1970 (µs resolution).
    case system = 2
}

public struct TraceDecoderOptions: Sendable, Hashable {
    /// Payloads (all terms of one event together) longer than this are cut and flagged truncated.
    public var payloadLimit: Int
    /// Keep only the shape of arguments, messages, return values and reasons.
    public var redact: Bool
    public init(payloadLimit: Int = 256, redact: Bool = false) {
        self.payloadLimit = payloadLimit
        self.redact = redact
    }
}

public struct TraceMessageDecoder {
    public var dictionaries: TraceDictionaries
    public var options: TraceDecoderOptions
    /// The time of the last timestamped event (events without a timestamp repeat it).
    public var lastTime: Int64 = 0
    public private(set) var timeBase: TimeBase = .none

    var atomTable = RawTable(capacity: 256)
    var processTable = RawTable(capacity: 1024)
    var functionTable = RawTable(capacity: 1024)
    /// Event kind per atom id (255: not a trace tag).
    var kindByAtom: [UInt8] = [255]
    /// The node of each process id, for the event's node column.
    var processNodes: [NodeID] = [0]
    var redactScratch: [UInt8] = []
    /// The depth the agent cut the payload of the message being decoded to (see TermCut).
    var agentCutDepth: UInt8?
    /// The last pids interned, by raw bytes: trace streams name the same few processes in a row.
    var recentPids: (RecentPid, RecentPid) = (RecentPid(), RecentPid())
    /// The pids seen lately by raw bytes, direct-mapped: the processes alive at one time stay in a
    /// cache-sized table, so a system spawning a million short-lived ones misses the larger tables
    /// only for each new one.
    /// A pid it does not hold goes to the dictionary's own index: for a new pid one probe that
    /// reads no entry, for a known one a probe and its entry (a cache behind it would cost as many
    /// misses for the known pid and one more for each new one).
    var pidCache = PidCache()
    /// The last function keys interned (module and function atoms' bytes, arity): calls and their
    /// returns name the same few functions in a row.
    var recentFunctions: (RecentPid, RecentPid) = (RecentPid(), RecentPid())
    /// Short atoms (trace tags, modules, functions, nodes) by raw bytes, checked before the table.
    var atomCache = AtomCache()
    /// The last message prefixes decoded (tuple head, pid, tag, function), with their event
    /// (TraceMessageDecoder+Prefixes.swift): a hot function's calls and returns skip the full decode.
    var prefixes = MessagePrefixes()

    /// Pids the raw-bytes table (for pids the PidCache cannot key: node names beyond 24 characters,
    /// old PID_EXT) remembers before it starts over.
    public static let processCacheLimit = 1 << 16
    /// Slots of the direct-mapped cache of recent pids in front of it.
    public static let pidCacheSlots = 1 << PidCache.bits
    static let ownKinds: Set<EventKind> = [.sample, .monitor, .drop, .marker, .seqTrace]
    /// The largest size a compressed trace message may inflate to (payloads are capped far below it).
    public static let maxUncompressedSize = 16 << 20

    public init(dictionaries: TraceDictionaries = TraceDictionaries(), options: TraceDecoderOptions = .init()) {
        self.dictionaries = dictionaries
        self.options = options
        for atom in dictionaries.atoms.indices.dropFirst() { noteAtom(AtomID(atom)) }
        processNodes = dictionaries.processes.map { $0.identity.node }
    }

    // MARK: entry points

    /// Decodes one trace message (starting with the version byte 131) and appends its event.
    public mutating func decode(_ body: UnsafeRawBufferPointer, into batch: inout EventBatch) throws(TraceDecodingError) {
        var scan = TermCursor(body)
        guard scan.u8() == 131 else { throw TraceDecodingError("not a term_to_binary term (no version byte 131)", offset: 0) }
        if scan.peek() == 80 {
            try decodeCompressed(body, into: &batch)
            return
        }
        try decodeMessage(&scan, exact: true, into: &batch)
    }

    /// Decodes one trace message written without its version byte (an element of a list term, as in
    /// the live agent's batches) and appends its event. The bytes are only read.
    public mutating func decode(element body: UnsafeRawBufferPointer, into batch: inout EventBatch) throws(TraceDecodingError) {
        var scan = TermCursor(body)
        try decodeMessage(&scan, exact: true, into: &batch)
    }

    /// Decodes the trace message (without its version byte) that starts at the cursor, within a larger
    /// term (an element of the live agent's batch list), appends its event and leaves the cursor right
    /// after it. On an error nothing is appended and the cursor is anywhere inside the message.
    public mutating func decode(next scan: inout TermCursor, into batch: inout EventBatch) throws(TraceDecodingError) {
        try decodeMessage(&scan, exact: false, into: &batch)
    }

    /// `exact`: the message must end where the bytes end.
    private mutating func decodeMessage(_ scan: inout TermCursor, exact: Bool, into batch: inout EventBatch)
        throws(TraceDecodingError)
    {
        let start = batch.count
        let payloadStart = batch.payloadBytes.count
        do throws(TraceDecodingError) {
            if let slot = prefixes.match(scan) {
                try decodeWithPrefix(slot, &scan, into: &batch)
            } else {
                try decodeTuple(&scan, into: &batch)
            }
            if exact && scan.remaining != 0 {
                throw TraceDecodingError("\(scan.remaining) bytes after the trace tuple", offset: scan.offset)
            }
        } catch {
            if batch.count > start { batch.truncate(to: start) }
            if batch.payloadBytes.count > payloadStart { batch.payloadBytes.removeSubrange(payloadStart...) }
            throw error
        }
    }

    public mutating func decode(_ bytes: [UInt8], into batch: inout EventBatch) throws(TraceDecodingError) {
        let result = bytes.withUnsafeBytes { buffer in
            Result { () throws(TraceDecodingError) in try decode(buffer, into: &batch) }
        }
        try result.get()
    }

    /// Appends a drop event: `count` trace messages were lost at the source.
    public mutating func appendDrop(count: Int64, into batch: inout EventBatch) {
        batch.appendWithPayloadInPlace(TraceEvent(time: lastTime, kind: .drop, flags: .noTimestamp, value: count))
    }

    // MARK: tuples

    private mutating func decodeCompressed(_ body: UnsafeRawBufferPointer, into batch: inout EventBatch) throws(TraceDecodingError) {
        var offset = 0
        let term: Term
        do {
            term = try TermDecoder(maxUncompressedSize: Self.maxUncompressedSize).decode(body, offset: &offset,
                                                                                        versioned: true)
        } catch {
            throw TraceDecodingError("bad compressed term: \(error)", offset: error.offset)
        }
        let plain = TermEncoder().encode(term)
        try decode(plain, into: &batch)
    }

    private mutating func decodeTuple(_ scan: inout TermCursor, into batch: inout EventBatch) throws(TraceDecodingError) {
        let tupleStart = scan.offset
        guard let arity = scan.tupleArity() else { throw TraceDecodingError("expected a trace tuple", offset: scan.offset) }
        let headOffset = scan.offset
        guard arity >= 3, let head = scan.atomText() else {
            throw TraceDecodingError("expected a tuple starting with trace, trace_ts or seq_trace", offset: headOffset)
        }
        let headText = scan.slice(head.start, head.start + head.length)
        if arity == 3, Self.equals(headText, "beamtrace_cut") {
            // The agent cut this message's payload on the node: {beamtrace_cut, Depth, TraceTuple}.
            guard let depth = scan.integer(), (0...255).contains(depth) else {
                throw TraceDecodingError("malformed beamtrace_cut depth", offset: scan.offset)
            }
            agentCutDepth = UInt8(depth)
            defer { agentCutDepth = nil }
            try decodeTuple(&scan, into: &batch)
            return
        }
        if Self.equals(headText, "seq_trace") {
            try decodeSeqTrace(&scan, arity: arity, into: &batch)
            return
        }
        let timestamped: Bool
        if Self.equals(headText, "trace_ts") {
            timestamped = true
        } else if Self.equals(headText, "trace") {
            timestamped = false
        } else {
            throw TraceDecodingError("not a trace message: first element is not trace, trace_ts or seq_trace", offset: headOffset)
        }
        // Tracee.
        let traceeOffset = scan.offset
        guard let traceeTag = scan.peek(), scan.isPidOrPortTag(traceeTag), let tracee = internProcess(&scan) else {
            throw TraceDecodingError("expected the traced pid or port", offset: traceeOffset)
        }
        // Tag.
        let tagOffset = scan.offset
        guard let tagAtom = internAtom(&scan) else { throw TraceDecodingError("expected the trace tag atom", offset: tagOffset) }
        let kindRaw = Int(tagAtom) < kindByAtom.count ? kindByAtom[Int(tagAtom)] : 255
        guard kindRaw != 255, let kind = EventKind(rawValue: kindRaw) else {
            throw TraceDecodingError("unknown trace tag '\(dictionaries.atom(tagAtom))'", offset: tagOffset)
        }
        var rest = arity - 3 - (timestamped ? 1 : 0)
        var event = TraceEvent(time: lastTime, node: processNodes[Int(tracee)], pid: tracee, kind: kind)
        if traceeTag != 88 && traceeTag != 103 { event.flags.insert(.tracedPort) }
        // Up to three payload terms: main, destination, extras (as byte ranges of `scan`).
        var payloadRanges: (Range<Int>, Range<Int>, Range<Int>) = (0..<0, 0..<0, 0..<0)
        // Where the bytes that fix the event (all but the timestamp and the payload term) end, for
        // the shapes MessagePrefixes can replay.
        var prefixEnd: Int?

        func need(_ n: Int, _ scan: TermCursor) throws(TraceDecodingError) {
            if rest < n {
                throw TraceDecodingError("\(kind.otpName) trace message has too few elements (\(arity))", offset: scan.offset)
            }
            rest -= n
        }
        func skipRange(_ scan: inout TermCursor, _ what: String) throws(TraceDecodingError) -> Range<Int> {
            let start = scan.offset
            guard scan.skipTerm() else { throw TraceDecodingError("malformed \(what)", offset: start) }
            return start..<scan.offset
        }

        switch kind {
        case .call:
            try need(1, scan)
            let (mfa, argsRange, argCount) = try readCallMFA(&scan)
            event.mfa = mfa
            if let argsRange {
                payloadRanges.0 = argsRange
            } else {
                event.flags.insert(.arityOnly)
            }
            event.value = Int64(argCount)
            if argsRange == nil { prefixEnd = scan.offset }
        case .returnFrom, .exceptionFrom:
            try need(2, scan)
            event.mfa = try readMFA(&scan)
            prefixEnd = scan.offset
            payloadRanges.0 = try skipRange(&scan, kind == .returnFrom ? "return value" : "exception")
        case .returnTo, .in, .out, .inExiting, .outExiting, .outExited:
            try need(1, scan)
            let at = scan.offset
            if scan.peek() == 104 {
                event.mfa = try readMFA(&scan)
            } else if scan.peek() == 100 || scan.peek() == 115 || scan.peek() == 118 || scan.peek() == 119 {
                // Ports: the command (an atom) being run; `undefined` for return_to.
                guard let atom = internAtom(&scan) else { throw TraceDecodingError("malformed atom", offset: at) }
                event.value = Int64(atom)
            } else {
                guard scan.skipTerm() else { throw TraceDecodingError("malformed function", offset: at) }
            }
        case .send, .sendToNonExistingProcess:
            try need(2, scan)
            payloadRanges.0 = try skipRange(&scan, "message")
            let destination = scan.offset
            if let peer = try readDestination(&scan) {
                event.peer = peer
            } else {
                scan.offset = destination
                payloadRanges.1 = try skipRange(&scan, "destination")
                event.flags.insert(.destinationInPayload)
            }
        case .receive, .exit, .closed, .gcMinorStart, .gcMinorEnd, .gcMajorStart, .gcMajorEnd, .gcMaxHeapSize:
            try need(1, scan)
            payloadRanges.0 = try skipRange(&scan, "trace message element")
        case .spawn, .spawned:
            try need(2, scan)
            let at = scan.offset
            guard let other = internProcess(&scan) else { throw TraceDecodingError("expected a pid", offset: at) }
            event.peer = other
            let (mfa, argsRange, argCount) = try readCallMFA(&scan)
            event.mfa = mfa
            event.value = Int64(argCount)
            if let argsRange { payloadRanges.0 = argsRange } else { event.flags.insert(.arityOnly) }
            dictionaries.setInitialCall(mfa, for: kind == .spawn ? other : tracee)
        case .link, .unlink, .gettingLinked, .gettingUnlinked:
            try need(1, scan)
            let at = scan.offset
            if let tag = scan.peek(), scan.isPidOrPortTag(tag), let other = internProcess(&scan) {
                event.peer = other
            } else {
                scan.offset = at
                payloadRanges.0 = try skipRange(&scan, "link partner")
                event.flags.insert(.destinationInPayload)
                payloadRanges.1 = payloadRanges.0
                payloadRanges.0 = 0..<0
            }
        case .register, .unregister:
            try need(1, scan)
            let at = scan.offset
            guard let name = internAtom(&scan) else { throw TraceDecodingError("expected a registered name", offset: at) }
            event.value = Int64(name)
            // The name stays after unregister: it is how people find the process later.
            // An unregister also tells the name a process had (registered before tracing began).
            if kind == .register || dictionaries.process(tracee)?.registeredName == 0 {
                dictionaries.setRegisteredName(name, for: tracee)
            }
        case .open:
            try need(2, scan)
            let at = scan.offset
            guard let owner = internProcess(&scan) else { throw TraceDecodingError("expected the port owner", offset: at) }
            event.peer = owner
            payloadRanges.0 = try skipRange(&scan, "driver name")
        case .seqTrace, .sample, .monitor, .drop, .marker:
            throw TraceDecodingError("unknown trace tag '\(kind.otpName)'", offset: tagOffset)
        }
        if rest > 0 {
            let start = scan.offset
            for _ in 0..<rest {
                guard scan.skipTerm() else { throw TraceDecodingError("malformed extra element", offset: scan.offset) }
            }
            payloadRanges.2 = start..<scan.offset
            event.flags.insert(.hasExtra)
        } else if let prefixEnd, agentCutDepth == nil {
            prefixes.insert(scan.slice(tupleStart, prefixEnd), event: event, payloadTerm: !payloadRanges.0.isEmpty,
                            timestamped: timestamped)
        }
        if timestamped {
            try readTimestamp(&scan, into: &event)
        } else {
            event.flags.insert(.noTimestamp)
        }
        appendPayload(scan, payloadRanges, event: &event, into: &batch)
        batch.appendWithPayloadInPlace(event)
    }

    private mutating func decodeSeqTrace(_ scan: inout TermCursor, arity: Int, into batch: inout EventBatch) throws(TraceDecodingError) {
        guard arity == 3 || arity == 4 else {
            throw TraceDecodingError("seq_trace message with \(arity) elements", offset: scan.offset)
        }
        var event = TraceEvent(time: lastTime, kind: .seqTrace)
        let labelStart = scan.offset
        var labelScan = scan
        if let label = labelScan.integer() {
            event.value = label
            scan = labelScan
        } else {
            scan.offset = labelStart
            guard scan.skipTerm() else { throw TraceDecodingError("malformed seq_trace label", offset: labelStart) }
        }
        let infoStart = scan.offset
        guard scan.skipTerm() else { throw TraceDecodingError("malformed seq_trace information", offset: infoStart) }
        let infoRange = infoStart..<scan.offset
        if arity == 4 { try readTimestamp(&scan, into: &event) } else { event.flags.insert(.noTimestamp) }
        appendPayload(scan, (infoRange, 0..<0, 0..<0), event: &event, into: &batch)
        batch.appendWithPayloadInPlace(event)
    }

    // MARK: elements

    /// `{M, F, Args | Arity}`: the function id, the args list's bytes (nil with an arity), the arity.
    private mutating func readCallMFA(_ scan: inout TermCursor) throws(TraceDecodingError) -> (FunctionID, Range<Int>?, Int) {
        let at = scan.offset
        guard scan.tupleArity() == 3 else { throw TraceDecodingError("expected {Module, Function, Arguments}", offset: at) }
        let moduleStart = scan.offset
        guard scan.atomText() != nil else { throw TraceDecodingError("expected a module name", offset: moduleStart) }
        let moduleRange = moduleStart..<scan.offset
        let functionStart = scan.offset
        guard scan.atomText() != nil else { throw TraceDecodingError("expected a function name", offset: functionStart) }
        let functionRange = functionStart..<scan.offset
        let argsStart = scan.offset
        var arity: Int
        var argsRange: Range<Int>?
        switch scan.peek() {
        case 106:
            scan.offset += 1
            arity = 0
            argsRange = argsStart..<scan.offset
        case 107:
            scan.offset += 1
            guard let n = scan.u16(), scan.skip(n) else { throw TraceDecodingError("malformed argument list", offset: argsStart) }
            arity = n
            argsRange = argsStart..<scan.offset
        case 108:
            var probe = scan
            probe.offset += 1
            guard let n = probe.u32() else { throw TraceDecodingError("malformed argument list", offset: argsStart) }
            guard scan.skipTerm() else { throw TraceDecodingError("malformed argument list", offset: argsStart) }
            arity = Int(n)
            argsRange = argsStart..<scan.offset
        default:
            guard let n = scan.integer(), n >= 0, n <= 255 else {
                throw TraceDecodingError("expected an argument list or an arity", offset: argsStart)
            }
            arity = Int(n)
        }
        let id = internFunction(scan, moduleRange, functionRange, arity: arity)
        return (id, argsRange, arity)
    }

    /// `{M, F, Arity}`.
    private mutating func readMFA(_ scan: inout TermCursor) throws(TraceDecodingError) -> FunctionID {
        let at = scan.offset
        guard scan.tupleArity() == 3 else { throw TraceDecodingError("expected {Module, Function, Arity}", offset: at) }
        let moduleStart = scan.offset
        guard scan.atomText() != nil else { throw TraceDecodingError("expected a module name", offset: moduleStart) }
        let functionStart = scan.offset
        guard scan.atomText() != nil else { throw TraceDecodingError("expected a function name", offset: functionStart) }
        let functionEnd = scan.offset
        guard let arity = scan.integer(), arity >= 0, arity <= 255 else {
            throw TraceDecodingError("expected an arity", offset: functionEnd)
        }
        return internFunction(scan, moduleStart..<functionStart, functionStart..<functionEnd, arity: Int(arity))
    }

    /// A send destination that is a process: pid, port, registered name or `{Name, Node}`; nil otherwise
    /// (the scan position is then unspecified).
    private mutating func readDestination(_ scan: inout TermCursor) throws(TraceDecodingError) -> ProcessID? {
        guard let tag = scan.peek() else { throw TraceDecodingError("missing destination", offset: scan.offset) }
        if scan.isPidOrPortTag(tag) { return internProcess(&scan) }
        if tag == 100 || tag == 115 || tag == 118 || tag == 119 {
            guard let atom = internAtom(&scan) else { return nil }
            return internIdentity(.name(atom))
        }
        if tag == 104 {
            var probe = scan
            guard probe.tupleArity() == 2, let name = internAtom(&probe), let node = internAtom(&probe) else { return nil }
            scan = probe
            return internIdentity(.remoteName(name, node: dictionaries.intern(node: node)))
        }
        return nil
    }

    mutating func readTimestamp(_ scan: inout TermCursor, into event: inout TraceEvent) throws(TraceDecodingError) {
        let at = scan.offset
        if scan.peek() == 104 {
            let arity = scan.tupleArity()
            if arity == 3, let mega = scan.integer(), let sec = scan.integer(), let micro = scan.integer() {
                event.time = (mega &* 1_000_000 &+ sec) &* 1_000_000_000 &+ micro &* 1000
                timeBase = .system
            } else if arity == 2, let ns = scan.integer(), scan.skipTerm() {
                event.time = ns
                timeBase = .monotonic
            } else {
                throw TraceDecodingError("malformed timestamp", offset: at)
            }
        } else if let ns = scan.integer() {
            event.time = ns
            timeBase = .monotonic
        } else {
            throw TraceDecodingError("malformed timestamp", offset: at)
        }
        lastTime = event.time
    }

    // MARK: payload

    mutating func appendPayload(_ scan: TermCursor, _ ranges: (Range<Int>, Range<Int>, Range<Int>),
                                        event: inout TraceEvent, into batch: inout EventBatch) {
        let total = ranges.0.count + ranges.1.count + ranges.2.count
        guard total > 0 else { return }
        let limit = options.payloadLimit
        if options.redact {
            redactScratch.removeAll(keepingCapacity: true)
            for range in [ranges.0, ranges.1, ranges.2] where !range.isEmpty {
                var inner = TermCursor(scan.slice(range.lowerBound, range.upperBound))
                PayloadShape.write(&inner, into: &redactScratch, depth: 0)
            }
            event.flags.insert(.payloadRedacted)
            if redactScratch.count > limit {
                event.flags.insert(.payloadTruncated)
                let cut = redactScratch.withUnsafeBytes { raw in
                    var ranges: [Range<Int>] = []
                    var walk = TermCursor(raw)
                    while walk.offset < raw.count {
                        let from = walk.offset
                        guard walk.skipTerm() else { return false }
                        ranges.append(from..<walk.offset)
                    }
                    return TermCut.cut(raw, ranges: ranges, limit: limit, into: &batch.payloadBytes)
                }
                if !cut { batch.payloadBytes.append(contentsOf: redactScratch[..<limit]) }
            } else {
                batch.payloadBytes.append(contentsOf: redactScratch)
            }
            return
        }
        if let depth = agentCutDepth, total <= limit {
            event.flags.insert(.payloadTruncated)
            batch.payloadBytes.append(Payload.cutTag)
            batch.payloadBytes.append(depth)
        } else if total > limit {
            // Cut to what io_lib:format("~P", [Term, Depth]) shows, for the largest depth that fits.
            event.flags.insert(.payloadTruncated)
            let all = scan.slice(0, scan.count)
            let ranges = [ranges.0, ranges.1, ranges.2].filter { !$0.isEmpty }
            if TermCut.cut(all, ranges: ranges, limit: limit, into: &batch.payloadBytes) { return }
        }
        var budget = total > limit ? limit : total
        // No array of the three ranges: this runs once per event and must not allocate.
        func copy(_ range: Range<Int>, _ budget: inout Int, _ batch: inout EventBatch) {
            guard !range.isEmpty, budget > 0 else { return }
            let n = min(range.count, budget)
            batch.payloadBytes.append(bytes: scan.slice(range.lowerBound, range.lowerBound + n))
            budget -= n
        }
        copy(ranges.0, &budget, &batch)
        copy(ranges.1, &budget, &batch)
        copy(ranges.2, &budget, &batch)
    }

    // MARK: interning

    static func equals(_ bytes: UnsafeRawBufferPointer, _ text: StaticString) -> Bool {
        guard bytes.count == text.utf8CodeUnitCount, let base = bytes.baseAddress else { return bytes.isEmpty && text.utf8CodeUnitCount == 0 }
        return memcmpRaw(base, UnsafeRawPointer(text.utf8Start), bytes.count)
    }

    /// Interns the atom at the scan position (any of the four atom encodings).
    mutating func internAtom(_ scan: inout TermCursor) -> AtomID? {
        let start = scan.offset
        guard let text = scan.atomText() else { return nil }
        let raw = scan.slice(start, scan.offset)
        let key = AtomCache.key(scan, from: start)
        if let key, let id = atomCache.find(key) { return id }
        if let id = atomTable.find(raw) {
            if let key { atomCache.insert(key, id) }
            return id
        }
        let bytes = scan.slice(text.start, text.start + text.length)
        let string = text.latin1
            ? String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) }))
            : String(decoding: bytes, as: UTF8.self)
        let id = dictionaries.intern(atom: string)
        atomTable.insert(raw, value: id)
        if let key { atomCache.insert(key, id) }
        noteAtom(id)
        return id
    }

    private mutating func noteAtom(_ id: AtomID) {
        while kindByAtom.count <= Int(id) { kindByAtom.append(255) }
        if let kind = EventKind(otpName: dictionaries.atom(id)), !Self.ownKinds.contains(kind) {
            kindByAtom[Int(id)] = kind.rawValue
        }
    }

    private mutating func internIdentity(_ identity: ProcessIdentity) -> ProcessID {
        let id = dictionaries.intern(process: identity)
        while processNodes.count <= Int(id) { processNodes.append(0) }
        processNodes[Int(id)] = identity.node
        return id
    }

    /// Interns the pid or port at the scan position.
    mutating func internProcess(_ scan: inout TermCursor) -> ProcessID? {
        let start = scan.offset
        var probe = scan
        if let length = Self.newPidLength(scan) {
            probe.offset = start + length
        } else {
            guard probe.skipTerm() else { return nil }
        }
        let raw = scan.slice(start, probe.offset)
        if let id = recentPids.0.match(raw) ?? recentPids.1.match(raw) {
            scan = probe
            return id
        }
        let key = PidCache.key(raw)
        if let key {
            if let id = pidCache.find(key) {
                recentPids.1 = recentPids.0
                recentPids.0 = RecentPid(raw, id)
                scan = probe
                return id
            }
        } else if let id = processTable.find(raw) {
            recentPids.1 = recentPids.0
            recentPids.0 = RecentPid(raw, id)
            scan = probe
            return id
        }
        guard let tag = scan.u8(), let nodeAtom = internAtom(&scan) else { return nil }
        let node = dictionaries.intern(node: nodeAtom)
        let identity: ProcessIdentity
        switch tag {
        case 88, 103:
            guard let id = scan.u32(), let serial = scan.u32() else { return nil }
            let creation = tag == 88 ? scan.u32() : scan.u8().map(UInt32.init)
            guard let creation else { return nil }
            identity = .pid(node: node, id: id, serial: serial, creation: creation)
        case 89:
            guard let id = scan.u32(), let creation = scan.u32() else { return nil }
            identity = .port(node: node, id: UInt64(id), creation: creation)
        case 102:
            guard let id = scan.u32(), let creation = scan.u8() else { return nil }
            identity = .port(node: node, id: UInt64(id), creation: UInt32(creation))
        case 120:
            guard let high = scan.u32(), let low = scan.u32(), let creation = scan.u32() else { return nil }
            identity = .port(node: node, id: UInt64(high) << 32 | UInt64(low), creation: creation)
        default:
            return nil
        }
        let id = internIdentity(identity)
        // The caches sit in front of the dictionary's own index, small enough to stay in cache (a
        // million short-lived processes would make a table of them a second, slower index).
        if let key {
            pidCache.insert(key, id)
        } else {
            if processTable.count >= Self.processCacheLimit { processTable.removeAll() }
            processTable.insert(raw, value: id)
        }
        recentPids.1 = recentPids.0
        recentPids.0 = RecentPid(raw, id)
        scan = probe
        return id
    }

    private mutating func internFunction(_ scan: TermCursor, _ module: Range<Int>, _ function: Range<Int>, arity: Int) -> FunctionID {
        let keyLength = module.count + function.count + 1
        return withUnsafeTemporaryAllocation(byteCount: keyLength, alignment: 1) { key -> FunctionID in
            let moduleBytes = scan.slice(module.lowerBound, module.upperBound)
            let functionBytes = scan.slice(function.lowerBound, function.upperBound)
            key.baseAddress!.copyMemory(from: moduleBytes.baseAddress!, byteCount: module.count)
            (key.baseAddress! + module.count).copyMemory(from: functionBytes.baseAddress!, byteCount: function.count)
            key[keyLength - 1] = UInt8(truncatingIfNeeded: arity)
            let raw = UnsafeRawBufferPointer(key)
            if let id = recentFunctions.0.match(raw) ?? recentFunctions.1.match(raw) { return id }
            if let id = functionTable.find(raw) {
                recentFunctions.1 = recentFunctions.0
                recentFunctions.0 = RecentPid(raw, id)
                return id
            }
            var moduleScan = TermCursor(moduleBytes)
            var functionScan = TermCursor(functionBytes)
            let moduleAtom = internAtom(&moduleScan) ?? 0
            let functionAtom = internAtom(&functionScan) ?? 0
            let id = dictionaries.intern(function: MFA(module: moduleAtom, function: functionAtom, arity: UInt32(arity)))
            functionTable.insert(raw, value: id)
            recentFunctions.1 = recentFunctions.0
            recentFunctions.0 = RecentPid(raw, id)
            return id
        }
    }
}

extension TraceMessageDecoder {
    /// The length of a whole NEW_PID_EXT with an atom node at the cursor (what trace ports write),
    /// read from its header without walking it; nil for anything else or when it does not fit.
    @inline(__always) static func newPidLength(_ scan: TermCursor) -> Int? {
        let at = scan.offset
        guard scan.count - at >= 4 else { return nil }
        let head = scan.slice(at, at + 4)
        guard head[0] == 88 else { return nil }
        let atomLength: Int
        switch head[1] {
        case 100, 118: atomLength = 3 + (Int(head[2]) << 8 | Int(head[3]))
        case 115, 119: atomLength = 2 + Int(head[2])
        default: return nil
        }
        let length = 1 + atomLength + 12
        return scan.count - at >= length ? length : nil
    }
}

/// A direct-mapped cache of atoms of up to 16 raw bytes (tag, length and text), keyed by those
/// bytes loaded as two words: a hit costs two compares, not a hash and a probe.
struct AtomCache {
    struct Key: Equatable {
        var low: UInt64
        var high: UInt64
        var length: Int
    }
    private var keys = [Key](repeating: Key(low: 0, high: 0, length: -1), count: 64)
    private var ids = [AtomID](repeating: 0, count: 64)

    /// The key of the atom that starts at `start` and ends at the cursor, when it is at most 16
    /// bytes and 16 bytes can be loaded from `start` (else nil: the table alone answers).
    @inline(__always) static func key(_ scan: TermCursor, from start: Int) -> Key? {
        let length = scan.offset - start
        guard length <= 16, scan.count - start >= 16 else { return nil }
        let bytes = scan.slice(start, start + 16)
        guard let base = bytes.baseAddress else { return nil }
        var low = base.loadUnaligned(as: UInt64.self)
        var high = base.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
        if length < 8 {
            low &= (1 << UInt64(8 * length)) &- 1
            high = 0
        } else if length < 16 {
            high &= (1 << UInt64(8 * (length - 8))) &- 1
        }
        return Key(low: low, high: high, length: length)
    }

    @inline(__always) private static func slot(_ key: Key) -> Int {
        Int(truncatingIfNeeded: ((key.low ^ key.high &* 0x9E37_79B9_7F4A_7C15) &* 0xBF58_476D_1CE4_E5B9) >> 58)
    }

    @inline(__always) func find(_ key: Key) -> AtomID? {
        let i = Self.slot(key)
        return keys[i] == key ? ids[i] : nil
    }

    @inline(__always) mutating func insert(_ key: Key, _ id: AtomID) {
        let i = Self.slot(key)
        keys[i] = key
        ids[i] = id
    }
}

/// Pids by their raw bytes (24 to 40 of them: NEW_PID_EXT with a node name of 8 to 24
/// characters), one per slot of a direct-mapped table of 4,096: a hit is one hash and five word
/// compares in 192 KiB, where the raw-bytes table is megabytes at its limit.
struct PidCache {
    static let bits = 12
    static let wordsPerSlot = 6
    /// The raw bytes as five words (offsets 0, 8, 16, count - 16, count - 8: together every byte).
    struct Key {
        var w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64, w4: UInt64
        var count: Int
    }
    /// Per slot: the key's five words, then count << 32 | id (count 0: empty).
    private var slots = [UInt64](repeating: 0, count: (1 << bits) * wordsPerSlot)

    @inline(__always) static func key(_ raw: UnsafeRawBufferPointer) -> Key? {
        let n = raw.count
        guard n >= 24, n <= 40, let base = raw.baseAddress else { return nil }
        return Key(w0: base.loadUnaligned(as: UInt64.self),
                   w1: base.loadUnaligned(fromByteOffset: 8, as: UInt64.self),
                   w2: base.loadUnaligned(fromByteOffset: 16, as: UInt64.self),
                   w3: base.loadUnaligned(fromByteOffset: n - 16, as: UInt64.self),
                   w4: base.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self), count: n)
    }

    @inline(__always) private static func slot(_ key: Key) -> Int {
        // The last 12 bytes are the pid's number, serial and creation.
        let h = (key.w3 ^ (key.w4 &* 0x9E37_79B9_7F4A_7C15)) &* 0xBF58_476D_1CE4_E5B9
        return Int(truncatingIfNeeded: h >> UInt64(64 - bits)) * wordsPerSlot
    }

    @inline(__always) func find(_ key: Key) -> ProcessID? {
        let i = Self.slot(key)
        return slots.withUnsafeBufferPointer { s -> ProcessID? in
            let meta = s[i + 5]
            guard Int(meta >> 32) == key.count, s[i + 4] == key.w4, s[i + 3] == key.w3, s[i] == key.w0,
                  s[i + 1] == key.w1, s[i + 2] == key.w2 else { return nil }
            return ProcessID(truncatingIfNeeded: meta)
        }
    }

    @inline(__always) mutating func insert(_ key: Key, _ id: ProcessID) {
        let i = Self.slot(key)
        slots.withUnsafeMutableBufferPointer { s in
            s[i] = key.w0; s[i + 1] = key.w1; s[i + 2] = key.w2; s[i + 3] = key.w3; s[i + 4] = key.w4
            s[i + 5] = UInt64(key.count) << 32 | UInt64(id)
        }
    }
}

/// One remembered pid: up to 64 raw bytes inline (no allocation) and its id.
struct RecentPid {
    var words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
    var count = -1
    var id: ProcessID = 0

    init() {}

    init(_ raw: UnsafeRawBufferPointer, _ id: ProcessID) {
        guard raw.count <= 64, let base = raw.baseAddress else { return }
        withUnsafeMutableBytes(of: &words) { $0.baseAddress!.copyMemory(from: base, byteCount: raw.count) }
        count = raw.count
        self.id = id
    }

    @inline(__always) func match(_ raw: UnsafeRawBufferPointer) -> ProcessID? {
        guard raw.count == count, let base = raw.baseAddress else { return nil }
        return withUnsafeBytes(of: words) { mine in
            // Pids of one node differ in their last bytes (number, serial, creation): those first.
            guard count >= 8, let m = mine.baseAddress else { return memcmpRaw(mine.baseAddress!, base, count) }
            return m.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self)
                == base.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self) && memcmpRaw(m, base, count - 8)
        } ? id : nil
    }
}

extension TraceMessageDecoder {
    /// Interns a pid given as a term (e.g. from ttb's `.ti` metadata); nil for anything else.
    public mutating func internProcess(_ term: Term) -> ProcessID? {
        var bytes: [UInt8] = []
        switch term {
        case .pid(let pid): TermEncoder().encodePid(pid, into: &bytes)
        case .port: TermEncoder().encode(term, into: &bytes)
        default: return nil
        }
        return bytes.withUnsafeBytes { raw -> ProcessID? in
            var scan = TermCursor(raw)
            return internProcess(&scan)
        }
    }
}
