// Rebuilds each process's call stack from call / return_from / exception_from / return_to and
// emits spans. Handles what real traces contain: recursion (LIFO by function), calls whose return
// was not traced or were tail calls (closed as `unwound` by the caller's return), exceptions
// unwinding several frames, returns whose call came before the capture, processes that exit inside
// calls, drops (no span crosses a gap) and calls still open at the end.
import TraceModel

public struct CallStacks: Sendable {
    struct Frame: Sendable {
        var mfa: FunctionID
        var start: Int64
        var childTime: Int64
        var spanIndex: Int
    }

    /// A process's stack, stored by value in `stacks` and mutated in place through the array (no
    /// class per process: no reference counting on the hot path).
    struct ProcessStack: Sendable {
        var live = false
        var node: NodeID = 0
        var frames: [Frame] = []
        /// When the stack was made (or last emptied by a gap): the start of a span whose call came before it.
        var firstSeen: Int64 = 0
    }

    /// Indexed by ProcessID (dictionary ids are dense); `live` false for processes without a stack.
    private var stacks: [ProcessStack] = []
    /// Spans in the order they started (or, for returns without calls, were seen); a span's
    /// `parent` indexes into this array.
    public private(set) var spans: [Span] = []
    public var keepSpans: Bool
    /// Spans numbered in the order they started (kept or not): `Span.id`, and `Span.parent` names it.
    private var nextSpanID = 0
    /// Deepest stack kept per process (recursion deeper than this is cut at the bottom).
    static let maxDepth = 10_000

    /// With `keepSpans` false only histograms (via `onSpanClosed`) see spans; memory stays bounded
    /// by the number of live processes and their stack depths.
    public init(keepSpans: Bool = true) {
        self.keepSpans = keepSpans
    }

    @inline(__always)
    private func isLive(_ index: Int) -> Bool { index < stacks.count && stacks[index].live }

    /// The index of the event's process stack, created (live) when it had none.
    @inline(__always)
    private mutating func stack(for event: TraceEvent) -> Int {
        let index = Int(event.pid)
        if index < stacks.count {
            if !stacks[index].live {
                stacks[index] = ProcessStack(live: true, node: event.node, firstSeen: event.time)
            }
            return index
        }
        stacks.append(contentsOf: repeatElement(ProcessStack(), count: index - stacks.count + 1))
        stacks[index] = ProcessStack(live: true, node: event.node, firstSeen: event.time)
        return index
    }

    /// Feeds one event. `opened` is called for each span as it starts (its end and ending are not
    /// known yet), `closed` for each span as it ends; spans nest, so every process's opens and
    /// closes pair up like brackets.
    public mutating func consume(_ event: TraceEvent, opened: (Span) -> Void, closed: (Span) -> Void) {
        feed(event, opens: true, opened: opened, closed: closed)
    }

    /// Feeds one event, calling `closed` for each span as it ends. Without kept spans, a call
    /// builds no span (only its frame).
    public mutating func consume(_ event: TraceEvent, closed: (Span) -> Void) {
        feed(event, opens: false, opened: { _ in }, closed: closed)
    }

    @inline(__always)
    private mutating func feed(_ event: TraceEvent, opens: Bool, opened: (Span) -> Void, closed: (Span) -> Void) {
        switch event.kind {
        case .call:
            let s = stack(for: event)
            if stacks[s].frames.count >= Self.maxDepth {
                // Calls whose returns are not traced would pile up forever: the whole stack ends as
                // a gap (no open call survives it, so spans still nest).
                while !stacks[s].frames.isEmpty {
                    close(s, at: event.time, ending: .gap, closed: closed)
                }
            }
            guard opens || keepSpans else {
                stacks[s].frames.append(Frame(mfa: event.mfa, start: event.time, childTime: 0, spanIndex: nextSpanID))
                nextSpanID += 1
                return
            }
            let depth = stacks[s].frames.count
            let parent = stacks[s].frames.last?.spanIndex ?? -1
            var span = Span(node: event.node, pid: event.pid, mfa: event.mfa, start: event.time, end: event.time,
                            ending: .unfinished, startKnown: true, depth: depth, parent: parent,
                            selfTime: 0)
            let index = append(&span)
            stacks[s].frames.append(Frame(mfa: event.mfa, start: event.time, childTime: 0, spanIndex: index))
            opened(span)
        case .returnFrom, .exceptionFrom:
            let s = stack(for: event)
            let ending: Span.Ending = event.kind == .returnFrom ? .returned : .exception
            if let position = stacks[s].frames.lastIndex(where: { $0.mfa == event.mfa }) {
                // Frames above it ended without a return of their own.
                while stacks[s].frames.count > position + 1 {
                    close(s, at: event.time, ending: .unwound, closed: closed)
                }
                close(s, at: event.time, ending: ending, closed: closed)
            } else {
                // The call came before the capture (or before a gap): its start is unknown. Everything
                // we hold for this process is inside it, so it is their parent, at depth 0.
                while !stacks[s].frames.isEmpty {
                    close(s, at: event.time, ending: .unwound, closed: closed)
                }
                var span = Span(node: event.node, pid: event.pid, mfa: event.mfa, start: stacks[s].firstSeen,
                                end: event.time, ending: ending, startKnown: false, depth: 0, parent: -1,
                                selfTime: 0)
                _ = append(&span)
                closed(span)
            }
        case .returnTo:
            // Back in M:F/A: every frame above its frame has returned.
            let s = Int(event.pid)
            guard isLive(s) else { return }
            if let position = stacks[s].frames.lastIndex(where: { $0.mfa == event.mfa }) {
                while stacks[s].frames.count > position + 1 {
                    close(s, at: event.time, ending: .unwound, closed: closed)
                }
            }
        case .exit:
            let s = Int(event.pid)
            guard isLive(s) else { return }
            while !stacks[s].frames.isEmpty {
                close(s, at: event.time, ending: .processExited, closed: closed)
            }
            stacks[s] = ProcessStack()
        case .drop:
            // Lost messages on this node: no open call there can be measured across the gap.
            for s in stacks.indices where stacks[s].live && (stacks[s].node == event.node || event.node == 0) {
                while !stacks[s].frames.isEmpty {
                    close(s, at: event.time, ending: .gap, closed: closed)
                }
                stacks[s].firstSeen = event.time
            }
        default:
            break
        }
    }

    /// Ends the replay: spans still open are marked unfinished at `end` (their age so far).
    public mutating func finish(at end: Int64, closed: (Span) -> Void) {
        for s in stacks.indices where stacks[s].live {
            while !stacks[s].frames.isEmpty {
                close(s, at: end, ending: .unfinished, closed: closed)
            }
        }
        stacks.removeAll()
    }

    /// Every process with open frames: (pid, node, frames outermost first) for checkpoints.
    public var openStacks: [(pid: ProcessID, node: NodeID, frames: [(mfa: FunctionID, start: Int64)])] {
        stacks.indices.compactMap { index in
            let stack = stacks[index]
            guard stack.live, !stack.frames.isEmpty else { return nil }
            return (ProcessID(index), stack.node, stack.frames.map { ($0.mfa, $0.start) })
        }
    }

    /// Puts back a process's open frames (from a checkpoint); spans of them are not kept.
    public mutating func restore(pid: ProcessID, node: NodeID, frames: [(mfa: FunctionID, start: Int64)], at time: Int64) {
        let s = stack(for: TraceEvent(time: time, node: node, pid: pid, kind: .call))
        stacks[s].frames = frames.map { Frame(mfa: $0.mfa, start: $0.start, childTime: 0, spanIndex: -1) }
    }

    /// The open frames of a process, outermost first, as (function, start).
    public func openCalls(of pid: ProcessID) -> [(mfa: FunctionID, start: Int64)] {
        isLive(Int(pid)) ? stacks[Int(pid)].frames.map { ($0.mfa, $0.start) } : []
    }

    /// True when the process is inside at least one traced call.
    public func hasOpenCalls(_ pid: ProcessID) -> Bool { isLive(Int(pid)) && !stacks[Int(pid)].frames.isEmpty }

    public var processesWithOpenCalls: [ProcessID] {
        stacks.indices.filter { stacks[$0].live && !stacks[$0].frames.isEmpty }.map { ProcessID($0) }
    }

    /// Numbers the span (and keeps it when `keepSpans`); with spans kept, the id is its index.
    @inline(__always)
    private mutating func append(_ span: inout Span) -> Int {
        span.id = nextSpanID
        nextSpanID += 1
        if keepSpans { spans.append(span) }
        return span.id
    }

    /// Pops the top frame of stack `s` (its index, the ProcessID) as a span ending at `time`.
    @inline(__always)
    private mutating func close(_ s: Int, at time: Int64, ending: Span.Ending, closed: (Span) -> Void) {
        guard let frame = stacks[s].frames.popLast() else { return }
        let total = time - frame.start
        let depth = stacks[s].frames.count
        var parent = -1
        if depth > 0 {
            stacks[s].frames[depth - 1].childTime += total
            parent = stacks[s].frames[depth - 1].spanIndex
        }
        var span = Span(node: stacks[s].node, pid: ProcessID(s), mfa: frame.mfa, start: frame.start, end: time,
                        ending: ending, startKnown: true, depth: depth, parent: parent,
                        selfTime: max(0, total - frame.childTime))
        span.id = frame.spanIndex
        if keepSpans, frame.spanIndex >= 0, frame.spanIndex < spans.count {
            span.parent = spans[frame.spanIndex].parent
            spans[frame.spanIndex] = span
        }
        closed(span)
    }
}
