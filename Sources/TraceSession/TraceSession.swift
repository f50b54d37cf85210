// A live recording session: connects to every node as a hidden node, puts the agent on each,
// installs the patterns, records batches/samples/monitor events into one capture on the session
// clock until a limit, a stop request or the loss of every node, and then cleans every node (the
// agent switches everything off; we unload it and check). Nodes that go down leave the session;
// the others continue.
//
//     let session = TraceSession(options: options)
//     // from a signal handler: session.requestStop("SIGINT")
//     let summary = try await session.run(progress: nil)
import BeamDistribution
import BeamTerm
import CaptureStore
import Foundation
import Logging
import TraceModel

public final class TraceSession: Sendable {
    public let options: RecordingOptions
    let logger: Logger
    let signals: AsyncStream<SessionSignal>
    let continuation: AsyncStream<SessionSignal>.Continuation
    private let live = LiveSink()

    public init(options: RecordingOptions, logger: Logger? = nil) {
        self.options = options
        // The level is the application's choice (its LoggingSystem bootstrap), not ours.
        self.logger = logger ?? Logger(label: "beamtrace.session")
        (signals, continuation) = AsyncStream.makeStream(of: SessionSignal.self)
    }

    /// Trace events recorded so far (0 before recording starts), and drops counted so far.
    public var eventsRecorded: Int { live.sink?.traceEvents ?? 0 }
    public var dropsRecorded: Int { live.sink?.drops ?? 0 }

    /// Asks the session to stop (safe from any thread, e.g. a signal handler's queue).
    public func requestStop(_ reason: String) {
        continuation.yield(.stop(reason))
    }

    /// Records until a stop condition, cleans up, and returns what happened. Throws before recording
    /// starts (bad spec, a node unreachable, a pattern that matches nothing) — with every node left
    /// as it was and no capture created.
    public func run(progress: (any RecordingProgress)? = nil) async throws -> RecordingSummary {
        if options.transport == .ip {
            return try await IPRecording(session: self).run(progress: progress)
        }
        do {
            try options.spec.validate()
        } catch {
            throw SessionError(.invalidSpec, error.message)
        }
        guard !options.nodes.isEmpty else { throw SessionError(.invalidSpec, "no node given (--node name@host)") }
        if FileManager.default.fileExists(atPath: options.output) {
            throw SessionError(.captureFailed, "\(options.output) already exists; choose a new capture name")
        }
        let clock = SessionClock()
        let started = ContinuousClock.now

        // 1. Connect, load the agent, compile patterns, measure clocks: all nodes, concurrently.
        let prepared = await withTaskGroup(of: (Int, Result<NodeRecorder, any Error>).self) { group in
            for (i, name) in options.nodes.enumerated() {
                group.addTask {
                    do {
                        return (i, .success(try await self.prepare(node: name, clock: clock)))
                    } catch {
                        return (i, .failure(error))
                    }
                }
            }
            var results: [(Int, Result<NodeRecorder, any Error>)] = []
            for await result in group { results.append(result) }
            return results.sorted { $0.0 < $1.0 }.map(\.1)
        }
        var nodes: [NodeRecorder] = []
        var firstError: (any Error)?
        for result in prepared {
            switch result {
            case .success(let node): nodes.append(node)
            case .failure(let error): firstError = firstError ?? error
            }
        }
        if let firstError {
            let leftovers = await abandon(nodes)
            let failures = prepared.compactMap { if case .failure(let e) = $0 { e as? SessionError } else { nil } }
            if failures.count == prepared.count, failures.allSatisfy({ $0.code == .noCompiler }) {
                // No node can build the agent: OTP's ip trace port needs no compiler.
                let note = "\(failures.compactMap(\.node).joined(separator: ", ")) cannot compile the agent (no compiler "
                    + "application): recorded over the ip trace port instead (no samplers, no cleanup if the recorder dies)"
                logger.warning("\(note)")
                return try await IPRecording(session: self).run(progress: progress, note: note)
            }
            throw noting(leftovers, on: firstError)
        }
        let compiled: [[Term]]
        do {
            compiled = try await compilePatterns(on: nodes)
        } catch {
            throw noting(await abandon(nodes), on: error)
        }

        // 2. The capture.
        let sink: CaptureSink
        do {
            sink = try CaptureSink.create(
                options, sources: nodes.map { "agent:\($0.name)" },
                nodes: nodes.map { .init(name: $0.name, otpRelease: $0.otpRelease, clockOffsetNs: $0.startOffset.offset) },
                startReason: "beamtrace record") { meta in meta.session = sessionRecord(nodes: nodes, stopReason: nil) }
        } catch {
            throw noting(await abandon(nodes),
                              on: SessionError(.captureFailed, "cannot create the capture \(options.output): \(error)"))
        }
        for node in nodes { node.sinkIndex = sink.addNode(name: node.name, offset: node.startOffset.offset) }
        live.sink = sink

        // 3. Start the agents (patterns, process flags, system_monitor, samplers). Their data is taken
        // as it arrives from here on (NodeRecorder.interceptData).
        for (i, node) in nodes.enumerated() {
            node.interceptData(index: i, sink: sink, signals: self.continuation, logger: logger)
        }
        // No node traces before this (each agent sets its flags after being asked).
        let requested = clock.now
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (i, node) in nodes.enumerated() {
                    group.addTask { try await self.startAgent(node, patterns: compiled[i]) }
                }
                try await group.waitForAll()
            }
        } catch {
            await withTaskGroup(of: Void.self) { group in
                for node in nodes {
                    guard let controller = node.controller else { continue }
                    try? node.mailbox.send(to: .pid(controller), .tuple([.atom("beamtrace_stop"), .atom("start_failed")]))
                    group.addTask { await Self.awaitStopped(node, timeout: .seconds(10)) }
                }
            }
            for node in nodes {
                node.mailbox.intercept(nil)
                await node.drainIngest()
            }
            let leftovers = await abandon(nodes)
            try? sink.close(stopReason: "start failed: \(error)")
            try? FileManager.default.removeItem(atPath: options.output)
            throw noting(leftovers, on: error)
        }
        // The start marker first: the nodes are tracing already, and asking for names takes an rpc each.
        // It is stamped when the first node switched tracing on (on that node's clock, moved by the
        // offset its events get, so it precedes every event of the session), not when the last agent's
        // reply arrived: events recorded meanwhile would come before it.
        let tracingSince = nodes.map { node in node.tracingSince.map { $0 &+ node.startOffset.offset } ?? requested }
        try? sink.marker(code: 1, payload: .tuple([.atom("start"), .list(nodes.map { .atom($0.name) })]),
                         time: tracingSince.min() ?? requested)
        for node in nodes { await reportNames(of: node, sink: sink) }
        logger.info("recording", metadata: ["nodes": "\(nodes.map(\.name))", "output": "\(options.output)"])

        // 4. Record.
        let continuation = self.continuation
        let logger = self.logger
        var tasks: [Task<Void, Never>] = []
        for (i, node) in nodes.enumerated() {
            node.state = "recording"
            tasks.append(Task { await node.run(index: i, sink: sink, signals: continuation, logger: logger) })
        }
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(200))
                continuation.yield(.tick)
            }
        }
        var stopReason: String?
        var untilQueueDeadline: ContinuousClock.Instant?
        var untilQueueWho = ""
        var lastStatus = (ContinuousClock.now, 0)
        var eventsPerSecond = 0.0
        var problems: [String] = []
        var failure: String?
        let recordingStarted = ContinuousClock.now

        func status() -> RecordingStatus {
            RecordingStatus(elapsed: ContinuousClock.now - recordingStarted, events: sink.traceEvents,
                            eventsPerSecond: eventsPerSecond, drops: sink.drops, bytesWritten: sink.bytesWritten,
                            nodes: nodes.map {
                                let state = sink.nodeState($0.sinkIndex)
                                return .init(name: $0.name, state: $0.state, events: state.events, drops: state.drops)
                            })
        }

        var stopAsked = false
        var stopDeadline: ContinuousClock.Instant?
        // The ticker fires every 200 ms; a longer silence means this process did not run (SIGSTOP, a
        // suspended VM, swapping): a stall, during which the nodes' batches were not read.
        var lastTick = clock.now
        var lastStall: (from: Int64, to: Int64)?
        let stallThreshold: Int64 = 1_000_000_000
        func noteStall(at tickTime: Int64) {
            if tickTime - lastTick > stallThreshold {
                lastStall = (lastTick, tickTime)
                logger.warning("the recorder stalled", metadata: ["seconds": "\(Double(tickTime - lastTick) / 1e9)"])
                try? sink.marker(code: 4, payload: .tuple([
                    .atom("gap"), .atom("recorder_stalled"),
                    .map(unordered: [MapPair(.atom("from_ns"), .integer(lastTick)),
                                     MapPair(.atom("to_ns"), .integer(tickTime))]),
                ]), time: lastTick)
                problems.append(String(format: "the recorder did not run for %.1f s: the nodes' batches waited "
                                       + "(the agents count what they dropped meanwhile)",
                                       Double(tickTime - lastTick) / 1e9))
            }
            lastTick = tickTime
        }
        loop: for await signal in signals {
            switch signal {
            case .tick:
                try? sink.flushIfDue()
                noteStall(at: clock.now)
                let now = ContinuousClock.now
                if now - lastStatus.0 >= .milliseconds(500) {
                    let seconds = Double((now - lastStatus.0).components.attoseconds) / 1e18
                        + Double((now - lastStatus.0).components.seconds)
                    eventsPerSecond = Double(sink.traceEvents - lastStatus.1) / max(seconds, 0.001)
                    lastStatus = (now, sink.traceEvents)
                    progress?.update(status())
                }
                if stopReason == nil, let duration = options.limits.duration, now - recordingStarted >= duration {
                    stopReason = "duration \(duration) reached"
                    try? sink.marker(code: 3, payload: .tuple([.atom("limit"), .atom("duration")]), time: clock.now)
                }
                if stopReason == nil, let deadline = untilQueueDeadline, now >= deadline {
                    stopReason = "until-queue: \(options.limits.after) after the queue of \(untilQueueWho) exceeded "
                        + "\(options.limits.untilQueue ?? 0)"
                }
                if let deadline = stopDeadline, now >= deadline {
                    problems.append("agents on \(nodes.filter { !$0.isFinished }.map(\.name)) did not confirm the stop in time")
                    break loop
                }
            case .stop(let reason):
                stopReason = stopReason ?? reason
            case .limit(let what):
                if stopReason == nil {
                    stopReason = "limit: \(what) \(options.limits.maxEvents ?? 0) reached"
                    try? sink.marker(code: 3, payload: .tuple([.atom("limit"), .atom(what),
                                                               .integer(Int64(options.limits.maxEvents ?? 0))]),
                                     time: clock.now)
                }
            case .failure(let reason):
                stopReason = stopReason ?? reason
                failure = failure ?? reason
                problems.append(reason)
            case .agentStopping(let i, let reason):
                let text = reason.erlangText()
                if stopReason == nil {
                    if case .tuple(let r) = reason, r.first?.atomName == "limit" {
                        stopReason = "limit: max_events reached on \(nodes[i].name)"
                        try? sink.marker(code: 3, payload: .tuple([.atom("limit"), .atom("max_events"),
                                                                   .integer(Int64(options.limits.maxEvents ?? 0))]),
                                         time: clock.now, node: nodes[i].sinkIndex)
                    } else {
                        stopReason = "the agent on \(nodes[i].name) stopped: \(text)"
                        try? sink.marker(code: 3, payload: reason, time: clock.now, node: nodes[i].sinkIndex)
                    }
                }
            case .nodeEnded(let i, let why):
                logger.warning("node left the session", metadata: ["node": "\(nodes[i].name)", "why": "\(why)"])
                let state = sink.nodeState(nodes[i].sinkIndex)   // lastTime is on the node's clock
                let detected = clock.now
                let stalledBefore = lastTick
                noteStall(at: detected)
                let loss = Self.lossEstimate(detected: detected, lastTick: stalledBefore, lastStall: lastStall,
                                             stallThreshold: stallThreshold,
                                             lastEvent: state.lastTime == 0 ? 0 : state.lastTime &+ state.offset,
                                             netTickSeconds: nodes[i].netTickSeconds)
                try? sink.marker(code: 0, payload: .tuple([.atom("node_down"), .atom(nodes[i].name),
                                                           .binary(Array(why.utf8))]),
                                 time: loss.at, node: nodes[i].sinkIndex)
                try? sink.marker(code: 4, payload: .tuple([.atom("gap"), .atom("node_lost"), loss.term(node: nodes[i].name)]),
                                 time: loss.from, node: nodes[i].sinkIndex)
                problems.append("\(nodes[i].name): \(why); " + loss.text)
                nodes[i].lossNote = loss.text
                if stopReason == nil && nodes.allSatisfy({ $0.ended != nil }) {
                    stopReason = "every node left the session"
                }
            case .stopped:
                break
            case .queue(let i, let length, let process):
                if let threshold = options.limits.untilQueue, length > Int64(threshold), untilQueueDeadline == nil {
                    untilQueueDeadline = ContinuousClock.now + options.limits.after
                    untilQueueWho = "\(process.erlangText()) on \(nodes[i].name) (\(length) messages)"
                    try? sink.marker(code: 0, payload: .tuple([.atom("until_queue"), process, .integer(length)]),
                                     time: clock.now, node: nodes[i].sinkIndex)
                }
            }
            if let reason = stopReason, !stopAsked {
                stopAsked = true
                // The session stops now: ages in the analysis are measured to this marker, so it is
                // stamped when the stop is decided, not after the agents have been unloaded (or at the
                // last event, when the agents recorded any while switching off: CaptureSink.stop).
                sink.stop(payload: .tuple([.atom("stop"), .binary(Array(reason.utf8))]), decidedAt: clock.now)
                stopDeadline = ContinuousClock.now + .seconds(15)
                for node in nodes where !node.isFinished {
                    node.state = "stopping"
                    if let controller = node.controller {
                        try? node.mailbox.send(to: .pid(controller),
                                               .tuple([.atom("beamtrace_stop"), .binary(Array(reason.utf8))]))
                    }
                }
            }
            if stopAsked && nodes.allSatisfy(\.isFinished) { break loop }
        }
        ticker.cancel()

        // 5. Clean up: unload the agent (it has switched everything off), check, close.
        let finalReason = stopReason ?? "stopped"
        await withTaskGroup(of: Void.self) { group in
            for node in nodes where node.ended == nil {
                group.addTask {
                    node.endOffset = try? await clock.measure(node.connection, rounds: 5)
                    let gone = await node.loader.unload()
                    node.cleanedUp = node.stopped && gone
                    node.agentLoaded = !gone
                }
            }
        }
        for node in nodes {
            if node.ended == nil && !node.cleanedUp {
                problems.append("\(node.name): the agent did not confirm cleanup "
                                + "(check with erlang:trace_info(new, flags) on the node)")
            }
            node.mailbox.close()
            await node.connection.close()
        }
        for task in tasks { await task.value }
        if !stopAsked {
            sink.stop(payload: .tuple([.atom("stop"), .binary(Array(finalReason.utf8))]), decidedAt: clock.now)
        }
        problems += sink.problemList
        let summaryNodes = nodes.map { node -> RecordingSummary.Node in
            let state = sink.nodeState(node.sinkIndex)
            return .init(name: node.name, otpRelease: node.otpRelease, events: state.events, drops: state.drops,
                         dropsByReason: node.dropsByReason, clockOffsetStartNs: node.startOffset.offset,
                         clockOffsetEndNs: node.endOffset?.offset,
                         endReason: node.ended.map { why in node.lossNote.map { "\(why); \($0)" } ?? why } ?? "session stopped",
                         cleanedUp: node.cleanedUp)
        }
        sink.updateMeta { meta in
            meta.session = sessionRecord(nodes: nodes, stopReason: finalReason, summary: summaryNodes)
        }
        var closed = true
        do {
            try sink.close(stopReason: finalReason)
        } catch {
            closed = false
            failure = failure ?? "closing the capture failed: \(error)"
            problems.append("closing the capture failed: \(error); the blocks written before are readable")
        }
        // Causal order across nodes (ClockRefinement): a receive is never stamped before its send.
        var refinement: ClockRefinement?
        if closed && nodes.count > 1 && options.refineClocks {
            do {
                refinement = try ClockRefinement.refine(capture: options.output)
            } catch {
                problems.append("refining the nodes' clock offsets failed: \(error); the capture keeps the measured offsets")
            }
        }
        var summary = RecordingSummary(output: options.output, events: sink.traceEvents, drops: sink.drops,
                                       bytesWritten: sink.bytesWritten, startReason: "beamtrace record",
                                       stopReason: finalReason, duration: ContinuousClock.now - started,
                                       nodes: summaryNodes, problems: problems, clockRefinement: refinement)
        summary.failure = failure
        summary.eventsInCapture = sink.eventsInCapture
        (summary.messagesSkipped, summary.bytesSkipped, summary.skipped) = sink.skipped
        return summary
    }

    // MARK: steps

    private func prepare(node name: String, clock: SessionClock) async throws -> NodeRecorder {
        let connection: DistributionConnection
        do {
            connection = try await DistributionConnection.connect(to: name, cookie: options.cookie,
                                                                  localName: options.localName,
                                                                  options: options.distribution, logger: logger)
        } catch {
            throw SessionError(.connectFailed, node: name, "cannot connect: \(error)")
        }
        do {
            let release = try await connection.rpc(module: "erlang", function: "system_info",
                                                   arguments: [.atom("otp_release")], timeout: options.setupTimeout)
            let otpRelease = release.listElements.map { String(decoding: $0.compactMap { $0.intValue.map(UInt8.init) }, as: UTF8.self) }
            let targets = try await resolveProcesses(on: connection, node: name)
            let loader = AgentLoader(connection: connection, node: name, timeout: options.setupTimeout)
            if try await loader.isLoaded() {
                let info = try? await connection.rpc(module: AgentSource.moduleName, function: "loaded_info",
                                                     timeout: options.setupTimeout)
                if info?.atomName == "none", await loader.unload() {
                    // Loaded, but no session and no guard: nobody else would ever take it off.
                    logger.warning("removed an idle beamtrace_agent left on the node", metadata: ["node": "\(name)"])
                } else {
                    throw SessionError(.alreadyRecording, node: name,
                                       "another beamtrace session is recording this node (its agent is "
                                       + "\(info?.erlangText() ?? "loaded")); stop that session first")
                }
            }
            guard try await loader.hasCompiler() else {
                throw SessionError(.noCompiler, node: name,
                                   "the node has no compiler application, so the agent cannot be built there; "
                                   + "record it with --transport ip instead")
            }
            let offset: SessionClock.Offset
            let mailbox: Mailbox
            do {
                try await loader.load()
                mailbox = try connection.makeMailbox()
                // From here on the agent unloads itself if we vanish, whatever state the start is in.
                let guarded = try await connection.rpc(module: AgentSource.moduleName, function: "guard",
                                                       arguments: [.pid(mailbox.pid)], timeout: options.setupTimeout)
                guard case .tuple(let g) = guarded, g.first?.atomName == "ok" else {
                    throw SessionError(.agentLoadFailed, node: name, "the agent's guard did not start: \(guarded.erlangText())")
                }
                offset = try await clock.measure(connection, timeout: options.setupTimeout)
            } catch {
                throw noting(await confirmClean(node: name, connection: connection).map { ["\(name): \($0)"] } ?? [],
                                  on: error)
            }
            let node = NodeRecorder(name: name, connection: connection, mailbox: mailbox, loader: loader,
                                    otpRelease: otpRelease ?? "?", startOffset: offset)
            node.targets = targets
            node.agentLoaded = true
            if let tick = try? await connection.rpc(module: "net_kernel", function: "get_net_ticktime",
                                                    timeout: options.setupTimeout) {
                node.netTickSeconds = tick.intValue
                if case .tuple(let t) = tick, t.count == 2 { node.netTickSeconds = t[1].intValue }
            }
            return node
        } catch {
            await connection.close()
            throw error
        }
    }

    /// Match specs per node, per pattern: built here, or with the node's ms_transform for guards.
    private func compilePatterns(on nodes: [NodeRecorder]) async throws -> [[Term]] {
        var result: [[Term]] = []
        for node in nodes {
            var specs: [Term] = []
            for pattern in options.spec.patterns {
                guard pattern.needsNodeCompile, pattern.rawMatchSpec == nil else {
                    specs.append(pattern.localMatchSpec(callsOnly: options.spec.callsOnly))
                    continue
                }
                let actions = pattern.effectiveActions(callsOnly: options.spec.callsOnly).map { Term.atom($0.rawValue) }
                let reply = try await node.connection.rpc(
                    module: AgentSource.moduleName, function: "compile_ms",
                    arguments: [.string(Array((pattern.argumentPatterns ?? "").utf8)),
                                .string(Array((pattern.guardText ?? "").utf8)), .list(actions)],
                    timeout: .seconds(10))
                guard case .tuple(let t) = reply, t.count == 2, t[0].atomName == "ok" else {
                    var text = reply.erlangText()
                    if case .tuple(let t) = reply, t.count == 2, let chars = t[1].listElements {
                        text = String(decoding: chars.compactMap { $0.intValue.flatMap { UInt8(exactly: $0) } }, as: UTF8.self)
                    }
                    throw SessionError(.patternFailed, node: node.name, "pattern \(pattern.text): \(text)")
                }
                specs.append(t[1])
            }
            result.append(specs)
        }
        return result
    }

    private func agentConfig(for node: NodeRecorder, patterns: [Term]) throws -> Term {
        let spec = options.spec
        var patternTerms: [Term] = []
        for (pattern, ms) in zip(spec.patterns, patterns) {
            let (m, f, a) = pattern.mfaTerms
            patternTerms.append(.tuple([m, f, a, ms, .atom(pattern.scope.rawValue)]))
        }
        let procs = node.targets
        let limits = options.limits
        let sampleMs = options.sampleInterval.map { Int64($0.components.seconds * 1000 + $0.components.attoseconds / 1_000_000_000_000_000) } ?? 0
        let batchMs = max(1, Int64(options.batchInterval.components.seconds * 1000
                                   + options.batchInterval.components.attoseconds / 1_000_000_000_000_000))
        func int(_ v: Int) -> Term { .integer(Int64(v)) }
        let pairs: [MapPair] = [
            MapPair(.atom("patterns"), .list(patternTerms)),
            MapPair(.atom("procs"), .list(procs)),
            MapPair(.atom("flags"), .list(spec.traceFlags)),
            MapPair(.atom("timestamp"), .atom(spec.strictTimestamps ? "strict_monotonic_timestamp" : "monotonic_timestamp")),
            MapPair(.atom("batch_events"), int(options.batchEvents)),
            MapPair(.atom("batch_ms"), .integer(batchMs)),
            MapPair(.atom("max_in_flight"), int(options.batchesInFlight)),
            MapPair(.atom("max_pending"), int(limits.maxPendingEvents)),
            MapPair(.atom("max_rate"), int(limits.maxRate ?? 0)),
            MapPair(.atom("max_events"), int(limits.maxEvents ?? 0)),
            MapPair(.atom("soft_queue"), int(limits.softQueue)),
            MapPair(.atom("hard_queue"), int(limits.hardQueue)),
            MapPair(.atom("sample_ms"), .integer(max(0, sampleMs))),
            MapPair(.atom("sample_top"), int(options.sampleTop)),
            MapPair(.atom("system_monitor"), options.systemMonitor ? .true : .false),
            MapPair(.atom("long_gc"), int(options.longGCMilliseconds)),
            MapPair(.atom("long_schedule"), int(options.longScheduleMilliseconds)),
            MapPair(.atom("large_heap"), int(options.largeHeapWords)),
            MapPair(.atom("payload_limit"), int(options.payloadLimit)),
        ]
        return .map(unordered: pairs)
    }

    private func startAgent(_ node: NodeRecorder, patterns: [Term]) async throws {
        let config = try agentConfig(for: node, patterns: patterns)
        let reply = try await node.connection.rpc(module: AgentSource.moduleName, function: "start",
                                                  arguments: [.pid(node.mailbox.pid), config],
                                                  timeout: max(.seconds(60), options.setupTimeout))
        guard case .tuple(let t) = reply, t.count == 2, t[0].atomName == "ok", case .map(let info) = t[1] else {
            var reason = reply
            if case .tuple(let t) = reply, t.count == 2 { reason = t[1] }
            throw SessionError(.startFailed, node: node.name, Self.explain(startError: reason))
        }
        for pair in info {
            switch (pair.key.atomName, pair.value) {
            case ("controller", .pid(let pid)): node.controller = pid
            case ("tracer", .pid(let pid)): node.tracer = pid
            case ("tracing_since", let since): node.tracingSince = since.intValue
            default: break
            }
        }
        if let controller = node.controller { _ = try? node.mailbox.monitor(.pid(controller)) }
    }

    static func explain(startError reason: Term) -> String {
        if case .tuple(let t) = reason, let tag = t.first?.atomName {
            switch tag {
            case "no_match" where t.count == 2:
                return "pattern \(mfaText(t[1])) matches no function on the node (check the name and arity; "
                    + "local functions need the default local scope)"
            case "no_module" where t.count == 3:
                return "module \(t[1].erlangText()) is not available on the node (\(t[2].erlangText())); "
                    + "check the name and the node's code path"
            case "no_process" where t.count == 2:
                return "no process is registered as \(t[1].erlangText()) on the node"
            case "bad_match_spec" where t.count == 2:
                return "the match spec for \(mfaText(t[1])) was refused by erlang:trace_pattern/3"
            case "trace_failed" where t.count == 2:
                return "erlang:trace/3 refused \(t[1].erlangText()) (already traced by another tracer?)"
            case "already_running":
                return "another beamtrace session is recording this node"
            default: break
            }
        }
        return "the agent could not start: \(reason.erlangText())"
    }

    static func mfaText(_ term: Term) -> String {
        if case .tuple(let t) = term, t.count == 3 {
            return "\(t[0].erlangText()):\(t[1].erlangText())/\(t[2].erlangText())"
        }
        return term.erlangText()
    }

    /// Waits (reading the node's mailbox) until its agent reports that everything is switched off.
    static func awaitStopped(_ node: NodeRecorder, timeout: Duration) async {
        let mailbox = node.mailbox
        let reader = Task {
            for await message in mailbox {
                if case .message(.tuple(let t)) = message, t.first?.atomName == "beamtrace_stopped" { return }
                if case .nodeDown = message { return }
            }
        }
        let timer = Task {
            try? await Task.sleep(for: timeout)
            reader.cancel()
        }
        await reader.value
        timer.cancel()
    }

    /// Before recording: unload wherever the agent got loaded (checked, over a new connection when
    /// the node dropped ours), close every connection. Returns what could not be confirmed clean.
    private func abandon(_ nodes: [NodeRecorder]) async -> [String] {
        var leftovers: [String] = []
        for node in nodes {
            if node.agentLoaded, let left = await confirmClean(node: node.name, connection: node.connection) {
                leftovers.append("\(node.name): \(left)")
            }
            node.mailbox.close()
            await node.connection.close()
        }
        return leftovers
    }

    /// The start error, saying once whether the nodes were confirmed clean (a node's own failure is
    /// noted where it happened; the session adds only what the other nodes left), and for a reply
    /// that did not come in time, what to do about it.
    func noting(_ leftovers: [String], on error: any Error) -> any Error {
        var wrapped = error as? SessionError ?? SessionError(.startFailed, "\(error)")
        if let distribution = error as? DistributionError {
            wrapped = SessionError(.startFailed, node: distribution.node,
                                   (distribution.step.map { "\($0): " } ?? "") + distribution.message)
            if distribution.code == .timeout {
                let milliseconds = options.setupTimeout.components.seconds * 1000
                    + options.setupTimeout.components.attoseconds / 1_000_000_000_000_000
                wrapped.message += "; a busy node can take longer than that to start a session: allow each "
                    + "step more time with record --timeout SECONDS (now \(Double(milliseconds) / 1000) s)"
            }
        }
        if wrapped.cleanupNoted {
            if !leftovers.isEmpty {
                wrapped.message += "; on the other nodes cleanup could not be confirmed: "
                    + leftovers.joined(separator: "; ")
                    + " (check with code:is_loaded(beamtrace_agent) and erlang:trace_info(new, flags))"
            }
            return wrapped
        }
        if leftovers.isEmpty {
            wrapped.message += " (nothing was left on the node: agent unloaded, checked)"
        } else {
            wrapped.message += "; cleanup could not be confirmed: " + leftovers.joined(separator: "; ")
                + " (check with code:is_loaded(beamtrace_agent) and erlang:trace_info(new, flags))"
        }
        wrapped.cleanupNoted = true
        return wrapped
    }

    /// Registered names and proc_lib initial calls of the traced processes, into the dictionaries.
    private func reportNames(of node: NodeRecorder, sink: CaptureSink) async {
        guard let reply = try? await node.connection.rpc(module: AgentSource.moduleName, function: "names",
                                                         arguments: [.list(node.targets)], timeout: .seconds(30))
        else { return }
        sink.noteNames(reply.listElements ?? [])
    }

    /// The capture's session record (JSON): command line, spec, limits, nodes with clock offsets.
    func sessionRecord(nodes: [NodeRecorder], stopReason: String?, summary: [RecordingSummary.Node] = []) -> String {
        func put(_ dict: inout [String: Any], _ key: String, _ value: Any?) {
            if let value { dict[key] = value }
        }
        var limits: [String: Any] = [:]
        put(&limits, "durationSeconds", options.limits.duration.map(Self.seconds))
        put(&limits, "maxEvents", options.limits.maxEvents)
        put(&limits, "maxRate", options.limits.maxRate)
        put(&limits, "untilQueue", options.limits.untilQueue)
        put(&limits, "afterSeconds", Self.seconds(options.limits.after))
        put(&limits, "ringBytes", options.limits.ringBytes)
        var object: [String: Any] = [
            "command": options.commandLine,
            "transport": options.transport.rawValue,
            "patterns": options.spec.patterns.map(\.text),
            "processes": options.spec.processes.map(\.description),
            "callsOnly": options.spec.callsOnly,
            "arguments": options.spec.arguments,
            "limits": limits,
        ]
        put(&object, "sampleIntervalSeconds", options.sampleInterval.map(Self.seconds))
        put(&object, "stopReason", stopReason)
        object["nodes"] = nodes.map { node -> [String: Any] in
            var entry: [String: Any] = [
                "name": node.name, "otpRelease": node.otpRelease,
                "clockOffsetStartNs": node.startOffset.offset, "clockRoundTripStartNs": node.startOffset.roundTrip,
            ]
            put(&entry, "clockOffsetEndNs", node.endOffset?.offset)
            put(&entry, "clockRoundTripEndNs", node.endOffset?.roundTrip)
            if let s = summary.first(where: { $0.name == node.name }) {
                entry["events"] = s.events
                entry["drops"] = s.drops
                entry["dropsByReason"] = s.dropsByReason
                entry["endReason"] = s.endReason
                entry["cleanedUp"] = s.cleanedUp
            }
            return entry
        }
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}

private final class LiveSink: @unchecked Sendable {
    private let lock = NSLock()
    private var value: CaptureSink?
    var sink: CaptureSink? {
        get { lock.withLock { value } }
        set { lock.withLock { value = newValue } }
    }
}
