// Causal order across nodes. Each node's offset to the session clock comes from rpc round trips
// at the start (SessionClock), good to about a hundred microseconds; a message between two nodes
// can be faster than that, so a receive could be stamped before its send. After a multi-node
// session, the send -> receive pairs in the capture (same message bytes, one send and one
// receive, on different nodes) bound each pair of nodes' relative offset: a receive cannot
// precede its send, and messages both ways (a round trip) bound the skew from both sides.
//
// Measured on OTP 25 (8 and 6 local nodes): the bounds do not always agree with each other. A
// send's trace timestamp can be taken after the message has left (by tens of µs on a busy node),
// so the receive of one message says "at least +70 µs" while a message the other way says "at
// most +15 µs". So: the offsets are those that minimise the worst receive-before-send (a binary
// search on the slack, each step a Bellman-Ford on the difference constraints, and of the
// offsets that achieve it the midpoint of the smallest increases and the smallest decreases); a
// receive still stamped before its send after that is moved to just after its send (and later
// events of its process with it, so each process keeps its own order), and counted. Moving a
// receive can move a later send of its process past that message's receive (a chain of replies
// across drifting clocks), so the moves are not taken pair by pair: every event's final time is
// the largest of its corrected time, its process's previous event and, for a receive, its send's
// final time + 1, worked out over the processes in causal order before anything is written. Pairs
// within one node take part in that order too (they bound no offset): a server's receive moved after
// a remote send pushes its reply to a neighbour on its own node, whose receive has to follow it. The
// capture is rewritten once; the refined offsets, the corrections and what was moved are stored in it,
// with what is left out of order counted on the times written.
//
// Why a post-pass at the end of the session rather than at read time: the capture then holds
// causal times for every reader (events, analyses, exporters, imports into other tools) without
// each of them correcting and re-sorting; and only the whole session shows every pair.
import BeamTerm
import CaptureStore
import Foundation
import TraceModel

public struct ClockRefinement: Sendable, Codable {
    public struct Node: Sendable, Codable {
        public var name: String
        /// Added to every time of this node's events.
        public var correctionNs: Int64
        /// Half the width of the tightest two-sided bound with another node (nil when its messages
        /// went one way only, or the bounds disagree): how far the corrected offset may still be off.
        public var uncertaintyNs: Int64?
    }

    public var nodes: [Node]
    /// Matched cross-node send -> receive pairs used.
    public var pairs: Int
    /// Matched send -> receive pairs within one node: no bound on an offset, but kept in order when a
    /// moved receive pushes its process's later sends (nil in captures refined before they were kept).
    public var sameNodePairs: Int?
    /// Receives stamped before their send with the measured offsets.
    public var violationsBefore: Int
    /// The worst receive-before-send the refined offsets leave (ns): where the pairs disagree.
    public var residualNs: Int64
    /// Receives moved to just after their send because no offset could order them, and the
    /// largest move (ns).
    public var movedReceives: Int
    public var maxMoveNs: Int64
    /// Receives before their send in the rewritten capture, of both kinds of pair, counted on the times
    /// written: some of `cyclicReceives` (placed after the send's corrected time, its final one may be
    /// later), else 0.
    public var violationsAfter: Int
    /// Receives no time order can put after their send: a pairing of equal message bytes that makes a
    /// cycle (a process receiving a message before it sends what led to it), which only a mistaken
    /// match can make. Placed after the send's corrected time. Nil in captures refined before it was counted.
    public var cyclicReceives: Int?

    struct Pair {
        var sendTime: Int64
        var receiveTime: Int64
        var sendNode: Int
        var receiveNode: Int
        var receiver: ProcessID
        var sender: ProcessID
        /// Which of its process's sends (receives) at that same time it is: two can share a time.
        var sendOccurrence: Int
        var receiveOccurrence: Int
    }

    /// Measures the pairs of the capture at `path` and, when some receive precedes its send,
    /// rewrites the capture with corrected times. Nil for single-node captures.
    public static func refine(capture path: String) throws -> ClockRefinement? {
        let reader = try CaptureReader(opening: path)
        let names = reader.meta.nodes.map(\.name)
        guard names.count > 1 else { return nil }
        var index: [NodeID: Int] = [:]
        for (i, name) in names.enumerated() { if let id = reader.dictionaries.nodeID(named: name) { index[id] = i } }
        let count = names.count

        // Pairs within a node bound no offset, but their order has to survive the moves: a receive moved
        // after its send pushes its process's later sends, and a reply to a process of the same node
        // (a gen_server called by its neighbour) would otherwise be left stamped before that send.
        let pairs = try measure(reader, index: index)
        let crossNode = pairs.filter { $0.sendNode != $0.receiveNode }
        let sameNodeBefore = pairs.filter { $0.sendNode == $0.receiveNode && $0.receiveTime <= $0.sendTime }.count
        var lower = [[Int64?]](repeating: [Int64?](repeating: nil, count: count), count: count)
        var before = 0
        for pair in crossNode {
            // The receive at least 1 ns after its send: the same time is not after it.
            let need = pair.sendTime - pair.receiveTime + 1
            if need > 0 { before += 1 }
            lower[pair.sendNode][pair.receiveNode] = max(lower[pair.sendNode][pair.receiveNode] ?? .min, need)
        }
        var result = ClockRefinement(nodes: names.map { Node(name: $0, correctionNs: 0, uncertaintyNs: nil) },
                                     pairs: crossNode.count, sameNodePairs: pairs.count - crossNode.count,
                                     violationsBefore: before + sameNodeBefore, residualNs: 0, movedReceives: 0,
                                     maxMoveNs: 0, violationsAfter: before + sameNodeBefore)
        guard before + sameNodeBefore > 0 else {
            result.nodes = uncertainties(lower, names: names, corrections: Array(repeating: 0, count: count))
            return result
        }

        // The smallest slack that makes the bounds consistent, then offsets within it.
        let slack = smallestSlack(lower, count: count)
        let relaxed = lower.map { $0.map { $0.map { $0 - slack } } }
        let up = relax(relaxed, count: count, sign: 1)
        let down = relax(relaxed, count: count, sign: -1)
        let corrections = (0..<count).map { (up[$0] + down[$0]) / 2 }
        result.nodes = uncertainties(lower, names: names, corrections: corrections)
        result.residualNs = slack

        // Receives the offsets cannot order: moved to just after their send, as the send itself lands.
        let paired = PairIndex(pairs)
        let moves = try causalMoves(reader, pairs: pairs, paired: paired, corrections: corrections, index: index)
        result.movedReceives = moves.moved
        result.cyclicReceives = moves.cyclic
        result.maxMoveNs = moves.maxMoveNs
        result.violationsAfter = try rewrite(reader, path: path, corrections: corrections, moves: moves.times,
                                             pairs: pairs, paired: paired, index: index, refinement: result)
        return result
    }

    struct MoveKey: Hashable {
        var pid: ProcessID
        var time: Int64
        var occurrence: Int
    }

    /// Which pair a send or receive is, by its process, original time and occurrence at that time:
    /// built once, read by the causal moves and by the rewrite.
    struct PairIndex {
        private var sendOf: [MoveKey: Int] = [:]
        private var receiveOf: [MoveKey: Int] = [:]

        init(_ pairs: [Pair]) {
            for (i, pair) in pairs.enumerated() {
                sendOf[MoveKey(pid: pair.sender, time: pair.sendTime, occurrence: pair.sendOccurrence)] = i
                receiveOf[MoveKey(pid: pair.receiver, time: pair.receiveTime, occurrence: pair.receiveOccurrence)] = i
            }
        }

        func pair(_ kind: EventKind, _ key: MoveKey) -> Int? {
            kind == .send ? sendOf[key] : kind == .receive ? receiveOf[key] : nil
        }
    }

    /// Numbers a process's sends (and receives) that share one time stamp 0, 1, ...: the same in every
    /// pass over the capture, since each process's events come in the same order in each.
    struct Occurrences {
        private var last: [ProcessID: (time: Int64, sends: Int, receives: Int)] = [:]

        mutating func next(_ event: TraceEvent) -> Int {
            var entry: (time: Int64, sends: Int, receives: Int) = (event.time, 0, 0)
            if let previous = last[event.pid], previous.time == event.time { entry = previous }
            let occurrence: Int
            if event.kind == .send {
                occurrence = entry.sends
                entry.sends += 1
            } else {
                occurrence = entry.receives
                entry.receives += 1
            }
            last[event.pid] = entry
            return occurrence
        }
    }

    /// The final time of every receive that has to move: each process's events in capture order,
    /// an event at no earlier than its corrected time and its process's previous event (as the
    /// rewrite places them), a receive after its send's final time. Processes advance in causal
    /// order (a receive waits until its send is placed); a cycle, which only a mistaken pairing can
    /// make, is cut by placing the waiting receive by its send's corrected time.
    static func causalMoves(_ reader: CaptureReader, pairs: [Pair], paired: PairIndex, corrections: [Int64],
                            index: [NodeID: Int]) throws -> (times: [MoveKey: Int64], moved: Int, maxMoveNs: Int64,
                                                             cyclic: Int) {
        var occurrences = Occurrences()
        // Per process, its paired events in capture order, each with the latest corrected time of the
        // unpaired events of the process before it (they hold later events back too).
        struct Step {
            var pair: Int
            var isSend: Bool
            var time: Int64
            var floor: Int64
        }
        var steps: [ProcessID: [Step]] = [:]
        var pending: [ProcessID: Int64] = [:]
        try reader.forEach(columns: EventColumns(payloadKinds: 0, peers: false)) { event, _ in
            guard event.pid != 0 else { return true }
            let corrected = event.time &+ (index[event.node].map { corrections[$0] } ?? 0)
            var pair: Int?
            if event.kind == .send || event.kind == .receive {
                let key = MoveKey(pid: event.pid, time: event.time, occurrence: occurrences.next(event))
                pair = paired.pair(event.kind, key)
            }
            guard let pair else {
                pending[event.pid] = max(pending[event.pid] ?? .min, corrected)
                return true
            }
            steps[event.pid, default: []].append(Step(pair: pair, isSend: event.kind == .send, time: corrected,
                                                       floor: pending.removeValue(forKey: event.pid) ?? .min))
            return true
        }
        var sendFinal = [Int64?](repeating: nil, count: pairs.count)
        var waiting: [Int: ProcessID] = [:]
        var position: [ProcessID: Int] = [:]
        var last: [ProcessID: Int64] = [:]
        var ready = Array(steps.keys).sorted()
        var stuck = Set<ProcessID>()
        var result: (times: [MoveKey: Int64], moved: Int, maxMoveNs: Int64, cyclic: Int) = ([:], 0, 0, 0)
        while true {
            while let pid = ready.popLast() {
                guard let list = steps[pid] else { continue }
                var i = position[pid] ?? 0
                while i < list.count {
                    let step = list[i]
                    var time = max(step.time, step.floor, last[pid] ?? .min)
                    if !step.isSend {
                        let pair = pairs[step.pair]
                        let after: Int64
                        if let send = sendFinal[step.pair] {
                            after = send + 1
                        } else if stuck.remove(pid) != nil {
                            after = pair.sendTime + corrections[pair.sendNode] + 1
                            result.cyclic += 1
                        } else {
                            waiting[step.pair] = pid
                            stuck.insert(pid)
                            break
                        }
                        if after > time {
                            let own = pair.receiveTime + corrections[pair.receiveNode]
                            result.times[MoveKey(pid: pid, time: pair.receiveTime,
                                                 occurrence: pair.receiveOccurrence)] = after
                            result.moved += 1
                            result.maxMoveNs = max(result.maxMoveNs, after - own)
                            time = after
                        }
                    }
                    last[pid] = time
                    if step.isSend {
                        sendFinal[step.pair] = time
                        if let receiver = waiting.removeValue(forKey: step.pair) {
                            stuck.remove(receiver)
                            ready.append(receiver)
                        }
                    }
                    i += 1
                }
                position[pid] = i
            }
            // Everything left waits on a receive whose send waits too: cut the cycle at the smallest pid.
            guard let cut = stuck.min() else { break }
            waiting = waiting.filter { $0.value != cut }
            ready.append(cut)
        }
        return result
    }

    /// Pairs sends with receives: the same message bytes (only messages of 16 bytes or more, which
    /// carry refs, pids or unique terms), sent once and received once; on different nodes or the same.
    static func measure(_ reader: CaptureReader, index: [NodeID: Int]) throws -> [Pair] {
        typealias Seen = (time: Int64, node: Int, pid: ProcessID, occurrence: Int, count: Int)
        var sends: [MessageKey: Seen] = [:]
        var receives: [MessageKey: Seen] = [:]
        var occurrences = Occurrences()
        try reader.forEach(matching: EventQuery(kinds: [.send, .receive])) { event, payload in
            guard event.kind == .send || event.kind == .receive else { return true }
            let occurrence = occurrences.next(event)
            guard let node = index[event.node], let message = messageBytes(event, payload), message.count >= 16 else {
                return true
            }
            let key = MessageKey(message)
            if event.kind == .send {
                sends[key] = (event.time, node, event.pid, occurrence, (sends[key]?.count ?? 0) + 1)
            } else {
                receives[key] = (event.time, node, event.pid, occurrence, (receives[key]?.count ?? 0) + 1)
            }
            return true
        }
        var pairs: [Pair] = []
        for (key, sent) in sends where sent.count == 1 {
            guard let received = receives[key], received.count == 1 else { continue }
            pairs.append(Pair(sendTime: sent.time, receiveTime: received.time, sendNode: sent.node,
                              receiveNode: received.node, receiver: received.pid, sender: sent.pid,
                              sendOccurrence: sent.occurrence, receiveOccurrence: received.occurrence))
        }
        return pairs
    }

    /// The smallest s (to 1 µs) for which d[b] - d[a] >= lower[a][b] - s has a solution.
    static func smallestSlack(_ lower: [[Int64?]], count: Int) -> Int64 {
        func feasible(_ s: Int64) -> Bool { relaxation(lower, count: count, sign: 1, slack: s).settled }
        var high = lower.joined().compactMap { $0 }.max() ?? 0
        var low: Int64 = 0
        if feasible(0) { return 0 }
        high = max(high, 1)
        while !feasible(high) { high *= 2 }
        while high - low > 1_000 {
            let middle = (low + high) / 2
            if feasible(middle) { high = middle } else { low = middle }
        }
        return high
    }

    /// With sign 1: the smallest non-negative increases d with d[b] >= d[a] + lower[a][b]; with
    /// sign -1: the smallest decreases. Stops after `count` rounds (contradicting bounds).
    static func relax(_ lower: [[Int64?]], count: Int, sign: Int64) -> [Int64] {
        relaxation(lower, count: count, sign: sign, slack: 0).d
    }

    /// Bellman-Ford over the bounds d[b] - d[a] >= lower[a][b] - slack, moving d up (sign 1) or down (sign -1);
    /// `settled` is false when `count` rounds did not settle it (the bounds contradict each other).
    private static func relaxation(
        _ lower: [[Int64?]], count: Int, sign: Int64, slack: Int64
    ) -> (d: [Int64], settled: Bool) {
        var d = [Int64](repeating: 0, count: count)
        for _ in 0...count {
            var changed = false
            for a in 0..<count {
                for b in 0..<count where a != b {
                    guard let bound = lower[a][b] else { continue }
                    let need = bound - slack
                    if sign > 0, d[b] < d[a] + need {
                        d[b] = d[a] + need
                        changed = true
                    } else if sign < 0, d[a] > d[b] - need {
                        d[a] = d[b] - need
                        changed = true
                    }
                }
            }
            if !changed { return (d, true) }
        }
        return (d, false)
    }

    /// Per node: its correction and half the tightest consistent two-sided window with another node.
    static func uncertainties(_ lower: [[Int64?]], names: [String], corrections: [Int64]) -> [Node] {
        var half: [Int64?] = Array(repeating: nil, count: names.count)
        for a in names.indices {
            for b in names.indices where a != b {
                // d[b] - d[a] lies in [lower[a][b], -lower[b][a]].
                guard let low = lower[a][b], let high = lower[b][a].map({ -$0 }), high >= low else { continue }
                for n in [a, b] { half[n] = min(half[n] ?? .max, (high - low) / 2) }
            }
        }
        return names.indices.map { Node(name: names[$0], correctionNs: corrections[$0], uncertaintyNs: half[$0]) }
    }

    /// The message of a send or receive: its payload's first term (a send to an alias carries the
    /// destination after it).
    static func messageBytes(_ event: TraceEvent, _ payload: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        guard !event.flags.contains(.payloadRedacted) else { return nil }
        guard event.kind == .send && event.flags.contains(.destinationInPayload) else { return payload }
        guard !event.flags.contains(.payloadTruncated) else { return nil }
        var offset = 0
        guard (try? TermDecoder().decode(payload, offset: &offset, versioned: false)) != nil else { return nil }
        return UnsafeRawBufferPointer(rebasing: payload[0..<offset])
    }

    struct MessageKey: Hashable {
        var hash: UInt64
        var length: Int
        init(_ bytes: UnsafeRawBufferPointer) {
            var h: UInt64 = 0xcbf2_9ce4_8422_2325
            for byte in bytes { h = (h ^ UInt64(byte)) &* 0x100_0000_01b3 }
            hash = h
            length = bytes.count
        }
    }

    /// Writes the capture again with corrected times, in time order (events move by at most the
    /// spread of the corrections plus the largest move, so a small reordering window suffices),
    /// then swaps it in.
    /// Returns how many paired receives are written at or before their send's time.
    static func rewrite(_ reader: CaptureReader, path: String, corrections: [Int64], moves: [MoveKey: Int64],
                        pairs: [Pair], paired: PairIndex, index: [NodeID: Int],
                        refinement: ClockRefinement) throws -> Int {
        var meta = reader.meta
        for i in meta.nodes.indices where i < corrections.count {
            meta.nodes[i].clockOffsetNs = (meta.nodes[i].clockOffsetNs ?? 0) + corrections[i]
        }
        // The times written of every paired event, to count what is left out of order (a pair whose
        // events were not met counts as left).
        var sentAt = [Int64](repeating: .max, count: pairs.count)
        var receivedAt = [Int64](repeating: .min, count: pairs.count)
        let temporary = path + ".refining"
        try? FileManager.default.removeItem(atPath: temporary)
        let writer = try CaptureWriter(creating: temporary, meta: meta)
        let lowest = corrections.min() ?? 0
        var heap = EventHeap()
        var batch = EventBatch(reservingCapacity: 4096)
        var sequence = 0
        // Each process keeps its own order: after a moved receive, its later events move with it.
        var lastTime = [Int64](repeating: .min, count: reader.dictionaries.processes.count + 1)
        var occurrences = Occurrences()
        func flush() throws {
            if !batch.isEmpty {
                try writer.append(batch, dictionaries: reader.dictionaries)
                batch.removeAll()
            }
        }
        // The session's markers keep bracketing its events: the start moves back by the largest
        // correction back, the stop comes after the last event (docs/RECORDING.md, Time).
        var stops: [(TraceEvent, [UInt8])] = []
        var latest = Int64.min
        func take(_ entry: EventHeap.Entry) throws {
            latest = max(latest, entry.time)
            batch.append(entry.event, payload: entry.payload)
            if batch.count >= 4096 { try flush() }
        }
        try reader.forEach { event, payload in
            var shifted = event
            if event.kind == .marker && event.node == 0 {
                if event.value == 2 {
                    stops.append((event, Array(payload)))
                    return true
                }
                if event.value == 1 { shifted.time &+= min(0, lowest) }
            }
            if let node = index[event.node] { shifted.time &+= corrections[node] }
            var key: MoveKey?
            if event.kind == .send || event.kind == .receive {
                key = MoveKey(pid: event.pid, time: event.time, occurrence: occurrences.next(event))
                if event.kind == .receive, let key, let moved = moves[key] { shifted.time = max(shifted.time, moved) }
            }
            let pid = Int(event.pid)
            if event.pid != 0, pid < lastTime.count {
                shifted.time = max(shifted.time, lastTime[pid])
                lastTime[pid] = shifted.time
            }
            if let key, let pair = paired.pair(event.kind, key) {
                if event.kind == .send { sentAt[pair] = shifted.time } else { receivedAt[pair] = shifted.time }
            }
            heap.push(EventHeap.Entry(time: shifted.time, sequence: sequence, event: shifted, payload: Array(payload)))
            sequence += 1
            // No later event can land before this one's time plus the lowest correction.
            let safe = event.time &+ lowest
            while let top = heap.peek, top.time < safe || heap.count > 1_000_000 {
                _ = heap.pop()
                try take(top)
            }
            return true
        }
        while let top = heap.pop() { try take(top) }
        for (event, payload) in stops {
            var stop = event
            stop.time = latest == .min ? event.time : max(event.time, latest &+ 1)
            batch.append(stop, payload: payload)
        }
        try flush()
        // The session record keeps what the refinement did (offsets before it are there too), with
        // what is left out of order counted on the times just written.
        var refinement = refinement
        refinement.violationsAfter = pairs.indices.filter { receivedAt[$0] <= sentAt[$0] }.count
        if let text = meta.session, var object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any],
           let encoded = try? JSONEncoder().encode(refinement),
           let value = try? JSONSerialization.jsonObject(with: encoded) {
            object["clockRefinement"] = value
            if let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) {
                meta.session = String(decoding: data, as: UTF8.self)
            }
        }
        writer.updateMeta { $0 = meta }
        try writer.close(stopReason: meta.stopReason)
        let previous = path + ".unrefined"
        try? FileManager.default.removeItem(atPath: previous)
        try FileManager.default.moveItem(atPath: path, toPath: previous)
        do {
            try FileManager.default.moveItem(atPath: temporary, toPath: path)
        } catch {
            try? FileManager.default.moveItem(atPath: previous, toPath: path)
            throw error
        }
        try? FileManager.default.removeItem(atPath: previous)
        return refinement.violationsAfter
    }
}

/// A binary min-heap of events by (time, arrival).
struct EventHeap {
    struct Entry {
        var time: Int64
        var sequence: Int
        var event: TraceEvent
        var payload: [UInt8]
        func before(_ other: Entry) -> Bool { (time, sequence) < (other.time, other.sequence) }
    }

    private var items: [Entry] = []
    var count: Int { items.count }
    var peek: Entry? { items.first }

    mutating func push(_ entry: Entry) {
        items.append(entry)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard items[i].before(items[parent]) else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> Entry? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let top = items.removeLast()
        var i = 0
        while true {
            let left = 2 * i + 1, right = left + 1
            var smallest = i
            if left < items.count && items[left].before(items[smallest]) { smallest = left }
            if right < items.count && items[right].before(items[smallest]) { smallest = right }
            if smallest == i { break }
            items.swapAt(i, smallest)
            i = smallest
        }
        return top
    }
}
