// `beamtrace hang`: ranked suspects with evidence. Processes whose queues grow without recovering
// up to the end; calls in flight at the end by age (stuck gen calls with their callee); the
// wait-for graph of pending gen calls with its cycles reported as deadlocks; system_monitor alerts
// near the end. And a verdict paragraph a person can paste into an incident note.
import BeamTerm
import Foundation
import TraceModel

public struct HangSuspect: Sendable, Codable {
    public enum Reason: String, Sendable, Codable {
        case queueGrowth = "queue_growth"
        case stuckCall = "stuck_call"
        case deadlock
        case monitor
    }

    public var pid: String
    public var node: String
    public var name: String?
    public var reason: Reason
    public var score: Double
    public var evidence: [String: JSONValue]
}

public struct HangReport: Sendable, Codable {
    public var verdict: String
    public var suspects: [HangSuspect]
    public var deadlocks: [[String]]
    public var captureSeconds: Double

    enum CodingKeys: String, CodingKey {
        case verdict, suspects, deadlocks
        case captureSeconds = "capture_seconds"
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
        var suspects: [HangSuspect] = []
        let duration = max(0, endTime - startTime)

        // Deadlocks: cycles among pending gen calls.
        let cycles = waitForCycles()
        var inCycle: Set<ProcessID> = []
        for cycle in cycles {
            for (i, pid) in cycle.enumerated() {
                inCycle.insert(pid)
                let callee = cycle[(i + 1) % cycle.count]
                let since = pendingCalls[pid]?.since ?? traceEnd
                suspects.append(suspect(pid, .deadlock, score: 100 + Double(traceEnd - since) / 1e9, evidence: [
                    "cycle": .array(cycle.map { .string(processText($0)) }),
                    "waiting_for": .string(processText(callee)),
                    "waiting_for_name": .string(nameText(callee) ?? ""),
                    "waiting_since_ns": .int(since),
                    "waiting_s": .number(Double(traceEnd - since) / 1e9),
                    "open_calls": .array(openCallTexts(pid)),
                ]))
            }
        }

        // Queues that grow to the end without recovering.
        for queue in queueReports() where queue.growing {
            let pid = queue.processID
            let score = 50 + min(30, log10(Double(max(queue.endLength, 1))) * 8) + min(10, queue.slopePerSecond / 100)
            suspects.append(suspect(pid, .queueGrowth, score: score, evidence: [
                "end_len": .int(queue.endLength), "max_len": .int(queue.maxLength),
                "slope_per_s": .number(queue.slopePerSecond), "fit": .number(queue.fit),
                "estimated": .bool(queue.estimated),
                "growing_since_ns": queue.growingSince.map { .int($0) } ?? .string(""),
                "top_senders": .array(queue.topSenders.map { .string(($0.name.map { "\($0) " } ?? "") + $0.pid + " x\($0.messages)") }),
                "owner_activity": .array(queue.ownerActivity.map { .string($0) }),
            ]))
        }

        // Calls in flight at the end, by age (not already explained by a deadlock).
        for (pid, frames) in openAtEnd where !inCycle.contains(pid) && !frames.isEmpty {
            guard let innermost = frames.last else { continue }
            let age = traceEnd - innermost.start
            // A call that started in the last 5% of the capture is business as usual, not stuck.
            guard age > 0, duration == 0 || Double(age) / Double(duration) > 0.05 else { continue }
            var evidence: [String: JSONValue] = [
                "function": .string(functionText(innermost.mfa)),
                "age_s": .number(Double(age) / 1e9),
                "open_calls": .array(openCallTexts(pid)),
            ]
            if let pending = pendingCalls[pid] {
                evidence["waiting_for"] = .string(processText(pending.callee))
                evidence["waiting_for_name"] = .string(nameText(pending.callee) ?? "")
            }
            let fraction = duration > 0 ? Double(age) / Double(duration) : 0
            suspects.append(suspect(pid, .stuckCall, score: 20 + 40 * fraction + (pendingCalls[pid] != nil ? 10 : 0),
                                    evidence: evidence))
        }
        // Pending gen calls of processes whose own calls were not traced.
        for (pid, pending) in pendingCalls where !inCycle.contains(pid) && openAtEnd[pid] == nil {
            let age = traceEnd - pending.since
            let fraction = duration > 0 ? Double(age) / Double(duration) : 0
            guard fraction > 0.05 else { continue }
            suspects.append(suspect(pid, .stuckCall, score: 20 + 40 * fraction, evidence: [
                "function": .string("gen:call"), "age_s": .number(Double(age) / 1e9),
                "waiting_for": .string(processText(pending.callee)),
                "waiting_for_name": .string(nameText(pending.callee) ?? ""),
            ]))
        }

        // system_monitor alerts in the last fifth of the capture.
        let recent = endTime - max(duration / 5, 1_000_000_000)
        var byProcess: [ProcessID: [MonitorEvent]] = [:]
        for monitor in monitorEvents where monitor.event.time >= recent { byProcess[monitor.event.pid, default: []].append(monitor) }
        for (pid, alerts) in byProcess {
            let kinds = alerts.compactMap { alert -> String? in
                if case .tuple(let parts)? = alert.term, let tag = parts.first?.atomValue { return tag.name }
                return nil
            }
            suspects.append(suspect(pid, .monitor, score: 10 + Double(min(alerts.count, 20)), evidence: [
                "alerts": .int(Int64(alerts.count)),
                "kinds": .array(Array(Set(kinds)).sorted().map { .string($0) }),
                "worst": .int(alerts.map(\.event.value).max() ?? 0),
            ]))
        }

        suspects.sort { $0.score != $1.score ? $0.score > $1.score : $0.pid < $1.pid }
        return HangReport(verdict: verdict(suspects, cycles: cycles, duration: duration), suspects: suspects,
                          deadlocks: cycles.map { $0.map(processText) }, captureSeconds: Double(duration) / 1e9)
    }

    /// Cycles in the graph "pid waits for callee" (each reported once, starting at its smallest pid).
    public func waitForCycles() -> [[ProcessID]] {
        var cycles: [[ProcessID]] = []
        var seen: Set<[ProcessID]> = []
        for start in pendingCalls.keys.sorted() {
            var path: [ProcessID] = [start]
            var current = start
            while let next = pendingCalls[current]?.callee {
                if next == start {
                    let rotated = rotateToSmallest(path)
                    if seen.insert(rotated).inserted { cycles.append(rotated) }
                    break
                }
                if path.contains(next) || path.count > 64 { break }
                path.append(next)
                current = next
            }
        }
        return cycles
    }

    private func rotateToSmallest(_ cycle: [ProcessID]) -> [ProcessID] {
        guard let minIndex = cycle.indices.min(by: { cycle[$0] < cycle[$1] }) else { return cycle }
        return Array(cycle[minIndex...] + cycle[..<minIndex])
    }

    private func openCallTexts(_ pid: ProcessID) -> [JSONValue] {
        (openAtEnd[pid] ?? []).map { .string("\(functionText($0.mfa)) for \(Durations.text(traceEnd - $0.start))") }
    }

    private func suspect(_ pid: ProcessID, _ reason: HangSuspect.Reason, score: Double,
                         evidence: [String: JSONValue]) -> HangSuspect {
        let node = dictionaries.process(pid).map { nodeText($0.identity.node) } ?? ""
        return HangSuspect(pid: processText(pid), node: node, name: nameText(pid), reason: reason,
                           score: (score * 10).rounded() / 10, evidence: evidence)
    }

    private func verdict(_ suspects: [HangSuspect], cycles: [[ProcessID]], duration: Int64) -> String {
        let window = "In this \(Durations.text(duration)) capture (\(events) events"
            + (drops > 0 ? ", \(drops) trace messages lost" : "") + ")"
        guard let top = suspects.first else {
            return window + ", nothing looks hung: no queue grows to the end, no traced call is stuck and no gen call waits in a cycle."
        }
        var sentences: [String] = []
        let who = { (s: HangSuspect) in s.name.map { "\($0) (\(s.pid) on \(s.node))" } ?? "\(s.pid) on \(s.node)" }
        switch top.reason {
        case .deadlock:
            let names = cycles.first.map { $0.map { pid in nameText(pid).map { "\($0) (\(processText(pid)))" } ?? processText(pid) } } ?? []
            sentences.append(window + ", the processes \(names.joined(separator: " → ")) → back to the first wait on each other in gen calls: a deadlock.")
            if case .number(let waited)? = top.evidence["waiting_s"] {
                sentences.append(String(format: "They have been waiting for %.3g s with no reply.", waited))
            }
        case .queueGrowth:
            var text = window + ", the mailbox of \(who(top)) grows without recovering"
            if case .int(let end)? = top.evidence["end_len"], case .number(let slope)? = top.evidence["slope_per_s"] {
                text += String(format: " to %lld messages at the end, about %.0f messages/s", end, slope)
            }
            text += "."
            sentences.append(text)
            if case .array(let senders)? = top.evidence["top_senders"], !senders.isEmpty {
                let names = senders.prefix(3).compactMap { if case .string(let s) = $0 { return s } else { return nil } }
                sentences.append("Most messages come from \(names.joined(separator: ", ")).")
            }
            if case .array(let activity)? = top.evidence["owner_activity"], case .string(let first)? = activity.first {
                sentences.append("Meanwhile the owner " + (first.hasPrefix("spent") ? first : "was " + first) + ".")
            }
            if case .bool(true)? = top.evidence["estimated"] {
                sentences.append("(Queue lengths are estimated from sends and handled callbacks; no samples were recorded.)")
            }
        case .stuckCall:
            var text = window + ", \(who(top)) is stuck"
            if case .string(let function)? = top.evidence["function"] { text += " in \(function)" }
            if case .number(let age)? = top.evidence["age_s"] { text += String(format: " for %.3g s", age) }
            if case .string(let callee)? = top.evidence["waiting_for"] {
                text += ", waiting for \(callee)"
                if case .string(let name)? = top.evidence["waiting_for_name"], !name.isEmpty { text += " (\(name))" }
            }
            sentences.append(text + ".")
        case .monitor:
            sentences.append(window + ", the VM reported system_monitor alerts for \(who(top)) near the end.")
        }
        let others = suspects.dropFirst().prefix(3).map { "\($0.reason.rawValue) \($0.name ?? $0.pid)" }
        if !others.isEmpty { sentences.append("Other suspects: \(others.joined(separator: "; ")).") }
        return sentences.joined(separator: " ")
    }
}
