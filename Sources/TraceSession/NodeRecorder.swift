// One traced node during a session: its connection, the agent's pids, and the task that takes the
// agent's messages (batches, samples, system_monitor events, stop reports) off our mailbox, feeds
// them into the capture and acknowledges batches (the agent's flow control).
import BeamDistribution
import BeamTerm
import CaptureStore
import Foundation
import Logging

final class NodeRecorder: @unchecked Sendable {
    let name: String
    let connection: DistributionConnection
    let mailbox: Mailbox
    let loader: AgentLoader
    let otpRelease: String
    var startOffset: SessionClock.Offset
    var endOffset: SessionClock.Offset?
    /// Index of this node in the capture sink.
    var sinkIndex = 0
    var controller: Pid?
    var tracer: Pid?
    /// The node's monotonic time just before its agent set any trace flag (its events come after it).
    var tracingSince: Int64?
    var agentLoaded = false
    var cleanedUp = false
    /// The `--procs` selectors as resolved on this node (see `resolveProcesses`).
    var targets: [Term] = [.atom("all")]
    /// The node's `net_kernel:get_net_ticktime()` in seconds (how long it waits before dropping us).
    var netTickSeconds: Int64?
    /// What is known of the events lost when the node left the session early.
    var lossNote: String?

    private let lock = NSLock()
    private var _state = "starting"
    private var _stats: Term?
    private var _stopped = false
    private var _ended: String?

    init(name: String, connection: DistributionConnection, mailbox: Mailbox, loader: AgentLoader, otpRelease: String,
         startOffset: SessionClock.Offset) {
        self.name = name
        self.connection = connection
        self.mailbox = mailbox
        self.loader = loader
        self.otpRelease = otpRelease
        self.startOffset = startOffset
    }

    var state: String {
        get { lock.withLock { _state } }
        set { lock.withLock { _state = newValue } }
    }
    /// The tracer's final statistics (`#{sent, dropped, drops => #{Reason => N}, ...}`).
    var stats: Term? { lock.withLock { _stats } }
    /// The agent reported that everything is switched off.
    var stopped: Bool { lock.withLock { _stopped } }
    /// Why the node left the session early (connection lost, agent died), if it did.
    var ended: String? { lock.withLock { _ended } }
    var isFinished: Bool { lock.withLock { _stopped || _ended != nil } }

    /// Where the agent's data messages are decoded, in arrival order (see `interceptData`).
    private let ingestQueue = DispatchQueue(label: "beamtrace.recorder.ingest")

    /// From now on the agent's data messages (batches, samples, system_monitor events) are taken off
    /// the connection as they arrive, as bytes (no term built, no copy: a view of the received frame),
    /// and decoded in arrival order on this node's ingest queue, a batch in place; the connection goes
    /// on reading meanwhile. The rest (stop reports, monitors, the connection's end) still comes
    /// through the mailbox (`run`), which waits for the queue before acting on it. Set before the
    /// agent starts, so that no data message waits in the mailbox behind it.
    func interceptData(index: Int, sink: CaptureSink, signals: AsyncStream<SessionSignal>.Continuation,
                       logger: Logger) {
        let queue = ingestQueue
        mailbox.intercept { [self] message in
            guard Self.isData(message) else { return false }
            queue.async { self.takeData(message, index: index, sink: sink, signals: signals, logger: logger) }
            return true
        }
    }

    /// Waits until every data message taken so far is in the capture.
    func drainIngest() async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in ingestQueue.async { done.resume() } }
    }

    private static func isData(_ message: ReceivedMessage) -> Bool {
        message.withUnsafeBytes { bytes in
            var cursor = TermCursor(bytes)
            guard cursor.u8() == 131, let arity = cursor.tupleArity(), let head = cursor.atomText() else { return false }
            let tag = cursor.slice(head.start, head.start + head.length)
            return (arity == 4 && tag.elementsEqual("beamtrace_batch".utf8))
                || tag.elementsEqual("beamtrace_samples".utf8) || tag.elementsEqual("beamtrace_monitor".utf8)
        }
    }

    private func takeData(_ message: ReceivedMessage, index: Int, sink: CaptureSink,
                          signals: AsyncStream<SessionSignal>.Continuation, logger: Logger) {
        message.withUnsafeBytes { bytes in
            var cursor = TermCursor(bytes)
            guard cursor.u8() == 131, let arity = cursor.tupleArity(), let head = cursor.atomText() else { return }
            let tag = cursor.slice(head.start, head.start + head.length)
            if arity == 4, tag.elementsEqual("beamtrace_batch".utf8), takeBatch(bytes, cursor: cursor, sink: sink,
                                                                             signals: signals) {
                return
            }
            // Samples, monitor messages, and a batch whose data is not a binary: as terms.
            var offset = 0
            guard let term = try? TermDecoder().decode(bytes, offset: &offset, versioned: true) else { return }
            handle(term, index: index, sink: sink, signals: signals, logger: logger)
        }
    }

    /// `{beamtrace_batch, Tracer, Seq, Binary}` read in place; false when its data is not a binary.
    private func takeBatch(_ bytes: UnsafeRawBufferPointer, cursor start: TermCursor, sink: CaptureSink,
                           signals: AsyncStream<SessionSignal>.Continuation) -> Bool {
        var cursor = start
        var offset = cursor.offset
        let decoder = TermDecoder()
        guard case .pid(let tracer)? = try? decoder.decode(bytes, offset: &offset, versioned: false),
              let seq = try? decoder.decode(bytes, offset: &offset, versioned: false) else { return false }
        cursor.offset = offset
        guard cursor.u8() == ExternalTag.binary, let size = cursor.u32(), Int(size) == cursor.remaining else { return false }
        // Acknowledged whatever happens to it: the agent's flow control waits for acks.
        defer { try? mailbox.send(to: .pid(tracer), .tuple([.atom("beamtrace_ack"), seq])) }
        do {
            let result = try sink.ingestAgentBatch(raw: UnsafeRawBufferPointer(rebasing: bytes[cursor.offset...]),
                                                   node: sinkIndex)
            if result.limitReached { signals.yield(.limit("max_events")) }
        } catch let stopped as IngestStopped {
            signals.yield(.failure(CaptureSink.strictStopText(stopped)))
        } catch {
            signals.yield(.failure("writing the capture failed: \(error)"))
        }
        return true
    }

    /// Consumes the mailbox until it ends, reporting to `signals`.
    func run(index: Int, sink: CaptureSink, signals: AsyncStream<SessionSignal>.Continuation, logger: Logger) async {
        loop: for await message in mailbox {
            // What came before this through the ingest queue is in the capture first.
            await drainIngest()
            switch message {
            case .message(let term):
                handle(term, index: index, sink: sink, signals: signals, logger: logger)
            case .down(_, _, let reason):
                if !isFinished {
                    let why = reason.atomName == "noconnection"
                        ? "connection lost (the agent's monitor saw noconnection)"
                        : "the agent ended unexpectedly: \(reason.erlangText())"
                    lock.withLock { _ended = why; _state = "failed" }
                    signals.yield(.nodeEnded(index, why))
                }
            case .exit:
                break
            case .nodeDown(let error):
                if !isFinished {
                    let why = "connection lost: \(error)"
                    lock.withLock { _ended = why; _state = "down" }
                    signals.yield(.nodeEnded(index, why))
                }
                break loop
            }
        }
        await drainIngest()
    }

    private func handle(_ term: Term, index: Int, sink: CaptureSink,
                        signals: AsyncStream<SessionSignal>.Continuation, logger: Logger) {
        guard case .tuple(let t) = term, let tag = t.first?.atomName else { return }
        do {
            switch tag {
            case "beamtrace_batch" where t.count == 4:
                // Acknowledged whatever happens to it: the agent's flow control waits for acks.
                defer {
                    if case .pid(let tracer) = t[1] {
                        try? mailbox.send(to: .pid(tracer), .tuple([.atom("beamtrace_ack"), t[2]]))
                    }
                }
                guard case .binary(let bytes) = t[3] else {
                    // Not a binary at all: counted and skipped like any other batch that does not decode.
                    let result = try sink.ingestAgentBatch([], node: sinkIndex, notABinary: t[3].erlangText())
                    if result.limitReached { signals.yield(.limit("max_events")) }
                    return
                }
                let result = try sink.ingestAgentBatch(bytes, node: sinkIndex)
                if result.limitReached { signals.yield(.limit("max_events")) }
            case "beamtrace_samples" where t.count == 5:
                guard let time = t[2].intValue else { return }
                let longest = try sink.ingestSamples(node: sinkIndex, time: time, processes: t[3].listElements ?? [],
                                                     totals: t[4])
                if let longest { signals.yield(.queue(index, longest.0, longest.1)) }
            case "beamtrace_monitor" where t.count == 6:
                guard let time = t[2].intValue, let monitorTag = t[4].atomName else { return }
                try sink.ingestMonitor(node: sinkIndex, time: time, who: t[3], tag: monitorTag, info: t[5])
            case "beamtrace_stopping" where t.count == 3:
                state = "stopping"
                signals.yield(.agentStopping(index, t[2]))
            case "beamtrace_done" where t.count == 3:
                lock.withLock { _stats = t[2] }
            case "beamtrace_stopped" where t.count == 4:
                lock.withLock {
                    if _stats == nil, case .map(let pairs) = t[3], !pairs.isEmpty { _stats = t[3] }
                    _stopped = true
                    _state = "stopped"
                }
                signals.yield(.stopped(index))
            default:
                logger.debug("unexpected message from agent", metadata: ["node": "\(name)", "tag": "\(tag)"])
            }
        } catch let stopped as IngestStopped {
            signals.yield(.failure(CaptureSink.strictStopText(stopped)))
        } catch {
            signals.yield(.failure("writing the capture failed: \(error)"))
        }
    }

    /// Drop counts by reason from the tracer's statistics.
    var dropsByReason: [String: Int] {
        guard case .map(let pairs)? = stats,
              case .map(let drops)? = pairs.first(where: { $0.key.atomName == "drops" })?.value else { return [:] }
        var result: [String: Int] = [:]
        for pair in drops {
            if let key = pair.key.atomName, let value = pair.value.intValue { result[key] = Int(value) }
        }
        return result
    }
}

/// What wakes the session's main loop.
enum SessionSignal: Sendable {
    case tick
    case stop(String)
    case limit(String)
    case failure(String)
    case agentStopping(Int, Term)
    case nodeEnded(Int, String)
    case stopped(Int)
    case queue(Int, Int64, Term)
}
