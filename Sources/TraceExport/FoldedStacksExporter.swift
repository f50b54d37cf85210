// Brendan Gregg's folded stacks (`a;b;c weight`, one line per distinct stack), weighted by self
// time in microseconds, per process (the process is the first frame) or merged; what flamegraph.pl,
// inferno and speedscope import. Memory grows with distinct stacks, not with events.
import Foundation
import TraceAnalysis
import TraceModel

public final class FoldedStacksExporter: AnalysisStreamConsumer {
    public struct Options: Sendable {
        /// One tree for all processes instead of one per process.
        public var merged = false
        /// Calls of matching functions, and everything under them, are left out.
        public var exclude = FunctionPatterns([])
        public init() {}
    }

    struct Key: Hashable {
        var parent: Int32
        var frame: UInt32
    }

    struct Node {
        var parent: Int32
        var frame: UInt32
        var selfTime: Int64
    }

    public let options: Options
    let out: ExportOutput
    private var text: ExportText?
    private var nodes: [Node] = []
    private var children: [Key: Int32] = [:]
    /// Per process: the trie node of each open span (-1 for a left-out one).
    private var open: [ProcessID: [Int32]] = [:]
    private var excluded: [Bool] = []
    /// Frames of process roots are pids with this bit set.
    static let processFrame: UInt32 = 1 << 31
    public private(set) var stats = ExportStats()

    public init(output: ExportOutput, options: Options = Options()) {
        out = output
        self.options = options
    }

    public func begin(_ context: StreamContext) {
        text = ExportText(context)
        excluded = options.exclude.table(context.dictionaries)
    }

    private func child(_ parent: Int32, _ frame: UInt32) -> Int32 {
        let key = Key(parent: parent, frame: frame)
        if let existing = children[key] { return existing }
        nodes.append(Node(parent: parent, frame: frame, selfTime: 0))
        let index = Int32(nodes.count - 1)
        children[key] = index
        return index
    }

    public func spanBegan(_ span: Span, arguments: StreamPayload) {
        var stack = open[span.pid] ?? []
        let parent: Int32
        if let top = stack.last {
            parent = top
        } else {
            parent = options.merged ? -1 : child(-1, Self.processFrame | span.pid)
        }
        let isExcluded = parent == -2 || (Int(span.mfa) < excluded.count && excluded[Int(span.mfa)])
        stack.append(isExcluded ? -2 : child(parent, span.mfa))
        open[span.pid] = stack
    }

    public func spanEnded(_ span: Span, result: StreamPayload) {
        guard span.startKnown, var stack = open[span.pid], let node = stack.popLast() else { return }
        if node >= 0 { nodes[Int(node)].selfTime += span.selfTime }
        open[span.pid] = stack.isEmpty ? nil : stack
        stats.slices += 1
    }

    public func end(_ analysis: CaptureAnalysis) {
        guard let text else { return }
        var names: [UInt32: String] = [:]
        func name(_ frame: UInt32) -> String {
            if let known = names[frame] { return known }
            let raw = frame & Self.processFrame != 0 ? text.process(ProcessID(frame & ~Self.processFrame))
                : text.function(FunctionID(frame))
            let clean = raw.replacingOccurrences(of: ";", with: ":").replacingOccurrences(of: "\n", with: " ")
            names[frame] = clean
            return clean
        }
        for index in nodes.indices {
            let micros = (nodes[index].selfTime + 500) / 1000
            guard micros > 0 else { continue }
            var path: [String] = []
            var at = Int32(index)
            while at >= 0 {
                path.append(name(nodes[Int(at)].frame))
                at = nodes[Int(at)].parent
            }
            out.write(path.reversed().joined(separator: ";"))
            out.write(byte: UInt8(ascii: " "))
            out.write(decimal: micros)
            out.write(byte: UInt8(ascii: "\n"))
            stats.counters += 1
        }
        stats.bytes = out.bytesWritten
    }
}
