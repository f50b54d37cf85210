// The message shapes of OTP's call protocol (gen.erl, OTP 24+), read from a payload's raw ETF
// prefix: a request `{'$gen_call', {From, Tag}, Request}`, a reply `{Tag, Reply}`, a monitor's
// `{'DOWN', Ref, process, Who, Reason}`. Payloads may be cut by the size cap; only the prefix
// that holds the tag is needed. Every read is bounds-checked; anything unexpected answers nil.
// (A small reader of its own until BeamTerm's shared cursor covers references; keep it minimal.)
import BeamTerm
import Foundation

/// A reference reduced to a key: node name, creation and id words hashed (FNV-1a), plus the first
/// id word. Equal references give equal keys whatever atom tag their node name used.
struct RefKey: Hashable, Sendable {
    var hash: UInt64
    var first: UInt32
}

enum GenProtocol {
    /// What a `'$gen_call'` carries: the call's tag (its monitor reference) and where the request starts.
    struct Request {
        var tag: RefKey
        var requestOffset: Int
    }

    /// `{'$gen_call', {From, Tag}, Request}` with Tag a reference or `[alias | Ref]`. A tag of any
    /// other shape (`{Ref, Node}` of `gen_server:multi_call`, which `global` uses while nodes join)
    /// is not a call that blocks its sender: nil.
    static func request(_ payload: UnsafeRawBufferPointer) -> Request? {
        var r = Reader(payload)
        guard r.tupleArity() == 3, r.atomEquals("$gen_call"), r.tupleArity() == 2, r.skipPid(),
              let tag = r.callTag() else { return nil }
        return Request(tag: tag, requestOffset: r.offset)
    }

    /// The tag of a reply `{Tag, Reply}` (Tag a reference or `[alias | Ref]`).
    static func replyTag(_ payload: UnsafeRawBufferPointer) -> RefKey? {
        var r = Reader(payload)
        guard r.tupleArity() == 2 else { return nil }
        return r.callTag()
    }

    /// The monitor reference of `{'DOWN', Ref, process, Who, Reason}`.
    static func downRef(_ payload: UnsafeRawBufferPointer) -> RefKey? {
        var r = Reader(payload)
        guard r.tupleArity() == 5, r.atomEquals("DOWN") else { return nil }
        return r.reference()
    }

    /// The atom `timeout`: what a `receive ... after` that fired shows as a `'receive'` event.
    static func isTimeout(_ payload: UnsafeRawBufferPointer) -> Bool {
        var r = Reader(payload)
        return r.atomEquals("timeout")
    }

    /// The request of a `'$gen_call'`, printed short; "…" when the payload was cut before its end.
    static func requestText(_ payload: UnsafeRawBufferPointer, offset: Int) -> String {
        var at = offset
        guard let term = try? TermDecoder().decode(payload, offset: &at, versioned: false) else { return "…" }
        return term.erlangText(ErlangPrintOptions(maxDepth: 4, maxWidth: 80))
    }

    struct Reader {
        let bytes: UnsafeRawBufferPointer
        var offset = 0
        init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

        mutating func u8() -> UInt8? {
            guard offset < bytes.count else { return nil }
            defer { offset += 1 }
            return bytes[offset]
        }

        mutating func u16() -> Int? {
            guard let a = u8(), let b = u8() else { return nil }
            return Int(a) << 8 | Int(b)
        }

        mutating func u32() -> UInt32? {
            guard offset + 4 <= bytes.count else { return nil }
            defer { offset += 4 }
            return UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8
                | UInt32(bytes[offset + 3])
        }

        mutating func tupleArity() -> Int? {
            switch u8() {
            case 104: return u8().map(Int.init)
            case 105: return u32().map(Int.init)
            default: return nil
            }
        }

        /// The text bytes of an atom (any of the four atom tags).
        mutating func atom() -> UnsafeRawBufferPointer? {
            let length: Int
            switch u8() {
            case 100, 118: guard let n = u16() else { return nil }; length = n
            case 115, 119: guard let n = u8() else { return nil }; length = Int(n)
            default: return nil
            }
            guard offset + length <= bytes.count else { return nil }
            defer { offset += length }
            return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length)])
        }

        mutating func atomEquals(_ name: StaticString) -> Bool {
            guard let text = atom(), text.count == name.utf8CodeUnitCount else { return false }
            return text.elementsEqual(UnsafeRawBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
        }

        mutating func skipPid() -> Bool {
            switch u8() {
            case 88: return atom() != nil && skip(12)
            case 103: return atom() != nil && skip(9)
            default: return false
            }
        }

        mutating func skip(_ n: Int) -> Bool {
            guard offset + n <= bytes.count else { return false }
            offset += n
            return true
        }

        /// A call tag: a reference, or the improper list `[alias | Ref]`.
        mutating func callTag() -> RefKey? {
            guard offset < bytes.count else { return nil }
            if bytes[offset] == 108 {
                offset += 1
                guard u32() == 1, atomEquals("alias") else { return nil }
            }
            return reference()
        }

        mutating func reference() -> RefKey? {
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            func mix(_ byte: UInt8) { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
            func mix32(_ word: UInt32) { for shift in [24, 16, 8, 0] { mix(UInt8(truncatingIfNeeded: word >> UInt32(shift))) } }
            switch u8() {
            case 90, 114:
                let newer = bytes[offset - 1] == 90
                guard let count = u16(), count >= 1, count <= 5, let node = atom() else { return nil }
                for byte in node { mix(byte) }
                if newer {
                    guard let creation = u32() else { return nil }
                    mix32(creation)
                } else {
                    guard let creation = u8() else { return nil }
                    mix32(UInt32(creation))
                }
                var first: UInt32 = 0
                for i in 0..<count {
                    guard let word = u32() else { return nil }
                    if i == 0 { first = word }
                    mix32(word)
                }
                return RefKey(hash: hash, first: first)
            case 101:
                guard let node = atom() else { return nil }
                for byte in node { mix(byte) }
                guard let word = u32(), let creation = u8() else { return nil }
                mix32(UInt32(creation))
                mix32(word)
                return RefKey(hash: hash, first: word)
            default:
                return nil
            }
        }
    }
}
