// The state of one connection after the handshake, shared between callers and the event loop:
// pending rpc calls, mailboxes, monitors and links, and what to do with each incoming frame.
import BeamTerm
import Logging
import NIOCore
import Synchronization

final class ConnectionCore: Sendable {
    struct PendingCall {
        var continuation: CheckedContinuation<Term, any Error>
        var deadline: NIODeadline
        var timeout: TimeAmount
        var what: String
    }

    struct MonitorEntry {
        var owner: UInt32
        var target: Term
    }

    struct State {
        var channel: (any Channel)?
        var closeReason: DistributionError?
        var pendingCalls: [UInt64: PendingCall] = [:]
        var mailboxes: [UInt32: AsyncStream<MailboxMessage>.Continuation] = [:]
        /// Mailboxes whose messages are offered, as bytes, to a receiver on the event loop first.
        var interceptors: [UInt32: MailboxInterceptor] = [:]
        /// Writes made on the event loop while handling a read, flushed once when the read completes.
        var flushPending = false
        /// Our monitors of remote processes, by reference.
        var monitors: [Reference: MonitorEntry] = [:]
        /// Remote processes monitoring our mailboxes: reference → (our pid id, their pid).
        var remoteMonitors: [Reference: (owner: UInt32, watcher: Pid)] = [:]
        /// Links between our mailboxes and remote pids.
        var links: Set<LinkKey> = []
        var nextPidID: UInt32 = 1
        var nextReference: UInt64 = 1
        var closeWaiters: [CheckedContinuation<DistributionError, Never>] = []
        /// When the time-out sweep runs next, and which scheduled sweep is current (older ones do nothing).
        var sweepAt: NIODeadline?
        var sweepGeneration: UInt64 = 0
    }

    struct LinkKey: Hashable {
        var local: UInt32
        var remote: Pid
    }

    let local: NodeName
    let localAtom: Atom
    let creation: UInt32
    let peerName: NodeName
    let logger: Logger
    /// The pid rpc calls come from and their replies go to; it also answers io requests as group leader.
    let rpcPid: Pid
    private let referenceSalt = UInt32.random(in: 0...UInt32.max)
    private let state: Mutex<State>
    private let allocator = ByteBufferAllocator()

    init(local: NodeName, creation: UInt32, peer: NodeName, logger: Logger) {
        self.local = local
        self.localAtom = Atom(local.description)
        self.creation = creation
        self.peerName = peer
        self.logger = logger
        self.rpcPid = Pid(node: Atom(local.description), id: 0, serial: 0, creation: creation)
        self.state = Mutex(State())
    }

    var peer: String { peerName.description }

    func attach(_ channel: any Channel) {
        state.withLock { $0.channel = channel }
    }

    var closeReason: DistributionError? { state.withLock { $0.closeReason } }

    // MARK: identifiers

    func makeReference() -> (UInt64, Reference) {
        let key = state.withLock { s -> UInt64 in
            defer { s.nextReference &+= 1 }
            return s.nextReference
        }
        return (key, reference(for: key))
    }

    private func reference(for key: UInt64) -> Reference {
        Reference(node: localAtom, creation: creation,
                  ids: [UInt32(truncatingIfNeeded: key), UInt32(truncatingIfNeeded: key >> 32), referenceSalt])
    }

    private func key(of reference: Reference) -> UInt64? {
        guard reference.ids.count == 3, reference.ids[2] == referenceSalt, reference.node == localAtom,
              reference.creation == creation else { return nil }
        return UInt64(reference.ids[0]) | UInt64(reference.ids[1]) << 32
    }

    func makeMailbox() throws(DistributionError) -> Mailbox {
        let (stream, continuation) = AsyncStream.makeStream(of: MailboxMessage.self, bufferingPolicy: .unbounded)
        let result = state.withLock { s -> Result<UInt32, DistributionError> in
            if let reason = s.closeReason { return .failure(reason) }
            let id = s.nextPidID
            s.nextPidID &+= 1
            s.mailboxes[id] = continuation
            return .success(id)
        }
        let id = try result.get()
        continuation.onTermination = { [weak self] _ in
            self?.closeMailbox(id, reason: .atom("normal"))
        }
        return Mailbox(pid: Pid(node: localAtom, id: id, serial: 0, creation: creation), stream: stream, core: self)
    }

    // MARK: sending

    func frame(control: Term, message: Term?) -> ByteBuffer {
        FrameEncoder.frame(control: control, message: message, allocator: allocator)
    }

    func write(_ buffer: ByteBuffer, coalesce: Bool = false) throws(DistributionError) {
        let channel = try state.withLock { s throws(DistributionError) -> any Channel in
            if let reason = s.closeReason { throw reason }
            guard let channel = s.channel else {
                throw DistributionError(.nodeDown, node: peer, step: "send", "the connection is not set up")
            }
            return channel
        }
        if coalesce && channel.eventLoop.inEventLoop {
            // On the event loop (a receiver answering what it just read): one flush when the read completes.
            channel.write(buffer, promise: nil)
            state.withLock { $0.flushPending = true }
        } else {
            channel.writeAndFlush(buffer, promise: nil)
        }
    }

    /// Whether writes wait for a flush (see `write(_:coalesce:)`); clears the mark.
    func takeFlushPending() -> Bool {
        state.withLock { s in
            defer { s.flushPending = false }
            return s.flushPending
        }
    }

    func setInterceptor(_ id: UInt32, _ interceptor: MailboxInterceptor?) {
        state.withLock { $0.interceptors[id] = interceptor }
    }

    func send(to address: ProcessAddress, message: Term, from: Pid, coalesce: Bool = false) throws(DistributionError) {
        switch address {
        case .pid(let pid):
            try write(frame(control: .tuple([.integer(2), .atom(""), .pid(pid)]), message: message), coalesce: coalesce)
        case .name(let name):
            try write(frame(control: .tuple([.integer(6), .pid(from), .atom(""), .atom(name)]), message: message),
                      coalesce: coalesce)
        }
    }

    func monitor(_ process: ProcessAddress, owner: Pid) throws(DistributionError) -> Reference {
        let (_, reference) = makeReference()
        let target: Term
        switch process {
        case .pid(let pid): target = .pid(pid)
        case .name(let name): target = .atom(name)
        }
        state.withLock { $0.monitors[reference] = MonitorEntry(owner: owner.id, target: target) }
        do {
            try write(frame(control: .tuple([.integer(19), .pid(owner), target, .reference(reference)]), message: nil))
        } catch {
            _ = state.withLock { $0.monitors.removeValue(forKey: reference) }
            throw error
        }
        return reference
    }

    func demonitor(_ reference: Reference, owner: Pid) {
        guard let entry = state.withLock({ $0.monitors.removeValue(forKey: reference) }) else { return }
        try? write(frame(control: .tuple([.integer(20), .pid(owner), entry.target, .reference(reference)]),
                         message: nil))
    }

    func closeMailbox(_ id: UInt32, reason: Term) {
        let (continuation, watchers, links, owned) = state.withLock { s in
            let continuation = s.mailboxes.removeValue(forKey: id)
            s.interceptors.removeValue(forKey: id)
            let watchers = s.remoteMonitors.filter { $0.value.owner == id }
            for key in watchers.keys { s.remoteMonitors.removeValue(forKey: key) }
            let links = s.links.filter { $0.local == id }
            s.links.subtract(links)
            let owned = s.monitors.filter { $0.value.owner == id }
            for key in owned.keys { s.monitors.removeValue(forKey: key) }
            return (continuation, watchers, links, owned)
        }
        guard continuation != nil else { return }
        let pid = Pid(node: localAtom, id: id, serial: 0, creation: creation)
        for (reference, watcher) in watchers {
            try? write(frame(control: .tuple([.integer(21), .pid(pid), .pid(watcher.watcher), .reference(reference),
                                              reason]), message: nil))
        }
        for link in links {
            try? write(frame(control: .tuple([.integer(3), .pid(pid), .pid(link.remote), reason]), message: nil))
        }
        for (reference, entry) in owned {
            try? write(frame(control: .tuple([.integer(20), .pid(pid), entry.target, .reference(reference)]),
                             message: nil))
        }
        continuation?.finish()
    }

    // MARK: rpc

    func call(module: Atom, function: Atom, arguments: [Term], timeout: TimeAmount, eventLoop: any EventLoop)
        async throws -> Term
    {
        let (key, reference) = makeReference()
        let what = "rpc \(module.name):\(function.name)/\(arguments.count)"
        let request = Term.tuple([
            .atom("$gen_call"),
            .tuple([.pid(rpcPid), .reference(reference)]),
            .tuple([.atom("call"), .atom(module), .atom(function), .list(arguments), .pid(rpcPid)]),
        ])
        let buffer = frame(control: .tuple([.integer(6), .pid(rpcPid), .atom(""), .atom("rex")]), message: request)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Term, any Error>) in
                let deadline = NIODeadline.now() + timeout
                let registered = state.withLock { s -> Result<UInt64?, DistributionError> in
                    if let reason = s.closeReason { return .failure(reason) }
                    s.pendingCalls[key] = PendingCall(continuation: continuation, deadline: deadline, timeout: timeout,
                                                      what: what)
                    // One timer for all calls: only an earlier deadline than the next sweep needs a new one.
                    guard s.sweepAt.map({ deadline < $0 }) ?? true else { return .success(nil) }
                    s.sweepAt = deadline
                    s.sweepGeneration &+= 1
                    return .success(s.sweepGeneration)
                }
                switch registered {
                case .failure(let reason):
                    continuation.resume(throwing: reason)
                    return
                case .success(let generation):
                    if let generation { scheduleSweep(at: deadline, generation: generation, on: eventLoop) }
                }
                if Task.isCancelled { failCall(key, CancellationError()) }
                do {
                    try write(buffer)
                } catch {
                    failCall(key, error)
                }
            }
        } onCancel: {
            failCall(key, CancellationError())
        }
    }

    private func scheduleSweep(at deadline: NIODeadline, generation: UInt64, on eventLoop: any EventLoop) {
        eventLoop.scheduleTask(deadline: deadline) { [weak self] in
            self?.sweep(generation: generation, on: eventLoop)
        }
    }

    /// Fails the calls whose deadline has passed and schedules the next sweep for the earliest remaining one.
    private func sweep(generation: UInt64, on eventLoop: any EventLoop) {
        let now = NIODeadline.now()
        let (expired, next) = state.withLock { s -> ([PendingCall], (NIODeadline, UInt64)?) in
            guard s.sweepGeneration == generation else { return ([], nil) }
            var expired: [PendingCall] = []
            var earliest: NIODeadline?
            for (key, call) in s.pendingCalls {
                if call.deadline <= now {
                    expired.append(call)
                    s.pendingCalls.removeValue(forKey: key)
                } else if earliest.map({ call.deadline < $0 }) ?? true {
                    earliest = call.deadline
                }
            }
            s.sweepAt = earliest
            guard let earliest else { return (expired, nil) }
            s.sweepGeneration &+= 1
            return (expired, (earliest, s.sweepGeneration))
        }
        for call in expired {
            call.continuation.resume(throwing: DistributionError(
                .timeout, node: peer, step: call.what,
                "no reply within \(call.timeout.nanoseconds / 1_000_000) ms (the call may still be running on the "
                    + "node)"))
        }
        if let (deadline, generation) = next { scheduleSweep(at: deadline, generation: generation, on: eventLoop) }
    }

    private func failCall(_ key: UInt64, _ error: any Error) {
        guard let call = state.withLock({ $0.pendingCalls.removeValue(forKey: key) }) else { return }
        call.continuation.resume(throwing: error)
    }

    private func completeCall(_ reference: Reference, _ reply: Term) {
        guard let key = key(of: reference),
              let call = state.withLock({ $0.pendingCalls.removeValue(forKey: key) }) else {
            logger.debug("dropped a late or unknown rpc reply", metadata: ["node": "\(peer)"])
            return
        }
        if case .tuple(let elements) = reply, elements.count == 2, elements[0] == .atom("badrpc") {
            call.continuation.resume(throwing: DistributionError(
                .badRPC, node: peer, step: call.what,
                "the call failed on the node: {badrpc, \(elements[1].erlangText(ErlangPrintOptions(maxWidth: 2000)))}",
                badRPCReason: elements[1]))
        } else {
            call.continuation.resume(returning: reply)
        }
    }

    // MARK: incoming

    /// Handles one data frame; runs on the event loop.
    func received(_ buffer: ByteBuffer) {
        let decoded = buffer.withUnsafeReadableBytes { raw -> Result<(Term, Term?)?, TermDecodingError> in
            guard raw.first == 112 else {
                return .failure(TermDecodingError(.unknownTag(raw.first ?? 0), offset: 0,
                                                  expected: "pass-through frame (112)"))
            }
            do throws(TermDecodingError) {
                var offset = 1
                let decoder = TermDecoder()
                let control = try decoder.decode(raw, offset: &offset, versioned: true)
                if offset < raw.count, let interceptor = interceptor(for: control),
                   let message = buffer.getSlice(at: buffer.readerIndex + offset, length: raw.count - offset),
                   interceptor(ReceivedMessage(buffer: message)) {
                    return .success(nil)  // taken as bytes, no term built
                }
                var payload: Term?
                if offset < raw.count { payload = try decoder.decode(raw, offset: &offset, versioned: true) }
                return .success((control, payload))
            } catch {
                return .failure(error)
            }
        }
        switch decoded {
        case .failure(let error):
            logger.error("dropped a frame that does not decode", metadata: ["node": "\(peer)", "error": "\(error)"])
        case .success(nil):
            break
        case .success(let (control, payload)?):
            guard let message = ControlMessage(control: control, payload: payload) else {
                logger.warning("dropped a malformed control message",
                               metadata: ["node": "\(peer)", "control": "\(control.erlangText(ErlangPrintOptions(maxWidth: 200)))"])
                return
            }
            dispatch(message, payload: payload)
        }
    }

    private func isLocal(_ pid: Pid) -> Bool { pid.node == localAtom }

    /// The receiver of a SEND to one of our mailboxes, if it has one.
    private func interceptor(for control: Term) -> MailboxInterceptor? {
        guard case .tuple(let e) = control, e.count >= 3, case .integer(let code) = e[0],
              code == 2 || code == 12 || code == 22 || code == 23, case .pid(let to) = e[2], isLocal(to) else { return nil }
        return state.withLock { $0.interceptors[to.id] }
    }

    private func dispatch(_ message: ControlMessage, payload: Term?) {
        switch message {
        case .send(_, let to):
            guard let payload else { return }
            if to.id == rpcPid.id && isLocal(to) {
                handleRPCMessage(payload)
            } else {
                deliver(to.id, .message(payload))
            }
        case .registeredSend(let from, let name):
            logger.debug("dropped a message to a name we do not register",
                         metadata: ["node": "\(peer)", "name": "\(name.name)", "from": "\(Term.pid(from).erlangText())"])
        case .aliasSend:
            logger.debug("dropped an alias send (we create no aliases)", metadata: ["node": "\(peer)"])
        case .monitorExit(let from, let to, let reference, let reason):
            guard let entry = state.withLock({ $0.monitors.removeValue(forKey: reference) }) else { return }
            deliver(to.id == entry.owner ? to.id : entry.owner, .down(monitor: reference, process: from, reason: reason))
        case .exit(let from, let to, let reason):
            let wasLinked = state.withLock { $0.links.remove(LinkKey(local: to.id, remote: from)) != nil }
            if wasLinked || reason != .atom("normal") { deliver(to.id, .exit(from: from, reason: reason)) }
        case .exit2(let from, let to, let reason):
            deliver(to.id, .exit(from: from, reason: reason))
        case .link(let from, let to):
            let rpcID = rpcPid.id
            let exists = state.withLock { s -> Bool in
                guard to.id == rpcID || s.mailboxes[to.id] != nil else { return false }
                s.links.insert(LinkKey(local: to.id, remote: from))
                return true
            }
            if !exists {
                try? write(frame(control: .tuple([.integer(3), .pid(to), .pid(from), .atom("noproc")]), message: nil))
            }
        case .unlink(let from, let to):
            _ = state.withLock { $0.links.remove(LinkKey(local: to.id, remote: from)) }
        case .unlinkID(let id, let from, let to):
            _ = state.withLock { $0.links.remove(LinkKey(local: to.id, remote: from)) }
            try? write(frame(control: .tuple([.integer(36), id, .pid(to), .pid(from)]), message: nil))
        case .unlinkIDAck:
            break
        case .monitor(let from, let to, let reference):
            var ours: Pid?
            if case .pid(let pid) = to, isLocal(pid) { ours = pid }
            let rpcID = rpcPid.id
            let exists = state.withLock { s -> Bool in
                // The rpc pid lives as long as the connection (io monitors it as the group leader).
                guard let ours, ours.id == rpcID || s.mailboxes[ours.id] != nil else { return false }
                s.remoteMonitors[reference] = (ours.id, from)
                return true
            }
            if !exists {
                try? write(frame(control: .tuple([.integer(21), to, .pid(from), .reference(reference), .atom("noproc")]),
                                 message: nil))
            }
        case .demonitor(_, _, let reference):
            _ = state.withLock { $0.remoteMonitors.removeValue(forKey: reference) }
        case .groupLeader:
            break
        case .other(let operation, _):
            logger.debug("ignored control message", metadata: ["node": "\(peer)", "operation": "\(operation)"])
        }
    }

    private func deliver(_ id: UInt32, _ message: MailboxMessage) {
        guard let continuation = state.withLock({ $0.mailboxes[id] }) else {
            logger.trace("dropped a message to a closed mailbox", metadata: ["node": "\(peer)", "pid": "\(id)"])
            return
        }
        continuation.yield(message)
    }

    /// Replies to rex and, since the rpc pid is the group leader of the calls, io requests.
    private func handleRPCMessage(_ message: Term) {
        guard case .tuple(let elements) = message else { return }
        if elements.count == 2, case .reference(let reference) = elements[0] {
            completeCall(reference, elements[1])
        } else if elements.count == 4, elements[0] == .atom("io_request"), case .pid(let from) = elements[1] {
            let result: Term
            switch elements[3] {
            case .tuple(let request) where request.first == .atom("put_chars"): result = .atom("ok")
            case .tuple(let request) where request.first == .atom("requests"): result = .atom("ok")
            default: result = .tuple([.atom("error"), .atom("enotsup")])
            }
            logger.debug("answered an io request of an rpc call (output discarded)", metadata: ["node": "\(peer)"])
            try? write(frame(control: .tuple([.integer(2), .atom(""), .pid(from)]),
                             message: .tuple([.atom("io_reply"), elements[2], result])))
        }
    }

    // MARK: closing

    /// Records why the connection ends (the first reason wins).
    func setCloseReason(_ reason: DistributionError) {
        state.withLock { s in
            if s.closeReason == nil { s.closeReason = reason }
        }
    }

    /// The channel is gone: fail every call, tell every mailbox, wake every waiter.
    func connectionClosed(_ fallback: DistributionError) {
        let (reason, calls, mailboxes, monitors, waiters) = state.withLock { s in
            if s.closeReason == nil { s.closeReason = fallback }
            let calls = s.pendingCalls
            s.pendingCalls = [:]
            let mailboxes = s.mailboxes
            s.mailboxes = [:]
            s.interceptors = [:]
            let monitors = s.monitors
            s.monitors = [:]
            s.remoteMonitors = [:]
            s.links = []
            let waiters = s.closeWaiters
            s.closeWaiters = []
            s.channel = nil
            return (s.closeReason ?? fallback, calls, mailboxes, monitors, waiters)
        }
        for call in calls.values {
            var error = reason
            error.step = call.what
            call.continuation.resume(throwing: error)
        }
        for (reference, entry) in monitors {
            mailboxes[entry.owner]?.yield(.down(monitor: reference, process: entry.target, reason: .atom("noconnection")))
        }
        for continuation in mailboxes.values {
            continuation.yield(.nodeDown(reason))
            continuation.finish()
        }
        for waiter in waiters { waiter.resume(returning: reason) }
        if !calls.isEmpty || !mailboxes.isEmpty {
            logger.info("connection closed", metadata: ["node": "\(peer)", "reason": "\(reason.message)",
                                                        "failedCalls": "\(calls.count)"])
        }
    }

    func waitUntilClosed() async -> DistributionError {
        await withCheckedContinuation { continuation in
            let reason = state.withLock { s -> DistributionError? in
                if let reason = s.closeReason, s.channel == nil { return reason }
                s.closeWaiters.append(continuation)
                return nil
            }
            if let reason { continuation.resume(returning: reason) }
        }
    }
}
