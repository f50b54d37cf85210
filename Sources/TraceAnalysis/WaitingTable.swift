// The waiting model's calls by caller, for its hot path (every send and receive asks whether the
// process waits): a slot per caller in one dense array, found through an array indexed by the
// capture's ProcessID, so no lookup hashes and no WaitingCall is copied to read one of its fields.
import TraceModel

struct WaitingTable: Sendable {
    /// By ProcessID: the caller's slot in `calls` plus one (0: not waiting). Grows to the highest
    /// caller seen: 4 bytes a process.
    private var slotOf: [UInt32] = []
    /// The waiting calls, dense, in no particular order (a removal moves the last one into the hole).
    private(set) var calls: [WaitingCall] = []

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
    @inline(__always) subscript(slot slot: Int) -> WaitingCall {
        _read { yield calls[slot] }
        _modify { yield &calls[slot] }
    }

    /// A copy of `pid`'s call (nil when it does not wait): for the cold paths.
    subscript(pid: ProcessID) -> WaitingCall? {
        guard let s = slot(pid) else { return nil }
        return calls[s]
    }

    /// Puts `call` in as its caller's wait (replacing one it had); taken, not copied.
    mutating func set(_ call: consuming WaitingCall) {
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

    /// Takes `pid`'s call out.
    mutating func remove(_ pid: ProcessID) -> WaitingCall? {
        guard let s = slot(pid) else { return nil }
        slotOf[Int(pid)] = 0
        let last = calls.count - 1
        if s != last {
            calls.swapAt(s, last)
            slotOf[Int(calls[s].caller)] = UInt32(s + 1)
        }
        return calls.removeLast()
    }

    /// The callers waiting, in slot order.
    var callers: [ProcessID] { calls.map(\.caller) }

    /// By caller, as reports read them.
    var dictionary: [ProcessID: WaitingCall] {
        var result: [ProcessID: WaitingCall] = [:]
        result.reserveCapacity(calls.count)
        for call in calls { result[call.caller] = call }
        return result
    }
}
