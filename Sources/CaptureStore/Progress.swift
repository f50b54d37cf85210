// How long work (import, export, report) tells whoever runs it how far it got: a small protocol the
// CLI renders as a progress bar on a terminal, and a meter that calls it only now and then.
import Foundation

public struct ProgressUpdate: Sendable, Hashable {
    /// What is being done ("import", "export perfetto", "report").
    public var task: String
    public var done: Int64
    /// 0 when unknown.
    public var total: Int64
    /// What `done` and `total` count ("events", "bytes").
    public var unit: String
    /// The last update of this task.
    public var finished: Bool

    public init(task: String, done: Int64, total: Int64, unit: String, finished: Bool = false) {
        self.task = task
        self.done = done
        self.total = total
        self.unit = unit
        self.finished = finished
    }

    /// 0...1, nil when the total is unknown.
    public var fraction: Double? { total > 0 ? min(1, Double(done) / Double(total)) : nil }
}

public protocol ProgressReporter: Sendable {
    func report(_ update: ProgressUpdate)
}

/// Counts work and reports at most every `interval` (and once at the end), so a hot loop can call
/// `advance` for every item.
public struct ProgressMeter {
    public let reporter: (any ProgressReporter)?
    public private(set) var update: ProgressUpdate
    private var nextCheck: Int64
    private var lastReport = DispatchTime.now().uptimeNanoseconds
    private let step: Int64
    private let interval: UInt64

    public init(_ reporter: (any ProgressReporter)?, task: String, total: Int64, unit: String,
                step: Int64 = 65_536, interval: Duration = .milliseconds(100)) {
        self.reporter = reporter
        update = ProgressUpdate(task: task, done: 0, total: total, unit: unit)
        self.step = max(1, step)
        nextCheck = self.step
        self.interval = UInt64(interval.components.seconds) * 1_000_000_000
            + UInt64(interval.components.attoseconds / 1_000_000_000)
        reporter?.report(update)
    }

    @inline(__always)
    public mutating func advance(by n: Int64 = 1) {
        update.done += n
        if update.done >= nextCheck { check() }
    }

    public mutating func set(done: Int64) {
        update.done = done
        if done >= nextCheck { check() }
    }

    private mutating func check() {
        nextCheck = update.done + step
        guard let reporter else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        guard now - lastReport >= interval else { return }
        lastReport = now
        reporter.report(update)
    }

    public mutating func finish() {
        update.finished = true
        reporter?.report(update)
    }
}
