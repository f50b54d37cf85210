// `--transport ip`: OTP's own ip trace port instead of the agent. On each node dbg opens
// `trace_ip_drv` (dbg:tracer(port, dbg:trace_port(ip, {0, QSize}))), sets the patterns and flags
// with dbg:tpl/tp and dbg:p, and we read the port's TCP stream of trace-port frames straight into
// the capture. The driver listens on all interfaces without authentication and nothing on the
// node switches tracing off if we die, so it is only used when asked (or when a node cannot
// compile the agent). No samplers, no system_monitor; the driver's drop frames are kept.
import BeamDistribution
import BeamTerm
import CaptureStore
import Foundation
import Logging
import TraceModel

struct IPRecording {
    let session: TraceSession
    var queueSize = 50_000

    private final class IPNode: @unchecked Sendable {
        let name: String
        let connection: DistributionConnection
        let loader: AgentLoader
        let otpRelease: String
        let offset: SessionClock.Offset
        var socket: Int32 = -1
        var sinkIndex = 0
        var reader: Thread?
        var traceStarted = false
        var cleanedUp = false
        var traceStopping = false
        private let lock = NSLock()
        private var _ended: String?
        var ended: String? {
            get { lock.withLock { _ended } }
            set { lock.withLock { _ended = newValue } }
        }

        init(name: String, connection: DistributionConnection, loader: AgentLoader, otpRelease: String,
             offset: SessionClock.Offset) {
            self.name = name
            self.connection = connection
            self.loader = loader
            self.otpRelease = otpRelease
            self.offset = offset
        }
    }

    func run(progress: (any RecordingProgress)?, note: String? = nil) async throws -> RecordingSummary {
        let options = session.options
        do {
            try options.spec.validate()
        } catch {
            throw SessionError(.invalidSpec, error.message)
        }
        if FileManager.default.fileExists(atPath: options.output) {
            throw SessionError(.captureFailed, "\(options.output) already exists; choose a new capture name")
        }
        let clock = SessionClock()
        let started = ContinuousClock.now
        var nodes: [IPNode] = []
        var problems: [String] = note.map { [$0] } ?? []
        var failure: String?
        do {
            for name in options.nodes {
                let connection = try await DistributionConnection.connect(to: name, cookie: options.cookie,
                                                                          localName: options.localName,
                                                                          options: options.distribution)
                let loader = AgentLoader(connection: connection, node: name)
                let release = try await connection.rpc(module: "erlang", function: "system_info",
                                                       arguments: [.atom("otp_release")], timeout: .seconds(10))
                let text = String(decoding: (release.listElements ?? []).compactMap { $0.intValue.flatMap { UInt8(exactly: $0) } },
                                  as: UTF8.self)
                let offset = try await clock.measure(connection)
                nodes.append(IPNode(name: name, connection: connection, loader: loader, otpRelease: text, offset: offset))
            }
        } catch {
            for node in nodes { await node.connection.close() }
            if error is SessionError { throw error }
            throw SessionError(.connectFailed, "\(error)")
        }

        let sink: CaptureSink
        do {
            sink = try CaptureSink.create(
                options, sources: nodes.map { "ip:\($0.name)" },
                nodes: nodes.map { .init(name: $0.name, otpRelease: $0.otpRelease, clockOffsetNs: $0.offset.offset) },
                startReason: "beamtrace record --transport ip")
        } catch {
            for node in nodes { await node.connection.close() }
            throw SessionError(.captureFailed, "cannot create the capture \(options.output): \(error)")
        }
        for node in nodes { node.sinkIndex = sink.addNode(name: node.name, offset: node.offset.offset) }

        let continuation = session.continuation
        // No node traces before this: the start marker precedes every event (the first node starts
        // tracing while the others are still being asked).
        let requested = clock.now
        do {
            for node in nodes { try await start(node, sink: sink, signals: continuation) }
        } catch {
            for node in nodes { await stop(node) }
            for node in nodes { await node.connection.close() }
            try? sink.close(stopReason: "start failed: \(error)")
            try? FileManager.default.removeItem(atPath: options.output)
            throw error
        }
        try? sink.marker(code: 1, payload: .tuple([.atom("start"), .list(nodes.map { .atom($0.name) })]), time: requested)

        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(200))
                continuation.yield(.tick)
            }
        }
        let recordingStarted = ContinuousClock.now
        var stopReason: String?
        loop: for await signal in session.signals {
            switch signal {
            case .tick:
                try? sink.flushIfDue()
                if let duration = options.limits.duration, ContinuousClock.now - recordingStarted >= duration {
                    stopReason = "duration \(duration) reached"
                }
                progress?.update(RecordingStatus(elapsed: ContinuousClock.now - recordingStarted, events: sink.traceEvents,
                                                 eventsPerSecond: 0, drops: sink.drops, bytesWritten: sink.bytesWritten,
                                                 nodes: nodes.map { .init(name: $0.name, state: $0.ended ?? "recording",
                                                                          events: sink.nodeState($0.sinkIndex).events,
                                                                          drops: sink.nodeState($0.sinkIndex).drops) }))
            case .stop(let reason): stopReason = reason
            case .limit(let what): stopReason = "limit: \(what) \(options.limits.maxEvents ?? 0) reached"
            case .failure(let reason):
                failure = failure ?? reason
                stopReason = reason
                problems.append(reason)
            case .nodeEnded(let i, let why):
                try? sink.marker(code: 0, payload: .tuple([.atom("node_down"), .atom(nodes[i].name), .binary(Array(why.utf8))]),
                                 time: clock.now, node: nodes[i].sinkIndex)
                if nodes.allSatisfy({ $0.ended != nil }) { stopReason = "every node left the session" }
            case .agentStopping, .stopped, .queue: break
            }
            if stopReason != nil { break loop }
        }
        ticker.cancel()
        let finalReason = stopReason ?? "stopped"
        // The session stops now: ages in the analysis are measured to this marker, so it is stamped
        // when the stop is decided, before tracing is switched off and dbg stopped on each node (or at
        // the last event, when any was recorded while switching off: CaptureSink.stop).
        sink.stop(payload: .tuple([.atom("stop"), .binary(Array(finalReason.utf8))]), decidedAt: clock.now)
        for node in nodes where node.ended == nil { await stop(node) }
        for node in nodes {
            if node.ended == nil && !node.cleanedUp {
                problems.append("\(node.name): dbg:stop_clear() did not confirm; run it on the node")
            }
            await node.connection.close()
        }
        problems += sink.problemList
        let summaryNodes = nodes.map { node -> RecordingSummary.Node in
            let state = sink.nodeState(node.sinkIndex)
            return .init(name: node.name, otpRelease: node.otpRelease, events: state.events, drops: state.drops,
                         dropsByReason: state.drops > 0 ? ["ip_queue": state.drops] : [:],
                         clockOffsetStartNs: node.offset.offset, clockOffsetEndNs: nil,
                         endReason: node.ended ?? "session stopped", cleanedUp: node.cleanedUp)
        }
        sink.updateMeta { meta in
            var record: [String: Any] = ["command": options.commandLine, "transport": "ip",
                                         "patterns": options.spec.patterns.map(\.text), "stopReason": finalReason,
                                         "ipQueueSize": queueSize]
            record["nodes"] = summaryNodes.map { ["name": $0.name, "otpRelease": $0.otpRelease ?? "",
                                                  "clockOffsetStartNs": $0.clockOffsetStartNs ?? 0,
                                                  "events": $0.events, "drops": $0.drops, "cleanedUp": $0.cleanedUp] }
            if let data = try? JSONSerialization.data(withJSONObject: record, options: [.sortedKeys]) {
                meta.session = String(decoding: data, as: UTF8.self)
            }
        }
        do {
            try sink.close(stopReason: finalReason)
        } catch {
            failure = failure ?? "closing the capture failed: \(error)"
            problems.append("closing the capture failed: \(error)")
        }
        var summary = RecordingSummary(output: options.output, events: sink.traceEvents, drops: sink.drops,
                                bytesWritten: sink.bytesWritten, startReason: "beamtrace record --transport ip",
                                stopReason: finalReason, duration: ContinuousClock.now - started, nodes: summaryNodes,
                                problems: problems)
        summary.failure = failure
        summary.eventsInCapture = sink.eventsInCapture
        (summary.messagesSkipped, summary.bytesSkipped, summary.skipped) = sink.skipped
        return summary
    }

    private func start(_ node: IPNode, sink: CaptureSink, signals: AsyncStream<SessionSignal>.Continuation) async throws {
        let options = session.options
        let spec = options.spec
        let running = try await node.loader.evaluate("whereis(dbg).")
        if running.atomName != "undefined" {
            throw SessionError(.alreadyRecording, node: node.name, "dbg is already running on the node; stop it first")
        }
        let portReply = try await node.loader.evaluate(
            "{ok, _} = dbg:tracer(port, dbg:trace_port(ip, {0, Q})), dbg:trace_port_control(get_listen_port).",
            bindings: [("Q", .integer(Int64(queueSize)))])
        node.traceStarted = true
        guard case .tuple(let t) = portReply, t.count == 2, let port = t[1].intValue else {
            throw SessionError(.startFailed, node: node.name, "the ip trace port did not say its port: \(portReply.erlangText())")
        }
        for pattern in spec.patterns {
            guard !pattern.needsNodeCompile || pattern.rawMatchSpec != nil else {
                throw SessionError(.patternFailed, node: node.name,
                                   "pattern \(pattern.text): guards need the agent's compiler; use a raw match spec with --transport ip")
            }
            let (m, f, a) = pattern.mfaTerms
            let function = pattern.scope == .local ? "tpl" : "tp"
            let reply = try await node.loader.evaluate("dbg:\(function)(M, F, A, MS).", bindings: [
                ("M", m), ("F", f), ("A", a), ("MS", pattern.localMatchSpec(callsOnly: spec.callsOnly)),
            ])
            let matched: Int64? = {
                guard case .tuple(let r) = reply, r.count == 2, r[0].atomName == "ok",
                      let entries = r[1].listElements else { return nil }
                return entries.reduce(0) { total, entry in
                    if case .tuple(let e) = entry, e.count == 2, e[0].atomName == "matched" { return total + (e.last?.intValue ?? 0) }
                    if case .tuple(let e) = entry, e.count == 3, e[0].atomName == "matched" { return total + (e[2].intValue ?? 0) }
                    return total
                }
            }()
            guard let matched, matched > 0 else {
                throw SessionError(.startFailed, node: node.name, "pattern \(pattern.text) matches no function on the node "
                                   + "(\(reply.erlangText()))")
            }
        }
        // Connect before the flags go on, so nothing queues up unread.
        let host = node.connection.peer.node.host
        node.socket = try Self.connect(host: host, port: Int(port), node: node.name)
        let fd = node.socket
        let index = options.nodes.firstIndex(of: node.name) ?? 0
        let sinkIndex = node.sinkIndex
        let thread = Thread {
            var pending: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                pending.append(contentsOf: buffer[0..<n])
                do {
                    let result = try sink.ingestFrames(pending, node: sinkIndex, stream: true)
                    pending.removeFirst(result.consumed)
                    if result.limitReached { signals.yield(.limit("max_events")) }
                } catch let stopped as IngestStopped {
                    signals.yield(.failure(CaptureSink.strictStopText(stopped)))
                    break
                } catch {
                    signals.yield(.failure("reading the ip trace stream of \(node.name) failed: \(error)"))
                    break
                }
            }
            if node.ended == nil && !node.cleanedUp && !node.traceStopping {
                node.ended = "the ip trace connection closed"
                signals.yield(.nodeEnded(index, "the ip trace connection closed"))
            }
        }
        thread.start()
        node.reader = thread
        var procs: [Term] = []
        for selector in spec.processes {
            switch selector {
            case .all, .new, .existing: procs.append(.atom(selector.description))
            case .name(let name): procs.append(.atom(name))
            case .pid(let text):
                let parts = text.dropFirst().dropLast().split(separator: ".").compactMap { UInt32($0) }
                guard parts.count == 3 else { continue }
                procs.append(.pid(Pid(node: Atom(node.connection.peer.node.description), id: parts[1], serial: parts[2],
                                      creation: node.connection.peer.creation)))
            }
        }
        let flags = spec.traceFlags + [.atom(spec.strictTimestamps ? "strict_monotonic_timestamp" : "monotonic_timestamp")]
        for item in procs {
            let reply = try await node.loader.evaluate("dbg:p(P, Flags).", bindings: [("P", item), ("Flags", .list(flags))])
            guard case .tuple(let r) = reply, r.first?.atomName == "ok" else {
                throw SessionError(.startFailed, node: node.name, "dbg:p(\(item.erlangText()), ...) said \(reply.erlangText())")
            }
        }
    }

    /// Switches tracing off, lets the port's queue drain to us, then stops dbg and clears patterns.
    private func stop(_ node: IPNode) async {
        guard node.traceStarted else { return }
        node.traceStopping = true
        _ = try? await node.loader.evaluate("dbg:p(all, clear), dbg:ctp(), dbg:flush_trace_port().")
        try? await Task.sleep(for: .milliseconds(300))
        let reply = try? await node.loader.evaluate("dbg:stop_clear(), erlang:trace_info(new, flags).")
        node.cleanedUp = reply?.erlangText() == "{flags,[]}"
        if node.socket >= 0 {
            shutdown(node.socket, Int32(SHUT_RDWR))
            close(node.socket)
            node.socket = -1
        }
    }

    static func connect(host: String, port: Int, node: String) throws -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &result) == 0, let first = result else {
            throw SessionError(.startFailed, node: node, "cannot resolve \(host) for the ip trace port")
        }
        defer { freeaddrinfo(result) }
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let info = entry {
            let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
            if fd >= 0 {
                if Glibc.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 { return fd }
                close(fd)
            }
            entry = info.pointee.ai_next
        }
        throw SessionError(.startFailed, node: node, "cannot connect to the ip trace port \(host):\(port)")
    }
}
