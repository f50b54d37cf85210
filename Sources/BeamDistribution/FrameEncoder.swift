// Encodes outgoing data frames straight into a ByteBuffer: `Length:u32 | 112 | 131 Control | 131 Message`.
// Binaries are copied once, from the Term into the buffer (10 MB rpc arguments are the hot case);
// the byte layout is exactly `TermEncoder`'s, which handles the rarer kinds here.
import BeamTerm
import NIOCore

struct FrameEncoder {
    private static let fallback = TermEncoder()

    /// A complete frame, length prefix included.
    static func frame(control: Term, message: Term?, allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 64 + (message.map(estimatedSize) ?? 0))
        buffer.writeInteger(UInt32(0))
        buffer.writeInteger(UInt8(112))
        buffer.writeInteger(UInt8(131))
        write(control, into: &buffer)
        if let message {
            buffer.writeInteger(UInt8(131))
            write(message, into: &buffer)
        }
        buffer.setInteger(UInt32(truncatingIfNeeded: buffer.readableBytes - 4), at: buffer.readerIndex)
        return buffer
    }

    /// A cheap estimate of the encoded size, so large binaries fit without regrowing the buffer.
    static func estimatedSize(_ term: Term) -> Int {
        switch term {
        case .binary(let bytes), .string(let bytes): return bytes.count + 8
        case .bitBinary(let bytes, _): return bytes.count + 8
        case .tuple(let elements), .list(let elements):
            if elements.count > 64 { return elements.count * 9 + 8 }
            return elements.reduce(8) { $0 + estimatedSize($1) }
        case .map(let pairs):
            if pairs.count > 64 { return pairs.count * 18 + 8 }
            return pairs.reduce(8) { $0 + estimatedSize($1.key) + estimatedSize($1.value) }
        case .atom(let atom): return atom.name.utf8.count + 3
        default: return 16
        }
    }

    static func write(_ term: Term, into buffer: inout ByteBuffer) {
        switch term {
        case .binary(let bytes):
            buffer.writeInteger(ExternalTag.binary)
            buffer.writeInteger(UInt32(truncatingIfNeeded: bytes.count))
            buffer.writeBytes(bytes)
        case .atom(let atom):
            writeAtom(atom, into: &buffer)
        case .integer(let value) where (0...255).contains(value):
            buffer.writeInteger(ExternalTag.smallInteger)
            buffer.writeInteger(UInt8(truncatingIfNeeded: value))
        case .tuple(let elements):
            if elements.count <= 255 {
                buffer.writeInteger(ExternalTag.smallTuple)
                buffer.writeInteger(UInt8(elements.count))
            } else {
                buffer.writeInteger(ExternalTag.largeTuple)
                buffer.writeInteger(UInt32(truncatingIfNeeded: elements.count))
            }
            for element in elements { write(element, into: &buffer) }
        case .list(let elements) where elements.isEmpty:
            buffer.writeInteger(ExternalTag.nil)
        case .list(let elements) where elements.count < 256 && elements.contains(where: isLarge):
            // A few large elements (binaries as rpc arguments): no STRING_EXT is possible.
            buffer.writeInteger(ExternalTag.list)
            buffer.writeInteger(UInt32(elements.count))
            for element in elements { write(element, into: &buffer) }
            buffer.writeInteger(ExternalTag.nil)
        case .pid(let pid):
            buffer.writeInteger(ExternalTag.newPid)
            writeAtom(pid.node, into: &buffer)
            buffer.writeInteger(pid.id)
            buffer.writeInteger(pid.serial)
            buffer.writeInteger(pid.creation)
        case .reference(let reference):
            buffer.writeInteger(ExternalTag.newerReference)
            buffer.writeInteger(UInt16(truncatingIfNeeded: reference.ids.count))
            writeAtom(reference.node, into: &buffer)
            buffer.writeInteger(reference.creation)
            for id in reference.ids { buffer.writeInteger(id) }
        default:
            var bytes: [UInt8] = []
            fallback.encode(term, into: &bytes)
            buffer.writeBytes(bytes)
        }
    }

    private static func isLarge(_ term: Term) -> Bool {
        switch term {
        case .binary(let bytes): return bytes.count >= 4096
        case .tuple(let elements): return elements.contains(where: isLarge)
        default: return false
        }
    }

    private static func writeAtom(_ atom: Atom, into buffer: inout ByteBuffer) {
        let count = atom.name.utf8.count
        if count <= 255 {
            buffer.writeInteger(ExternalTag.smallAtomUTF8)
            buffer.writeInteger(UInt8(count))
            buffer.writeString(atom.name)
        } else {
            var bytes: [UInt8] = []
            fallback.encodeAtom(atom, into: &bytes)
            buffer.writeBytes(bytes)
        }
    }
}
