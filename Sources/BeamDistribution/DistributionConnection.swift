// A connection to one BEAM node as a hidden node: connect (EPMD lookup + handshake), rpc through the
// node's `rex` server, mailboxes with local pids, sends, monitors, node-down notification, close.
//
//     let conn = try await DistributionConnection.connect(to: "app@host", cookie: Cookie("secret"))
//     let release = try await conn.rpc(module: "erlang", function: "system_info", arguments: [.atom("otp_release")])
//     await conn.close()
import BeamTerm
import Logging
import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public struct DistributionOptions: Sendable {
    /// The port EPMD listens on (default: `ERL_EPMD_PORT`, else 4369).
    public var epmdPort: Int
    /// Time for each of: the EPMD exchange, the TCP connect.
    public var connectTimeout: Duration
    /// Time for the whole handshake after TCP connect.
    public var handshakeTimeout: Duration
    /// As the kernel's `net_ticktime`: ticks go out every quarter of it, and a peer silent for this long is down.
    public var netTickTime: Duration
    /// Force a handshake version (5 or 6); by default 6 unless EPMD says the node knows only 5.
    public var handshakeVersion: Int?
    /// What we advertise; the default is a hidden node with every flag OTP 25–27 requires.
    public var flags: DistributionFlags
    /// Frames beyond this size close the connection.
    public var maximumFrameSize: Int

    public init(epmdPort: Int? = nil, connectTimeout: Duration = .seconds(5),
                handshakeTimeout: Duration = .seconds(5), netTickTime: Duration = .seconds(60),
                handshakeVersion: Int? = nil, flags: DistributionFlags = .beamtrace,
                maximumFrameSize: Int = 1 << 31) {
        // Like erl: ERL_EPMD_PORT when set, else 4369.
        self.epmdPort = epmdPort ?? getenv("ERL_EPMD_PORT").flatMap { Int(String(cString: $0)) } ?? 4369
        self.connectTimeout = connectTimeout
        self.handshakeTimeout = handshakeTimeout
        self.netTickTime = netTickTime
        self.handshakeVersion = handshakeVersion
        self.flags = flags
        self.maximumFrameSize = maximumFrameSize
    }
}

public final class DistributionConnection: Sendable {
    /// The node we are connected to, and what the handshake told us about it.
    public let peer: PeerInfo
    /// Our own (hidden) node name on this connection.
    public let localNode: NodeName
    /// The pid rpc calls come from.
    public var rpcPid: Pid { core.rpcPid }
    let core: ConnectionCore
    let channel: any Channel
    /// Runs tasks on this connection's event loop. Code making many sequential calls (a recorder's
    /// control loop, a benchmark) can use `withTaskExecutorPreference(connection.taskExecutor) { ... }`
    /// to avoid two thread hops per call; keep blocking work off it.
    public let taskExecutor: any TaskExecutor

    init(peer: PeerInfo, localNode: NodeName, core: ConnectionCore, channel: any Channel) {
        self.peer = peer
        self.localNode = localNode
        self.core = core
        self.channel = channel
        self.taskExecutor = EventLoopTaskExecutor(eventLoop: channel.eventLoop)
    }

    deinit {
        channel.close(promise: nil)
    }

    /// Looks the node up in EPMD on its host, connects, and completes the handshake as a hidden node.
    /// `localName` is our node's name (`name` or `name@host`); a random `beamtrace_…` name by default.
    public static func connect(to node: String, cookie: Cookie, localName: String? = nil,
                               options: DistributionOptions = DistributionOptions(),
                               logger: Logger? = nil) async throws -> DistributionConnection {
        // The level is the application's choice (its LoggingSystem bootstrap), not ours.
        let logger = logger ?? Logger(label: "beamtrace.distribution")
        let target = try NodeName(parsing: node)
        guard !cookie.isEmpty else {
            throw DistributionError(.cookieMissing, node: node, step: "connect", "the cookie is empty")
        }
        let epmd = EPMDClient(host: target.host, port: options.epmdPort, timeout: options.connectTimeout)
        let entry = try await epmd.portPlease(target.name)
        guard entry.highestVersion >= 5, entry.lowestVersion <= 6 else {
            throw DistributionError(.handshakeFailed, node: target.description, step: "epmd lookup",
                                    "the node speaks distribution versions \(entry.lowestVersion)–\(entry.highestVersion); "
                                        + "we speak 5 and 6")
        }
        let version = options.handshakeVersion ?? (entry.highestVersion >= 6 ? 6 : 5)
        let local = NodeName.local(name: localName, matching: target)
        let creation = UInt32.random(in: 4...UInt32.max)
        let core = ConnectionCore(local: local, creation: creation, peer: target, logger: logger)
        let machine = HandshakeStateMachine(local: local, peer: target, cookie: cookie, flags: options.flags,
                                            creation: creation, version: version)
        let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        let promise = eventLoop.makePromise(of: PeerInfo.self)
        logger.debug("connecting", metadata: ["node": "\(target)", "port": "\(entry.port)", "version": "\(version)",
                                              "local": "\(local)"])
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: eventLoop)
                .connectTimeout(TimeAmount(options.connectTimeout))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 1024, initial: 65536,
                                                                                       maximum: 4 << 20))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let handler = ConnectionHandler(handshake: machine, promise: promise,
                                                        handshakeTimeout: TimeAmount(options.handshakeTimeout),
                                                        netTickTime: TimeAmount(options.netTickTime), core: core, logger: logger)
                        try channel.pipeline.syncOperations.addHandler(
                            DistributionFrameReader(maximumFrameSize: options.maximumFrameSize))
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                }
                .connect(host: target.host, port: entry.port).get()
        } catch {
            promise.fail(error)
            throw DistributionError(.connectFailed, node: target.description, step: "connect",
                                    "EPMD says the node listens on port \(entry.port), but connecting failed: \(error). "
                                        + "Is the node starting or stopping?")
        }
        let peer: PeerInfo
        do {
            peer = try await promise.futureResult.get()
        } catch {
            channel.close(promise: nil)
            throw error
        }
        logger.debug("connected", metadata: ["node": "\(target)", "handshake": "\(peer.handshakeVersion)",
                                             "flags": "0x\(String(peer.flags.rawValue, radix: 16))"])
        return DistributionConnection(peer: peer, localNode: local, core: core, channel: channel)
    }

    /// Calls `module:function(arguments...)` on the node through its `rex` server and returns the result.
    /// Throws `DistributionError` with code `.badRPC` for `{badrpc, Reason}`, `.timeout` when no reply
    /// came in time (the pending call is dropped), `.nodeDown` when the connection is lost meanwhile.
    public func rpc(module: String, function: String, arguments: [Term] = [],
                    timeout: Duration = .seconds(60)) async throws -> Term {
        try await core.call(module: Atom(module), function: Atom(function), arguments: arguments,
                            timeout: TimeAmount(timeout), eventLoop: channel.eventLoop)
    }

    /// A new local process: its pid, and the messages sent to it as an AsyncSequence.
    public func makeMailbox() throws(DistributionError) -> Mailbox {
        try core.makeMailbox()
    }

    /// Sends a message to a remote pid or registered name (from our rpc pid).
    public func send(to address: ProcessAddress, message: Term) throws(DistributionError) {
        try core.send(to: address, message: message, from: core.rpcPid)
    }

    /// Monitors a remote process on behalf of `mailbox`: it receives `.down` when the process ends.
    @discardableResult
    public func monitor(_ process: ProcessAddress, from mailbox: Mailbox) throws(DistributionError) -> Reference {
        try mailbox.monitor(process)
    }

    /// True until the connection is closed or lost.
    public var isConnected: Bool { core.closeReason == nil && channel.isActive }

    /// Why the connection ended, once it has.
    public var closeReason: DistributionError? { core.closeReason }

    /// Waits until the connection ends (node down, tick timeout, `close()`), and says why.
    public func waitUntilClosed() async -> DistributionError {
        await core.waitUntilClosed()
    }

    /// Closes the connection: pending calls fail with `.closedLocally`, mailboxes end.
    public func close() async {
        core.setCloseReason(DistributionError(.closedLocally, node: peer.node.description, step: "close",
                                              "the connection was closed by this side"))
        try? await channel.close()
        _ = await core.waitUntilClosed()
    }
}
