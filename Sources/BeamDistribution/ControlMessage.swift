// Control messages of the distribution protocol (erl_dist_protocol, "Protocol between Connected
// Nodes"), decoded from the control tuple of a data frame. Trace-token (_TT) and payload variants
// map to the same cases; operations we do not act on are kept as `.other` rather than failing.
import BeamTerm

public enum ControlMessage: Sendable {
    case link(from: Pid, to: Pid)
    /// SEND, SEND_TT, SEND_SENDER, SEND_SENDER_TT (the sender is known only for the SEND_SENDER forms).
    case send(from: Pid?, to: Pid)
    /// REG_SEND, REG_SEND_TT.
    case registeredSend(from: Pid, to: Atom)
    /// EXIT, EXIT_TT, PAYLOAD_EXIT, PAYLOAD_EXIT_TT (a linked process died).
    case exit(from: Pid, to: Pid, reason: Term)
    /// EXIT2, EXIT2_TT, PAYLOAD_EXIT2, PAYLOAD_EXIT2_TT (`exit/2` sent to a process).
    case exit2(from: Pid, to: Pid, reason: Term)
    case unlink(from: Pid, to: Pid)
    case unlinkID(id: Term, from: Pid, to: Pid)
    case unlinkIDAck(id: Term, from: Pid, to: Pid)
    /// MONITOR_P: `to` is a pid or a registered name.
    case monitor(from: Pid, to: Term, reference: Reference)
    case demonitor(from: Pid, to: Term, reference: Reference)
    /// MONITOR_P_EXIT, PAYLOAD_MONITOR_P_EXIT: a monitored process went down.
    case monitorExit(from: Term, to: Pid, reference: Reference, reason: Term)
    /// ALIAS_SEND, ALIAS_SEND_TT.
    case aliasSend(from: Pid, alias: Reference)
    case groupLeader(from: Pid, to: Pid)
    case other(operation: Int, control: Term)

    public enum Operation: Int, Sendable {
        case link = 1, send = 2, exit = 3, unlink = 4, nodeLink = 5, registeredSend = 6, groupLeader = 7, exit2 = 8
        case sendTT = 12, exitTT = 13, registeredSendTT = 16, exit2TT = 18
        case monitorProcess = 19, demonitorProcess = 20, monitorProcessExit = 21
        case sendSender = 22, sendSenderTT = 23, payloadExit = 24, payloadExitTT = 25, payloadExit2 = 26
        case payloadExit2TT = 27, payloadMonitorProcessExit = 28, spawnRequest = 29, spawnRequestTT = 30
        case spawnReply = 31, spawnReplyTT = 32, aliasSend = 33, aliasSendTT = 34, unlinkID = 35, unlinkIDAck = 36
    }

    /// Decodes a control tuple; `payload` is the term that followed it, if any (the message, or the
    /// reason of the payload variants). Returns nil when the control term is malformed.
    public init?(control: Term, payload: Term?) {
        guard case .tuple(let e) = control, let first = e.first, case .integer(let code) = first else { return nil }
        func pid(_ i: Int) -> Pid? {
            guard i < e.count, case .pid(let p) = e[i] else { return nil }
            return p
        }
        func ref(_ i: Int) -> Reference? {
            guard i < e.count, case .reference(let r) = e[i] else { return nil }
            return r
        }
        func term(_ i: Int) -> Term? { i < e.count ? e[i] : nil }
        guard let operation = Operation(rawValue: Int(code)) else {
            self = .other(operation: Int(code), control: control)
            return
        }
        switch operation {
        case .link:
            guard let f = pid(1), let t = pid(2) else { return nil }
            self = .link(from: f, to: t)
        case .send, .sendTT:
            guard let t = pid(2) else { return nil }
            self = .send(from: nil, to: t)
        case .sendSender, .sendSenderTT:
            guard let f = pid(1), let t = pid(2) else { return nil }
            self = .send(from: f, to: t)
        case .registeredSend, .registeredSendTT:
            guard let f = pid(1), let name = term(3)?.atomValue else { return nil }
            self = .registeredSend(from: f, to: name)
        case .exit, .exitTT, .exit2, .exit2TT:
            let reasonIndex = (operation == .exit || operation == .exit2) ? 3 : 4
            guard let f = pid(1), let t = pid(2), let reason = term(reasonIndex) else { return nil }
            self = (operation == .exit || operation == .exitTT) ? .exit(from: f, to: t, reason: reason)
                : .exit2(from: f, to: t, reason: reason)
        case .payloadExit, .payloadExitTT, .payloadExit2, .payloadExit2TT:
            guard let f = pid(1), let t = pid(2) else { return nil }
            let reason = payload ?? .atom("normal")
            self = (operation == .payloadExit || operation == .payloadExitTT) ? .exit(from: f, to: t, reason: reason)
                : .exit2(from: f, to: t, reason: reason)
        case .unlink:
            guard let f = pid(1), let t = pid(2) else { return nil }
            self = .unlink(from: f, to: t)
        case .unlinkID, .unlinkIDAck:
            guard let id = term(1), let f = pid(2), let t = pid(3) else { return nil }
            self = operation == .unlinkID ? .unlinkID(id: id, from: f, to: t) : .unlinkIDAck(id: id, from: f, to: t)
        case .monitorProcess, .demonitorProcess:
            guard let f = pid(1), let t = term(2), let r = ref(3) else { return nil }
            self = operation == .monitorProcess ? .monitor(from: f, to: t, reference: r)
                : .demonitor(from: f, to: t, reference: r)
        case .monitorProcessExit:
            guard let f = term(1), let t = pid(2), let r = ref(3), let reason = term(4) else { return nil }
            self = .monitorExit(from: f, to: t, reference: r, reason: reason)
        case .payloadMonitorProcessExit:
            guard let f = term(1), let t = pid(2), let r = ref(3) else { return nil }
            self = .monitorExit(from: f, to: t, reference: r, reason: payload ?? .atom("normal"))
        case .aliasSend, .aliasSendTT:
            guard let f = pid(1), let a = ref(2) else { return nil }
            self = .aliasSend(from: f, alias: a)
        case .groupLeader:
            guard let f = pid(1), let t = pid(2) else { return nil }
            self = .groupLeader(from: f, to: t)
        case .nodeLink, .spawnRequest, .spawnRequestTT, .spawnReply, .spawnReplyTT:
            self = .other(operation: Int(code), control: control)
        }
    }
}
