// The message shapes of OTP's call protocol (gen.erl, OTP 24+), read from a payload's raw ETF
// prefix: a request `{'$gen_call', {From, Tag}, Request}`, a reply `{Tag, Reply}`, a monitor's
// `{'DOWN', Ref, process, Who, Reason}`. Payloads may be cut by the size cap; only the prefix
// that holds the tag is needed. Read with BeamTerm's TermCursor (bounds-checked, no allocation);
// anything unexpected answers nil.
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
        var cursor = TermCursor(payload)
        guard cursor.tupleArity() == 3, cursor.isAtom("$gen_call"), cursor.skipAtom(), cursor.tupleArity() == 2,
              cursor.pid() != nil, let tag = callTag(&cursor) else { return nil }
        return Request(tag: tag, requestOffset: cursor.offset)
    }

    /// The tag of a reply `{Tag, Reply}` (Tag a reference or `[alias | Ref]`).
    static func replyTag(_ payload: UnsafeRawBufferPointer) -> RefKey? {
        var cursor = TermCursor(payload)
        guard cursor.tupleArity() == 2 else { return nil }
        return callTag(&cursor)
    }

    /// The monitor reference of `{'DOWN', Ref, process, Who, Reason}`.
    static func downRef(_ payload: UnsafeRawBufferPointer) -> RefKey? {
        var cursor = TermCursor(payload)
        guard cursor.tupleArity() == 5, cursor.isAtom("DOWN"), cursor.skipAtom() else { return nil }
        return reference(&cursor)
    }

    /// The atom `timeout`: what a `receive ... after` that fired shows as a `'receive'` event.
    static func isTimeout(_ payload: UnsafeRawBufferPointer) -> Bool {
        TermCursor(payload).isAtom("timeout")
    }

    /// The request of a `'$gen_call'`, printed short; "…" when the payload was cut before its end.
    static func requestText(_ payload: UnsafeRawBufferPointer, offset: Int) -> String {
        var at = offset
        guard let term = try? TermDecoder().decode(payload, offset: &at, versioned: false) else { return "…" }
        return term.erlangText(ErlangPrintOptions(maxDepth: 4, maxWidth: 80))
    }

    /// A call tag: a reference, or the improper list `[alias | Ref]`.
    static func callTag(_ cursor: inout TermCursor) -> RefKey? {
        if cursor.peek() == ExternalTag.list {
            guard cursor.listHeader() == 1, cursor.isAtom("alias"), cursor.skipAtom() else { return nil }
        }
        return reference(&cursor)
    }

    /// A reference's key: node name, creation and id words hashed, whatever the node's atom tag.
    static func reference(_ cursor: inout TermCursor) -> RefKey? {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ byte: UInt8) { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        func mix32(_ word: UInt32) { for shift in [24, 16, 8, 0] { mix(UInt8(truncatingIfNeeded: word >> UInt32(shift))) } }
        func mixNode(_ text: (start: Int, length: Int, latin1: Bool)) {
            for byte in cursor.slice(text.start, text.start + text.length) { mix(byte) }
        }
        switch cursor.u8() {
        case ExternalTag.newerReference, ExternalTag.newReference:
            let newer = cursor.slice(cursor.offset - 1, cursor.offset).first == ExternalTag.newerReference
            guard let count = cursor.u16(), count >= 1, count <= 5, let node = cursor.atomText() else { return nil }
            mixNode(node)
            if newer {
                guard let creation = cursor.u32() else { return nil }
                mix32(creation)
            } else {
                guard let creation = cursor.u8() else { return nil }
                mix32(UInt32(creation))
            }
            var first: UInt32 = 0
            for i in 0..<count {
                guard let word = cursor.u32() else { return nil }
                if i == 0 { first = word }
                mix32(word)
            }
            return RefKey(hash: hash, first: first)
        case ExternalTag.reference:
            guard let node = cursor.atomText() else { return nil }
            mixNode(node)
            guard let word = cursor.u32(), let creation = cursor.u8() else { return nil }
            mix32(UInt32(creation))
            mix32(word)
            return RefKey(hash: hash, first: word)
        default:
            return nil
        }
    }
}
