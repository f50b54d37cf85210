// Splits the byte stream of a distribution connection into messages: 2-byte lengths during the
// handshake, 4-byte lengths after it (a zero length is a tick). The switch happens right after the
// challenge ack ('a'), the handshake's last message, so frames the peer sends at once are not misread.
import NIOCore

enum DistributionFrame {
    case handshake([UInt8])
    case tick
    /// A data frame (starting with 112 'p' when there is no atom cache); a slice of the received bytes.
    case data(ByteBuffer)
}

struct DistributionFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = DistributionFrame

    private var inHandshake = true
    /// Frames larger than this close the connection (a corrupt length would otherwise make us buffer forever).
    let maximumFrameSize: Int

    init(maximumFrameSize: Int) {
        self.maximumFrameSize = maximumFrameSize
    }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if inHandshake {
            guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self),
                  buffer.readableBytes >= 2 + Int(length) else { return .needMoreData }
            buffer.moveReaderIndex(forwardBy: 2)
            let bytes = buffer.readBytes(length: Int(length)) ?? []
            if bytes.first == UInt8(ascii: "a") { inHandshake = false }
            context.fireChannelRead(wrapInboundOut(.handshake(bytes)))
            return .continue
        }
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return .needMoreData }
        guard Int(length) <= maximumFrameSize else {
            throw FrameTooLarge(size: Int(length), limit: maximumFrameSize)
        }
        guard buffer.readableBytes >= 4 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        if length == 0 {
            context.fireChannelRead(wrapInboundOut(.tick))
        } else if let frame = buffer.readSlice(length: Int(length)) {
            context.fireChannelRead(wrapInboundOut(.data(frame)))
        }
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws
        -> DecodingState
    {
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}

struct FrameTooLarge: Error, CustomStringConvertible {
    var size: Int
    var limit: Int
    var description: String { "a frame of \(size) bytes exceeds the limit of \(limit) bytes" }
}
