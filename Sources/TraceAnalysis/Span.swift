// A span: one traced call of one process, from its call event to its return (or to whatever ended
// it), with total and self time, depth and parent. The unit of timelines and latency histograms.
import TraceModel

public struct Span: Sendable, Hashable, Codable {
    public enum Ending: String, Sendable, Hashable, Codable {
        /// A `return_from` closed it.
        case returned
        /// An `exception_from` closed it.
        case exception
        /// A caller's return (or `return_to`) closed it without a return of its own: its return was
        /// not traced, a tail call, or an exception unwound it silently. `end` is an upper bound.
        case unwound
        /// The process exited while inside it.
        case processExited = "process_exited"
        /// Trace messages were lost (a drop) while it was open: its end is unknown.
        case gap
        /// Still open when the capture ended; `end` is the capture's end, the span's age so far.
        case unfinished
    }

    public var node: NodeID
    public var pid: ProcessID
    public var mfa: FunctionID
    /// Nanoseconds on the capture's clock. For `startKnown == false` it is the first time we saw
    /// the process (the call came before the capture).
    public var start: Int64
    public var end: Int64
    public var ending: Ending
    /// False when the capture started inside this call (a return with no call).
    public var startKnown: Bool
    /// 0 for the outermost traced call of the process.
    public var depth: Int
    /// The `id` of the parent span, or -1.
    public var parent: Int
    /// Total time minus the time spent in traced callees.
    public var selfTime: Int64
    /// The span's number in the order spans started in this replay (its index in
    /// `CaptureAnalysis.spans` when spans are kept); -1 for a span restored from a checkpoint.
    public var id: Int = -1

    public var total: Int64 { end - start }

    /// True when start and end are both measured: the span may go into latency histograms.
    public var isMeasured: Bool { startKnown && (ending == .returned || ending == .exception) }
}
