// The distribution handshake of the initiating side (erl_dist_protocol, "Distribution Handshake"), as a
// pure state machine over message payloads (without their 2-byte length): version 6 (`'N'`, OTP 23+)
// by default, version 5 (`'n'`) for peers whose EPMD entry says they know nothing newer.

/// What the handshake learned about the peer.
public struct PeerInfo: Sendable {
    public var node: NodeName
    public var flags: DistributionFlags
    public var creation: UInt32
    /// 6 when the peer sent the `'N'` challenge, 5 for `'n'`.
    public var handshakeVersion: Int
}

struct HandshakeStateMachine {
    enum State {
        case idle
        case awaitingStatus
        case awaitingChallenge
        case awaitingAck(ourChallenge: UInt32, peer: PeerInfo)
        case done
        case failed
    }

    enum Action {
        case send([[UInt8]])
        case wait
        case completed(PeerInfo, send: [[UInt8]])
    }

    let local: NodeName
    let peerNode: NodeName
    let cookie: Cookie
    let flags: DistributionFlags
    let creation: UInt32
    /// 6 to send `'N'`, 5 to send `'n'`.
    let version: Int
    private(set) var state = State.idle

    init(local: NodeName, peer: NodeName, cookie: Cookie, flags: DistributionFlags, creation: UInt32, version: Int) {
        self.local = local
        self.peerNode = peer
        self.cookie = cookie
        self.flags = flags
        self.creation = creation
        self.version = version
    }

    var stepName: String {
        switch state {
        case .idle: return "handshake: send_name"
        case .awaitingStatus: return "handshake: recv_status"
        case .awaitingChallenge: return "handshake: recv_challenge"
        case .awaitingAck: return "handshake: recv_challenge_ack"
        case .done: return "handshake: done"
        case .failed: return "handshake: failed"
        }
    }

    mutating func start() -> [UInt8] {
        state = .awaitingStatus
        var out: [UInt8] = []
        let name = Array(local.description.utf8)
        if version >= 6 {
            out.append(UInt8(ascii: "N"))
            out.appendUInt64(flags.rawValue)
            out.appendUInt32(creation)
            out.appendUInt16(UInt16(clamping: name.count))
        } else {
            out.append(UInt8(ascii: "n"))
            out.appendUInt16(5)
            out.appendUInt32(UInt32(truncatingIfNeeded: flags.rawValue))
        }
        out.append(contentsOf: name)
        return out
    }

    private func error(_ code: DistributionError.Code, _ message: String) -> DistributionError {
        DistributionError(code, node: peerNode.description, step: stepName, message)
    }

    mutating func receive(_ payload: [UInt8]) throws(DistributionError) -> Action {
        do {
            return try receiveUnchecked(payload)
        } catch {
            state = .failed
            throw error
        }
    }

    private mutating func receiveUnchecked(_ payload: [UInt8]) throws(DistributionError) -> Action {
        guard let tag = payload.first else { throw error(.handshakeFailed, "empty handshake message from the peer") }
        switch state {
        case .awaitingStatus:
            guard tag == UInt8(ascii: "s") else {
                throw error(.handshakeFailed, "expected a status message ('s'), got tag \(tag): is this an Erlang node?")
            }
            let status = String(decoding: payload.dropFirst(), as: UTF8.self)
            switch status {
            case "ok", "ok_simultaneous":
                state = .awaitingChallenge
                return .wait
            case let s where s.hasPrefix("named:"):
                state = .awaitingChallenge
                return .wait
            case "nok":
                throw error(.handshakeRejected,
                            "the node is already setting up a connection to \(local) (status nok): retry with another --name")
            case "not_allowed":
                throw error(.handshakeRejected,
                            "the node does not allow a connection from \(local) (status not_allowed): check net_kernel:allow/1 "
                                + "and that it runs OTP 23 or newer (we need HANDSHAKE_23 peers or a compatible release)")
            case "alive":
                throw error(.handshakeRejected,
                            "the node already has a connection from a node named \(local) (status alive): use another --name")
            default:
                throw error(.handshakeRejected, "the node refused the connection with status \"\(status.prefix(40))\"")
            }
        case .awaitingChallenge:
            var reader = PayloadReader(payload)
            _ = reader.u8()
            let peer: PeerInfo
            var replies: [[UInt8]] = []
            if tag == UInt8(ascii: "N") {
                guard let flags = reader.u64(), let challenge = reader.u32(), let creation = reader.u32(),
                      let length = reader.u16(), let nameBytes = reader.bytes(Int(length)) else {
                    throw error(.handshakeFailed, "the challenge message ('N') is truncated")
                }
                let name = String(decoding: nameBytes, as: UTF8.self)
                peer = PeerInfo(node: (try? NodeName(parsing: name)) ?? peerNode,
                                flags: DistributionFlags(rawValue: flags), creation: creation, handshakeVersion: 6)
                if version < 6 {
                    // We sent the old name message with HANDSHAKE_23; the peer expects the complement.
                    var complement: [UInt8] = [UInt8(ascii: "c")]
                    complement.appendUInt32(UInt32(truncatingIfNeeded: self.flags.rawValue >> 32))
                    complement.appendUInt32(self.creation)
                    replies.append(complement)
                }
                state = .awaitingChallenge
                return try reply(peer: peer, challenge: challenge, prefix: replies)
            } else if tag == UInt8(ascii: "n") {
                guard let peerVersion = reader.u16(), let flags = reader.u32(), let challenge = reader.u32() else {
                    throw error(.handshakeFailed, "the challenge message ('n') is truncated")
                }
                guard peerVersion == 5 else {
                    throw error(.handshakeFailed, "the peer speaks distribution version \(peerVersion), not 5 or 6")
                }
                let name = String(decoding: reader.rest(), as: UTF8.self)
                peer = PeerInfo(node: (try? NodeName(parsing: name)) ?? peerNode,
                                flags: DistributionFlags(rawValue: UInt64(flags)), creation: 0, handshakeVersion: 5)
                return try reply(peer: peer, challenge: challenge, prefix: [])
            } else {
                throw error(.handshakeFailed, "expected the challenge ('N' or 'n'), got tag \(tag)")
            }
        case .awaitingAck(let ourChallenge, let peer):
            guard tag == UInt8(ascii: "a"), payload.count == 17 else {
                throw error(.handshakeFailed, "expected the challenge ack ('a' + 16-byte digest), got tag \(tag)")
            }
            guard Array(payload[1...]) == Self.digest(cookie: cookie, challenge: ourChallenge) else {
                throw error(.cookieRejected,
                            "the node answered with a digest for a different cookie: check --cookie, ERLANG_COOKIE "
                                + "or ~/.erlang.cookie")
            }
            state = .done
            return .completed(peer, send: [])
        case .idle, .done, .failed:
            throw error(.handshakeFailed, "unexpected handshake message (tag \(tag))")
        }
    }

    private mutating func reply(peer: PeerInfo, challenge: UInt32, prefix: [[UInt8]]) throws(DistributionError)
        -> Action
    {
        let missing = DistributionFlags.requiredOfPeer.subtracting(peer.flags)
        guard missing.isEmpty else {
            throw error(.handshakeFailed,
                        "the node lacks capabilities we need (flags 0x\(String(missing.rawValue, radix: 16))): "
                            + "it runs a release older than OTP 23")
        }
        var ourChallenge = UInt32.random(in: 0...UInt32.max)
        if ourChallenge == challenge { ourChallenge &+= 1 }
        var message: [UInt8] = [UInt8(ascii: "r")]
        message.appendUInt32(ourChallenge)
        message.append(contentsOf: Self.digest(cookie: cookie, challenge: challenge))
        state = .awaitingAck(ourChallenge: ourChallenge, peer: peer)
        return .send(prefix + [message])
    }

    /// What a peer closing the connection now means.
    func closedByPeer() -> DistributionError {
        switch state {
        case .awaitingAck:
            return error(.cookieRejected,
                         "the node closed the connection after our challenge reply: it rejected the cookie. Check "
                             + "--cookie, ERLANG_COOKIE or ~/.erlang.cookie (the node's log says \"Invalid challenge reply\")")
        case .awaitingStatus:
            return error(.handshakeFailed,
                         "the node closed the connection before answering our name: it may not accept version "
                             + "\(version) handshakes or our flags (see the node's log)")
        default:
            return error(.handshakeFailed, "the node closed the connection during the handshake")
        }
    }

    /// MD5(Cookie ++ decimal(Challenge)), the challenge printed as an unsigned number.
    static func digest(cookie: Cookie, challenge: UInt32) -> [UInt8] {
        MD5.digest(cookie.secret + Array(String(challenge).utf8))
    }
}

/// A bounds-checked big-endian reader over a handshake payload.
struct PayloadReader {
    let bytes: [UInt8]
    var offset = 0
    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func u8() -> UInt8? {
        guard offset < bytes.count else { return nil }
        defer { offset += 1 }
        return bytes[offset]
    }
    mutating func u16() -> UInt16? {
        guard let a = u8(), let b = u8() else { return nil }
        return UInt16(a) << 8 | UInt16(b)
    }
    mutating func u32() -> UInt32? {
        guard let a = u16(), let b = u16() else { return nil }
        return UInt32(a) << 16 | UInt32(b)
    }
    mutating func u64() -> UInt64? {
        guard let a = u32(), let b = u32() else { return nil }
        return UInt64(a) << 32 | UInt64(b)
    }
    mutating func bytes(_ count: Int) -> ArraySlice<UInt8>? {
        guard count >= 0, bytes.count - offset >= count else { return nil }
        defer { offset += count }
        return bytes[offset..<(offset + count)]
    }
    mutating func rest() -> ArraySlice<UInt8> {
        defer { offset = bytes.count }
        return bytes[offset...]
    }
}

extension Array where Element == UInt8 {
    mutating func appendUInt16(_ value: UInt16) {
        append(UInt8(value >> 8))
        append(UInt8(truncatingIfNeeded: value))
    }
    mutating func appendUInt32(_ value: UInt32) {
        append(UInt8(truncatingIfNeeded: value >> 24))
        append(UInt8(truncatingIfNeeded: value >> 16))
        append(UInt8(truncatingIfNeeded: value >> 8))
        append(UInt8(truncatingIfNeeded: value))
    }
    mutating func appendUInt64(_ value: UInt64) {
        appendUInt32(UInt32(truncatingIfNeeded: value >> 32))
        appendUInt32(UInt32(truncatingIfNeeded: value))
    }
}
