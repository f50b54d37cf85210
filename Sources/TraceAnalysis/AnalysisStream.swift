// The streaming seam: one ordered pass (CaptureAnalysis, its call stacks and queue tracker) handed
// to a consumer as it goes — spans as they open and close, instants (send, receive with the send it
// was matched to, spawn, exit, link, GC, monitor alerts, markers, drops), counters (queue lengths,
// memory, run queue) — in time order, in memory bounded by live processes, never by capture size.
// `timeline`, every exporter (TraceExport) and the report are built on it.
import CaptureStore
import Foundation
import TraceModel

/// An event's payload as the stream hands it out: only valid during the call that receives it.
public struct StreamPayload {
    public var bytes: UnsafeRawBufferPointer
    public var flags: EventFlags

    public init(bytes: UnsafeRawBufferPointer, flags: EventFlags) {
        self.bytes = bytes
        self.flags = flags
    }

    public static var empty: StreamPayload { StreamPayload(bytes: UnsafeRawBufferPointer(start: nil, count: 0), flags: []) }

    public var isEmpty: Bool { bytes.isEmpty }
}

/// A send a receive was matched to.
public struct MatchedSend: Sendable, Hashable {
    /// The send's `StreamInstant.flow`.
    public var flow: Int64
    public var time: Int64
    public var pid: ProcessID
    public var node: NodeID
}

/// A point event: its trace event (kind named by OTP's tag), and for message passing the flow that
/// ties a send to its receive.
public struct StreamInstant: Sendable, Hashable {
    public var event: TraceEvent
    /// A send's number (1, 2, ...); for a receive, the number of the send it was matched to; else 0.
    public var flow: Int64
    /// For a receive matched to a send seen earlier in the stream.
    public var matched: MatchedSend?
    /// The process a send was delivered to (registered names resolved), 0 when unknown (an alias).
    public var receiver: ProcessID
}

/// A sampled (or, without samples, estimated) figure over time.
public struct StreamCounter: Sendable, Hashable {
    public enum Kind: String, Sendable, CaseIterable {
        /// A process's `message_queue_len`.
        case messageQueueLength = "message_queue_len"
        /// A process's `memory` (bytes).
        case memory
        /// A node's `erlang:memory(total)` (bytes).
        case nodeMemory = "memory_total"
        /// A node's total run queue length.
        case runQueue = "run_queue"
        /// A node's process count.
        case processCount = "process_count"
    }

    public var time: Int64
    public var node: NodeID
    /// 0 for node counters.
    public var pid: ProcessID
    public var kind: Kind
    public var value: Int64
    /// True for queue lengths estimated from sends, receives and handled callbacks (no samples).
    public var estimated: Bool
}

/// What a stream knows before its first event.
public struct StreamContext: Sendable {
    public var dictionaries: TraceDictionaries
    public var meta: CaptureMeta
    /// The earliest time the stream can hold (the first matching block's start): a base for relative times.
    public var startTime: Int64
    /// The latest time in the matching blocks.
    public var endTime: Int64
    /// Events the matching blocks hold (an upper bound on what the stream reads).
    public var eventsToRead: Int64

    public init(dictionaries: TraceDictionaries, meta: CaptureMeta, startTime: Int64, endTime: Int64, eventsToRead: Int64) {
        self.dictionaries = dictionaries
        self.meta = meta
        self.startTime = startTime
        self.endTime = endTime
        self.eventsToRead = eventsToRead
    }

    /// A process's registered name, else its initial call, else nil.
    public func name(of pid: ProcessID) -> String? { dictionaries.nameText(pid) }

    /// `<0.85.0> (sink)`.
    public func label(of pid: ProcessID) -> String {
        dictionaries.processText(pid) + (name(of: pid).map { " (\($0))" } ?? "")
    }

    /// The node of a process (0 if unknown).
    public func node(of pid: ProcessID) -> NodeID { dictionaries.process(pid)?.identity.node ?? 0 }
}

/// Receives a stream. Calls come in time order (ties in capture order); every `spanBegan` is
/// followed by its `spanEnded`, and a process's spans nest like brackets. `spanEnded` also comes for
/// spans whose start was before the capture (`startKnown == false`), without a `spanBegan`.
public protocol AnalysisStreamConsumer: AnyObject {
    func begin(_ context: StreamContext)
    /// A traced call; `arguments` is the call's argument list (if it was recorded).
    func spanBegan(_ span: Span, arguments: StreamPayload)
    /// A span closed; `result` is the return value or `{Class, Reason}` when a return closed it.
    func spanEnded(_ span: Span, result: StreamPayload)
    func instant(_ instant: StreamInstant, payload: StreamPayload)
    func counter(_ counter: StreamCounter)
    /// After the last event, with the finished analysis (latency, queues, hang report).
    func end(_ analysis: CaptureAnalysis)
}

extension AnalysisStreamConsumer {
    public func begin(_ context: StreamContext) {}
    public func spanBegan(_ span: Span, arguments: StreamPayload) {}
    public func spanEnded(_ span: Span, result: StreamPayload) {}
    public func instant(_ instant: StreamInstant, payload: StreamPayload) {}
    public func counter(_ counter: StreamCounter) {}
    public func end(_ analysis: CaptureAnalysis) {}
}

public enum AnalysisStream {
    public struct Options: Sendable {
        /// Emit estimated queue-length counters when the capture has no samples.
        public var estimatedQueues = true
        /// Sends remembered while waiting for their receive (oldest forgotten first).
        public var pendingSendLimit = 1 << 16

        public init() {}
    }

    /// Replays `reader` (the analysis options' query) into `consumer` and returns the finished
    /// analysis (the same one `CaptureAnalysis.run` gives).
    @discardableResult
    public static func run(_ reader: CaptureReader, analysis options: AnalysisOptions = AnalysisOptions(),
                           stream streamOptions: Options = Options(), into consumer: any AnalysisStreamConsumer,
                           progress: (any ProgressReporter)? = nil, task: String = "replay") throws -> CaptureAnalysis {
        let blocks = reader.blocks.filter { $0.mayMatch(options.query) }
        var start = blocks.map(\.timeMin).min() ?? 0
        if let from = options.query.from { start = max(start, from) }
        let end = blocks.map(\.timeMax).max() ?? start
        let total = blocks.reduce(Int64(0)) { $0 + Int64($1.count) }
        let hasSamples = blocks.contains { $0.kinds & (1 << UInt64(EventKind.sample.rawValue)) != 0 }
        let context = StreamContext(dictionaries: reader.dictionaries, meta: reader.meta, startTime: start,
                                    endTime: end, eventsToRead: total)
        let bridge = StreamBridge(consumer: consumer, options: streamOptions, dictionaries: reader.dictionaries,
                                  estimatedQueues: streamOptions.estimatedQueues && !hasSamples,
                                  meter: ProgressMeter(progress, task: task, total: total, unit: "events"))
        consumer.begin(context)
        let analysis = try CaptureAnalysis.run(reader, options: options, observer: bridge)
        bridge.meter.finish()
        consumer.end(analysis)
        return analysis
    }
}

/// Turns what the analysis sees (each event it consumes, each span it opens and closes) into stream calls.
/// (What it reads per event is held in `let`s or handed in, so the hot path has no retain and release:
/// they were half of the analysis thread's time.)
final class StreamBridge {
    let consumer: any AnalysisStreamConsumer
    @exclusivity(unchecked) var meter: ProgressMeter
    @exclusivity(unchecked) private var event: TraceEvent?
    @exclusivity(unchecked) private var payload = UnsafeRawBufferPointer(start: nil, count: 0)
    @exclusivity(unchecked) private var flows: Int64 = 0
    /// Registered names to the process that held them (as the queue tracker resolves sends).
    private let nameToPid: [ProcessID: ProcessID]
    @exclusivity(unchecked) private var pending: PendingSends
    private let estimatedQueues: Bool
    private let sampleKeys: SampleKeys

    init(consumer: any AnalysisStreamConsumer, options: AnalysisStream.Options, dictionaries: TraceDictionaries,
         estimatedQueues: Bool, meter: ProgressMeter) {
        self.consumer = consumer
        self.meter = meter
        self.estimatedQueues = estimatedQueues
        nameToPid = QueueTracker(dictionaries: dictionaries).nameToPid
        pending = PendingSends(capacity: max(1, options.pendingSendLimit))
        sampleKeys = SampleKeys()
    }

    func willConsume(_ event: TraceEvent?, payload: UnsafeRawBufferPointer) {
        self.event = event
        self.payload = payload
    }

    func spanOpened(_ span: Span) {
        guard let event, event.kind == .call else { consumer.spanBegan(span, arguments: .empty); return }
        consumer.spanBegan(span, arguments: StreamPayload(bytes: payload, flags: event.flags))
    }

    func spanClosed(_ span: Span) {
        if let event, span.ending == .returned || span.ending == .exception, span.mfa == event.mfa {
            consumer.spanEnded(span, result: StreamPayload(bytes: payload, flags: event.flags))
        } else {
            consumer.spanEnded(span, result: .empty)
        }
    }

    /// After `analysis` consumed `event` (the analysis is handed in, not held: no cycle, no retain).
    func consumed(_ event: TraceEvent, payload: UnsafeRawBufferPointer, by analysis: CaptureAnalysis) {
        meter.advance()
        let stream = StreamPayload(bytes: payload, flags: event.flags)
        switch event.kind {
        case .call, .returnFrom, .exceptionFrom, .returnTo, .in, .out, .inExiting, .outExiting, .outExited:
            if estimatedQueues, event.kind == .call { estimatedQueue(event.pid, event, analysis) }
        case .send, .sendToNonExistingProcess:
            flows += 1
            let receiver = event.flags.contains(.destinationInPayload) ? 0
                : (nameToPid.isEmpty ? event.peer : nameToPid[event.peer] ?? event.peer)
            if event.kind == .send {
                pending.add(receiver: receiver, hash: Self.messageHash(payload, event.flags, send: true),
                            MatchedSend(flow: flows, time: event.time, pid: event.pid, node: event.node))
            }
            consumer.instant(StreamInstant(event: event, flow: flows, matched: nil, receiver: receiver), payload: stream)
            if estimatedQueues, receiver != 0 { estimatedQueue(receiver, event, analysis) }
        case .receive:
            let hash = Self.messageHash(payload, event.flags, send: false)
            let matched = pending.take(receiver: event.pid, hash: hash) ?? pending.take(receiver: 0, hash: hash)
            consumer.instant(StreamInstant(event: event, flow: matched?.flow ?? 0, matched: matched, receiver: event.pid),
                             payload: stream)
            if estimatedQueues { estimatedQueue(event.pid, event, analysis) }
        case .sample:
            samples(event, payload: payload)
        default:
            consumer.instant(StreamInstant(event: event, flow: 0, matched: nil, receiver: 0), payload: stream)
        }
    }

    @inline(__always)
    private func estimatedQueue(_ pid: ProcessID, _ event: TraceEvent, _ analysis: CaptureAnalysis) {
        guard let length = analysis.estimatedQueueLength(pid) else { return }
        consumer.counter(StreamCounter(time: event.time, node: analysis.dictionaries.process(pid)?.identity.node ?? event.node,
                                       pid: pid, kind: .messageQueueLength, value: length, estimated: true))
    }

    private func samples(_ event: TraceEvent, payload: UnsafeRawBufferPointer) {
        func counter(_ kind: StreamCounter.Kind, _ value: Int64) {
            consumer.counter(StreamCounter(time: event.time, node: event.node, pid: event.pid, kind: kind, value: value,
                                           estimated: false))
        }
        let figures = sampleKeys.figures(payload, flags: event.flags)
        if event.pid != 0 {
            counter(.messageQueueLength, event.value)
            if let memory = figures.memory { counter(.memory, memory) }
        } else {
            counter(.runQueue, figures.runQueue ?? event.value)
            if let memory = figures.memoryTotal { counter(.nodeMemory, memory) }
            if let count = figures.processCount { counter(.processCount, count) }
        }
    }

    /// A hash of the message's bytes: a send's payload holds the message (then, for sends to
    /// aliases, the destination); a receive's holds the message alone. A payload cut by the size
    /// limit keeps the message's first bytes in both. Eight bytes a step (a multiply and a fold
    /// each; `ByteHash`).
    static func messageHash(_ payload: UnsafeRawBufferPointer, _ flags: EventFlags, send: Bool) -> UInt64 {
        var length = payload.count
        if send, flags.contains(.destinationInPayload), let first = Payload.firstTermLength(payload) {
            length = first
        }
        return ByteHash.of(UnsafeRawBufferPointer(rebasing: payload[..<length]))
    }
}

extension CaptureAnalysis {
    /// A process's queue length as estimated so far (nil until one of its callbacks was seen).
    func estimatedQueueLength(_ pid: ProcessID) -> Int64? {
        let index = Int(pid)
        guard index < queues.estimateTable.count, queues.estimateTable[index].live,
              queues.estimateTable[index].sawHandled else { return nil }
        return queues.estimateTable[index].length
    }
}

/// Sends waiting for their receive, by receiver and message hash, first in first out; at most
/// `capacity`, the oldest forgotten first (a message never received must not hold memory forever).
/// An open-addressing table (linear probing, deletion by backward shift) keyed by one 64-bit mix of
/// receiver and hash (no Hasher per event), whose entries chain, oldest first, through a ring of
/// the sends themselves.
struct PendingSends {
    struct Entry {
        var key: UInt64
        var send: MatchedSend
        var next: Int32
        var alive: Bool
    }

    struct Slot {
        var key: UInt64 = 0
        var head: Int32 = -1
        var tail: Int32 = -1
    }

    private var ring: [Entry] = []
    private var position = 0
    private let capacity: Int
    private var slots: [Slot]
    private var used = 0
    private var mask: Int

    init(capacity: Int) {
        self.capacity = capacity
        slots = Array(repeating: Slot(), count: 1024)
        mask = 1023
        ring.reserveCapacity(min(capacity, 4096))
    }

    @inline(__always)
    static func key(_ receiver: ProcessID, _ hash: UInt64) -> UInt64 {
        // Never 0 (0 marks an empty slot).
        (hash ^ (UInt64(receiver) &* 0x9E37_79B9_7F4A_7C15)) | 1
    }

    /// The slot holding `key`, or the empty slot where it would go.
    @inline(__always)
    private func find(_ key: UInt64) -> Int {
        var i = Int(truncatingIfNeeded: key >> 17) & mask
        while slots[i].key != 0 && slots[i].key != key { i = (i + 1) & mask }
        return i
    }

    @inline(__always)
    private func home(_ key: UInt64) -> Int { Int(truncatingIfNeeded: key >> 17) & mask }

    private mutating func grow() {
        let old = slots
        slots = Array(repeating: Slot(), count: old.count * 2)
        mask = slots.count - 1
        for slot in old where slot.key != 0 { slots[find(slot.key)] = slot }
    }

    /// Empties slot `i` by shifting back the entries after it (linear probing without tombstones).
    private mutating func remove(at i: Int) {
        var hole = i
        var j = (i + 1) & mask
        while slots[j].key != 0 {
            let h = home(slots[j].key)
            let movable = hole <= j ? (h <= hole || h > j) : (h <= hole && h > j)
            if movable {
                slots[hole] = slots[j]
                hole = j
            }
            j = (j + 1) & mask
        }
        slots[hole] = Slot()
        used -= 1
    }

    mutating func add(receiver: ProcessID, hash: UInt64, _ send: MatchedSend) {
        let key = Self.key(receiver, hash)
        let index: Int32
        if ring.count < capacity {
            ring.append(Entry(key: key, send: send, next: -1, alive: true))
            index = Int32(ring.count - 1)
        } else {
            index = Int32(position)
            position = (position + 1) % capacity
            // The oldest entry of all is the head of its chain.
            let old = ring[Int(index)]
            if old.alive { unlinkHead(old.key, entry: index) }
            ring[Int(index)] = Entry(key: key, send: send, next: -1, alive: true)
        }
        if (used + 1) * 2 > slots.count { grow() }
        let i = find(key)
        if slots[i].key == key {
            ring[Int(slots[i].tail)].next = index
            slots[i].tail = index
        } else {
            used += 1
            slots[i] = Slot(key: key, head: index, tail: index)
        }
    }

    mutating func take(receiver: ProcessID, hash: UInt64) -> MatchedSend? {
        let key = Self.key(receiver, hash)
        let i = find(key)
        guard slots[i].key == key else { return nil }
        let head = slots[i].head
        let send = ring[Int(head)].send
        unlink(slot: i, entry: head)
        return send
    }

    private mutating func unlinkHead(_ key: UInt64, entry: Int32) {
        let i = find(key)
        guard slots[i].key == key, slots[i].head == entry else { return }
        unlink(slot: i, entry: entry)
    }

    private mutating func unlink(slot i: Int, entry: Int32) {
        ring[Int(entry)].alive = false
        let next = ring[Int(entry)].next
        if entry == slots[i].tail || next < 0 {
            remove(at: i)
        } else {
            slots[i].head = next
        }
    }
}

/// Reads the figures out of a sample's ETF map (docs/EVENTS.md) without building terms.
struct SampleKeys {
    struct Figures {
        var memory: Int64?
        var memoryTotal: Int64?
        var runQueue: Int64?
        var processCount: Int64?
    }

    func figures(_ payload: UnsafeRawBufferPointer, flags: EventFlags) -> Figures {
        var figures = Figures()
        guard !payload.isEmpty, case .map(let pairs)? = Payload.terms(payload, flags: flags)?.first else { return figures }
        for pair in pairs {
            guard let key = pair.key.atomValue?.name, let value = pair.value.int64Value else { continue }
            switch key {
            case "memory": figures.memory = value
            case "memory_total": figures.memoryTotal = value
            case "run_queue": figures.runQueue = value
            case "process_count": figures.processCount = value
            default: break
            }
        }
        return figures
    }
}
