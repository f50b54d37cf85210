// What is known when a node leaves a session early: the last event we got from it, when the
// connection was most likely lost (during a stall of the recorder: the node gives up after its
// net tick time without hearing from us), and when we noticed. The events between are lost and
// nobody counted them (the agent unloads itself with its counts).
import BeamTerm

struct LossEstimate: Sendable {
    /// The last event received from the node (session ns); 0 when none.
    var from: Int64
    /// When the connection was most likely lost.
    var at: Int64
    /// When the recorder noticed.
    var detected: Int64
    /// The recorder's stall that covered the loss, if any.
    var stall: (from: Int64, to: Int64)?

    func term(node: String) -> Term {
        var pairs = [MapPair(.atom("node"), .atom(node)), MapPair(.atom("last_event_ns"), .integer(from)),
                     MapPair(.atom("lost_at_ns"), .integer(at)), MapPair(.atom("detected_ns"), .integer(detected)),
                     MapPair(.atom("events_lost"), .atom("unknown"))]
        if let stall {
            pairs.append(MapPair(.atom("recorder_stalled_from_ns"), .integer(stall.from)))
            pairs.append(MapPair(.atom("recorder_stalled_to_ns"), .integer(stall.to)))
        }
        return .map(unordered: pairs)
    }

    var text: String {
        var text = String(format: "events after the last one received (%.3f s before the loss was noticed) are "
                          + "missing, count unknown", Double(detected - from) / 1e9)
        if let stall {
            text += String(format: "; the connection was lost during a %.1f s stall of the recorder",
                           Double(stall.to - stall.from) / 1e9)
        }
        return text
    }
}

extension TraceSession {
    static func lossEstimate(detected: Int64, lastTick: Int64, lastStall: (from: Int64, to: Int64)?,
                             stallThreshold: Int64, lastEvent: Int64, netTickSeconds: Int64?) -> LossEstimate {
        var stall: (from: Int64, to: Int64)?
        if detected - lastTick > stallThreshold {
            stall = (lastTick, detected)        // still stalled: the tick that notices has not come yet
        } else if let lastStall, detected - lastStall.to < 2 * stallThreshold {
            stall = lastStall
        }
        let from = lastEvent > 0 ? lastEvent : (stall?.from ?? detected)
        var at = detected
        if let stall {
            let tick = (netTickSeconds ?? 60) * 1_000_000_000
            at = min(stall.to, max(stall.from, from) + tick)
        }
        return LossEstimate(from: min(from, at), at: at, detected: detected, stall: stall)
    }
}
