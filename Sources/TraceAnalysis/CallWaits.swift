// The waiting model: which processes are blocked in a call, following OTP's call protocols
// (GenProtocol). A gen call (gen:call, gen_server:call, gen_statem:call) starts with the caller's
// send of `{'$gen_call', {Caller, Tag}, Request}` and ends with whichever comes first: the reply
// `{Tag, _}` (the callee's send or the caller's receive; Tag a reference or `[alias | Ref]`), the
// `'DOWN'` of its monitor (the callee died), the caller's `receive ... after` firing (a `'receive'`
// of the atom `timeout`), the caller's exit, or any activity of the caller of its own (a process
// blocked in gen:call's receive does nothing else: one that sends, calls or returns made an
// asynchronous `send_request`). Lost trace messages on the caller's node end its wait as unknown.
//
// A `gen_server:multi_call` sends one request per node, tagged `{Tag, Node}`; the caller waits for
// every server, each answering with `{{Tag, Node}, Reply}` or ending with the `'DOWN'` of the
// monitor on `{Name, Node}`, `{nodedown, Node}`, the middleman's timer, or the caller's exit. With a
// timeout the requests come from a middleman process the caller spawned and handed the Tag
// (`{Caller, Tag}`); the caller then waits for the middleman's `'DOWN'` (its reason holds the Tag).
// An erpc call (`erpc:call`, `rpc:call`) leaves no event on the caller's node until the end; it is
// seen on the callee's node: the `spawned` of `erpc:execute_call/4` (through
// `erts_internal:dist_spawn_init/1`, the parent being the caller), its first message
// `[Res, M, F, A]`, its exit `{Res, Class, ...}`; the caller's `'DOWN'` carries the same reason.
import BeamTerm
import TraceModel

/// One server of a `gen_server:multi_call` that has not answered.
public struct MultiCallee: Sendable {
    /// The node the request went to (the tag's Node).
    public var node: String
    /// The destination as traced (`{Name, Node}`).
    public var destination: ProcessID
    /// The process that took the request (its receive of it), 0 until seen.
    public var pid: ProcessID
}

/// A call whose caller still waits at the end of the replay.
public struct WaitingCall: Sendable {
    public enum Kind: String, Sendable {
        /// gen:call (gen_server:call, gen_statem:call).
        case gen
        /// gen_server:multi_call: waits for every server in `unanswered`.
        case multiCall = "multi_call"
        /// gen_server:multi_call with a timeout: waits for the middleman (`callee`) that calls the servers.
        case middleman = "multi_call_middleman"
        /// erpc:call (and rpc:call): waits for the process it spawned on the callee's node.
        case erpc
    }

    public var caller: ProcessID
    public var callerNode: NodeID
    /// The process called (a registered name resolved to its holder when the capture knows it); 0 when
    /// the capture cannot tell (see `candidates`, `unanswered`).
    public var callee: ProcessID
    public var since: Int64
    /// The request, printed short. Printed only for the calls still waiting when asked (see
    /// `requestBytes`): the pass itself keeps the request's bytes, not its text.
    public var request: String
    /// True when the wait is known from samples only (the caller sat in gen:do_call/4 or
    /// erpc:call/5): it began before the capture or its start was not traced, and `since` is the
    /// first sample that showed it.
    public var sampled = false
    public var kind: Kind = .gen
    /// multi_call: the servers that have not answered yet; `asked` how many were asked.
    public var unanswered: [MultiCallee] = []
    public var asked = 0
    /// Samples only: the processes the caller monitors when neither the samples nor the trace say
    /// which one it calls.
    public var candidates: [ProcessID] = []
    /// The callee's node when it is known without its pid (erpc seen in samples).
    public var calleeNode: NodeID = 0
    var tag: RefKey
}

/// How a call (or one server's part of a multi_call) ended; `name` is the report's key.
enum CallEnding: Int, CaseIterable, Sendable {
    case reply, down, nodedown, timeout, exit, active, drop

    var name: String {
        switch self {
        case .reply: "reply"
        case .down: "down"
        case .nodedown: "nodedown"
        case .timeout: "timeout"
        case .exit: "exit"
        case .active: "active"
        case .drop: "drop"
        }
    }
}

/// Counts by ending without hashing a string per call; `dictionary` is what reports print (only
/// the endings that happened).
struct EndingCounts: Sendable {
    private var counts = [Int](repeating: 0, count: CallEnding.allCases.count)

    mutating func add(_ ending: CallEnding, _ n: Int = 1) { counts[ending.rawValue] += n }

    var dictionary: [String: Int] {
        var result: [String: Int] = [:]
        for ending in CallEnding.allCases where counts[ending.rawValue] != 0 { result[ending.name] = counts[ending.rawValue] }
        return result
    }
}

/// The requests of waiting calls as ETF bytes, one after another: printing each request as it is
/// sent cost about a microsecond per call, and only the calls still waiting at the end are ever
/// printed. Bytes of ended calls are garbage until a compaction copies the live ones to the front.
struct RequestBytes: Sendable {
    /// The first `used` bytes are requests; the rest is room for more, so storing one is a copy of
    /// its bytes into place (an append of a few bytes to an array cost about 160 instructions).
    private var storage: [UInt8] = []
    private(set) var used = 0
    /// Bytes still referenced by waiting calls.
    private var live = 0

    mutating func store(_ raw: UnsafeRawBufferPointer) -> Range<Int> {
        let start = used
        let n = raw.count
        if storage.count - start < n {
            storage.append(contentsOf: repeatElement(0, count: max(n, storage.count, 4096)))
        }
        storage.withUnsafeMutableBytes { UnsafeMutableRawBufferPointer(rebasing: $0[start..<start + n]).copyMemory(from: raw) }
        used = start + n
        live += n
        return start..<used
    }

    mutating func free(_ range: Range<Int>) { live -= range.count }

    /// True when most of the bytes are garbage and there are enough of them to be worth a copy.
    var wantsCompaction: Bool { used >= 1 << 16 && live * 2 < used }

    /// The bytes of a stored request.
    func bytes(_ range: Range<Int>) -> ArraySlice<UInt8> { storage[range] }

    /// Replaces the bytes with `live` ones only (the caller has moved every waiting call's range).
    mutating func replace(with fresh: [UInt8]) {
        storage = fresh
        used = fresh.count
        live = fresh.count
    }

    /// The request printed short (as `GenProtocol.requestText` prints it from the payload).
    func text(_ range: Range<Int>) -> String {
        storage.withUnsafeBytes { GenProtocol.requestText(UnsafeRawBufferPointer(rebasing: $0[range]), offset: 0) }
    }
}

/// A wait seen in samples: the process was in a call's receive (gen:do_call/4, erpc:call/5) from
/// `since` on, monitoring `monitors`; `callee` what the agent read from its stack (0: not found).
struct SampledWait: Sendable {
    var since: Int64
    var node: NodeID
    var monitors: [ProcessID]
    var callee: ProcessID = 0
    var erpc = false
}

struct CallWaits: Sendable {
    /// One per caller: every kind of call blocks, so a caller waits for at most one.
    private(set) var waiting = WaitingTable()
    private var tags = TagTable()
    /// The requests of waiting calls, not printed yet.
    private var requests = RequestBytes()
    /// How the gen calls of the replay ended (reply, down, timeout, exit, active, drop).
    private var endingCounts = EndingCounts()
    /// How the servers of multi_calls ended, one count per server asked (reply, down, nodedown,
    /// timeout, exit, active, drop).
    private var multiCallEndingCounts = EndingCounts()
    /// How erpc calls ended (reply, down, timeout, exit, active, drop).
    private var erpcEndingCounts = EndingCounts()
    var endings: [String: Int] { endingCounts.dictionary }
    var multiCallEndings: [String: Int] { multiCallEndingCounts.dictionary }
    var erpcEndings: [String: Int] { erpcEndingCounts.dictionary }
    /// The process that waits on a middleman or an erpc process, by that process.
    private var waitedOnBy: [ProcessID: ProcessID] = [:]
    /// Each process's latest spawned child (a multi_call middleman is the caller's latest).
    private var lastSpawn: [ProcessID: ProcessID] = [:]
    /// A caller's `{Caller, Tag}` to its new middleman, by middleman.
    private var handoffs: [ProcessID: (caller: ProcessID, node: NodeID, tag: RefKey, time: Int64)] = [:]
    /// multi_calls waiting (their callees' receives name the servers).
    private var multiCalls = 0
    /// erpc calls ended by their caller's own activity, by caller, while their callee lives. The
    /// callee's `spawned` is stamped by its node's clock and the caller's activity by another's:
    /// the offset between two nodes is known to a fraction of a millisecond at best (less when no
    /// message went between them), so a caller's last call before `erpc:call` can be ordered after
    /// the spawn it caused. A later sample of the caller still in erpc:call/5, monitoring the same
    /// callee, says the call never ended: it is restored (`restoreErpc`) with its start and request.
    private var erpcEndedByActivity: [ProcessID: (call: PendingCall, extras: CallExtras)] = [:]
    /// Off: every event is ignored (a pass that does not need the waiting model).
    let enabled: Bool

    init(enabled: Bool = true) {
        self.enabled = enabled
    }

    var isEmpty: Bool { waiting.isEmpty }

    /// The calls still waiting, their requests printed.
    var waitingPrinted: [ProcessID: WaitingCall] {
        var result: [ProcessID: WaitingCall] = [:]
        result.reserveCapacity(waiting.count)
        for call in waiting.calls {
            let more = waiting[extras: call.caller]
            var printed = WaitingCall(caller: call.caller, callerNode: call.callerNode, callee: call.callee,
                                      since: call.since,
                                      request: call.requestBytes.map { requests.text($0) } ?? more?.request ?? "",
                                      tag: call.tag)
            printed.kind = call.kind
            printed.unanswered = more?.unanswered ?? []
            printed.asked = more?.asked ?? 0
            result[call.caller] = printed
        }
        return result
    }

    /// Keeps the request (the payload from `offset`) for printing later.
    private mutating func keepRequest(_ payload: UnsafeRawBufferPointer, offset: Int) -> Range<Int> {
        if requests.wantsCompaction {
            // The waiting calls' bytes to the front of a fresh buffer.
            var fresh: [UInt8] = []
            for s in 0..<waiting.count {
                guard let range = waiting[slot: s].requestBytes else { continue }
                let start = fresh.count
                fresh.append(contentsOf: requests.bytes(range))
                waiting[slot: s].requestBytes = start..<fresh.count
            }
            requests.replace(with: fresh)
        }
        let start = min(max(0, offset), payload.count)
        return requests.store(UnsafeRawBufferPointer(rebasing: payload[start...]))
    }

    /// A send: a new call (or one more server of a multi_call), a callee's reply, a multi_call's
    /// handoff to its middleman, or the caller's own activity.
    mutating func send(_ event: TraceEvent, payload: UnsafeRawBufferPointer, callee: ProcessID) {
        guard enabled else { return }
        if let request = GenProtocol.anyRequest(payload) {
            if let node = request.node {
                multiCallRequest(event, tag: request.tag, node: node, payload: payload, offset: request.requestOffset)
                return
            }
            if waiting.contains(event.pid) { end(event.pid, .active) }
            let bytes = keepRequest(payload, offset: request.requestOffset)
            waiting.set(PendingCall(caller: event.pid, callerNode: event.node, callee: callee, kind: .gen,
                                    since: event.time, tag: request.tag, requestBytes: bytes))
            tags[request.tag] = event.pid
            return
        }
        if !lastSpawn.isEmpty, lastSpawn[event.pid] == event.peer, let tag = GenProtocol.handoffRef(payload) {
            handoffs[event.peer] = (event.pid, event.node, tag, event.time)
        }
        guard !waiting.isEmpty else { return }
        if waiting.contains(event.pid) { end(event.pid, .active) }
        if let tag = GenProtocol.replyTag(payload) {
            if let caller = tags[tag], let s = waiting.slot(caller), waiting[slot: s].kind == .gen {
                end(caller, .reply)
            }
        } else if multiCalls > 0, let reply = GenProtocol.multiReplyTag(payload), let caller = tags[reply.tag] {
            answered(caller, node: reply.node, by: event.pid, how: .reply)
        }
    }

    private mutating func multiCallRequest(_ event: TraceEvent, tag: RefKey, node: String, payload: UnsafeRawBufferPointer,
                                           offset: Int) {
        let server = MultiCallee(node: node, destination: event.peer, pid: 0)
        if let s = waiting.slot(event.pid), waiting[slot: s].kind == .multiCall, waiting[slot: s].tag == tag {
            waiting[extras: event.pid]?.unanswered.append(server)
            waiting[extras: event.pid]?.asked += 1
            return
        }
        if waiting.contains(event.pid) { end(event.pid, .active) }
        let bytes = keepRequest(payload, offset: offset)
        waiting.set(PendingCall(caller: event.pid, callerNode: event.node, callee: 0, kind: .multiCall,
                                since: event.time, tag: tag, requestBytes: bytes),
                    extras: CallExtras(request: "", unanswered: [server], asked: 1))
        tags[tag] = event.pid
        multiCalls += 1
        // The middleman of a multi_call with a timeout: its caller waits for it.
        if let handoff = handoffs.removeValue(forKey: event.pid), handoff.tag == tag {
            if waiting.contains(handoff.caller) { end(handoff.caller, .active) }
            let outerBytes = keepRequest(payload, offset: offset)
            waiting.set(PendingCall(caller: handoff.caller, callerNode: handoff.node, callee: event.pid,
                                    kind: .middleman, since: handoff.time, tag: tag, requestBytes: outerBytes))
            waitedOnBy[event.pid] = handoff.caller
        }
    }

    /// A receive: a caller's reply, `'DOWN'`, nodedown or timeout; a server taking a multi_call's
    /// request (which names it); an erpc process's arguments.
    mutating func receive(_ event: TraceEvent, payload: UnsafeRawBufferPointer) {
        guard enabled, !waiting.isEmpty else { return }
        if !waitedOnBy.isEmpty, let caller = waitedOnBy[event.pid] {
            if let s = waiting.slot(caller), waiting[slot: s].kind == .erpc, waiting[slot: s].callee == event.pid,
               waiting[extras: caller]?.request == "?", let request = GenProtocol.erpcRequest(payload) {
                waiting[slot: s].tag = request.tag
                waiting[extras: caller]?.request = request.request
                tags[request.tag] = caller
                return
            }
            if var ended = erpcEndedByActivity[caller], ended.call.callee == event.pid, ended.extras.request == "?",
               let request = GenProtocol.erpcRequest(payload) {
                ended.call.tag = request.tag
                ended.extras.request = request.request
                erpcEndedByActivity[caller] = ended
                return
            }
        }
        if multiCalls > 0, let request = GenProtocol.anyRequest(payload), let node = request.node,
           let caller = tags[request.tag], let s = waiting.slot(caller), waiting[slot: s].kind == .multiCall,
           let index = waiting[extras: caller]?.unanswered.firstIndex(where: { $0.node == node && $0.pid == 0 }) {
            waiting[extras: caller]?.unanswered[index].pid = event.pid
        }
        guard let s = waiting.slot(event.pid) else { return }
        let tag = waiting[slot: s].tag
        switch waiting[slot: s].kind {
        case .gen:
            if GenProtocol.isTimeout(payload) {
                end(event.pid, .timeout)
            } else if let reply = GenProtocol.replyTag(payload), reply == tag {
                end(event.pid, .reply)
            } else if let ref = GenProtocol.downRef(payload), ref == tag {
                end(event.pid, .down)
            }
        case .multiCall:
            if GenProtocol.isTimeout(payload) || GenProtocol.isTimerTimeout(payload) {
                end(event.pid, .timeout)
            } else if let reply = GenProtocol.multiReplyTag(payload) {
                if reply.tag == tag { answered(event.pid, node: reply.node, by: 0, how: .reply) }
            } else if let down = GenProtocol.downOfName(payload) {
                answered(event.pid, node: down.node, by: 0, how: .down)
            } else if let node = GenProtocol.nodedown(payload) {
                answered(event.pid, node: node, by: 0, how: .nodedown)
            }
        case .middleman, .erpc:
            if GenProtocol.isTimeout(payload) {
                end(event.pid, .timeout)
            } else if let ref = GenProtocol.downReasonRef(payload), ref == tag {
                end(event.pid, .reply)
            }
        }
    }

    /// One server of a multi_call answered (or its monitor, its node said it is gone).
    private mutating func answered(_ caller: ProcessID, node: String, by server: ProcessID, how: CallEnding) {
        guard let s = waiting.slot(caller), waiting[slot: s].kind == .multiCall,
              let index = waiting[extras: caller]?.unanswered.firstIndex(where: { $0.node == node }) else { return }
        waiting[extras: caller]?.unanswered.remove(at: index)
        multiCallEndingCounts.add(how)
        if waiting[extras: caller]?.unanswered.isEmpty ?? true { end(caller, how) }
    }

    /// A spawn: remembered, for a multi_call's handoff to its middleman.
    mutating func spawn(_ event: TraceEvent) {
        guard enabled else { return }
        active(event.pid)
        lastSpawn[event.pid] = event.peer
    }

    /// A process `spawned` by another: an erpc call when it runs `erpc:execute_call/4` for its parent
    /// (on another node, through `erts_internal:dist_spawn_init/1`).
    mutating func spawnedForErpc(_ event: TraceEvent, callerNode: NodeID) {
        guard enabled else { return }
        let caller = event.peer
        if waiting.contains(caller) { end(caller, .active) }
        waiting.set(PendingCall(caller: caller, callerNode: callerNode, callee: event.pid, kind: .erpc,
                                since: event.time, tag: RefKey(hash: 0, first: 0), requestBytes: nil),
                    extras: CallExtras(request: "?"))
        waitedOnBy[event.pid] = caller
    }

    /// The caller did something of its own (a call, a return, a link...): not blocked.
    mutating func active(_ pid: ProcessID) {
        if waiting.contains(pid) { end(pid, .active) }
    }

    /// A sample shows `caller` in erpc:call/5, its callee read from its stack (`callee`, 0 when not
    /// found) and monitoring `monitors`: an erpc call whose caller's activity seemed to end it (see
    /// `erpcEndedByActivity`) and whose callee is that one is waiting again, as it was. True when one
    /// was restored.
    mutating func restoreErpc(caller: ProcessID, callee: ProcessID, monitors: [ProcessID]) -> Bool {
        guard enabled, !erpcEndedByActivity.isEmpty, !waiting.contains(caller),
              let ended = erpcEndedByActivity[caller], ended.call.callee != 0,
              ended.call.callee == callee || monitors.contains(ended.call.callee) else { return false }
        erpcEndedByActivity[caller] = nil
        erpcEndingCounts.add(.active, -1)
        waiting.set(ended.call, extras: ended.extras)
        waitedOnBy[ended.call.callee] = caller
        if ended.extras.request != "?" { tags[ended.call.tag] = caller }
        return true
    }

    /// A process exited: its own wait ends, and so does the wait of a caller on it (a middleman
    /// that finished, an erpc process whose exit is the call's result).
    mutating func exited(_ event: TraceEvent, payload: UnsafeRawBufferPointer) {
        let pid = event.pid
        if !erpcEndedByActivity.isEmpty {
            erpcEndedByActivity[pid] = nil
            if let caller = waitedOnBy[pid], erpcEndedByActivity[caller]?.call.callee == pid {
                erpcEndedByActivity[caller] = nil
                waitedOnBy[pid] = nil
            }
        }
        if waiting.contains(pid) { end(pid, .exit) }
        if !waitedOnBy.isEmpty, let caller = waitedOnBy.removeValue(forKey: pid), let call = waiting[caller],
           call.callee == pid {
            if call.kind == .erpc {
                end(caller, GenProtocol.erpcExit(payload).map { _ in .reply } ?? .down)
            } else {
                end(caller, GenProtocol.reasonRef(payload) == nil ? .down : .reply)
            }
        }
        if !lastSpawn.isEmpty { lastSpawn[pid] = nil }
        if !handoffs.isEmpty { handoffs[pid] = nil }
    }

    /// Trace messages were lost on `node` (0: anywhere): its callers' replies may be among them.
    mutating func dropped(on node: NodeID) {
        for call in waiting.calls where node == 0 || call.callerNode == node { end(call.caller, .drop) }
    }

    private mutating func end(_ pid: ProcessID, _ how: CallEnding) {
        guard let (call, more) = waiting.remove(pid) else { return }
        if let range = call.requestBytes { requests.free(range) }
        tags.remove(call.tag, ifValue: pid)
        switch call.kind {
        case .gen: endingCounts.add(how)
        case .multiCall:
            multiCalls -= 1
            if let more, !more.unanswered.isEmpty { multiCallEndingCounts.add(how, more.unanswered.count) }
        case .erpc:
            erpcEndingCounts.add(how)
            if how == .active {
                // Kept (and the callee still known) until a sample or the callee's exit decides.
                erpcEndedByActivity[pid] = (call, more ?? CallExtras())
            } else if waitedOnBy[call.callee] == pid {
                waitedOnBy[call.callee] = nil
            }
        case .middleman:
            if waitedOnBy[call.callee] == pid { waitedOnBy[call.callee] = nil }
        }
    }
}

extension CaptureAnalysis {
    /// How the servers asked by the replay's multi_calls ended, one per server.
    public var multiCallEndings: [String: Int] { waits.multiCallEndings }
    /// How the replay's erpc calls ended.
    public var erpcEndings: [String: Int] { waits.erpcEndings }
}

extension CaptureAnalysis {
    /// A process a sample names: a pid, or `{Name, Node}` (a monitor by name) resolved to the
    /// process the capture knows holding that name on that node.
    func sampledProcess(_ term: Term) -> ProcessID? {
        switch term {
        case .pid(let pid):
            guard let node = dictionaries.nodeID(named: pid.node.name) else { return nil }
            return dictionaries.processID(.pid(node: node, id: pid.id, serial: pid.serial, creation: pid.creation))
        case .tuple(let parts) where parts.count == 2:
            guard let name = parts[0].atomValue?.name, let node = parts[1].atomValue?.name,
                  let nodeID = dictionaries.nodeID(named: node) else { return nil }
            return holder(of: name, on: nodeID)
        default:
            return nil
        }
    }

    /// The process holding registered name `name` on `node`, as far as the capture knows (0: none).
    func holder(of name: String, on node: NodeID) -> ProcessID? {
        for (index, entry) in dictionaries.processes.enumerated() where index != 0 && entry.registeredName != 0 {
            if case .pid(let n, _, _, _) = entry.identity, n == node, dictionaries.atom(entry.registeredName) == name {
                return ProcessID(index)
            }
        }
        return nil
    }

    /// The process a multi_call's server is: the one seen taking the request, or the holder of the
    /// name on that node.
    func serverPid(_ server: MultiCallee) -> ProcessID {
        if server.pid != 0 { return server.pid }
        guard let entry = dictionaries.process(server.destination) else { return 0 }
        switch entry.identity {
        case .remoteName(let atom, let node): return holder(of: dictionaries.atom(atom), on: node) ?? 0
        case .name(let atom):
            guard let node = dictionaries.nodeID(named: server.node) else { return 0 }
            return holder(of: dictionaries.atom(atom), on: node) ?? 0
        case .pid: return server.destination
        case .port: return 0
        }
    }

    /// `{Name, Node}` of a multi_call's server, printed.
    func serverText(_ server: MultiCallee) -> String {
        guard let entry = dictionaries.process(server.destination) else { return "? on \(server.node)" }
        switch entry.identity {
        case .remoteName(let atom, _), .name(let atom): return "{\(dictionaries.atom(atom)),'\(server.node)'}"
        default: return processText(server.destination)
        }
    }

    /// Calls waiting at the end: those followed from their start (gen calls and multi_calls where
    /// receives were traced on the caller's node; erpc calls and multi_call middlemen, whose end is
    /// also the callee's exit), and those only the samples show (the caller in gen:do_call/4 or
    /// erpc:call/5, its callee read from its stack by the agent, or the one process it monitors;
    /// with several and none named, they are its `candidates`).
    public func allWaits() -> [ProcessID: WaitingCall] {
        let receiving = nodesWithReceives
        var all = waitingCalls.filter { entry in
            switch entry.value.kind {
            case .gen, .multiCall: return receiving.contains(entry.value.callerNode)
            case .erpc, .middleman: return true
            }
        }
        for (index, call) in all where call.kind == .multiCall {
            all[index]?.callee = call.unanswered.lazy.map { self.serverPid($0) }.first { $0 != 0 } ?? 0
        }
        for (pid, wait) in sampledWaits where all[pid] == nil {
            let callee = wait.callee != 0 ? wait.callee : wait.monitors.count == 1 ? wait.monitors[0] : 0
            var call = WaitingCall(caller: pid, callerNode: wait.node, callee: callee, since: wait.since, request: "?",
                                   sampled: true, tag: RefKey(hash: 0, first: 0))
            call.kind = wait.erpc ? .erpc : .gen
            if callee == 0 && wait.monitors.count > 1 { call.candidates = wait.monitors }
            if callee != 0, let entry = dictionaries.process(callee) { call.calleeNode = entry.identity.node }
            all[pid] = call
        }
        return all
    }
}
