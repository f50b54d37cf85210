// The recorder's side of the data path: trace-port frames from every node go through the one
// frame scanner and trace-message decoder into the capture writer; samples, system_monitor
// messages, drops and session markers become beamtrace's own event kinds (docs/EVENTS.md). Node
// times are moved onto the session clock here. One lock: nodes deliver from their own tasks.
import BeamTerm
import CaptureStore
import Foundation
import TraceModel

final class CaptureSink: @unchecked Sendable {
    struct NodeState {
        var name: String
        var nodeID: NodeID
        var offset: Int64
        var lastTime: Int64 = 0
        var events = 0
        var drops = 0
        var undecodable = 0
        /// The ingest loop import uses too; one per node (it remembers a stream's skipped run).
        var ingest: FrameIngest
        /// Bytes of frames received from the node so far (the offsets in problems).
        var streamOffset: Int64 = 0
    }

    struct IngestResult {
        var accepted: Int
        var limitReached: Bool
        /// Bytes of whole frames used (a stream keeps the rest for the next read).
        var consumed = 0
    }

    private let lock = NSLock()
    private var decoder: TraceMessageDecoder
    private let writer: CaptureWriter
    private var batch = EventBatch(reservingCapacity: 4096, payloadBytes: 64 << 10)
    private var nodes: [NodeState] = []
    private let scanner = FrameScanner()
    private let maxEvents: Int?
    private var _traceEvents = 0
    private var _drops = 0
    var traceEvents: Int { locked { _traceEvents } }
    var drops: Int { locked { _drops } }
    private var limitHit = false
    /// After `close`: data still arriving (a node's last messages) is not taken.
    private var isClosed = false
    /// With `strict`: the bad input that stopped the recording (nothing after it is taken).
    private var strictStop: String?
    private let strict: Bool
    private var problems: [String] = []
    private let encoder = TermEncoder()
    /// The latest session time written so far, and the session's stop marker (`stop`), written last.
    private var latestTime = Int64.min
    private var pendingStop: (payload: [UInt8], time: Int64)?
    /// Per node, its sample and system_monitor events (in time order: the controller stamps them as it
    /// handles them), held back until the node's trace events pass their time (see `ingestSamples`).
    private var heldSamples: [EventBatch] = []
    /// Per node, whether events were held at the last tick, and whether a trace batch came since.
    private var heldAtLastTick: [Bool] = []
    private var tracedSinceTick: [Bool] = []
    /// Held events beyond this many are written at once (a trace that never passes them).
    static let heldLimit = 4096

    /// Creates the capture a recording writes: the session's limits (ring size, event limit,
    /// payload cap) and the facts both transports record about it.
    static func create(_ options: RecordingOptions, sources: [String], nodes: [CaptureMeta.NodeInfo],
                       startReason: String, session: (inout CaptureMeta) -> Void = { _ in }) throws -> CaptureSink {
        var writerOptions = CaptureWriter.Options()
        writerOptions.retainBytes = options.limits.ringBytes
        var meta = CaptureMeta()
        meta.timeBase = "system"
        meta.sources = sources
        meta.nodes = nodes
        meta.startReason = startReason
        meta.payloadLimit = options.payloadLimit
        session(&meta)
        let writer = try CaptureWriter(creating: options.output, meta: meta, options: writerOptions)
        return CaptureSink(writer: writer, payloadLimit: options.payloadLimit, maxEvents: options.limits.maxEvents,
                           strict: options.strict)
    }

    init(writer: CaptureWriter, payloadLimit: Int, maxEvents: Int?, strict: Bool = false) {
        self.writer = writer
        self.strict = strict
        self.decoder = TraceMessageDecoder(options: TraceDecoderOptions(payloadLimit: payloadLimit))
        self.maxEvents = maxEvents
    }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    /// Registers a node; returns its index for the other calls.
    func addNode(name: String, offset: Int64) -> Int {
        locked {
            let id = decoder.dictionaries.intern(node: name)
            nodes.append(NodeState(name: name, nodeID: id, offset: offset, ingest: FrameIngest(strict: strict)))
            heldSamples.append(EventBatch())
            heldAtLastTick.append(false)
            tracedSinceTick.append(false)
            return nodes.count - 1
        }
    }

    func nodeState(_ index: Int) -> NodeState { locked { nodes[index] } }

    /// What the ingest loop skipped on every node: messages, bytes and the first places.
    var skipped: (messages: Int, bytes: Int64, places: [IngestDamage]) {
        locked {
            (nodes.reduce(0) { $0 + $1.ingest.framesSkipped }, nodes.reduce(0) { $0 + $1.ingest.bytesSkipped },
             Array(nodes.flatMap(\.ingest.damage).prefix(100)))
        }
    }

    var problemList: [String] { locked { problems } }

    /// Decodes a batch of trace-port frames from node `index` into the capture. Past `maxEvents`
    /// the rest is cut and `limitReached` is set (once).
    func ingestFrames(_ bytes: [UInt8], node index: Int, stream: Bool = false) throws -> IngestResult {
        try locked {
            guard !limitHit, strictStop == nil, !isClosed else {
                return IngestResult(accepted: 0, limitReached: false, consumed: bytes.count)
            }
            batch.removeAll()
            decoder.lastTime = nodes[index].lastTime
            var state = nodes[index]
            let before = (skipped: state.ingest.framesSkipped, dropped: state.ingest.dropped, damage: state.ingest.damageCount)
            var stopped: IngestStopped?
            var consumed = bytes.count
            do {
                consumed = try bytes.withUnsafeBytes { raw in
                    try state.ingest.consume(raw, streamOffset: state.streamOffset, source: state.name, atEnd: !stream,
                                             decoder: &decoder, into: &batch)
                }
                state.streamOffset += Int64(consumed)
                if !stream {
                    try state.ingest.finish(source: state.name, at: state.streamOffset)
                    if let tail = state.ingest.tail, tail.offset >= state.streamOffset - Int64(consumed) {
                        problems.append("\(state.name): a batch ended inside a frame (\(tail.bytes) bytes cut)")
                    }
                    state.streamOffset += Int64(bytes.count - consumed)
                }
            } catch let error as IngestStopped {
                stopped = error
            }
            nodes[index] = state
            var result = try finish(node: index, before: before, stopped: stopped)
            result.consumed = consumed
            return result
        }
    }

    /// Counts, the max-events cut, the clock shift, and the write — shared by both batch shapes.
    private func finishBatch(node index: Int, dropCount: Int, undecodable: Int, firstError: String?) throws -> IngestResult {
        if undecodable > 0 {
            nodes[index].undecodable += undecodable
            if let firstError, problems.count < 100 {
                problems.append("\(nodes[index].name): \(undecodable) trace message(s) could not be decoded: \(firstError)")
            }
        }
        nodes[index].lastTime = decoder.lastTime
        var limitReached = false
        var traceCount = batch.count - batch.kinds.lazy.filter { $0 == .drop }.count
        if let maxEvents, _traceEvents + traceCount >= maxEvents {
            // Keep events up to the limit (drop records before it stay).
            var kept = 0
            var cut = batch.count
            for i in 0..<batch.count where batch.kinds[i] != .drop {
                kept += 1
                if _traceEvents + kept == maxEvents {
                    cut = i + 1
                    break
                }
            }
            batch.truncate(to: cut)
            traceCount = batch.count - batch.kinds.lazy.filter { $0 == .drop }.count
            limitHit = true
            limitReached = true
        }
        shift(from: 0, offset: nodes[index].offset)
        _traceEvents += traceCount
        _drops += dropCount
        nodes[index].events += traceCount
        nodes[index].drops += dropCount
        tracedSinceTick[index] = true
        if !heldSamples[index].isEmpty, let last = batch.times.last { mergeHeld(node: index, upTo: last) }
        if !batch.isEmpty { try write() }
        return IngestResult(accepted: traceCount, limitReached: limitReached)
    }

    /// The session's failure when `--strict` stopped it at bad input.
    static func strictStopText(_ stopped: IngestStopped) -> String {
        let d = stopped.damage
        return "a bad trace message from \(d.source) at byte \(d.offset) of its stream (\(d.why)) stopped the recording "
            + "(--strict); every event before it is kept"
    }

    /// Decodes an agent batch (`term_to_binary` of a list of trace messages, oldest first; see
    /// beamtrace_agent.erl) into the capture, in list order, through the node's `FrameIngest` (the
    /// loop import uses): a message that does not decode is counted and skipped.
    func ingestAgentBatch(_ input: [UInt8], node index: Int, notABinary: String? = nil) throws -> IngestResult {
        try input.withUnsafeBytes { try ingestAgentBatch(raw: $0, node: index, notABinary: notABinary) }
    }

    /// The same for a batch read in place (the binary inside the received frame; only read).
    func ingestAgentBatch(raw bytes: UnsafeRawBufferPointer, node index: Int, notABinary: String? = nil) throws
        -> IngestResult
    {
        try locked {
            guard !limitHit, strictStop == nil, !isClosed else {
                return IngestResult(accepted: 0, limitReached: false, consumed: bytes.count)
            }
            batch.removeAll()
            decoder.lastTime = nodes[index].lastTime
            var state = nodes[index]
            let before = (skipped: state.ingest.framesSkipped, dropped: state.ingest.dropped, damage: state.ingest.damageCount)
            var stopped: IngestStopped?
            do {
                if let notABinary {
                    try state.ingest.skipInput(source: state.name, offset: state.streamOffset, bytes: 0,
                                               why: "an agent batch whose data is not a binary: \(notABinary.prefix(80))")
                } else {
                    try state.ingest.consumeAgentBatch(bytes, streamOffset: state.streamOffset, source: state.name,
                                                       decoder: &decoder, into: &batch)
                }
            } catch let error as IngestStopped {
                stopped = error
            }
            state.streamOffset += Int64(bytes.count)
            nodes[index] = state
            return try finish(node: index, before: before, stopped: stopped)
        }
    }

    /// After one input of node `index`: its damage noted, the good events written; a strict stop
    /// (`stopped`) is remembered and thrown once they are.
    private func finish(node index: Int, before: (skipped: Int, dropped: Int64, damage: Int),
                        stopped: IngestStopped?) throws -> IngestResult {
        let state = nodes[index]
        let undecodable = state.ingest.framesSkipped - before.skipped
        let dropCount = Int(state.ingest.dropped - before.dropped)
        var firstError: String?
        if state.ingest.damageCount > before.damage {
            let new = state.ingest.damage.suffix(max(0, min(state.ingest.damage.count, state.ingest.damageCount - before.damage)))
            firstError = new.first.map { "\($0)" }
            let skippedRuns = new.filter { !$0.why.hasPrefix("a trace message that does not decode") }
            if let run = skippedRuns.first, problems.count < 100 { problems.append("\(run)") }
        }
        if let stopped { strictStop = "\(stopped)" }
        let result = try finishBatch(node: index, dropCount: dropCount, undecodable: undecodable, firstError: firstError)
        if let stopped { throw stopped }
        return result
    }

    private func shift(from start: Int, offset: Int64) {
        guard offset != 0 else { return }
        for i in start..<batch.count { batch.times[i] &+= offset }
    }

    /// One sample message: `Procs` = [{Pid, QueueLen, CurrentFunction, InfoMap}], `Totals` a map.
    /// Returns the longest queue seen (for `--until-queue`) with its process.
    @discardableResult
    func ingestSamples(node index: Int, time: Int64, processes: [Term], totals: Term) throws -> (Int64, Term)? {
        try locked {
            guard !isClosed else { return nil }
            // A sample is stamped when it is taken, while trace events from before it may still be on
            // their way (in the tracer's batch, in flight, queued here): written at once it would land
            // among later events and its block would have to be sorted. It waits for the node's trace
            // batch that passes its time (finishBatch); the ticker writes it when the node sends no
            // trace for a whole tick, the close in any case.
            batch.removeAll()
            let state = nodes[index]
            let sessionTime = time &+ state.offset
            var longest: (Int64, Term)?
            for entry in processes {
                guard case .tuple(let t) = entry, t.count == 4, let queue = t[1].intValue,
                      let pid = decoder.internProcess(t[0]) else { continue }
                var mfa: FunctionID = 0
                if case .tuple(let f) = t[2], f.count == 3, let m = f[0].atomName, let fn = f[1].atomName,
                   let a = f[2].intValue {
                    mfa = decoder.dictionaries.intern(module: m, function: fn, arity: Int(a))
                }
                noteProcessInfo(pid, info: t[3])
                var payload: [UInt8] = []
                encoder.encode(t[3], into: &payload)
                batch.append(TraceEvent(time: sessionTime, node: state.nodeID, pid: pid, kind: .sample, mfa: mfa,
                                        value: queue), payload: payload)
                if queue > (longest?.0 ?? 0) { longest = (queue, t[0]) }
            }
            var payload: [UInt8] = []
            encoder.encode(totals, into: &payload)
            let runQueue = mapValue(totals, "run_queue")?.intValue ?? 0
            batch.append(TraceEvent(time: sessionTime, node: state.nodeID, kind: .sample, value: runQueue), payload: payload)
            heldSamples[index].insert(batch, range: 0..<batch.count, at: heldSamples[index].count)
            if heldSamples[index].count > Self.heldLimit { try writeHeldSamples(node: index) }
            return longest
        }
    }

    /// `[{Pid, RegisteredName | [], InitialCall | []}]` from the agent (`beamtrace_agent:names/1`).
    func noteNames(_ entries: [Term]) {
        locked {
            for entry in entries {
                guard case .tuple(let t) = entry, t.count == 3, let pid = decoder.internProcess(t[0]) else { continue }
                noteProcessInfo(pid, info: .map(unordered: [MapPair(.atom("registered_name"), t[1]),
                                                            MapPair(.atom("initial_call"), t[2])]))
            }
        }
    }

    private func noteProcessInfo(_ pid: ProcessID, info: Term) {
        if let name = mapValue(info, "registered_name")?.atomName {
            decoder.dictionaries.setRegisteredName(decoder.dictionaries.intern(atom: name), for: pid)
        }
        if case .tuple(let f)? = mapValue(info, "initial_call"), f.count == 3, let m = f[0].atomName,
           let fn = f[1].atomName, let a = f[2].intValue {
            decoder.dictionaries.setInitialCall(decoder.dictionaries.intern(module: m, function: fn, arity: Int(a)), for: pid)
        }
    }

    private func mapValue(_ map: Term, _ key: String) -> Term? {
        guard case .map(let pairs) = map else { return nil }
        return pairs.first { $0.key.atomName == key }?.value
    }

    /// A `system_monitor` message `{monitor, Who, Tag, Info}` (docs/EVENTS.md `monitor`).
    func ingestMonitor(node index: Int, time: Int64, who: Term, tag: String, info: Term) throws {
        try locked {
            guard !isClosed else { return }
            batch.removeAll()
            let state = nodes[index]
            let pid = decoder.internProcess(who) ?? 0
            var peer: ProcessID = 0
            var value: Int64 = 0
            switch tag {
            case "long_gc", "long_schedule":
                value = listValue(info, "timeout") ?? 0
            case "large_heap":
                value = listValue(info, "heap_size") ?? 0
            case "busy_port", "busy_dist_port":
                peer = decoder.internProcess(info) ?? 0
            case "long_message_queue":
                value = info.atomName == "true" ? 1 : 0
            default:
                break
            }
            var payload: [UInt8] = []
            encoder.encode(.tuple([.atom(tag), info]), into: &payload)
            // Held like a sample (see ingestSamples), after it: stamped later by the same controller.
            heldSamples[index].append(TraceEvent(time: time &+ state.offset, node: state.nodeID, pid: pid,
                                                 kind: .monitor, peer: peer, value: value), payload: payload)
            if heldSamples[index].count > Self.heldLimit { try writeHeldSamples(node: index) }
        }
    }

    private func listValue(_ list: Term, _ key: String) -> Int64? {
        for element in list.listElements ?? [] {
            if case .tuple(let t) = element, t.count == 2, t[0].atomName == key { return t[1].intValue }
        }
        return nil
    }

    /// A session marker (docs/EVENTS.md: 0 note, 1 start, 2 stop, 3 limit) at session time `time`.
    func marker(code: Int64, payload term: Term, time: Int64, node index: Int? = nil) throws {
        try locked {
            batch.removeAll()
            var payload: [UInt8] = []
            encoder.encode(term, into: &payload)
            let node = index.map { nodes[$0].nodeID } ?? 0
            batch.append(TraceEvent(time: time, node: node, kind: .marker, value: code), payload: payload)
            try write()
        }
    }

    /// Moves the held events of node `index` up to time `last` into `batch`, each at its time.
    private func mergeHeld(node index: Int, upTo last: Int64) {
        let held = heldSamples[index]
        var taken = 0
        var at = 0
        while taken < held.count, held.times[taken] <= last {
            // A run of held events with one time (a sample message) goes in at once.
            let time = held.times[taken]
            var end = taken + 1
            while end < held.count, held.times[end] == time { end += 1 }
            while at < batch.count, batch.times[at] <= time { at += 1 }
            batch.insert(held, range: taken..<end, at: at)
            at += end - taken
            taken = end
        }
        guard taken > 0 else { return }
        if taken == held.count {
            heldSamples[index].removeAll()
        } else {
            var rest = EventBatch()
            rest.insert(held, range: taken..<held.count, at: 0)
            heldSamples[index] = rest
        }
    }

    /// Writes what is held of node `index`'s last sample.
    private func writeHeldSamples(node index: Int) throws {
        guard !heldSamples[index].isEmpty else { return }
        batch.removeAll()
        swap(&batch, &heldSamples[index])
        try write()
    }

    /// Writes `batch`, noting its latest time.
    private func write() throws {
        for time in batch.times where time > latestTime { latestTime = time }
        try writer.append(batch, dictionaries: decoder.dictionaries)
    }

    /// The session's stop marker (code 2, docs/EVENTS.md), decided at session time `decidedAt` and
    /// written when the capture closes, after the nodes' last data: stamped `decidedAt`, or just after
    /// the latest event when the agents recorded some later while switching tracing off, so every
    /// event of the session lies before its stop. The first call wins.
    func stop(payload term: Term, decidedAt time: Int64) {
        locked {
            guard pendingStop == nil, !isClosed else { return }
            var payload: [UInt8] = []
            encoder.encode(term, into: &payload)
            pendingStop = (payload, time)
        }
    }

    /// Called by the session's ticker (every 200 ms): also writes the held events of a node that sent
    /// no trace batch for a whole tick (an idle node: nothing will pass them).
    func flushIfDue() throws {
        try locked {
            for index in heldSamples.indices {
                if heldAtLastTick[index] && !tracedSinceTick[index] { try writeHeldSamples(node: index) }
                heldAtLastTick[index] = !heldSamples[index].isEmpty
                tracedSinceTick[index] = false
            }
            try writer.flushIfDue()
        }
    }

    /// Events in blocks written to disk (after a write failure: what the capture holds).
    var eventsInCapture: Int {
        locked { writer.statistics.events }
    }

    var bytesWritten: Int64 {
        locked { writer.statistics.bytesWritten }
    }

    func updateMeta(_ update: (inout CaptureMeta) -> Void) {
        locked { writer.updateMeta(update) }
    }

    func close(stopReason: String) throws {
        try locked {
            isClosed = true
            for index in heldSamples.indices { try writeHeldSamples(node: index) }
            if let stop = pendingStop {
                pendingStop = nil
                batch.removeAll()
                let after = latestTime == .min ? stop.time : max(stop.time, latestTime &+ 1)
                batch.append(TraceEvent(time: after, kind: .marker, value: 2), payload: stop.payload)
                try write()
            }
            try writer.close(stopReason: stopReason)
        }
    }
}

extension EventBatch {
    /// Inserts `other`'s events `range` before event `index`.
    fileprivate mutating func insert(_ other: EventBatch, range: Range<Int>, at index: Int) {
        let payloadAt = index == 0 ? 0 : Int(payloadEnds[index - 1])
        let from = range.lowerBound == 0 ? 0 : Int(other.payloadEnds[range.lowerBound - 1])
        let to = range.isEmpty ? from : Int(other.payloadEnds[range.upperBound - 1])
        let added = UInt32(truncatingIfNeeded: to - from)
        times.insert(contentsOf: other.times[range], at: index)
        nodes.insert(contentsOf: other.nodes[range], at: index)
        pids.insert(contentsOf: other.pids[range], at: index)
        kinds.insert(contentsOf: other.kinds[range], at: index)
        flags.insert(contentsOf: other.flags[range], at: index)
        mfas.insert(contentsOf: other.mfas[range], at: index)
        peers.insert(contentsOf: other.peers[range], at: index)
        values.insert(contentsOf: other.values[range], at: index)
        for i in index..<payloadEnds.count { payloadEnds[i] &+= added }
        let shift = Int64(payloadAt) - Int64(from)
        payloadEnds.insert(contentsOf: other.payloadEnds[range].map { UInt32(truncatingIfNeeded: Int64($0) + shift) },
                           at: index)
        payloadBytes.insert(contentsOf: other.payloadBytes[from..<to], at: payloadAt)
    }
}
