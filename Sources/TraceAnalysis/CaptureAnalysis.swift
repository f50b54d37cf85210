// (Hot properties of this class are mutated once per event from one thread: they skip the
// runtime's dynamic exclusivity checks, which cost more than the work itself.)
// One ordered pass over a capture feeding per-process state machines: call stacks and spans,
// per-function latency histograms, queue series, pending gen calls (the wait-for graph) and
// system_monitor events. Memory is bounded by live processes and functions unless spans are kept.
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

    public init(keepSpans: Bool = false, grouping: LatencyStats.Grouping = .function, query: EventQuery = .all,
                queueTarget: Int64 = 100_000) {
        self.keepSpans = keepSpans
        self.grouping = grouping
        self.query = query
        self.queueTarget = queueTarget
    }
}

/// A `gen:call` the process sent and had no reply to yet.
public struct PendingCall: Sendable {
    public var callee: ProcessID
    public var since: Int64
}

public struct MonitorEvent: Sendable {
    public var event: TraceEvent
    public var term: Term?
}

public final class CaptureAnalysis: @unchecked Sendable {
    public let dictionaries: TraceDictionaries
    public let options: AnalysisOptions
    @exclusivity(unchecked) public private(set) var startTime: Int64 = .max
    @exclusivity(unchecked) public private(set) var endTime: Int64 = .min
    @exclusivity(unchecked) public private(set) var events = 0
    /// The last trace event's time (not counting samples, markers, monitor alerts or drops, which a
    /// recorder may still write while it stops): open calls are aged to this.
    @exclusivity(unchecked) public private(set) var lastTraceTime: Int64 = .min
    @exclusivity(unchecked) public private(set) var drops: Int64 = 0
    @exclusivity(unchecked) public internal(set) var stacks: CallStacks
    @exclusivity(unchecked) public private(set) var latency: LatencyStats
    @exclusivity(unchecked) public internal(set) var queues: QueueTracker
    /// Open calls per process when the capture ended, outermost first.
    public private(set) var openAtEnd: [ProcessID: [(mfa: FunctionID, start: Int64)]] = [:]
    public private(set) var pendingCalls: [ProcessID: PendingCall] = [:]
    public private(set) var monitorEvents: [MonitorEvent] = []
    /// Last event time per process, indexed by ProcessID.
    @exclusivity(unchecked) public private(set) var lastSeenTable: [Int64] = []
    public private(set) var exited: Set<ProcessID> = []
    /// Time and count of each process's outermost traced calls, by function: what it was busy with.
    public private(set) var busy: [ProcessID: [FunctionID: (time: Int64, calls: Int)]] = [:]
    @exclusivity(unchecked) private var lastBusy: (pid: ProcessID, mfa: FunctionID, time: Int64, calls: Int)?
    /// Sees every event and every span open and close (the streaming seam, AnalysisStream).
    var observer: (any AnalysisObserver)?

    public init(dictionaries: TraceDictionaries, options: AnalysisOptions = AnalysisOptions()) {
        self.dictionaries = dictionaries
        self.options = options
        stacks = CallStacks(keepSpans: options.keepSpans)
        latency = LatencyStats(grouping: options.grouping)
        queues = QueueTracker(dictionaries: dictionaries)
    }

    /// Replays the whole capture (or the options' query) and finishes.
    public static func run(_ reader: CaptureReader, options: AnalysisOptions = AnalysisOptions()) throws -> CaptureAnalysis {
        try run(reader, options: options, observer: nil)
    }

    static func run(_ reader: CaptureReader, options: AnalysisOptions, observer: (any AnalysisObserver)?) throws -> CaptureAnalysis {
        let analysis = CaptureAnalysis(dictionaries: reader.dictionaries, options: options)
        analysis.observer = observer
        observer?.attach(analysis)
        try reader.forEach(matching: options.query) { event, payload in
            analysis.consume(event, payload: payload)
            return true
        }
        // Open calls are aged to the last trace event, not to samples or markers a recorder writes
        // while it stops.
        analysis.finish(at: options.query.to.map { min($0, analysis.traceEnd) } ?? analysis.traceEnd)
        return analysis
    }

    public func consume(_ event: TraceEvent, payload: UnsafeRawBufferPointer) {
        events += 1
        if event.time < startTime { startTime = event.time }
        if event.time > endTime { endTime = event.time }
        switch event.kind {
        case .sample, .marker, .monitor, .drop: break
        default: if event.time > lastTraceTime { lastTraceTime = event.time }
        }
        if event.pid != 0 {
            let index = Int(event.pid)
            if index >= lastSeenTable.count {
                lastSeenTable.append(contentsOf: repeatElement(Int64.min, count: index - lastSeenTable.count + 1))
            }
            lastSeenTable[index] = event.time
        }
        if let observer {
            observer.willConsume(event, payload: payload)
            stacks.consume(event, opened: { observer.spanOpened($0) }) { span in record(span) }
        } else {
            stacks.consume(event) { span in record(span) }
        }
        queues.consume(event, payload: payload)
        defer { observer?.consumed(event, payload: payload) }
        switch event.kind {
        case .drop:
            drops += event.value
        case .send where PayloadPatterns.isTaggedTuple(payload, "$gen_call"):
            pendingCalls[event.pid] = PendingCall(callee: queues.resolve(event.peer), since: event.time)
        case .receive where PayloadPatterns.isGenReply(payload):
            pendingCalls[event.pid] = nil
        case .returnFrom, .exceptionFrom:
            // Back from a traced call: whatever gen call it made has been answered or abandoned
            // unless the process is still inside the call that made it.
            if !pendingCalls.isEmpty, let pending = pendingCalls[event.pid], pending.since < event.time,
               !stacks.hasOpenCalls(event.pid) {
                pendingCalls[event.pid] = nil
            }
        case .exit:
            pendingCalls[event.pid] = nil
            exited.insert(event.pid)
        case .monitor:
            let term = Payload.terms(payload, flags: event.flags)?.first
            monitorEvents.append(MonitorEvent(event: event, term: term))
            if monitorEvents.count > 10_000 { monitorEvents.removeFirst(monitorEvents.count - 10_000) }
        default:
            break
        }
    }

    public func finish(at end: Int64) {
        guard events > 0 else { return }
        for pid in stacks.processesWithOpenCalls { openAtEnd[pid] = stacks.openCalls(of: pid) }
        observer?.willConsume(nil, payload: UnsafeRawBufferPointer(start: nil, count: 0))
        stacks.finish(at: end) { span in record(span) }
        flushBusy()
    }

    private func record(_ span: Span) {
        observer?.spanClosed(span)
        latency.record(span)
        if span.depth == 0 {
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
        var entry = busy[last.pid]?[last.mfa] ?? (0, 0)
        entry.time += last.time
        entry.calls += last.calls
        busy[last.pid, default: [:]][last.mfa] = entry
        lastBusy = nil
    }

    /// "spent 97% of the capture in m:f/a (1114 calls)" for a process's busiest outermost call.
    public func busiestActivity(of pid: ProcessID) -> String? {
        guard let (mfa, entry) = busy[pid]?.max(by: { $0.value.time < $1.value.time }), endTime > startTime else { return nil }
        let share = Double(entry.time) / Double(endTime - startTime) * 100
        return String(format: "spent %.0f%% of the capture in %@ (%d calls)", share, functionText(mfa), entry.calls)
    }

    public var spans: [Span] { stacks.spans }

    /// Where open calls and pending gen calls are aged to: the last trace event.
    public var traceEnd: Int64 { lastTraceTime == .min ? endTime : min(endTime, lastTraceTime) }

    // MARK: text helpers

    public func processText(_ pid: ProcessID) -> String { dictionaries.processText(pid) }

    public func nodeText(_ node: NodeID) -> String { dictionaries.nodeName(node) }

    public func nameText(_ pid: ProcessID) -> String? {
        guard let entry = dictionaries.process(pid) else { return nil }
        if entry.registeredName != 0 { return dictionaries.atom(entry.registeredName) }
        if entry.initialCall != 0 { return dictionaries.functionText(entry.initialCall) }
        return nil
    }

    public func functionText(_ mfa: FunctionID) -> String { dictionaries.functionText(mfa) }
}
