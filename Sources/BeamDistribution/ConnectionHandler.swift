// The NIO handler of one distribution connection: runs the handshake, then answers and sends ticks,
// declares a silent peer down after net_ticktime, and hands data frames to the connection core.
import BeamTerm
import Logging
import NIOCore

final class ConnectionHandler: ChannelDuplexHandler, @unchecked Sendable {
    // @unchecked: every stored property is touched only on the channel's event loop.
    typealias InboundIn = DistributionFrame
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var handshake: HandshakeStateMachine
    private let handshakePromise: EventLoopPromise<PeerInfo>
    private let handshakeTimeout: TimeAmount
    private let netTickTime: TimeAmount
    private let core: ConnectionCore
    private let logger: Logger

    private var handshakeDone = false
    private var handshakeDeadline: Scheduled<Void>?
    private var ticker: RepeatedTask?
    private var wroteSinceTick = false
    private var readSinceTick = false
    private var silentTicks = 0
    private var failure: DistributionError?

    init(handshake: HandshakeStateMachine, promise: EventLoopPromise<PeerInfo>, handshakeTimeout: TimeAmount,
         netTickTime: TimeAmount, core: ConnectionCore, logger: Logger) {
        self.handshake = handshake
        self.handshakePromise = promise
        self.handshakeTimeout = handshakeTimeout
        self.netTickTime = netTickTime
        self.core = core
        self.logger = logger
    }

    func channelActive(context: ChannelHandlerContext) {
        core.attach(context.channel)
        let step = handshake.stepName
        let node = core.peer
        let timeout = handshakeTimeout
        let channel = context.channel
        handshakeDeadline = context.eventLoop.scheduleTask(in: timeout) { [weak self] in
            guard let self, !self.handshakeDone else { return }
            self.failure = DistributionError(.timeout, node: node, step: self.handshake.stepName,
                                             "the handshake did not finish within \(timeout.nanoseconds / 1_000_000) ms "
                                                 + "(the node may be overloaded or frozen)")
            channel.close(promise: nil)
        }
        sendHandshake(context: context, handshake.start())
        logger.debug("sent name", metadata: ["node": "\(node)", "step": "\(step)"])
        context.fireChannelActive()
    }

    private func sendHandshake(context: ChannelHandlerContext, _ payload: [UInt8]) {
        var buffer = context.channel.allocator.buffer(capacity: payload.count + 2)
        buffer.writeInteger(UInt16(truncatingIfNeeded: payload.count))
        buffer.writeBytes(payload)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .handshake(let payload):
            do {
                switch try handshake.receive(payload) {
                case .wait:
                    break
                case .send(let messages):
                    for message in messages { sendHandshake(context: context, message) }
                case .completed(let peer, let messages):
                    for message in messages { sendHandshake(context: context, message) }
                    handshakeDone = true
                    handshakeDeadline?.cancel()
                    startTicker(context: context)
                    handshakePromise.succeed(peer)
                }
            } catch {
                failure = error
                context.close(promise: nil)
            }
        case .tick:
            readSinceTick = true
            // Answering keeps a peer with a shorter tick time than ours content.
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: [0, 0, 0, 0])), promise: nil)
        case .data(let buffer):
            readSinceTick = true
            core.received(buffer)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Answers written while handling this read (acks from a mailbox's interceptor) go out together.
        if core.takeFlushPending() { context.flush() }
        context.fireChannelReadComplete()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        wroteSinceTick = true
        context.write(data, promise: promise)
    }

    private func startTicker(context: ChannelHandlerContext) {
        let interval = TimeAmount.nanoseconds(max(netTickTime.nanoseconds / 4, 1_000_000))
        let channel = context.channel
        let node = core.peer
        let seconds = Double(netTickTime.nanoseconds) / 1e9
        ticker = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [weak self] _ in
            guard let self else { return }
            if !self.wroteSinceTick {
                channel.writeAndFlush(channel.allocator.buffer(bytes: [0, 0, 0, 0]), promise: nil)
            }
            self.wroteSinceTick = false
            if self.readSinceTick {
                self.silentTicks = 0
            } else {
                self.silentTicks += 1
                if self.silentTicks >= 4 {
                    let down = DistributionError(
                        .nodeDown, node: node, step: "tick",
                        "the node sent nothing for \(seconds) s (net_ticktime): it is frozen, overloaded or "
                            + "unreachable; declared down")
                    self.failure = down
                    self.core.setCloseReason(down)
                    channel.close(promise: nil)
                }
            }
            self.readSinceTick = false
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if failure == nil {
            failure = DistributionError(handshakeDone ? .nodeDown : .handshakeFailed, node: core.peer,
                                        step: handshakeDone ? "connection" : handshake.stepName,
                                        "I/O error: \(error)")
        }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshakeDeadline?.cancel()
        ticker?.cancel()
        ticker = nil
        if !handshakeDone {
            let error = failure ?? handshake.closedByPeer()
            handshakePromise.fail(error)
            core.connectionClosed(error)
        } else {
            let reason = failure ?? DistributionError(.nodeDown, node: core.peer, step: "connection",
                                                      "the node closed the connection (it stopped, or "
                                                          + "disconnect_node/1 was called)")
            core.connectionClosed(reason)
        }
        context.fireChannelInactive()
    }
}
