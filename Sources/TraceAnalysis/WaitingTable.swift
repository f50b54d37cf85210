// The waiting model's calls by caller, for its hot path (every send and receive asks whether the
// process waits): a slot per caller in one dense array, found through an array indexed by the
// capture's ProcessID, so no lookup hashes. A slot holds a `PendingCall`, plain values only (no
// string or array): setting, moving and removing one copies a few words and counts no references
// (a `WaitingCall` per slot cost about 700 instructions per call in copies and releases). What only
// multi_calls and erpc calls have is kept beside, by caller (`CallExtras`).
import TraceModel

/// The part of a waiting call that the pass reads and writes per event.
struct PendingCall: Sendable {
    var caller: ProcessID
    var callerNode: NodeID
    /// The process called (0: not known; a multi_call's are its servers).
    var callee: ProcessID
    var kind: WaitingCall.Kind
    var since: Int64
    var tag: RefKey
    /// Where the request's ETF bytes are in the pass's `RequestBytes` (nil: an erpc call, whose
    /// request is text in its `CallExtras`).
    var requestBytes: Range<Int>?
}

/// What a multi_call (its servers) or an erpc call (its request, printed when its arguments
/// arrive) has besides its `PendingCall`.
struct CallExtras: Sendable {
    var request = "?"
    var unanswered: [MultiCallee] = []
    var asked = 0
}

struct WaitingTable: Sendable {
    /// By ProcessID: the caller's slot in `calls` plus one (0: not waiting). Grows to the highest
    /// caller seen: 4 bytes a process.
    private var slotOf: [UInt32] = []
    /// The waiting calls, dense, in no particular order (a removal moves the last one into the hole).
    private(set) var calls: [PendingCall] = []
    /// By caller, for the multi_calls and erpc calls waiting (none for a gen call).
    private(set) var extras: [ProcessID: CallExtras] = [:]

    var isEmpty: Bool { calls.isEmpty }
    var count: Int { calls.count }

    /// The slot of `pid`'s call, nil when it does not wait.
    @inline(__always) func slot(_ pid: ProcessID) -> Int? {
        let index = Int(pid)
        guard index < slotOf.count else { return nil }
        let slot = slotOf[index]
        return slot == 0 ? nil : Int(slot) - 1
    }

    @inline(__always) func contains(_ pid: ProcessID) -> Bool { slot(pid) != nil }

    /// The call in `slot` (from `slot(_:)`), to read or change in place.
    @inline(__always) subscript(slot slot: Int) -> PendingCall {
        get { calls[slot] }
        _modify { yield &calls[slot] }
    }

    /// `pid`'s call (nil when it does not wait).
    @inline(__always) subscript(pid: ProcessID) -> PendingCall? {
        guard let s = slot(pid) else { return nil }
        return calls[s]
    }

    /// The extras of `pid`'s multi_call or erpc call, to read or change in place (nil for a gen
    /// call or none).
    subscript(extras pid: ProcessID) -> CallExtras? {
        get { extras[pid] }
        _modify { yield &extras[pid] }
    }

    /// Puts `call` in as its caller's wait, replacing one it had (and that one's extras), with
    /// `extras` for a multi_call or an erpc call.
    @inline(__always) mutating func set(_ call: PendingCall, extras more: CallExtras? = nil) {
        if !extras.isEmpty || more != nil { extras[call.caller] = more }
        if let s = slot(call.caller) {
            calls[s] = call
            return
        }
        let index = Int(call.caller)
        if index >= slotOf.count {
            slotOf.append(contentsOf: repeatElement(0, count: max(index + 1 - slotOf.count, slotOf.count / 2)))
        }
        calls.append(call)
        slotOf[index] = UInt32(calls.count)
    }

    /// Takes `pid`'s call out, with its extras when it has some.
    @inline(__always) mutating func remove(_ pid: ProcessID) -> (call: PendingCall, extras: CallExtras?)? {
        guard let s = slot(pid) else { return nil }
        slotOf[Int(pid)] = 0
        let call = calls[s]
        let last = calls.count - 1
        if s != last {
            let moved = calls[last]
            calls[s] = moved
            slotOf[Int(moved.caller)] = UInt32(s + 1)
        }
        calls.removeLast()
        let more = call.kind == .gen || extras.isEmpty ? nil : extras.removeValue(forKey: pid)
        return (call, more)
    }

    /// The callers waiting, in slot order.
    var callers: [ProcessID] { calls.map(\.caller) }
}
