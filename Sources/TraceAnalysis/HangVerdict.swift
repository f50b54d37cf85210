// The verdict of `beamtrace hang`: one paragraph, in the words of the top suspect's kind, with the
// pids, names, nodes and ages a person pastes into an incident note; then the other suspects.
import Foundation
import TraceModel

extension CaptureAnalysis {
    func verdict(_ suspects: [HangSuspect], cycles: [[ProcessID]], chains: [[ProcessID]],
                 waits: [ProcessID: WaitingCall]) -> String {
        guard events > 0 else { return "No events in this window: nothing to diagnose." }
        var window = "In this \(Durations.text(duration)) capture (\(events) events"
            + (drops > 0 ? ", \(drops) trace messages lost" : "")
        // Say how long traced activity has been silent when it is a telling part of the capture.
        if silence >= max(100_000_000, duration / 10) {
            window += "; traced activity silent for the last \(Durations.text(silence))"
        }
        window += ")"
        guard let top = suspects.first else {
            let ended = callEndings.filter { $0.key != "active" && $0.value > 0 }.sorted { $0.key < $1.key }
                .map { "\($0.value) by \($0.key == "down" ? "'DOWN'" : $0.key)" }
            let calls = ended.isEmpty ? "" : " (gen calls ended: \(ended.joined(separator: ", ")))"
            return window + ", nothing looks hung: no gen call waits longer than "
                + Durations.text(HangThresholds.stuck(duration)) + " without its reply, no calls wait in a cycle, "
                + "and no queue grows or stays frozen to the end" + calls + "."
        }
        var sentences: [String] = []
        let end = captureEnd
        switch top.reason {
        case .deadlock:
            let cycle = cycles.first ?? []
            let names = cycle.map { who($0) }
            let waited = cycle.compactMap { waits[$0].map { end - $0.since } }.min() ?? 0
            sentences.append(window + ", \(cycle.count) processes wait on each other in gen calls: a deadlock. "
                             + names.joined(separator: " → ") + " → back to the first"
                             + ", each waiting for the next for at least \(Durations.text(waited)) with no reply.")
            let requests = cycle.compactMap { pid in waits[pid].map { "\(who(pid)) asked \($0.request)" } }
            if !requests.isEmpty { sentences.append("Requests: " + requests.joined(separator: "; ") + ".") }
            let victims = suspects.filter { $0.reason == .stuckCall }.count
            if victims > 0 {
                sentences.append("\(victims) more process\(victims == 1 ? " waits" : "es wait") on the cycle.")
            }
        case .notAnswering:
            var text = window + ", " + top.summary
            if case .string(let request)? = top.evidence["request"] { text += " (request \(request))" }
            sentences.append(text + ".")
            if case .array(let callers)? = top.evidence["waiting_callers"] {
                let list = callers.compactMap { if case .string(let s) = $0 { return s } else { return nil } }
                sentences.append("\(list.count) caller\(list.count == 1 ? " is" : "s are") stuck waiting on it: "
                                 + list.prefix(5).joined(separator: ", ") + (list.count > 5 ? ", …" : "") + ".")
            }
            if case .array(let chain)? = top.evidence["chain"], chain.count > 2 {
                let list = chain.compactMap { if case .string(let s) = $0 { return s } else { return nil } }
                sentences.append("Chain of waits: " + list.joined(separator: " → ") + ".")
            }
        case .stuckCall:
            var text = window + ", " + top.summary
            if case .string(let request)? = top.evidence["request"] { text += " (request \(request))" }
            sentences.append(text + ".")
        case .frozenQueue, .selectiveReceive:
            sentences.append(window + ", " + top.summary + ".")
        case .queueGrowth:
            var text = window + ", " + top.summary
            if case .int(let length)? = top.evidence["end_len"], case .number(let slope)? = top.evidence["slope_per_s"] {
                text += String(format: " to %lld messages at the end, about %.0f messages/s", length, slope)
            }
            sentences.append(text + ".")
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
        case .monitor:
            sentences.append(window + ", " + top.summary + ".")
        }
        let others = suspects.dropFirst().filter { $0.reason != top.reason || top.reason == .queueGrowth }
            .prefix(3).map { "\($0.reason.rawValue) \($0.pid)" + ($0.name.map { $0.contains(":") ? "" : " (\($0))" } ?? "") }
        if !others.isEmpty { sentences.append("Other suspects: \(others.joined(separator: "; ")).") }
        return sentences.joined(separator: " ")
    }
}
