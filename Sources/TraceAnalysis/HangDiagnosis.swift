// `beamtrace hang`: ranked suspects, each kind with its own evidence. From the wait-for graph of
// gen calls still waiting at the end (CallWaits): deadlock cycles of any length, and chains of
// stuck calls ending at the process that does not answer (the root, ranked first). From the
// queues: a queue frozen while its owner is blocked, a receive that matches none of a growing
// queue, a queue that grows. And system_monitor alerts near the end. Every age is measured to the
// capture's end. OTP's own processes are not suspects for waiting (OTPMachinery). The verdict
// (HangVerdict.swift) is a paragraph a person can paste into an incident note.
import BeamTerm
import Foundation
import TraceModel

public struct HangSuspect: Sendable, Codable {
    public enum Reason: String, Sendable, Codable {
        /// Waits in a cycle of gen calls.
        case deadlock
        /// The end of a chain of stuck calls: called, and not answering.
        case notAnswering = "not_answering"
        /// Waits in a gen call that has not been answered for too long.
        case stuckCall = "stuck_call"
        /// A receive that matches none of the messages of a growing queue.
        case selectiveReceive = "selective_receive"
        /// A non-empty queue that stopped changing while its owner is blocked or busy.
        case frozenQueue = "frozen_queue"
        case queueGrowth = "queue_growth"
        case monitor
    }

    public var pid: String
    public var node: String
    public var name: String?
    public var reason: Reason
    public var score: Double
    public var evidence: [String: JSONValue]
    /// One line on what this suspect does, for the verdict.
    public var summary: String
}

public struct HangReport: Sendable, Codable {
    public var verdict: String
    public var suspects: [HangSuspect]
    public var deadlocks: [[String]]
    /// Chains of stuck calls, caller first, ending at the process that does not answer.
    public var chains: [[String]]
    public var captureSeconds: Double
    /// How long traced activity had been silent when the capture ended.
    public var silentSeconds: Double
    public var events: Int
    /// The capture's (or window's) end: when the session stopped, in ns.
    public var endNs: Int64
    /// How the gen calls of the capture ended (reply, down, timeout, exit, active, drop).
    public var callEndings: [String: Int]
    /// How the servers asked by multi_calls ended, one per server (reply, down, nodedown, timeout...).
    public var multiCallEndings: [String: Int] = [:]
    /// How the erpc calls seen from their start ended.
    public var erpcEndings: [String: Int] = [:]

    enum CodingKeys: String, CodingKey {
        case verdict, suspects, deadlocks, chains, events
        case captureSeconds = "capture_seconds", silentSeconds = "silent_s", endNs = "end_ns"
        case callEndings = "call_endings", multiCallEndings = "multi_call_endings", erpcEndings = "erpc_endings"
    }
}

/// A small JSON value for evidence objects.
public enum JSONValue: Sendable, Codable, Equatable {
    case string(String)
    case number(Double)
    case int(Int64)
    case bool(Bool)
    case array([JSONValue])
    case object([String: JSONValue])

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let v): try container.encode(v)
        case .number(let v): try container.encode(v)
        case .int(let v): try container.encode(v)
        case .bool(let v): try container.encode(v)
        case .array(let v): try container.encode(v)
        case .object(let v): try container.encode(v)
        }
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let v = try? container.decode(Bool.self) { self = .bool(v) }
        else if let v = try? container.decode(Int64.self) { self = .int(v) }
        else if let v = try? container.decode(Double.self) { self = .number(v) }
        else if let v = try? container.decode(String.self) { self = .string(v) }
        else if let v = try? container.decode([JSONValue].self) { self = .array(v) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }
}

extension CaptureAnalysis {
    public func hangReport() -> HangReport {
        let end = captureEnd
        let threshold = HangThresholds.stuck(duration)
        // Only where receives were traced can a reply, a 'DOWN' or a timeout be seen.
        let waits = allWaits()
        var suspects: [HangSuspect] = []
        var explained: Set<ProcessID> = []

        // Deadlocks: cycles of waiting calls, any length.
        let cycles = waitForCycles(waits)
        for cycle in cycles {
            for (i, pid) in cycle.enumerated() {
                explained.insert(pid)
                let callee = cycle[(i + 1) % cycle.count]
                let since = waits[pid]?.since ?? end
                var evidence = callEvidence(pid, waits[pid], end: end, waits: waits)
                evidence["cycle"] = .array(cycle.map { .string(who($0)) })
                suspects.append(suspect(pid, .deadlock, score: 100 + Double(end - since) / 1e9, evidence: evidence,
                                        summary: "\(who(pid)) waits for \(who(callee)) in a gen call for "
                                            + Durations.text(end - since)))
            }
        }
        let inCycle = Set(cycles.joined())

        // Chains of stuck calls: each long-waiting caller, followed through its callees to the first
        // process that does not wait (the root), or to a deadlock.
        var chains: [[ProcessID]] = []
        var byRoot: [ProcessID: [(caller: ProcessID, chain: [ProcessID])]] = [:]
        for (caller, call) in waits.sorted(by: { ($0.value.since, $0.key) < ($1.value.since, $1.key) })
        where !inCycle.contains(caller) && end - call.since >= threshold {
            // One chain per process it waits for (a multi_call waits for every server that has not answered).
            let firstHops = edges(call, waits, end: end)
            guard !firstHops.isEmpty else {
                // Waiting in a call whose callee the capture cannot name (several monitors).
                if !OTPMachinery.contains(caller, dictionaries) {
                    var evidence = callEvidence(caller, call, end: end, waits: waits)
                    evidence["waiting_for"] = .string("unknown")
                    let candidates = call.candidates.isEmpty ? "" : ", to one of " + call.candidates.map { who($0) }
                        .joined(separator: ", ") + " (it monitors them; neither its stack nor the trace says which)"
                    suspects.append(suspect(caller, .stuckCall, score: 60, evidence: evidence,
                                            summary: "\(who(caller, withNode: true)) has waited at least "
                                                + "\(Durations.text(end - call.since)) in a call" + candidates))
                    explained.insert(caller)
                }
                continue
            }
            var callerChains: [[ProcessID]] = []
            for hop in firstHops {
                var chain = [caller]
                var current = hop
                while current != 0, !chain.contains(current), chain.count < 64 {
                    chain.append(current)
                    guard !inCycle.contains(current), let next = waits[current] else { break }
                    current = next.kind == .multiCall || next.callee == 0 ? edges(next, waits, end: end).first ?? 0
                        : next.callee
                }
                callerChains.append(chain)
            }
            guard let chain = callerChains.first, let root = chain.last else { continue }
            let otpOnly = chain.dropLast().allSatisfy { OTPMachinery.contains($0, dictionaries) }
            if otpOnly { continue }
            for other in callerChains { if let last = other.last { byRoot[last, default: []].append((caller, other)) } }
            if call.kind == .multiCall && !OTPMachinery.contains(caller, dictionaries) {
                var evidence = callEvidence(caller, call, end: end, waits: waits)
                evidence["chain"] = .array(chain.map { .string(who($0)) })
                evidence["root"] = .string(who(root))
                let fraction = duration > 0 ? Double(end - call.since) / Double(duration) : 0
                suspects.append(suspect(caller, .stuckCall, score: 60 + 10 * fraction, evidence: evidence,
                                        summary: multiCallSummary(caller, call, end: end)))
                explained.insert(caller)
            } else if !OTPMachinery.contains(caller, dictionaries) {
                let fraction = duration > 0 ? Double(end - call.since) / Double(duration) : 0
                var evidence = callEvidence(caller, call, end: end, waits: waits)
                evidence["chain"] = .array(chain.map { .string(who($0)) })
                evidence["root"] = .string(who(root))
                let onDeadlock = inCycle.contains(root)
                suspects.append(suspect(caller, .stuckCall, score: 60 + 10 * fraction, evidence: evidence,
                                        summary: "\(who(caller, withNode: true)) has waited "
                                            + (call.sampled ? "at least " : "") + "\(Durations.text(end - call.since)) "
                                            + callWords(call) + " for "
                                            + "\(who(chain[1], withNode: call.kind == .erpc))"
                                            + (onDeadlock ? ", which is deadlocked" : "")
                                            + (call.callee == 0 && !call.candidates.isEmpty
                                               ? " (inferred: of the \(call.candidates.count) processes it monitors, "
                                                 + "the one that is itself stuck)" : "")
                                            + (call.sampled ? " (first seen in a sample at \(timeText(call.since)))" : "")))
                explained.insert(caller)
            }
        }
        for (root, waiting) in byRoot where !inCycle.contains(root) {
            // The longest chain; of equal ones, the one whose caller waits longest.
            guard let longest = waiting.min(by: { a, b in
                (-a.chain.count, waits[a.caller]?.since ?? 0, a.caller) < (-b.chain.count, waits[b.caller]?.since ?? 0, b.caller)
            })?.chain else { continue }
            chains.append(longest)
            let direct = waiting.filter { $0.chain.count == 2 }.map(\.caller)
                .sorted { (waits[$0]?.since ?? 0) < (waits[$1]?.since ?? 0) }
            let oldest = waiting.compactMap { waits[$0.caller]?.since }.min() ?? end
            var evidence: [String: JSONValue] = [
                "waiting_callers": .array(waiting.map { .string(who($0.caller) + " for "
                    + ((waits[$0.caller]?.sampled ?? false) ? "at least " : "")
                    + Durations.text(end - (waits[$0.caller]?.since ?? end))) }),
                "chain": .array(longest.map { .string(who($0)) }),
                "not_answered_s": .number(Double(end - oldest) / 1e9),
                "doing": .array(activity(root, end: end).map { .string($0) }),
            ]
            if let first = direct.first, let call = waits[first], !call.sampled { evidence["request"] = .string(call.request) }
            if waiting.contains(where: { waits[$0.caller]?.sampled ?? false }) {
                evidence["seen_in_samples"] = .bool(true)
            }
            if let silent = lastSeen(root) { evidence["silent_s"] = .number(Double(end - silent) / 1e9) }
            explained.insert(root)
            let doing = activity(root, end: end).first.map { "; it is \($0)" } ?? ""
            let atLeast = waiting.contains { waits[$0.caller]?.sampled ?? false } ? "at least " : ""
            suspects.append(suspect(root, .notAnswering, score: 90 + min(9, Double(waiting.count)), evidence: evidence,
                                    summary: "\(who(root, withNode: true)) has not answered a call for \(atLeast)\(Durations.text(end - oldest))"
                                        + doing))
        }

        // Queues.
        for queue in queueReports() {
            let pid = queue.processID
            guard let (series, estimated) = queues.series(for: pid), let run = GrowthFit.finalRun(series.points) else {
                continue
            }
            let otp = OTPMachinery.contains(pid, dictionaries)
            let queueEvidence: [String: JSONValue] = [
                "end_len": .int(queue.endLength), "max_len": .int(queue.maxLength),
                "slope_per_s": .number(queue.slopePerSecond), "fit": .number(queue.fit),
                "estimated": .bool(queue.estimated),
                "top_senders": .array(queue.topSenders.map { .string(($0.name.map { "\($0) " } ?? "") + $0.pid + " x\($0.messages)") }),
                "owner_activity": .array(queue.ownerActivity.map { .string($0) }),
            ]
            if explained.contains(pid) {
                // Already a suspect: its queue is more evidence.
                if let index = suspects.firstIndex(where: { $0.pid == processText(pid) }), queue.endLength > 0 {
                    suspects[index].evidence["queue_len"] = .int(queue.endLength)
                }
                continue
            }
            let frozenFor = end - run.since
            let sampledToEnd = !estimated && end - series.points[series.points.count - 1].time <= max(threshold / 2, 300_000_000)
            let blockedInCall = (openAtEnd[pid]?.last).map { end - $0.start >= threshold } ?? false
            // Blocked in the middle of handling a message: inside a gen_server/gen_statem callback
            // (traced, or its current function), or in gen:do_call. A process idle in its own
            // receive with a few messages it never reads is no hang; hundreds frozen are.
            let isCallback = { (mfa: FunctionID) in Int(mfa) < self.queues.isHandler.count && self.queues.isHandler[Int(mfa)] }
            let current = lastSample[pid]?.mfa ?? 0
            let midHandling = (openAtEnd[pid] ?? []).contains { isCallback($0.mfa) && end - $0.start >= threshold }
                || isCallback(current) || functionText(current).hasPrefix("gen:do_call/")
            if run.length > 0, frozenFor >= threshold, (sampledToEnd || (estimated && blockedInCall)),
               (midHandling && !otp) || run.length >= 100 {
                var evidence = queueEvidence
                evidence["frozen_s"] = .number(Double(frozenFor) / 1e9)
                evidence["frozen_len"] = .int(run.length)
                evidence["owner"] = .array(activity(pid, end: end).map { .string($0) })
                let doing = activity(pid, end: end)
                let owner = (doing.first { $0.hasPrefix("blocked") || $0.hasPrefix("waiting") } ?? doing.first)
                    .map { " while its owner is \($0)" } ?? ""
                suspects.append(suspect(pid, .frozenQueue, score: 80 + min(4, log10(Double(run.length))), evidence: evidence,
                                        summary: "the mailbox of \(who(pid, withNode: true)) has held \(run.length) message"
                                            + (run.length == 1 ? "" : "s") + " without change for \(Durations.text(frozenFor))"
                                            + owner))
                continue
            }
            guard queue.growing else { continue }
            // Its receive matches nothing: it did nothing of its own for several samples, in the
            // same function, found waiting in most of them (a selective receive rescans its whole
            // queue at each arrival, so some samples catch it running).
            let idle = idleSamples[pid]
            let neverMatches = idle.map { $0.samples >= 3 && $0.waiting * 2 >= $0.samples && $0.mfa != 0 } ?? false
            if neverMatches, waits[pid] == nil, !otp {
                var evidence = queueEvidence
                let mfa = lastSample[pid].map { functionText($0.mfa) } ?? "?"
                evidence["waiting_in"] = .string(mfa)
                suspects.append(suspect(pid, .selectiveReceive, score: 85 + min(4, log10(Double(max(queue.endLength, 1)))),
                                        evidence: evidence,
                                        summary: "\(who(pid, withNode: true)) waits in a receive in \(mfa) that matches none of the "
                                            + "\(queue.endLength) messages in its queue, which grows about "
                                            + String(format: "%.0f", queue.slopePerSecond) + " messages/s"))
                continue
            }
            var evidence = queueEvidence
            evidence["growing_since_ns"] = queue.growingSince.map { .int($0) } ?? .string("")
            let score = 50 + min(30, log10(Double(max(queue.endLength, 1))) * 8) + min(10, queue.slopePerSecond / 100)
            suspects.append(suspect(pid, .queueGrowth, score: score, evidence: evidence,
                                    summary: "the mailbox of \(who(pid, withNode: true)) grows without recovering"))
        }

        // system_monitor alerts near the end: repeated ones, or one of a second or more.
        let recent = end - max(duration / 5, 1_000_000_000)
        var byProcess: [ProcessID: [MonitorEvent]] = [:]
        for monitor in monitorEvents where monitor.event.time >= recent { byProcess[monitor.event.pid, default: []].append(monitor) }
        for (pid, alerts) in byProcess where alerts.count >= 2 || (alerts.map(\.event.value).max() ?? 0) >= 1000 {
            let kinds = alerts.compactMap { alert -> String? in
                if case .tuple(let parts)? = alert.term, let tag = parts.first?.atomValue { return tag.name }
                return nil
            }
            let kindList = Array(Set(kinds)).sorted()
            suspects.append(suspect(pid, .monitor, score: 10 + Double(min(alerts.count, 20)), evidence: [
                "alerts": .int(Int64(alerts.count)),
                "kinds": .array(kindList.map { .string($0) }),
                "worst": .int(alerts.map(\.event.value).max() ?? 0),
            ], summary: "the VM reported system_monitor alerts (\(kindList.joined(separator: ", "))) for \(who(pid, withNode: true)) near the end"))
        }

        suspects.sort { $0.score != $1.score ? $0.score > $1.score : $0.pid < $1.pid }
        return HangReport(verdict: verdict(suspects, cycles: cycles, chains: chains, waits: waits), suspects: suspects,
                          deadlocks: cycles.map { $0.map(processText) }, chains: chains.map { $0.map(processText) },
                          captureSeconds: Double(duration) / 1e9, silentSeconds: Double(silence) / 1e9, events: events,
                          endNs: captureEnd, callEndings: callEndings, multiCallEndings: multiCallEndings,
                          erpcEndings: erpcEndings)
    }

    /// Cycles in the graph "caller waits for callee" (each once, starting at its smallest pid).
    public func waitForCycles() -> [[ProcessID]] {
        waitForCycles(allWaits())
    }

    /// Each cycle starts at the member that began waiting first (it started the deadlock); ties go
    /// to the lowest pid.
    func waitForCycles(_ waits: [ProcessID: WaitingCall]) -> [[ProcessID]] {
        var cycles: [[ProcessID]] = []
        var seen: Set<[ProcessID]> = []
        // Every edge is a wait that blocks (a multi_call waits for all its servers), so a cycle through
        // any of them is a deadlock. Depth-first from each waiter, paths of up to 64.
        func follow(_ path: inout [ProcessID], _ start: ProcessID) {
            guard let last = path.last, let call = waits[last], path.count <= 64 else { return }
            for next in definiteEdges(call) {
                if next == start {
                    let rotated = rotateToFirst(path, waits)
                    if seen.insert(Set(rotated).sorted()).inserted { cycles.append(rotated) }
                } else if next > start, !path.contains(next), waits[next] != nil {
                    path.append(next)
                    follow(&path, start)
                    path.removeLast()
                }
            }
        }
        for start in waits.keys.sorted() {
            var path = [start]
            follow(&path, start)
        }
        return cycles
    }

    /// The processes a call is known to wait for: its callee, or every multi_call server that has not
    /// answered.
    func definiteEdges(_ call: WaitingCall) -> [ProcessID] {
        if call.kind == .multiCall {
            return call.unanswered.map { serverPid($0) }.filter { $0 != 0 }
        }
        return call.callee != 0 ? [call.callee] : []
    }

    /// What a waiter's chains follow: its definite edges, or, for a sampled waiter that monitors
    /// several processes none of which its stack names, the one candidate that is itself stuck
    /// (waiting in a call, inside a traced call older than the stuck time, or sampled inside a
    /// gen_server/gen_statem callback: in the middle of handling a message) when exactly one is.
    func edges(_ call: WaitingCall, _ waits: [ProcessID: WaitingCall], end: Int64) -> [ProcessID] {
        let definite = definiteEdges(call)
        guard definite.isEmpty, !call.candidates.isEmpty else { return definite }
        return inferredCallee(call, waits, end: end).map { [$0] } ?? []
    }

    func inferredCallee(_ call: WaitingCall, _ waits: [ProcessID: WaitingCall], end: Int64) -> ProcessID? {
        guard call.callee == 0, !call.candidates.isEmpty else { return nil }
        let threshold = HangThresholds.stuck(duration)
        let stuck = call.candidates.filter { candidate in
            if waits[candidate] != nil { return true }
            if let open = openAtEnd[candidate]?.first, end - open.start >= threshold { return true }
            guard let mfa = lastSample[candidate]?.mfa else { return false }
            return Int(mfa) < queues.isHandler.count && queues.isHandler[Int(mfa)]
        }
        return stuck.count == 1 ? stuck[0] : nil
    }

    /// "in gen_server:multi_call", "in erpc:call", "in a gen call".
    func callWords(_ call: WaitingCall) -> String {
        switch call.kind {
        case .gen: return "in a gen call"
        case .multiCall: return "in gen_server:multi_call"
        case .middleman: return "in gen_server:multi_call (through its middleman)"
        case .erpc: return "in erpc:call"
        }
    }

    /// A stuck multi_call: every server that has not answered, with what it does.
    func multiCallSummary(_ caller: ProcessID, _ call: WaitingCall, end: Int64) -> String {
        let servers = call.unanswered.map { server -> String in
            let pid = serverPid(server)
            let doing = pid == 0 ? "" : activity(pid, end: end).first.map { ", \($0)" } ?? ""
            return serverText(server) + (pid == 0 ? " (pid not in the capture)" : " (\(processText(pid))\(doing))")
        }
        return "\(who(caller, withNode: true)) has waited \(Durations.text(end - call.since)) in gen_server:multi_call "
            + "(request \(call.request)) for \(servers.joined(separator: "; ")); "
            + "\(call.asked - call.unanswered.count) of \(call.asked) servers answered"
    }

    /// An instant as an offset into the capture.
    func timeText(_ time: Int64) -> String {
        time <= startTime ? "the capture's start" : "+" + Durations.text(time - startTime) + " into the capture"
    }

    private func rotateToFirst(_ cycle: [ProcessID], _ waits: [ProcessID: WaitingCall]) -> [ProcessID] {
        func key(_ pid: ProcessID) -> (Int64, UInt32, UInt32, UInt32) {
            guard case .pid(let node, let id, let serial, _)? = dictionaries.process(pid)?.identity else {
                return (waits[pid]?.since ?? .max, .max, .max, .max)
            }
            return (waits[pid]?.since ?? .max, node, id, serial)
        }
        guard let first = cycle.indices.min(by: { key(cycle[$0]) < key(cycle[$1]) }) else { return cycle }
        return Array(cycle[first...] + cycle[..<first])
    }

    /// "name (<0.85.0> on a@host)" or "<0.85.0> on a@host"; without the node (unless `withNode`)
    /// when the capture traced a single node.
    func who(_ pid: ProcessID, withNode: Bool = false) -> String {
        var text = processText(pid)
        if withNode || tracedNodeCount > 1, let entry = dictionaries.process(pid), case .pid = entry.identity {
            text += " on " + nodeText(entry.identity.node)
        }
        return registeredName(pid).map { "\($0) (\(text))" } ?? text
    }

    func registeredName(_ pid: ProcessID) -> String? {
        dictionaries.registeredNameText(pid)
    }

    private func callEvidence(_ pid: ProcessID, _ call: WaitingCall?, end: Int64,
                              waits: [ProcessID: WaitingCall]) -> [String: JSONValue] {
        var evidence: [String: JSONValue] = ["open_calls": .array(openCallTexts(pid, end: end))]
        guard let call else { return evidence }
        evidence["waiting_for"] = .string(call.callee == 0 ? "unknown" : processText(call.callee))
        evidence["waiting_for_name"] = .string(call.callee == 0 ? "" : nameText(call.callee) ?? "")
        evidence["waiting_since_ns"] = .int(call.since)
        evidence["waiting_s"] = .number(Double(end - call.since) / 1e9)
        evidence["request"] = .string(call.sampled ? "? (the call began before the capture, or its send was not traced)" : call.request)
        evidence["call"] = .string(call.kind.rawValue)
        if call.sampled {
            evidence["seen_in_samples"] = .bool(true)
            evidence["first_seen_ns"] = .int(call.since)
        }
        if call.callee != 0, let entry = dictionaries.process(call.callee) {
            evidence["callee_node"] = .string(nodeText(entry.identity.node))
        }
        if !call.candidates.isEmpty {
            evidence["candidates"] = .array(call.candidates.map { .string(who($0, withNode: true)) })
            if let inferred = inferredCallee(call, waits, end: end) {
                evidence["callee_inferred"] = .string(processText(inferred))
                evidence["callee_doing"] = .array(activity(inferred, end: end).map { .string($0) })
            }
        }
        if call.kind == .multiCall {
            evidence["asked"] = .int(Int64(call.asked))
            evidence["unanswered"] = .array(call.unanswered.map { server in
                let pid = serverPid(server)
                var object: [String: JSONValue] = ["node": .string(server.node), "server": .string(serverText(server))]
                if pid != 0 {
                    object["pid"] = .string(processText(pid))
                    object["doing"] = .array(activity(pid, end: end).map { .string($0) })
                }
                return .object(object)
            })
        }
        if call.callee != 0 {
            evidence["callee_doing"] = .array(activity(call.callee, end: end).map { .string($0) })
        }
        return evidence
    }

    /// What a process is doing at the end, most telling first: the gen call it waits in, its open
    /// traced calls, its last sample (status and current function), whether it exited.
    func activity(_ pid: ProcessID, end: Int64) -> [String] {
        var out: [String] = []
        if let call = waitingCalls[pid] {
            let callee = call.kind == .multiCall ? call.unanswered.map { serverText($0) }.joined(separator: ", ")
                : who(call.callee)
            out.append("waiting for \(callee) \(callWords(call)) (\(call.request)) for \(Durations.text(end - call.since))")
        } else if let wait = sampledWaits[pid] {
            let callee = wait.monitors.count == 1 ? "for \(who(wait.monitors[0])) " : ""
            out.append("waiting \(callee)in a call for at least \(Durations.text(end - wait.since)) (samples)")
        }
        if let open = openAtEnd[pid]?.last {
            out.append("inside \(functionText(open.mfa)) for \(Durations.text(end - open.start))")
        }
        if let sample = lastSample[pid] {
            let state = sample.status.map { $0 == "waiting" ? "blocked in a receive" : $0 } ?? "sampled"
            out.append(state + (sample.mfa != 0 ? " in \(functionText(sample.mfa))" : "")
                       + (sample.time >= end ? " (last sample)" : " (sampled \(Durations.text(end - sample.time)) before the end)"))
        }
        if exited.contains(pid) { out.append("gone: it exited") }
        if out.isEmpty {
            out.append(lastSeen(pid).map { "silent: nothing traced of it for the last \(Durations.text(end - $0))" }
                       ?? "not traced in this capture")
        }
        return out
    }

    private func openCallTexts(_ pid: ProcessID, end: Int64) -> [JSONValue] {
        (openAtEnd[pid] ?? []).map { .string("\(functionText($0.mfa)) for \(Durations.text(end - $0.start))") }
    }

    private func suspect(_ pid: ProcessID, _ reason: HangSuspect.Reason, score: Double,
                         evidence: [String: JSONValue], summary: String) -> HangSuspect {
        let node = dictionaries.process(pid).map { nodeText($0.identity.node) } ?? ""
        return HangSuspect(pid: processText(pid), node: node, name: nameText(pid), reason: reason,
                           score: (score * 10).rounded() / 10, evidence: evidence, summary: summary)
    }
}
