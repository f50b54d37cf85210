// Message-queue length series per process: from `sample` events (authoritative), or estimated from
// arrivals (sends to the process, or its `receive` events, whichever counts more; a `receive` of the
// atom `timeout` is a `receive ... after` firing, not a message) minus messages handled (calls of
// gen_server/gen_statem callbacks). Then slope, fit, growth start and top senders per queue.
import BeamTerm
import TraceModel
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public struct QueueSeries: Sendable {
    public var points: [(time: Int64, length: Int64)] = []
    /// Keep at most this many points: when full, every other point is dropped and the spacing doubles.
    static let maxPoints = 4096
    var minimumSpacing: Int64 = 0

    @inline(__always) mutating func add(time: Int64, length: Int64) {
        let count = points.count
        if count > 1, time - points[count - 1].time < minimumSpacing {
            points[count - 1] = (time, length)
            return
        }
        points.append((time, length))
        if count + 1 >= Self.maxPoints { thin() }
    }

    /// Every other point dropped (the last kept), the spacing doubled.
    private mutating func thin() {
        points = stride(from: 0, to: points.count, by: 2).map { points[$0] } + [points[points.count - 1]]
        let span = (points.last?.time ?? 0) - (points.first?.time ?? 0)
        minimumSpacing = max(1, span / Int64(Self.maxPoints / 2))
    }
}

public struct QueueGrowthReport: Sendable, Codable {
    /// The capture's id of the process (not in the JSON: ids are per capture).
    public var processID: ProcessID = 0
    public var pid: String
    public var node: String
    public var name: String?
    public var maxLength: Int64
    public var endLength: Int64
    /// Messages per second over the growth window (least squares).
    public var slopePerSecond: Double
    /// R² of that fit.
    public var fit: Double
    /// When the queue last started growing (ns), if it grows.
    public var growingSince: Int64?
    public var growing: Bool
    public var estimated: Bool
    /// Seconds until it reaches `targetLength` at this slope (nil if not growing).
    public var secondsToTarget: Double?
    public var targetLength: Int64
    public var topSenders: [SenderCount]
    /// What the owner was doing: the current function from the last samples, else its open calls.
    public var ownerActivity: [String]
    public var series: [[Int64]]

    enum CodingKeys: String, CodingKey {
        case pid, node, name, series, growing, estimated, fit
        case maxLength = "max_len", endLength = "end_len", slopePerSecond = "slope_per_s"
        case growingSince = "growing_since_ns", secondsToTarget = "seconds_to_target", targetLength = "target_len"
        case topSenders = "top_senders", ownerActivity = "owner_activity"
    }
}

public struct SenderCount: Sendable, Codable {
    public var pid: String
    public var name: String?
    public var messages: Int
}

/// Collects queue evidence during a replay.
public struct QueueTracker: Sendable {
    /// Stored by value in `estimateTable` and updated in place through it (no reference counting
    /// on the hot path).
    struct Estimate: Sendable {
        var live = false
        var sendsIn: Int64 = 0
        var receives: Int64 = 0
        var handled: Int64 = 0
        var sawHandled = false
        var series = QueueSeries()
        private var senderCounts: [ProcessID: Int] = [:]
        /// Consecutive sends from one sender are counted locally and added to the table in one go.
        private var run: (sender: ProcessID, count: Int) = (0, 0)
        var length: Int64 { max(0, max(sendsIn, receives) - handled) }

        @inline(__always)
        mutating func countSender(_ sender: ProcessID) {
            if run.sender == sender {
                run.count += 1
            } else {
                if run.count > 0 { senderCounts[run.sender, default: 0] += run.count }
                run = (sender, 1)
            }
        }

        var senders: [ProcessID: Int] {
            var result = senderCounts
            if run.count > 0 { result[run.sender, default: 0] += run.count }
            return result
        }
    }

    var sampled: [ProcessID: QueueSeries] = [:]
    var lastSampleFunction: [ProcessID: FunctionID] = [:]
    /// Indexed by ProcessID (dictionary ids are dense); `live` false where nothing was estimated.
    var estimateTable: [Estimate] = []
    /// By FunctionID: true for gen_server/gen_statem callbacks that consume one message.
    let isHandler: [Bool]
    let nameToPid: [ProcessID: ProcessID]

    init(dictionaries: TraceDictionaries) {
        var handlers = [Bool](repeating: false, count: dictionaries.functions.count)
        let callbacks: [(String, UInt32)] = [("handle_call", 3), ("handle_cast", 2), ("handle_info", 2),
                                              ("handle_event", 4)]
        for (index, mfa) in dictionaries.functions.enumerated() where index != 0 {
            let name = dictionaries.atom(mfa.function)
            if callbacks.contains(where: { $0.0 == name && $0.1 == mfa.arity }) { handlers[index] = true }
        }
        isHandler = handlers
        // Sends addressed to a registered name count for the process that held the name.
        var holders: [AtomID: ProcessID] = [:]
        for (index, entry) in dictionaries.processes.enumerated() where index != 0 && entry.registeredName != 0 {
            if case .pid = entry.identity { holders[entry.registeredName] = ProcessID(index) }
        }
        var names: [ProcessID: ProcessID] = [:]
        for (index, entry) in dictionaries.processes.enumerated() where index != 0 {
            if case .name(let atom) = entry.identity, let holder = holders[atom] { names[ProcessID(index)] = holder }
        }
        nameToPid = names
    }

    func resolve(_ pid: ProcessID) -> ProcessID { nameToPid.isEmpty ? pid : nameToPid[pid] ?? pid }

    func estimate(_ pid: ProcessID) -> Estimate? {
        Int(pid) < estimateTable.count && estimateTable[Int(pid)].live ? estimateTable[Int(pid)] : nil
    }

    /// The index of the process's estimate in `estimateTable`, created when it had none.
    @inline(__always)
    mutating func estimateCreating(_ pid: ProcessID) -> Int {
        let index = Int(pid)
        if index >= estimateTable.count {
            estimateTable.append(contentsOf: repeatElement(Estimate(), count: index - estimateTable.count + 1))
        }
        estimateTable[index].live = true
        return index
    }

    var estimates: [ProcessID: Estimate] {
        var result: [ProcessID: Estimate] = [:]
        for (index, entry) in estimateTable.enumerated() where entry.live { result[ProcessID(index)] = entry }
        return result
    }

    mutating func consume(_ event: TraceEvent, payload: UnsafeRawBufferPointer) {
        switch event.kind {
        case .sample where event.pid != 0:
            sampled[event.pid, default: QueueSeries()].add(time: event.time, length: event.value)
            if event.mfa != 0 { lastSampleFunction[event.pid] = event.mfa }
        // Each case changes its estimate through one inout access (one uniqueness check of the
        // table, where each field's own access checked it again).
        case .send:
            let target = resolve(event.peer)
            guard target != 0 else { return }
            let e = estimateCreating(target)
            Self.sent(&estimateTable[e], from: event.pid, at: event.time)
        case .receive:
            if PayloadPatterns.isAtom(payload, "timeout") { return }
            let e = estimateCreating(event.pid)
            Self.received(&estimateTable[e], at: event.time)
        case .call where Int(event.mfa) < isHandler.count && isHandler[Int(event.mfa)]:
            let e = estimateCreating(event.pid)
            Self.handled(&estimateTable[e], at: event.time)
        case .exit:
            let e = Int(event.pid)
            if e < estimateTable.count, estimateTable[e].live, estimateTable[e].sawHandled {
                estimateTable[e].series.add(time: event.time, length: 0)
            }
        default:
            break
        }
    }

    @inline(__always)
    static func sent(_ estimate: inout Estimate, from sender: ProcessID, at time: Int64) {
        estimate.countSender(sender)
        estimate.sendsIn += 1
        if estimate.sawHandled { estimate.series.add(time: time, length: estimate.length) }
    }

    @inline(__always)
    static func received(_ estimate: inout Estimate, at time: Int64) {
        estimate.receives += 1
        if estimate.sawHandled { estimate.series.add(time: time, length: estimate.length) }
    }

    @inline(__always)
    static func handled(_ estimate: inout Estimate, at time: Int64) {
        estimate.handled += 1
        estimate.sawHandled = true
        estimate.series.add(time: time, length: estimate.length)
    }

    /// The series for a process: sampled if any, else estimated (if callbacks were traced).
    func series(for pid: ProcessID) -> (QueueSeries, estimated: Bool)? {
        if let series = sampled[pid], !series.points.isEmpty { return (series, false) }
        if let estimate = estimate(pid), estimate.sawHandled, !estimate.series.points.isEmpty {
            return (estimate.series, true)
        }
        return nil
    }

    var processes: [ProcessID] {
        Array(Set(sampled.keys).union(estimates.filter { $0.value.sawHandled }.keys)).sorted()
    }
}

/// Least squares and the growth window of a series.
public enum GrowthFit {
    public struct Result: Sendable {
        public var slopePerSecond: Double
        public var fit: Double
        public var startIndex: Int
    }

    /// Fits the window from the last point at or below 10% of the final length to the end.
    public static func growthWindow(_ points: [(time: Int64, length: Int64)]) -> Result {
        guard let last = points.last, points.count >= 3 else { return Result(slopePerSecond: 0, fit: 0, startIndex: 0) }
        let floor = Double(last.length) * 0.1
        var start = 0
        for i in stride(from: points.count - 1, through: 0, by: -1) where Double(points[i].length) <= floor {
            start = i
            break
        }
        if points.count - start < 3 { start = max(0, points.count - 3) }
        let (slope, r2) = leastSquares(Array(points[start...]))
        return Result(slopePerSecond: slope, fit: r2, startIndex: start)
    }

    /// The last run of equal lengths: its length and the time of its first point (nil when empty).
    public static func finalRun(_ points: [(time: Int64, length: Int64)]) -> (since: Int64, length: Int64)? {
        guard var since = points.last else { return nil }
        for point in points.reversed() {
            guard point.length == since.length else { break }
            since = point
        }
        return (since.time, since.length)
    }

    /// Slope in units per second and R².
    public static func leastSquares(_ points: [(time: Int64, length: Int64)]) -> (Double, Double) {
        guard points.count >= 2, let t0 = points.first?.time else { return (0, 0) }
        let n = Double(points.count)
        var sx = 0.0, sy = 0.0, sxx = 0.0, sxy = 0.0, syy = 0.0
        for p in points {
            let x = Double(p.time - t0) / 1e9, y = Double(p.length)
            sx += x; sy += y; sxx += x * x; sxy += x * y; syy += y * y
        }
        let vx = sxx - sx * sx / n, vy = syy - sy * sy / n, cov = sxy - sx * sy / n
        guard vx > 0 else { return (0, 0) }
        let slope = cov / vx
        let r2 = vy > 0 ? (cov * cov) / (vx * vy) : 1
        return (slope, r2)
    }
}

/// Cheap checks on raw payload ETF without decoding it, through BeamTerm's TermCursor: no allocation.
enum PayloadPatterns {
    /// True when the payload's first term is the atom `name` (any atom tag).
    static func isAtom(_ payload: UnsafeRawBufferPointer, _ name: StaticString) -> Bool {
        GenProtocol.startsAtom(payload) && TermCursor(payload).isAtom(name)
    }

    /// True when the payload's first term is a tuple whose first element is the atom `name`
    /// (e.g. `'$gen_call'`).
    static func isTaggedTuple(_ payload: UnsafeRawBufferPointer, _ name: StaticString) -> Bool {
        var cursor = TermCursor(payload)
        guard let arity = cursor.tupleArity(), arity >= 1 else { return false }
        return cursor.isAtom(name)
    }

    /// True for a gen reply `{Ref, Reply}` or `{[alias | Ref], Reply}`.
    static func isGenReply(_ payload: UnsafeRawBufferPointer) -> Bool {
        var cursor = TermCursor(payload)
        guard cursor.peek() == ExternalTag.smallTuple, cursor.tupleArity() == 2, let next = cursor.peek() else { return false }
        if next == ExternalTag.newerReference || next == ExternalTag.newReference || next == ExternalTag.reference {
            return true
        }
        guard cursor.listHeader() != nil else { return false }
        return cursor.isAtom("alias")  // [alias | Ref]
    }
}
