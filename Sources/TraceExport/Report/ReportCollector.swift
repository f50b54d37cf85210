// What the report needs from the stream beyond the analysis itself: how busy each process was over
// time (outermost traced calls folded into a fixed number of columns), so a timeline overview of
// the busiest processes costs a few hundred bytes per process whatever the capture's size.
import Foundation
import TraceAnalysis
import TraceModel

final class ReportCollector: AnalysisStreamConsumer {
    static let columns = 120
    private(set) var context: StreamContext?
    private(set) var start: Int64 = 0
    private(set) var bucketNs: Double = 1
    /// Busy nanoseconds per column, by process.
    private(set) var busy: [ProcessID: [Float]] = [:]
    private(set) var totals: [ProcessID: Int64] = [:]
    private(set) var messages: [ProcessID: Int] = [:]

    func begin(_ context: StreamContext) {
        self.context = context
        start = context.startTime
        bucketNs = Double(max(1, (context.endTime - context.startTime + Int64(Self.columns) - 1) / Int64(Self.columns)))
    }

    func spanEnded(_ span: Span, result: StreamPayload) {
        guard span.depth == 0, span.end > span.start else { return }
        totals[span.pid, default: 0] += span.total
        var lane = busy[span.pid] ?? Array(repeating: 0, count: Self.columns)
        // Integer nanoseconds: a column boundary never rounds back onto itself.
        let width = Int64(bucketNs)
        var t = max(span.start, start) - start
        let end = span.end - start
        while t < end {
            let column = Int(t / width)
            guard column >= 0, column < Self.columns else { break }
            let columnEnd = Int64(column + 1) * width
            lane[column] += Float(min(end, columnEnd) - t)
            t = columnEnd
        }
        busy[span.pid] = lane
    }

    func instant(_ instant: StreamInstant, payload: StreamPayload) {
        if instant.event.kind == .send { messages[instant.event.pid, default: 0] += 1 }
    }

    /// The `count` processes with the most time in traced calls.
    func busiest(_ count: Int) -> [(pid: ProcessID, busyNs: Int64, lane: [Float])] {
        totals.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(count).map {
            ($0.key, $0.value, busy[$0.key] ?? [])
        }
    }
}
