// The waiting model: which processes are blocked in a gen call, following OTP's call protocol
// (gen:call, gen_server:call, gen_statem:call). A call starts with the caller's send of
// `{'$gen_call', {Caller, Tag}, Request}` and ends with whichever comes first: the reply `{Tag, _}`
// (the callee's send or the caller's receive; Tag a reference or `[alias | Ref]`), the `'DOWN'` of
// its monitor (the callee died), the caller's `receive ... after` firing (a `'receive'` of the
// atom `timeout`), the caller's exit, or any activity of the caller of its own (a process blocked
// in gen:call's receive does nothing else: one that sends, calls or returns made an asynchronous
// `send_request`). Lost trace messages on the caller's node end its wait as unknown. A tag of
// another shape (`{Ref, Node}` of multi_call, as `global` uses) is not a blocking call.
import TraceModel

/// A gen call whose caller still waits at the end of the replay.
public struct WaitingCall: Sendable {
    public var caller: ProcessID
    public var callerNode: NodeID
    /// The process called (a registered name resolved to its holder when the capture knows it).
    public var callee: ProcessID
    public var since: Int64
    /// The request, printed short.
    public var request: String
    /// True when the wait is known from samples only (the caller sat in gen:do_call/4 or
    /// erpc:call/5, monitoring the callee): it began before the capture or its send was not traced,
    /// and `since` is the first sample that showed it.
    public var sampled = false
    var tag: RefKey
}

/// A wait seen in samples: the process was in a call's receive (gen:do_call/4, erpc:call/5) from
/// `since` on, monitoring `monitors`.
struct SampledWait: Sendable {
    var since: Int64
    var node: NodeID
    var monitors: [ProcessID]
}

struct CallWaits: Sendable {
    /// One per caller: gen:call blocks, so a caller waits for at most one call.
    private(set) var waiting: [ProcessID: WaitingCall] = [:]
    private var tags: [RefKey: ProcessID] = [:]
    /// How the calls of the replay ended, by ending (reply, down, timeout, exit, active, drop).
    private(set) var endings: [String: Int] = [:]

    var isEmpty: Bool { waiting.isEmpty }

    /// A send: a new call, or a callee's reply to a waiting caller.
    mutating func send(_ event: TraceEvent, payload: UnsafeRawBufferPointer, callee: ProcessID) {
        if let request = GenProtocol.request(payload) {
            if waiting[event.pid] != nil { end(event.pid, "active") }
            waiting[event.pid] = WaitingCall(caller: event.pid, callerNode: event.node, callee: callee, since: event.time,
                                             request: GenProtocol.requestText(payload, offset: request.requestOffset),
                                             tag: request.tag)
            tags[request.tag] = event.pid
            return
        }
        guard !waiting.isEmpty else { return }
        if waiting[event.pid] != nil { end(event.pid, "active") }
        if let tag = GenProtocol.replyTag(payload), let caller = tags[tag] { end(caller, "reply") }
    }

    /// A receive of a waiting caller: its reply, its monitor's `'DOWN'`, or its `after` firing.
    mutating func receive(_ event: TraceEvent, payload: UnsafeRawBufferPointer) {
        guard !waiting.isEmpty, let call = waiting[event.pid] else { return }
        if GenProtocol.isTimeout(payload) {
            end(event.pid, "timeout")
        } else if let tag = GenProtocol.replyTag(payload), tag == call.tag {
            end(event.pid, "reply")
        } else if let ref = GenProtocol.downRef(payload), ref == call.tag {
            end(event.pid, "down")
        }
    }

    /// The caller did something of its own (a call, a return, a spawn, a link...): not blocked.
    mutating func active(_ pid: ProcessID) {
        if waiting[pid] != nil { end(pid, "active") }
    }

    mutating func exited(_ pid: ProcessID) {
        if waiting[pid] != nil { end(pid, "exit") }
    }

    /// Trace messages were lost on `node` (0: anywhere): its callers' replies may be among them.
    mutating func dropped(on node: NodeID) {
        for (pid, call) in waiting where node == 0 || call.callerNode == node { end(pid, "drop") }
    }

    private mutating func end(_ pid: ProcessID, _ how: String) {
        guard let call = waiting.removeValue(forKey: pid) else { return }
        if tags[call.tag] == pid { tags[call.tag] = nil }
        endings[how, default: 0] += 1
    }
}
