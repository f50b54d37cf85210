// (Hot properties of this class are mutated once per event from one thread: they skip the
// runtime's dynamic exclusivity checks, which cost more than the work itself.)
// One ordered pass over a capture feeding per-process state machines: call stacks and spans,
// per-function latency histograms, queue series, gen calls in flight (the wait-for graph, see
// CallWaits) and system_monitor events. Memory is bounded by live processes and functions unless
// spans are kept. Ages are measured to the capture's end, when the session stopped (its stop
// marker is the last record a recording writes), not to the last traced event: in a real hang
// traced activity stops.
import BeamTerm
import Foundation
import CaptureStore
import TraceModel

public struct AnalysisOptions: Sendable {
    /// Keep every span (timelines need them; histograms alone do not).
    public var keepSpans: Bool
    public var grouping: LatencyStats.Grouping
    /// Only these events are replayed (time window, processes...).
    public var query: EventQuery
    /// Queue length the "time to reach" estimate aims at.
    public var queueTarget: Int64
    /// What to keep of latency: `.none` where nothing prints percentiles (hang, queues, timelines).
    public var latency: LatencyStats.Detail
    /// Follow the call protocols (the waiting model, CallWaits): `hang` needs it; a pass that only
    /// measures can leave it off.
    public var followCalls = true
    /// Follow each process: queue series, samples, system_monitor alerts and what it was busy with
    /// (`queues`, `hang`, `diff` and the state questions read them); `latency` leaves it off.
    public var trackProcesses = true

    public init(keepSpans: Bool = false, grouping: LatencyStats.Grouping = .function, query: EventQuery = .all,
                queueTarget: Int64 = 100_000, latency: LatencyStats.Detail = .percentilesAndSample) {
        self.keepSpans = keepSpans
        self.grouping = grouping
        self.query = query
        self.queueTarget = queueTarget
        self.latency = latency
    }
}

public struct MonitorEvent: Sendable {
    public var event: TraceEvent
    public var term: Term?
}

public final class CaptureAnalysis: @unchecked Sendable {
    public let dictionaries: TraceDictionaries
    public let options: AnalysisOptions
    /// First and last event times of the replay (0 when it saw no event).
    @exclusivity(unchecked) public private(set) var startTime: Int64 = 0
    @exclusivity(unchecked) public private(set) var endTime: Int64 = 0
    @exclusivity(unchecked) public private(set) var events = 0
    /// The last trace event's time (not counting samples, markers, monitor alerts or drops, which a
    /// recorder keeps writing while traced processes are silent); nil without trace events.
    @exclusivity(unchecked) public private(set) var lastTraceTime: Int64?
    /// The end of the capture (or window): when the session stopped. Every age is measured to it.
    public private(set) var captureEnd: Int64 = 0
    @exclusivity(unchecked) public private(set) var drops: Int64 = 0
    @exclusivity(unchecked) public internal(set) var stacks: CallStacks
    @exclusivity(unchecked) public private(set) var latency: LatencyStats
    @exclusivity(unchecked) public internal(set) var queues: QueueTracker
    /// Open calls per process when the capture ended, outermost first.
    public private(set) var openAtEnd: [ProcessID: [(mfa: FunctionID, start: Int64)]] = [:]
    /// Gen calls whose callers still wait (see CallWaits), by caller. Their requests are printed
    /// here, not during the pass (once, after `finish`).
    public var waitingCalls: [ProcessID: WaitingCall] {
        if let printedWaits { return printedWaits }
        let printed = waits.waitingPrinted
        if finished { printedWaits = printed }
        return printed
    }
    private var printedWaits: [ProcessID: WaitingCall]?
    private var finished = false
    /// How the gen calls of the replay ended: reply, down, timeout, exit, active, drop.
    public var callEndings: [String: Int] { waits.endings }
    @exclusivity(unchecked) var waits: CallWaits
    /// Nodes on which some `'receive'` was traced: only there can a call's reply be seen.
    public var nodesWithReceives: Set<NodeID> {
        Set(receivesByNode.indices.filter { receivesByNode[$0] }.map { NodeID($0) })
    }
    /// Indexed by NodeID (a flag per event is cheaper than a set insert).
    @exclusivity(unchecked) private var receivesByNode: [Bool] = []
    /// The last sample of each sampled process: when, its status (waiting, running...) and its
    /// current function.
    @exclusivity(unchecked) public private(set) var lastSample: [ProcessID: (time: Int64, status: String?, mfa: FunctionID)] = [:]
    /// Processes the samples show waiting in a call (hangs that began before the capture).
    @exclusivity(unchecked) var sampledWaits: [ProcessID: SampledWait] = [:]
    /// Per sampled process, since its last activity of its own (a send, call, return...) or change
    /// of current function: how many samples, and how many found it `waiting` in a receive.
    @exclusivity(unchecked) var idleSamples: [ProcessID: (mfa: FunctionID, samples: Int, waiting: Int)] = [:]
    /// gen:do_call/4 and erpc:call/5, where a caller waits for its reply.
    let waitFunctions: Set<FunctionID>
    /// erpc:call/5 and erts_internal:dist_spawn_init/1 (how an erpc call's process starts), 0 when absent.
    let erpcCall: FunctionID
    let distSpawnInit: FunctionID
    @exclusivity(unchecked) public private(set) var monitorEvents: [MonitorEvent] = []
    /// Last event time per process, indexed by ProcessID.
    @exclusivity(unchecked) public private(set) var lastSeenTable: [Int64] = []
    @exclusivity(unchecked) public private(set) var exited: Set<ProcessID> = []
    /// Time and count of each process's outermost traced calls, by function: what it was busy with.
    /// Indexed by process id, as the call stacks are; a value with no allocation for a process that ran
    /// one outermost function (a dictionary per process made 1M short-lived processes cost 7x the
    /// 5-process pass in `hang`).
    @exclusivity(unchecked) private var busy: [BusyRecord] = []
    @exclusivity(unchecked) private var lastBusy: (pid: ProcessID, mfa: FunctionID, time: Int64, calls: Int)?
    /// Sees every event and every span open and close (the streaming seam, AnalysisStream).
    /// A concrete final class, not an existential: its calls are direct on the hot path; a `let`,
    /// so reading it per event costs no retain and release.
    let observer: StreamBridge?
    private let unretainedObserver: Unmanaged<StreamBridge>?

    public convenience init(dictionaries: TraceDictionaries, options: AnalysisOptions = AnalysisOptions()) {
        self.init(dictionaries: dictionaries, options: options, observer: nil)
    }

    init(dictionaries: TraceDictionaries, options: AnalysisOptions, observer: StreamBridge?) {
        self.dictionaries = dictionaries
        self.options = options
        self.observer = observer
        unretainedObserver = observer.map { Unmanaged.passUnretained($0) }
        stacks = CallStacks(keepSpans: options.keepSpans)
        latency = LatencyStats(grouping: options.grouping, detail: options.latency,
                               functionCount: dictionaries.functions.count)
        queues = QueueTracker(dictionaries: dictionaries)
        waits = CallWaits(enabled: options.followCalls)
        var functions: Set<FunctionID> = []
        var erpcCall: FunctionID = 0, distSpawnInit: FunctionID = 0
        // Compared by their atoms, not printed text: no string built per function (50,000 in a
        // generated module), and the same whatever syntax the reports print in.
        // A module's text is read once per run of functions of that module (a generated module of
        // 50,000 functions is one run), and a function's name only in the three modules that matter.
        var lastModule: (id: AtomID, matters: Bool)?
        for (index, function) in dictionaries.functions.enumerated() where index != 0 {
            guard function.arity == 4 || function.arity == 5 || function.arity == 1 else { continue }
            let matters: Bool
            if let lastModule, lastModule.id == function.module {
                matters = lastModule.matters
            } else {
                let text = dictionaries.atom(function.module)
                matters = text == "erpc" || text == "gen" || text == "erts_internal"
                lastModule = (function.module, matters)
            }
            guard matters else { continue }
            let module = dictionaries.atom(function.module), name = dictionaries.atom(function.function)
            let isErpcCall = function.arity == 5 && module == "erpc" && name == "call"
            if isErpcCall || (function.arity == 4 && module == "gen" && name == "do_call") {
                functions.insert(FunctionID(index))
            }
            if isErpcCall { erpcCall = FunctionID(index) }
            if function.arity == 1 && module == "erts_internal" && name == "dist_spawn_init" {
                distSpawnInit = FunctionID(index)
            }
        }
        waitFunctions = functions
        self.erpcCall = erpcCall
        self.distSpawnInit = distSpawnInit
    }

    /// Replays the whole capture (or the options' query) and finishes.
    public static func run(_ reader: CaptureReader, options: AnalysisOptions = AnalysisOptions()) throws -> CaptureAnalysis {
        try run(reader, options: options, observer: nil)
    }

    static func run(_ reader: CaptureReader, options: AnalysisOptions, observer: StreamBridge?) throws -> CaptureAnalysis {
        let analysis = CaptureAnalysis(dictionaries: reader.dictionaries, options: options, observer: observer)
        let columns = observer == nil ? analysis.columnsRead : .all
        try reader.forEach(matching: options.query, columns: columns) { event, payload in
            analysis.consume(event, payload: payload)
            return true
        }
        var end = try sessionStop(reader) ?? reader.blocks.map(\.timeMax).max() ?? analysis.endTime
        // Trace messages in flight when the stop was decided may be stamped after it.
        end = max(end, analysis.lastTraceTime ?? end)
        if let to = options.query.to { end = min(end, to) }
        analysis.finish(at: end)
        return analysis
    }

    /// When the session stopped: its first stop or limit marker (codes 2 and 3, docs/EVENTS.md),
    /// whatever the query's process or kind filters let through. Nil for captures without one
    /// (imports), whose end is their last record.
    public static func sessionStop(_ reader: CaptureReader) throws -> Int64? {
        var stop: Int64?
        try reader.forEach(matching: EventQuery(kinds: [.marker])) { event, _ in
            if event.value == 2 || event.value == 3 { stop = min(stop ?? .max, event.time) }
            return true
        }
        return stop
    }

    /// What `consume` reads of the events (column pruning): the payloads of the kinds it looks
    /// into, and the peers only where it follows calls or processes. A stream observer reads
    /// everything.
    public var columnsRead: EventColumns {
        var kinds: Set<EventKind> = []
        if options.latency != .none { kinds.insert(.exceptionFrom) }
        if options.followCalls { kinds.formUnion([.send, .receive, .exit, .spawned]) }
        if options.trackProcesses { kinds.formUnion([.receive, .sample, .monitor]) }
        return EventColumns(payloadsOf: kinds, peers: options.followCalls || options.trackProcesses)
    }

    public func consume(_ event: TraceEvent, payload: UnsafeRawBufferPointer) {
        if events == 0 {
            startTime = event.time
            endTime = event.time
        } else if event.time < startTime {
            startTime = event.time
        } else if event.time > endTime {
            endTime = event.time
        }
        events += 1
        switch event.kind {
        case .sample, .marker, .monitor, .drop: break
        default: if event.time > lastTraceTime ?? .min { lastTraceTime = event.time }
        }
        if event.pid != 0 && event.kind != .sample && event.kind != .monitor {
            let index = Int(event.pid)
            if index >= lastSeenTable.count {
                lastSeenTable.append(contentsOf: repeatElement(Int64.min, count: index - lastSeenTable.count + 1))
            }
            lastSeenTable[index] = event.time
        }
        if event.kind == .exceptionFrom, options.latency != .none {
            exceptionReason = ExceptionReasons.head(payload, flags: event.flags)
        }
        if let unretained = unretainedObserver {
            // Unmanaged (`observer` holds it): a strong reference held across the call cost a retain
            // and release per event.
            unretained._withUnsafeGuaranteedRef { $0.willConsume(event, payload: payload) }
            stacks.consume(event, opened: { span in unretained._withUnsafeGuaranteedRef { $0.spanOpened(span) } }) { span in
                record(span)
            }
        } else {
            // Through Unmanaged: a closure holding `self` cost a retain and release per event once
            // the call-stack pass was specialized for it.
            let unretainedSelf = Unmanaged.passUnretained(self)
            stacks.consume(event) { span in unretainedSelf._withUnsafeGuaranteedRef { $0.record(span) } }
        }
        if options.trackProcesses { queues.consume(event, payload: payload) }
        defer { observer?.consumed(event, payload: payload, by: self) }
        switch event.kind {
        case .drop:
            drops += event.value
            waits.dropped(on: event.node)
        case .send:
            waits.send(event, payload: payload, callee: queues.resolve(event.peer))
            if !sampledWaits.isEmpty { sampledWaits[event.pid] = nil }
            if !idleSamples.isEmpty { idleSamples[event.pid] = nil }
        case .receive:
            let node = Int(event.node)
            if node >= receivesByNode.count || !receivesByNode[node] {
                if node >= receivesByNode.count {
                    receivesByNode.append(contentsOf: repeatElement(false, count: node - receivesByNode.count + 1))
                }
                receivesByNode[node] = true
            }
            waits.receive(event, payload: payload)
        case .call, .returnFrom, .exceptionFrom, .returnTo, .link, .unlink, .register, .unregister,
             .sendToNonExistingProcess:
            if !waits.isEmpty { waits.active(event.pid) }
            if !sampledWaits.isEmpty { sampledWaits[event.pid] = nil }
            if !idleSamples.isEmpty { idleSamples[event.pid] = nil }
        case .spawn:
            waits.spawn(event)
            if !sampledWaits.isEmpty { sampledWaits[event.pid] = nil }
            if !idleSamples.isEmpty { idleSamples[event.pid] = nil }
        case .spawned where event.mfa == distSpawnInit && event.mfa != 0:
            if GenProtocol.isErpcSpawn(payload) {
                waits.spawnedForErpc(event, callerNode: dictionaries.process(event.peer)?.identity.node ?? 0)
            }
        case .exit:
            waits.exited(event, payload: payload)
            sampledWaits[event.pid] = nil
            exited.insert(event.pid)
        case .marker where event.value == 4:
            // A gap (the recorder stalled, a node was lost): replies may be among what was lost.
            waits.dropped(on: event.node)
        case .sample where event.pid != 0 && options.trackProcesses:
            let info = sampleInfo(payload, flags: event.flags)
            lastSample[event.pid] = (event.time, info.status, event.mfa)
            var idle: (mfa: FunctionID, samples: Int, waiting: Int) = idleSamples[event.pid].flatMap { $0.mfa == event.mfa ? $0 : nil } ?? (event.mfa, 0, 0)
            idle.samples += 1
            if info.status == "waiting" { idle.waiting += 1 }
            idleSamples[event.pid] = idle
            if waitFunctions.contains(event.mfa) {
                var wait = sampledWaits[event.pid]
                    ?? SampledWait(since: event.time, node: event.node, monitors: info.monitors)
                wait.monitors = info.monitors
                wait.callee = info.callee
                wait.erpc = event.mfa == erpcCall
                sampledWaits[event.pid] = wait
                if wait.erpc { _ = waits.restoreErpc(caller: event.pid, callee: info.callee, monitors: info.monitors) }
            } else if !sampledWaits.isEmpty {
                sampledWaits[event.pid] = nil
            }
        case .monitor where options.trackProcesses:
            let term = Payload.terms(payload, flags: event.flags)?.first
            monitorEvents.append(MonitorEvent(event: event, term: term))
            if monitorEvents.count > 10_000 { monitorEvents.removeFirst(monitorEvents.count - 10_000) }
        default:
            break
        }
    }

    /// The `status` of a sample's info map (`waiting`, `running`, `runnable`, `suspended`...) and
    /// the processes it monitors (`monitors`), those the capture knows.
    func sampleInfo(_ payload: UnsafeRawBufferPointer, flags: EventFlags)
        -> (status: String?, monitors: [ProcessID], callee: ProcessID) {
        guard !payload.isEmpty, case .map(let pairs)? = Payload.terms(payload, flags: flags)?.first else {
            return (nil, [], 0)
        }
        let status = pairs.first { $0.key.atomValue?.name == "status" }?.value.atomValue?.name
        var monitors: [ProcessID] = []
        for element in pairs.first(where: { $0.key.atomValue?.name == "monitors" })?.value.listElements ?? [] {
            guard case .tuple(let t) = element, t.count == 2, let id = sampledProcess(t[1]) else { continue }
            monitors.append(id)
        }
        let callee = pairs.first { $0.key.atomValue?.name == "call_to" }.flatMap { sampledProcess($0.value) } ?? 0
        return (status, monitors, callee)
    }

    /// Ends the replay at `end` (the session's stop, or the window's end): calls still open are
    /// aged to it.
    public func finish(at end: Int64) {
        guard events > 0 else { return }
        finished = true
        captureEnd = max(end, startTime)
        for pid in stacks.processesWithOpenCalls { openAtEnd[pid] = stacks.openCalls(of: pid) }
        observer?.willConsume(nil, payload: UnsafeRawBufferPointer(start: nil, count: 0))
        stacks.finish(at: captureEnd) { span in record(span) }
        flushBusy()
    }

    /// The reason of the `exception_from` being consumed, for the span it closes.
    @exclusivity(unchecked) private var exceptionReason: String?

    private func record(_ span: Span) {
        observer?.spanClosed(span)
        if options.latency == .none {
            exceptionReason = nil
        } else if span.ending == .exception, let reason = exceptionReason {
            latency.record(span, exceptionReason: reason)
            exceptionReason = nil
        } else {
            latency.record(span)
        }
        if span.depth == 0 && options.trackProcesses {
            // Runs of the same process and function accumulate locally: one dictionary write per run.
            if let last = lastBusy, last.pid == span.pid, last.mfa == span.mfa {
                lastBusy = (last.pid, last.mfa, last.time + span.total, last.calls + 1)
            } else {
                flushBusy()
                lastBusy = (span.pid, span.mfa, span.total, 1)
            }
        }
    }

    private func flushBusy() {
        guard let last = lastBusy else { return }
        lastBusy = nil
        let index = Int(last.pid)
        if index >= busy.count {
            busy.append(contentsOf: repeatElement(BusyRecord(mfa: 0, time: 0, calls: 0), count: index - busy.count + 1))
        }
        if busy[index].calls == 0 {
            busy[index] = BusyRecord(mfa: last.mfa, time: last.time, calls: last.calls)
        } else {
            busy[index].add(last.mfa, time: last.time, calls: last.calls)
        }
    }

    /// "spent 97% of the capture in m:f/a (1114 calls)" for a process's busiest outermost call.
    public func busiestActivity(of pid: ProcessID) -> String? {
        guard Int(pid) < busy.count, busy[Int(pid)].calls > 0, duration > 0 else { return nil }
        let (mfa, time, calls) = busy[Int(pid)].busiest
        let share = Double(time) / Double(duration) * 100
        return String(format: "spent %.0f%% of the capture in %@ (%d calls)", share, functionText(mfa), calls)
    }

    public var spans: [Span] { stacks.spans }

    /// From the first event to the capture's end (0 without events).
    public var duration: Int64 { events == 0 ? 0 : captureEnd - startTime }

    /// How long traced activity (anything but samples, markers, monitor alerts and drops) had been
    /// silent when the capture ended.
    public var silence: Int64 {
        guard events > 0 else { return 0 }
        return captureEnd - (lastTraceTime ?? startTime)
    }

    /// How many nodes have traced processes in this replay.
    public var tracedNodeCount: Int {
        if let cachedNodeCount { return cachedNodeCount }
        var nodes: Set<NodeID> = []
        for index in lastSeenTable.indices where lastSeenTable[index] != .min {
            if let entry = dictionaries.process(ProcessID(index)) { nodes.insert(entry.identity.node) }
        }
        if captureEnd != 0 { cachedNodeCount = nodes.count }
        return nodes.count
    }
    private var cachedNodeCount: Int?

    /// The last event of a process (nil if it had none).
    public func lastSeen(_ pid: ProcessID) -> Int64? {
        Int(pid) < lastSeenTable.count && lastSeenTable[Int(pid)] != .min ? lastSeenTable[Int(pid)] : nil
    }

    // MARK: text helpers

    public func processText(_ pid: ProcessID) -> String { dictionaries.processText(pid) }

    public func nodeText(_ node: NodeID) -> String { dictionaries.nodeName(node) }

    public func nameText(_ pid: ProcessID) -> String? { dictionaries.nameText(pid) }

    public func functionText(_ mfa: FunctionID) -> String { dictionaries.functionText(mfa) }
}

/// A process's outermost traced calls: time and count by function, the first function inline (most
/// processes run one), any others in a dictionary made only for a process that runs several; no
/// calls, no record.
struct BusyRecord {
    var mfa: FunctionID
    var time: Int64
    var calls: Int
    var others: [FunctionID: (time: Int64, calls: Int)]? = nil

    mutating func add(_ function: FunctionID, time: Int64, calls: Int) {
        if function == mfa {
            self.time += time
            self.calls += calls
            return
        }
        var more = others ?? [:]
        others = nil  // unique while it is changed: no copy
        more[function, default: (0, 0)].time += time
        more[function, default: (0, 0)].calls += calls
        others = more
    }

    /// The function with the most time (the lowest id among equal times, so ties print the same
    /// every run).
    var busiest: (mfa: FunctionID, time: Int64, calls: Int) {
        var best = (mfa: mfa, time: time, calls: calls)
        for (function, entry) in others ?? [:]
        where entry.time > best.time || (entry.time == best.time && function < best.mfa) {
            best = (function, entry.time, entry.calls)
        }
        return best
    }
}
