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

    /// A class so the hot path mutates it in place (a struct in a collection copies its frames).
    final class ProcessStack: @unchecked Sendable {
        var node: NodeID
        @exclusivity(unchecked) var frames: [Frame] = []
        @exclusivity(unchecked) var firstSeen: Int64
        @exclusivity(unchecked) var lastSeen: Int64
        init(node: NodeID, firstSeen: Int64, lastSeen: Int64) {
            self.node = node
            self.firstSeen = firstSeen
            self.lastSeen = lastSeen
        }
    }

    /// Indexed by ProcessID (dictionary ids are dense).
    private var stacks: [ProcessStack?] = []
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

    private func existing(_ pid: ProcessID) -> ProcessStack? {
        Int(pid) < stacks.count ? stacks[Int(pid)] : nil
    }

    private mutating func stack(for event: TraceEvent) -> ProcessStack {
        if let stack = existing(event.pid) { return stack }
        let stack = ProcessStack(node: event.node, firstSeen: event.time, lastSeen: event.time)
        let index = Int(event.pid)
        if index >= stacks.count { stacks.append(contentsOf: repeatElement(nil, count: index - stacks.count + 1)) }
        stacks[index] = stack
        return stack
    }

    /// Feeds one event. `opened` is called for each span as it starts (its end and ending are not
    /// known yet), `closed` for each span as it ends; spans nest, so every process's opens and
    /// closes pair up like brackets.
    public mutating func consume(_ event: TraceEvent, opened: (Span) -> Void = { _ in }, closed: (Span) -> Void) {
        switch event.kind {
        case .call:
            let stack = stack(for: event)
            stack.lastSeen = event.time
            if stack.frames.count >= Self.maxDepth {
                // Calls whose returns are not traced would pile up forever: the whole stack ends as
                // a gap (no open call survives it, so spans still nest).
                while !stack.frames.isEmpty {
                    close(stack, at: event.time, ending: .gap, pid: event.pid, closed: closed)
                }
            }
            let parent = stack.frames.last?.spanIndex ?? -1
            var span = Span(node: event.node, pid: event.pid, mfa: event.mfa, start: event.time, end: event.time,
                            ending: .unfinished, startKnown: true, depth: stack.frames.count, parent: parent,
                            selfTime: 0)
            let index = append(&span)
            stack.frames.append(Frame(mfa: event.mfa, start: event.time, childTime: 0, spanIndex: index))
            opened(span)
        case .returnFrom, .exceptionFrom:
            let stack = stack(for: event)
            stack.lastSeen = event.time
            let ending: Span.Ending = event.kind == .returnFrom ? .returned : .exception
            if let position = stack.frames.lastIndex(where: { $0.mfa == event.mfa }) {
                // Frames above it ended without a return of their own.
                while stack.frames.count > position + 1 {
                    close(stack, at: event.time, ending: .unwound, pid: event.pid, closed: closed)
                }
                close(stack, at: event.time, ending: ending, pid: event.pid, closed: closed)
            } else {
                // The call came before the capture (or before a gap): its start is unknown. Everything
                // we hold for this process is inside it, so it is their parent, at depth 0.
                while !stack.frames.isEmpty {
                    close(stack, at: event.time, ending: .unwound, pid: event.pid, closed: closed)
                }
                var span = Span(node: event.node, pid: event.pid, mfa: event.mfa, start: stack.firstSeen,
                                end: event.time, ending: ending, startKnown: false, depth: 0, parent: -1,
                                selfTime: 0)
                _ = append(&span)
                closed(span)
            }
        case .returnTo:
            // Back in M:F/A: every frame above its frame has returned.
            guard let stack = existing(event.pid) else { return }
            stack.lastSeen = event.time
            if let position = stack.frames.lastIndex(where: { $0.mfa == event.mfa }) {
                while stack.frames.count > position + 1 {
                    close(stack, at: event.time, ending: .unwound, pid: event.pid, closed: closed)
                }
            }
        case .exit:
            guard let stack = existing(event.pid) else { return }
            stacks[Int(event.pid)] = nil
            while !stack.frames.isEmpty {
                close(stack, at: event.time, ending: .processExited, pid: event.pid, closed: closed)
            }
        case .drop:
            // Lost messages on this node: no open call there can be measured across the gap.
            for (index, entry) in stacks.enumerated() {
                guard let stack = entry, stack.node == event.node || event.node == 0 else { continue }
                while !stack.frames.isEmpty {
                    close(stack, at: event.time, ending: .gap, pid: ProcessID(index), closed: closed)
                }
                stack.firstSeen = event.time
            }
        default:
            existing(event.pid)?.lastSeen = event.time
        }
    }

    /// Ends the replay: spans still open are marked unfinished at `end` (their age so far).
    public mutating func finish(at end: Int64, closed: (Span) -> Void) {
        for (index, entry) in stacks.enumerated() {
            guard let stack = entry else { continue }
            while !stack.frames.isEmpty {
                close(stack, at: end, ending: .unfinished, pid: ProcessID(index), closed: closed)
            }
        }
        stacks.removeAll()
    }

    /// Every process with open frames: (pid, node, frames outermost first) for checkpoints.
    public var openStacks: [(pid: ProcessID, node: NodeID, frames: [(mfa: FunctionID, start: Int64)])] {
        stacks.enumerated().compactMap { index, entry in
            guard let stack = entry, !stack.frames.isEmpty else { return nil }
            return (ProcessID(index), stack.node, stack.frames.map { ($0.mfa, $0.start) })
        }
    }

    /// Puts back a process's open frames (from a checkpoint); spans of them are not kept.
    public mutating func restore(pid: ProcessID, node: NodeID, frames: [(mfa: FunctionID, start: Int64)], at time: Int64) {
        let stack = stack(for: TraceEvent(time: time, node: node, pid: pid, kind: .call))
        stack.frames = frames.map { Frame(mfa: $0.mfa, start: $0.start, childTime: 0, spanIndex: -1) }
    }

    /// The open frames of a process, outermost first, as (function, start).
    public func openCalls(of pid: ProcessID) -> [(mfa: FunctionID, start: Int64)] {
        existing(pid)?.frames.map { ($0.mfa, $0.start) } ?? []
    }

    /// True when the process is inside at least one traced call.
    public func hasOpenCalls(_ pid: ProcessID) -> Bool { !(existing(pid)?.frames.isEmpty ?? true) }

    public var processesWithOpenCalls: [ProcessID] {
        stacks.indices.filter { stacks[$0].map { !$0.frames.isEmpty } ?? false }.map { ProcessID($0) }
    }

    /// Numbers the span (and keeps it when `keepSpans`); with spans kept, the id is its index.
    private mutating func append(_ span: inout Span) -> Int {
        span.id = nextSpanID
        nextSpanID += 1
        if keepSpans { spans.append(span) }
        return span.id
    }

    private mutating func close(_ stack: ProcessStack, at time: Int64, ending: Span.Ending, pid: ProcessID,
                                closed: (Span) -> Void) {
        guard let frame = stack.frames.popLast() else { return }
        let total = time - frame.start
        if !stack.frames.isEmpty { stack.frames[stack.frames.count - 1].childTime += total }
        var span = Span(node: stack.node, pid: pid, mfa: frame.mfa, start: frame.start, end: time, ending: ending,
                        startKnown: true, depth: stack.frames.count, parent: stack.frames.last?.spanIndex ?? -1,
                        selfTime: max(0, total - frame.childTime))
        span.id = frame.spanIndex
        if keepSpans, frame.spanIndex >= 0, frame.spanIndex < spans.count {
            span.parent = spans[frame.spanIndex].parent
            spans[frame.spanIndex] = span
        }
        closed(span)
    }
}
