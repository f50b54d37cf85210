// The error every BeamDistribution operation throws: what failed, on which node, at which step, and
// what the person at the terminal can do about it. Never carries the cookie.
import BeamTerm

public struct DistributionError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        /// The node name could not be parsed.
        case invalidNodeName
        /// No cookie was given and none could be found.
        case cookieMissing
        /// Nothing answers on the EPMD port of the host.
        case epmdUnreachable
        /// EPMD answered but knows no node of that name.
        case nodeNotRegistered
        /// EPMD's reply did not make sense.
        case epmdProtocol
        /// The node's distribution port did not accept a TCP connection.
        case connectFailed
        /// The peer answered the handshake with a status other than ok.
        case handshakeRejected
        /// The peer closed the connection after our challenge reply, or proved a different cookie.
        case cookieRejected
        /// The peer broke the handshake protocol or lacks a capability we need.
        case handshakeFailed
        /// A step did not finish in time.
        case timeout
        /// The connection to the node was lost (closed by the peer, tick timeout, I/O error).
        case nodeDown
        /// `close()` was called on this connection.
        case closedLocally
        /// The remote `rex` answered `{badrpc, Reason}`.
        case badRPC
        /// A frame after the handshake could not be decoded.
        case protocolViolation
    }

    public var code: Code
    /// The node this is about (`name@host`), when known.
    public var node: String?
    /// The step that failed, e.g. "epmd lookup", "handshake: send_challenge_reply".
    public var step: String?
    /// A message for people: what happened and what to do.
    public var message: String
    /// For `.badRPC`: the Reason of `{badrpc, Reason}`.
    public var badRPCReason: Term?

    public init(_ code: Code, node: String? = nil, step: String? = nil, _ message: String,
                badRPCReason: Term? = nil) {
        self.code = code
        self.node = node
        self.step = step
        self.message = message
        self.badRPCReason = badRPCReason
    }

    public var description: String {
        var text = ""
        if let node { text += "\(node): " }
        if let step { text += "\(step): " }
        return text + message
    }
}
