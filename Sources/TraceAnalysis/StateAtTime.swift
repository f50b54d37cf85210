// "State at time T": every process's call stack and queue length at an instant. A first pass
// writes checkpoints (open stacks and queue counters every so many events) into the capture
// directory; later questions start from the nearest checkpoint at or before T, so a late T does
// not replay the whole capture.
import CaptureStore
import Foundation
import TraceModel

public struct ProcessState: Sendable, Codable {
    public var pid: String
    public var node: String
    public var name: String?
    /// Outermost first: "mod:fun/arity since <ns>".
    public var stack: [StackFrame]
    public var queueLength: Int64?
    public var queueEstimated: Bool

    enum CodingKeys: String, CodingKey {
        case pid, node, name, stack
        case queueLength = "queue_len", queueEstimated = "queue_estimated"
    }
}

public struct StackFrame: Sendable, Codable {
    public var mfa: String
    public var sinceNs: Int64
    enum CodingKeys: String, CodingKey {
        case mfa
        case sinceNs = "since_ns"
    }
}

public struct StateReport: Sendable, Codable {
    public var atNs: Int64
    public var processes: [ProcessState]
    /// Where the replay started (a checkpoint's time, or the capture's start) and how many events it read.
    public var replayedFromNs: Int64
    public var eventsReplayed: Int

    enum CodingKeys: String, CodingKey {
        case processes
        case atNs = "at_ns", replayedFromNs = "replayed_from_ns", eventsReplayed = "events_replayed"
    }
}

/// Checkpoints as stored in `<capture>/analysis-checkpoints.json`.
struct CheckpointFile: Codable {
    struct ProcessSnapshot: Codable {
        var pid: UInt32
        var node: UInt32
        var frames: [[Int64]]  // [mfa, start]
    }

    struct QueueSnapshot: Codable {
        var pid: UInt32
        var sendsIn: Int64
        var receives: Int64
        var handled: Int64
        var sawHandled: Bool
        var lastSample: Int64?
    }

    struct Checkpoint: Codable {
        /// Every event with a time before this was consumed; none at or after it.
        var time: Int64
        var events: Int
        var stacks: [ProcessSnapshot]
        var queues: [QueueSnapshot]
    }

    var fingerprint: String
    var interval: Int
    var checkpoints: [Checkpoint]
}

public enum StateAtTime {
    public static let fileName = "analysis-checkpoints.json"

    static func fingerprint(_ reader: CaptureReader) -> String {
        let last = reader.blocks.last
        return "\(reader.blocks.count)-\(last?.sequence ?? 0)-\(last?.timeMax ?? 0)-\(reader.bytesOnDisk)"
    }

    /// The state at `time`. Builds the checkpoint file on first use (one full pass), then starts
    /// from the nearest checkpoint. With `useCheckpoints` false it replays from the start.
    public static func state(_ reader: CaptureReader, at time: Int64, useCheckpoints: Bool = true,
                             interval: Int = 200_000) throws -> StateReport {
        var start: CheckpointFile.Checkpoint?
        if useCheckpoints {
            let file = try loadOrBuild(reader, interval: interval)
            start = file.checkpoints.last { $0.time <= time }
        }
        let analysis = CaptureAnalysis(dictionaries: reader.dictionaries)
        var query = EventQuery(to: time)
        if let start {
            query.from = start.time
            analysis.restore(start)
        }
        var replayed = 0
        try reader.forEach(matching: query) { event, payload in
            replayed += 1
            analysis.consume(event, payload: payload)
            return true
        }
        return analysis.stateReport(at: time, replayedFrom: start?.time ?? reader.blocks.map(\.timeMin).min() ?? 0,
                                    eventsReplayed: replayed)
    }

    static func loadOrBuild(_ reader: CaptureReader, interval: Int) throws -> CheckpointFile {
        let path = (reader.directory as NSString).appendingPathComponent(fileName)
        let print = fingerprint(reader)
        if let data = FileManager.default.contents(atPath: path),
           let file = try? JSONDecoder().decode(CheckpointFile.self, from: data), file.fingerprint == print {
            return file
        }
        var checkpoints: [CheckpointFile.Checkpoint] = []
        let analysis = CaptureAnalysis(dictionaries: reader.dictionaries)
        var sinceLast = 0
        var previousTime = Int64.min
        try reader.forEach(matching: .all) { event, payload in
            if sinceLast >= interval && event.time > previousTime {
                checkpoints.append(analysis.checkpoint(at: event.time))
                sinceLast = 0
            }
            analysis.consume(event, payload: payload)
            sinceLast += 1
            previousTime = event.time
            return true
        }
        let file = CheckpointFile(fingerprint: print, interval: interval, checkpoints: checkpoints)
        if let data = try? JSONEncoder().encode(file) {
            // A cache: if the directory is read-only we simply rebuild next time.
            _ = FileManager.default.createFile(atPath: path, contents: data, attributes: [.posixPermissions: 0o600])
        }
        return file
    }
}

extension CaptureAnalysis {
    func checkpoint(at time: Int64) -> CheckpointFile.Checkpoint {
        let stacks = self.stacks.openStacks.map { entry in
            CheckpointFile.ProcessSnapshot(pid: entry.pid, node: entry.node,
                                           frames: entry.frames.map { [Int64($0.mfa), $0.start] })
        }
        var queues: [CheckpointFile.QueueSnapshot] = []
        let estimates = self.queues.estimates
        for pid in Set(estimates.keys).union(self.queues.sampled.keys).sorted() {
            let estimate = estimates[pid]
            queues.append(CheckpointFile.QueueSnapshot(
                pid: pid, sendsIn: estimate?.sendsIn ?? 0, receives: estimate?.receives ?? 0,
                handled: estimate?.handled ?? 0, sawHandled: estimate?.sawHandled ?? false,
                lastSample: self.queues.sampled[pid]?.points.last?.length))
        }
        return CheckpointFile.Checkpoint(time: time, events: events, stacks: stacks, queues: queues)
    }

    func restore(_ checkpoint: CheckpointFile.Checkpoint) {
        for snapshot in checkpoint.stacks {
            stacks.restore(pid: snapshot.pid, node: snapshot.node,
                           frames: snapshot.frames.compactMap { $0.count == 2 ? (FunctionID(clamping: $0[0]), $0[1]) : nil },
                           at: checkpoint.time)
        }
        for snapshot in checkpoint.queues {
            if snapshot.sendsIn + snapshot.receives + snapshot.handled > 0 || snapshot.sawHandled {
                let e = queues.estimateCreating(snapshot.pid)
                queues.estimateTable[e].sendsIn = snapshot.sendsIn
                queues.estimateTable[e].receives = snapshot.receives
                queues.estimateTable[e].handled = snapshot.handled
                queues.estimateTable[e].sawHandled = snapshot.sawHandled
                if snapshot.sawHandled {
                    queues.estimateTable[e].series.add(time: checkpoint.time, length: queues.estimateTable[e].length)
                }
            }
            if let sample = snapshot.lastSample {
                queues.sampled[snapshot.pid, default: QueueSeries()].add(time: checkpoint.time, length: sample)
            }
        }
    }

    func stateReport(at time: Int64, replayedFrom: Int64, eventsReplayed: Int) -> StateReport {
        var pids = Set(stacks.openStacks.map(\.pid))
        for pid in queues.processes { pids.insert(pid) }
        var processes: [ProcessState] = []
        for pid in pids.sorted() {
            let frames = stacks.openCalls(of: pid).map { StackFrame(mfa: functionText($0.mfa), sinceNs: $0.start) }
            let queue = queues.series(for: pid)
            let length = queue?.0.points.last?.length
            if frames.isEmpty && (length ?? 0) == 0 { continue }
            let node = dictionaries.process(pid).map { nodeText($0.identity.node) } ?? ""
            processes.append(ProcessState(pid: processText(pid), node: node, name: nameText(pid), stack: frames,
                                          queueLength: length, queueEstimated: queue?.estimated ?? false))
        }
        return StateReport(atNs: time, processes: processes, replayedFromNs: replayedFrom, eventsReplayed: eventsReplayed)
    }
}
