// Splits the byte stream of a distribution connection into messages: 2-byte lengths during the
// handshake, 4-byte lengths after it (a zero length is a tick). The switch happens right after the
// challenge ack ('a'), the handshake's last message, so frames the peer sends at once are not misread.
//
// Whole frames inside a read are handed on as slices of the read's buffer (no copy); only a frame cut by
// the end of a read is copied, once, into a buffer of its exact size that the next reads complete. No
// buffer that a slice handed on still shares is ever written to again, so nothing is copied on write
// (NIO's ByteToMessageDecoder, used before, appended each read to a cumulation buffer that the frames
// still being decoded elsewhere shared: a copy of it on every read).
import NIOCore

enum DistributionFrame {
    case handshake([UInt8])
    case tick
    /// A data frame (starting with 112 'p' when there is no atom cache); a slice of the received bytes.
    case data(ByteBuffer)
}

final class DistributionFrameReader: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = DistributionFrame

    private var inHandshake = true
    /// Frames larger than this close the connection (a corrupt length would otherwise make us buffer forever).
    let maximumFrameSize: Int
    /// The start of a frame that the last read cut (its length header included), ours alone.
    private var partial: ByteBuffer?
    private var failed = false

    init(maximumFrameSize: Int) {
        self.maximumFrameSize = maximumFrameSize
    }

    private var headerSize: Int { inHandshake ? 2 : 4 }

    /// The whole frame's size (header included) from its header at `buffer`'s reader index, if it is there.
    private func frameSize(_ buffer: ByteBuffer) throws -> Int? {
        if inHandshake {
            guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self) else { return nil }
            return 2 + Int(length)
        }
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return nil }
        guard Int(length) <= maximumFrameSize else { throw FrameTooLarge(size: Int(length), limit: maximumFrameSize) }
        return 4 + Int(length)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        var input = unwrapInboundIn(data)
        do {
            if partial != nil {
                guard try complete(with: &input, context: context) else { return }
            }
            while let size = try frameSize(input), input.readableBytes >= size {
                if let frame = input.readSlice(length: size) { emit(frame, context: context) }
            }
            if input.readableBytes > 0 {
                // A cut frame: its bytes so far, in a buffer of its own (the whole frame's size once known).
                let size = try frameSize(input) ?? headerSize
                var carry = context.channel.allocator.buffer(capacity: size)
                carry.writeBuffer(&input)
                partial = carry
            }
        } catch {
            failed = true
            partial = nil
            context.fireErrorCaught(error)
        }
    }

    /// Adds the bytes the cut frame still needs from `input`; true (and the frame handed on) once it is whole.
    private func complete(with input: inout ByteBuffer, context: ChannelHandlerContext) throws -> Bool {
        guard var carry = partial else { return true }
        partial = nil
        if carry.readableBytes < headerSize {
            let take = min(headerSize - carry.readableBytes, input.readableBytes)
            if let bytes = input.readSlice(length: take) { carry.writeImmutableBuffer(bytes) }
        }
        guard let size = try frameSize(carry) else {
            partial = carry
            return false
        }
        let take = min(size - carry.readableBytes, input.readableBytes)
        if take > 0, let bytes = input.readSlice(length: take) { carry.writeImmutableBuffer(bytes) }
        guard carry.readableBytes == size else {
            partial = carry
            return false
        }
        emit(carry, context: context)
        return true
    }

    /// Hands on one whole frame (header included).
    private func emit(_ frame: ByteBuffer, context: ChannelHandlerContext) {
        var frame = frame
        if inHandshake {
            frame.moveReaderIndex(forwardBy: 2)
            let bytes = frame.readBytes(length: frame.readableBytes) ?? []
            if bytes.first == UInt8(ascii: "a") { inHandshake = false }
            context.fireChannelRead(wrapInboundOut(.handshake(bytes)))
            return
        }
        frame.moveReaderIndex(forwardBy: 4)
        if frame.readableBytes == 0 {
            context.fireChannelRead(wrapInboundOut(.tick))
        } else {
            context.fireChannelRead(wrapInboundOut(.data(frame)))
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        partial = nil
        context.fireChannelInactive()
    }
}

struct FrameTooLarge: Error, CustomStringConvertible {
    var size: Int
    var limit: Int
    var description: String { "a frame of \(size) bytes exceeds the limit of \(limit) bytes" }
}
