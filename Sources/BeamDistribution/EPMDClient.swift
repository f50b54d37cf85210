// A client for EPMD, the Erlang port mapper on port 4369: PORT_PLEASE2_REQ (where does node X
// listen, which handshake versions) and NAMES_REQ (which nodes are registered). EPMD answers
// and closes, so each request is one short TCP connection.
import NIOCore
import NIOPosix

public struct EPMDClient: Sendable {
    public var host: String
    public var port: Int
    public var timeout: Duration

    public init(host: String, port: Int = 4369, timeout: Duration = .seconds(5)) {
        self.host = host
        self.port = port
        self.timeout = timeout
    }

    /// A node's entry in EPMD.
    public struct NodeEntry: Sendable, Equatable {
        public var name: String
        public var port: Int
        /// 77 ('M') for a normal node, 72 ('H') for a hidden one.
        public var nodeType: UInt8
        public var `protocol`: UInt8
        public var highestVersion: Int
        public var lowestVersion: Int
    }

    /// Where node `name` (the part before `@`) listens.
    public func portPlease(_ name: String) async throws(DistributionError) -> NodeEntry {
        let node = "\(name)@\(host)"
        var request: [UInt8] = []
        let nameBytes = Array(name.utf8)
        request.appendUInt16(UInt16(clamping: nameBytes.count + 1))
        request.append(122)
        request.append(contentsOf: nameBytes)
        let reply = try await exchange(request, node: node, step: "epmd lookup (PORT_PLEASE2_REQ)")
        var reader = PayloadReader(reply)
        guard let tag = reader.u8(), tag == 119, let result = reader.u8() else {
            throw DistributionError(.epmdProtocol, node: node, step: "epmd lookup (PORT_PLEASE2_REQ)",
                                    "EPMD on \(host):\(port) sent an unexpected reply (\(reply.count) bytes)")
        }
        guard result == 0 else {
            throw DistributionError(.nodeNotRegistered, node: node, step: "epmd lookup",
                                    "no node named \(name) is registered in EPMD on \(host): check the name "
                                        + "(`beamtrace nodes \(host)` lists them) and that the node is running")
        }
        guard let nodePort = reader.u16(), let nodeType = reader.u8(), let proto = reader.u8(),
              let highest = reader.u16(), let lowest = reader.u16() else {
            throw DistributionError(.epmdProtocol, node: node, step: "epmd lookup (PORT2_RESP)",
                                    "EPMD on \(host):\(port) sent a truncated PORT2_RESP")
        }
        return NodeEntry(name: name, port: Int(nodePort), nodeType: nodeType, protocol: proto,
                         highestVersion: Int(highest), lowestVersion: Int(lowest))
    }

    /// The names and ports EPMD has registered.
    public func names() async throws(DistributionError) -> [(name: String, port: Int)] {
        let reply = try await exchange([0, 1, 110], node: nil, step: "epmd NAMES_REQ")
        guard reply.count >= 4 else {
            throw DistributionError(.epmdProtocol, step: "epmd NAMES_REQ",
                                    "EPMD on \(host):\(port) sent a truncated NAMES_RESP")
        }
        let text = String(decoding: reply[4...], as: UTF8.self)
        var result: [(name: String, port: Int)] = []
        for line in text.split(separator: "\n") {
            // "name NAME at port PORT"
            let words = line.split(separator: " ")
            guard words.count == 5, words[0] == "name", let nodePort = Int(words[4]) else { continue }
            result.append((String(words[1]), nodePort))
        }
        return result
    }

    /// NIO's connection errors list every attempt; people need the reason.
    static func summary(of error: any Error) -> String {
        let text = "\(error)"
        for reason in ["Connection refused", "timed out", "No route to host", "Name or service not known",
                       "nodename nor servname", "Network is unreachable"] where text.contains(reason) {
            return reason.lowercased()
        }
        return text
    }

    private func exchange(_ request: [UInt8], node: String?, step: String) async throws(DistributionError) -> [UInt8] {
        let group = MultiThreadedEventLoopGroup.singleton
        let collector = EPMDReplyCollector()
        let timeout = TimeAmount(timeout)
        do {
            let channel = try await ClientBootstrap(group: group)
                .connectTimeout(timeout)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
                }
                .connect(host: host, port: port).get()
            let deadline = channel.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
            defer { deadline.cancel() }
            var buffer = channel.allocator.buffer(capacity: request.count)
            buffer.writeBytes(request)
            try await channel.writeAndFlush(buffer).get()
            let reply = try await channel.closeFuture.flatMapThrowing { collector.takeReply() }.get()
            guard let reply, !reply.isEmpty else {
                throw DistributionError(.epmdProtocol, node: node, step: step,
                                        "EPMD on \(host):\(port) closed the connection without an answer (or took "
                                            + "longer than \(timeout.nanoseconds / 1_000_000) ms)")
            }
            return reply
        } catch let error as DistributionError {
            throw error
        } catch {
            throw DistributionError(.epmdUnreachable, node: node, step: step,
                                    "EPMD is not running on \(host) (port \(port)): \(Self.summary(of: error)). Start a "
                                        + "node there, or `epmd -daemon`, or check the host name")
        }
    }
}

/// Gathers everything EPMD sends until it closes.
private final class EPMDReplyCollector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    // Touched only on the channel's event loop, then read once after close.
    private var reply: [UInt8] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        if let bytes = buffer.readBytes(length: buffer.readableBytes) { reply.append(contentsOf: bytes) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func takeReply() -> [UInt8]? { reply }
}

extension TimeAmount {
    /// A Swift `Duration` as NIO's time amount (saturating).
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        let nanoseconds = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        self = .nanoseconds(nanoseconds.overflow ? Int64.max / 2 : nanoseconds.partialValue + attoseconds / 1_000_000_000)
    }
}
