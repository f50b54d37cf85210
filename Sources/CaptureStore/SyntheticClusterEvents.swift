// A generator of real-shaped events from several nodes, for writer/reader round trips (the tests and
// the fuzz-roundtrip fuzzer): gen_server calls and replies seen in their send and their receive on
// another node, pids of every node inside payloads (in the dictionaries and not, node atoms as trace
// ports write them and not), integers of every width around the INTEGER_EXT and SMALL_BIG_EXT
// boundaries (per-process counters that step and jump, as unique_integer does when a process changes
// scheduler), refs, tuples, lists, maps, funs, cut payloads and bytes that are not terms. Each node
// emits its events in its own time order (each process in order, across processes stepping back a
// little, as OTP's do) and the nodes' batches interleave as a recorder receives them, so blocks are
// re-sorted across nodes on writing.
// Every event's `value` is its serial number (0, 1, ...): a reader's events map back to what was
// written, whatever order they come in. Randomness comes from `entropy` first (a fuzzer's input),
// then from a SplitMix64 stream.
import TraceModel

public struct SyntheticClusterEvents {
    public private(set) var dictionaries = TraceDictionaries()
    private var entropy: [UInt8]
    private var position = 0
    private var state: UInt64
    private var nodes: [Node] = []
    private var functions: [FunctionID] = []
    private var serial: Int64 = 0

    struct Node {
        var name: String
        var id: NodeID
        var clock: Int64
        var processes: [(id: ProcessID, number: UInt32, serial: UInt32, creation: UInt32)] = []
        /// Per process: a counter that moves by small steps (and sometimes jumps).
        var counters: [Int64] = []
        /// Per process: the time of its last event (a process's own events are in order, as OTP's are).
        var lastTimes: [Int64] = []
        /// Messages sent to this node, received on its next turn: (receiver index, bytes).
        var inbox: [(Int, [UInt8])] = []
    }

    /// `nodes` nodes with `processesPerNode` processes each (a few more processes, never interned,
    /// appear only inside payloads).
    public init(seed: UInt64, entropy: [UInt8] = [], nodes nodeCount: Int = 6, processesPerNode: Int = 200) {
        self.entropy = entropy
        state = seed &+ 0x9E37_79B9_7F4A_7C15
        for n in 0..<max(1, nodeCount) {
            let name = "n\(n)_\(seed % 1000)@host\(n % 2)"
            var node = Node(name: name, id: dictionaries.intern(node: name), clock: 1_000_000_000 + Int64(n) * 3_000_000)
            for p in 0..<max(1, processesPerNode) {
                let number = UInt32(80 + p * (n + 1)), serial = UInt32(p % 3), creation = UInt32(1_700_000_000 + n)
                let id = dictionaries.intern(process: .pid(node: node.id, id: number, serial: serial, creation: creation))
                node.processes.append((id, number, serial, creation))
                node.counters.append(Int64(p) * 16)
                node.lastTimes.append(.min)
            }
            nodes.append(node)
        }
        for i in 0..<12 {
            functions.append(dictionaries.intern(module: "m\(i % 3)", function: "f\(i)", arity: i % 4))
        }
    }

    // MARK: randomness

    private mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        // A fuzzer's input steers the choices: one byte of it per draw while it lasts.
        if position < entropy.count {
            z = z << 8 | UInt64(entropy[position])
            position += 1
        }
        return z
    }

    private mutating func below(_ n: Int) -> Int { n <= 1 ? 0 : Int((next() & 0xFFFF_FFFF) % UInt64(n)) }
    private mutating func chance(_ percent: Int) -> Bool { below(100) < percent }

    // MARK: terms (raw ETF without the version byte)

    private static func u16(_ v: Int, _ out: inout [UInt8]) {
        out.append(UInt8(truncatingIfNeeded: v >> 8)); out.append(UInt8(truncatingIfNeeded: v))
    }

    private static func u32(_ v: UInt32, _ out: inout [UInt8]) {
        out.append(UInt8(truncatingIfNeeded: v >> 24)); out.append(UInt8(truncatingIfNeeded: v >> 16))
        out.append(UInt8(truncatingIfNeeded: v >> 8)); out.append(UInt8(truncatingIfNeeded: v))
    }

    private static func atom(_ text: String, utf8: Bool = false, _ out: inout [UInt8]) {
        let bytes = Array(text.utf8)
        if utf8 {
            out.append(119); out.append(UInt8(bytes.count))
        } else {
            out.append(100); u16(bytes.count, &out)
        }
        out.append(contentsOf: bytes)
    }

    /// A NEW_PID_EXT of a process of node `n` (index `p`), or of one the dictionaries do not hold.
    private mutating func pid(node n: Int, _ out: inout [UInt8]) {
        let node = nodes[n]
        out.append(88)
        // Trace ports write the node as ATOM_EXT; the distribution as SMALL_ATOM_UTF8 (never compacted).
        Self.atom(node.name, utf8: chance(5), &out)
        if chance(8) {
            Self.u32(UInt32(60_000 + below(5000)), &out); Self.u32(0, &out); Self.u32(node.processes[0].creation, &out)
        } else {
            let p = node.processes[below(node.processes.count)]
            Self.u32(p.number, &out); Self.u32(p.serial, &out); Self.u32(p.creation, &out)
        }
    }

    private mutating func reference(node n: Int, _ out: inout [UInt8]) {
        out.append(90); Self.u16(3, &out)
        Self.atom(nodes[n].name, &out)
        Self.u32(nodes[n].processes[0].creation, &out)
        for _ in 0..<3 { Self.u32(UInt32(truncatingIfNeeded: next()), &out) }
    }

    /// An integer as OTP encodes it (or a form OTP does not write but a file may hold): every width,
    /// the boundaries of each, canonical and not.
    static func integer(_ value: Int64, _ out: inout [UInt8]) {
        if value >= 0 && value <= 255 {
            out.append(97); out.append(UInt8(value))
        } else if value >= Int64(Int32.min) && value <= Int64(Int32.max) {
            out.append(98); u32(UInt32(bitPattern: Int32(value)), &out)
        } else {
            var magnitude = value.magnitude
            var digits: [UInt8] = []
            while magnitude > 0 { digits.append(UInt8(truncatingIfNeeded: magnitude)); magnitude >>= 8 }
            out.append(110); out.append(UInt8(digits.count)); out.append(value < 0 ? 1 : 0)
            out.append(contentsOf: digits)
        }
    }

    private mutating func anyInteger(_ out: inout [UInt8]) {
        let edges: [Int64] = [0, 1, 255, 256, -1, -256, Int64(Int32.max), Int64(Int32.min), Int64(Int32.max) + 1,
                              Int64(Int32.min) - 1, 1 << 32, (1 << 32) - 1, 1 << 40, -(1 << 48), (1 << 56) - 1, 1 << 56,
                              Int64.max, Int64.min + 1, -Int64.max]
        switch below(10) {
        case 0...3:
            Self.integer(edges[below(edges.count)] &+ Int64(below(3)) &- 1, &out)
        case 4:
            // INTEGER_EXT for a value OTP would write as SMALL_INTEGER_EXT (another writer's bytes).
            out.append(98); Self.u32(UInt32(below(256)), &out)
        case 5:
            // SMALL_BIG_EXT, not canonical: leading zero digits, negative zero, no digits at all.
            let n = below(9)
            out.append(110); out.append(UInt8(n)); out.append(UInt8(below(2)))
            for k in 0..<n { out.append(k == 0 ? UInt8(below(256)) : (chance(50) ? 0 : UInt8(below(256)))) }
        case 6:
            // Beyond an Int64: 8 digits with the top bit set, more than 8 digits, LARGE_BIG_EXT.
            let n = [8, 9, 12][below(3)]
            out.append(110); out.append(UInt8(n)); out.append(UInt8(below(2)))
            for k in 0..<n { out.append(k == n - 1 ? 0x80 | UInt8(below(128)) : UInt8(below(256))) }
        case 7:
            out.append(111); Self.u32(4, &out); out.append(UInt8(below(2)))
            for _ in 0..<4 { out.append(UInt8(below(256))) }
        default:
            Self.integer(Int64(bitPattern: next()) >> Int64(below(63)), &out)
        }
    }

    /// The process's counter, moved on: small steps, sometimes a jump of thousands (a process that
    /// changed scheduler) or across the INTEGER_EXT / SMALL_BIG_EXT boundaries.
    private mutating func counter(node n: Int, process p: Int) -> Int64 {
        var v = nodes[n].counters[p]
        switch below(20) {
        case 0: v = Int64(below(300))
        case 1: v = Int64(Int32.max) - Int64(below(40))
        case 2: v &+= Int64(below(1 << 20)) - (1 << 19)
        case 3: v = -v
        default: v &+= 16
        }
        nodes[n].counters[p] = v
        return v
    }

    private mutating func leaf(node n: Int, depth: Int, _ out: inout [UInt8]) {
        switch below(11) {
        case 0: anyInteger(&out)
        case 1: pid(node: below(nodes.count), &out)
        case 2: reference(node: below(nodes.count), &out)
        case 3: Self.atom(["ok", "error", "ping", "pong", "timeout", "$gen_call", "undefined"][below(7)], &out)
        case 4:
            let bytes = (0..<below(12)).map { _ in UInt8(below(256)) }
            out.append(109); Self.u32(UInt32(bytes.count), &out); out.append(contentsOf: bytes)
        case 5:
            let bytes = (0..<(1 + below(10))).map { _ in UInt8(97 + below(26)) }
            out.append(107); Self.u16(bytes.count, &out); out.append(contentsOf: bytes)
        case 6:
            out.append(70)
            withUnsafeBytes(of: Double(below(1000)).bitPattern.bigEndian) { out.append(contentsOf: $0) }
        case 7: fun(node: n, &out)
        case 8: out.append(106)
        default: Self.integer(Int64(below(256)), &out)
        }
    }

    /// A NEW_FUN_EXT (a leaf to every walker, its own integers and pid inside).
    private mutating func fun(node n: Int, _ out: inout [UInt8]) {
        var body: [UInt8] = [UInt8(below(3))]
        body.append(contentsOf: (0..<16).map { _ in UInt8(below(256)) })
        Self.u32(UInt32(below(50)), &body)
        let free = below(3)
        Self.u32(UInt32(free), &body)
        Self.atom("m\(below(3))", &body)
        Self.integer(Int64(below(50)), &body)
        body.append(98); Self.u32(UInt32(truncatingIfNeeded: next()), &body)
        pid(node: n, &body)
        for _ in 0..<free { anyInteger(&body) }
        out.append(112); Self.u32(UInt32(body.count + 4), &out); out.append(contentsOf: body)
    }

    private mutating func term(node n: Int, depth: Int, _ out: inout [UInt8]) {
        guard depth < 4, chance(45) else { return leaf(node: n, depth: depth, &out) }
        switch below(4) {
        case 0, 1:
            let k = below(6)
            out.append(104); out.append(UInt8(k))
            for _ in 0..<k { term(node: n, depth: depth + 1, &out) }
        case 2:
            let k = below(7)
            out.append(108); Self.u32(UInt32(k), &out)
            for _ in 0..<k { term(node: n, depth: depth + 1, &out) }
            if chance(10) { leaf(node: n, depth: depth + 1, &out) } else { out.append(106) }
        default:
            let k = below(4)
            out.append(116); Self.u32(UInt32(k), &out)
            for i in 0..<k {
                Self.atom("k\(i)", &out)
                term(node: n, depth: depth + 1, &out)
            }
        }
    }

    // MARK: events

    /// `{'$gen_call', {From, [alias|Ref]}, {ping, {Node, Id}}}` and its reply `{[alias|Ref], {pong, {Node, Id}}}`.
    private mutating func call(node n: Int, process p: Int) -> (request: [UInt8], reply: [UInt8]) {
        var alias: [UInt8] = [108, 0, 0, 0, 1]
        Self.atom("alias", &alias)
        reference(node: n, &alias)
        var id: [UInt8] = [104, 2]
        Self.atom(nodes[n].name, &id)
        Self.integer(counter(node: n, process: p), &id)
        var request: [UInt8] = [104, 3]
        Self.atom("$gen_call", &request)
        request.append(contentsOf: [104, 2])
        let proc = nodes[n].processes[p]
        request.append(88); Self.atom(nodes[n].name, &request)
        Self.u32(proc.number, &request); Self.u32(proc.serial, &request); Self.u32(proc.creation, &request)
        request.append(contentsOf: alias)
        request.append(contentsOf: [104, 2]); Self.atom("ping", &request); request.append(contentsOf: id)
        var reply: [UInt8] = [104, 2]
        reply.append(contentsOf: alias)
        reply.append(contentsOf: [104, 2]); Self.atom("pong", &reply); reply.append(contentsOf: id)
        return (request, reply)
    }

    private mutating func event(node n: Int, at time: Int64, into batch: inout EventBatch) {
        let node = nodes[n]
        let p = below(node.processes.count)
        var event = TraceEvent(time: time, node: node.id, pid: node.processes[p].id, kind: .call, value: serial)
        serial += 1
        var payload: [UInt8] = []
        if let message = nodes[n].inbox.first, chance(70) {
            nodes[n].inbox.removeFirst()
            let receiver = message.0 % node.processes.count
            event.pid = node.processes[receiver].id
            event.kind = .receive
            append(event, message.1, node: n, process: receiver, into: &batch)
            return
        }
        switch below(12) {
        case 0, 1:
            // A call to a server on another node (or this one): the send here, the receive there.
            let (request, reply) = call(node: n, process: p)
            let to = below(nodes.count)
            event.kind = .send
            event.peer = nodes[to].processes[below(nodes[to].processes.count)].id
            payload = request
            nodes[to].inbox.append((below(nodes[to].processes.count), request))
            // The server's reply comes back to the caller.
            nodes[n].inbox.append((p, reply))
        case 2:
            // A reply sent to an alias: the destination follows the message.
            event.kind = .send
            event.flags = .destinationInPayload
            payload = call(node: n, process: p).reply
            reference(node: n, &payload)
        case 3:
            event.kind = .call
            event.mfa = functions[below(functions.count)]
            if chance(20) {
                event.flags = .arityOnly
            } else {
                let k = 1 + below(4)
                payload = [108]; Self.u32(UInt32(k), &payload)
                Self.integer(counter(node: n, process: p), &payload)
                for _ in 1..<k { term(node: n, depth: 1, &payload) }
                payload.append(106)
            }
        case 4:
            event.kind = .returnFrom
            event.mfa = functions[below(functions.count)]
            if chance(50) {
                payload = [104, 2]; Self.atom("ok", &payload); Self.integer(counter(node: n, process: p), &payload)
            } else {
                anyInteger(&payload)
            }
        case 5:
            // A bare pid (enters no integer context), then more than four integers in one payload.
            event.kind = .send
            if chance(50) {
                pid(node: below(nodes.count), &payload)
            } else {
                let k = 5 + below(4)
                payload = [104, UInt8(k)]
                for _ in 0..<k { Self.integer(counter(node: n, process: p), &payload) }
            }
        case 6:
            // Cut by the payload limit (docs/FORMAT.md): 0xF4, depth, then the cut terms; never compacted.
            event.kind = .send
            event.flags = .payloadTruncated
            payload = [0xF4, UInt8(1 + below(20))]
            term(node: n, depth: 2, &payload)
        case 7:
            // Bytes that are not whole terms: kept as they are.
            event.kind = .exit
            payload = (0..<below(20)).map { _ in UInt8(below(256)) }
        case 8:
            event.kind = .receive
            Self.atom("timeout", &payload)
        case 9:
            event.kind = .exit
            payload = [104, 2]; Self.atom("shutdown", &payload)
            payload.append(contentsOf: [104, 2]); pid(node: n, &payload); anyInteger(&payload)
        default:
            event.kind = [.send, .receive, .spawn, .call][below(4)]
            if event.kind == .call { event.mfa = functions[below(functions.count)] }
            term(node: n, depth: 0, &payload)
            if chance(10) { term(node: n, depth: 0, &payload) }
        }
        append(event, payload, node: n, process: p, into: &batch)
    }

    /// Appends the event (of process `p` of node `n`) no earlier than its process's previous one.
    private mutating func append(_ event: TraceEvent, _ payload: [UInt8], node n: Int, process p: Int,
                                 into batch: inout EventBatch) {
        var event = event
        event.time = max(event.time, nodes[n].lastTimes[p])
        nodes[n].lastTimes[p] = event.time
        batch.append(event, payload: payload)
    }

    /// Batches of `events` events in all as a recorder appends them: each a run of one node's events
    /// in that node's order (its processes stepping back a few µs), the nodes taking turns at random,
    /// so consecutive batches step back and forth in time by up to milliseconds.
    public mutating func batches(events: Int) -> [EventBatch] {
        var result: [EventBatch] = []
        var made = 0
        while made < events {
            let n = below(nodes.count)
            let count = min(events - made, 1 + below(chance(20) ? 700 : 60))
            var batch = EventBatch()
            for _ in 0..<count {
                // Equal times happen (one timestamp for several messages); a process steps back.
                let step = chance(10) ? 0 : Int64(1 + below(chance(5) ? 2_000_000 : 5000))
                nodes[n].clock += step
                let time = chance(10) ? nodes[n].clock - Int64(below(3000)) : nodes[n].clock
                event(node: n, at: time, into: &batch)
            }
            made += count
            result.append(batch)
        }
        return result
    }
}
