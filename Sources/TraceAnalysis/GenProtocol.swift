// The message shapes of OTP's call protocols, read from a payload's raw ETF prefix: gen.erl's (OTP
// 24+) request `{'$gen_call', {From, Tag}, Request}`, reply `{Tag, Reply}` and monitor
// `{'DOWN', Ref, process, Who, Reason}`; gen_server:multi_call's `{Tag, Node}` tags, its monitors'
// `'DOWN'` naming `{Name, Node}`, `{nodedown, Node}` and its middleman's timer `{timeout, TRef, _}`;
// erpc's remote `erpc:execute_call/4` (spawned through `erts_internal:dist_spawn_init/1`, its
// arguments `[Res, M, F, A]` arriving as its first message, its exit reason `{Res, Class, ...}`).
// Payloads may be cut by the size cap; only the prefix that holds the tag is needed. Read with
// BeamTerm's TermCursor (bounds-checked); anything unexpected answers nil.
import BeamTerm
import Foundation
import TraceModel

/// A reference reduced to a key: node name, creation and id words hashed, plus the first id word.
/// Equal references give equal keys whatever atom tag their node name used.
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

    /// `{'$gen_call', {From, Tag}, Request}` with Tag a reference or `[alias | Ref]`: a gen call. A
    /// multi_call's `{Ref, Node}` tag answers nil here (see `anyRequest`).
    static func request(_ payload: UnsafeRawBufferPointer) -> Request? {
        guard let any = anyRequest(payload), any.node == nil else { return nil }
        return Request(tag: any.tag, requestOffset: any.requestOffset)
    }

    /// Either kind of `'$gen_call'` in one pass over the prefix: a gen call's (`node` nil) or one of a
    /// multi_call's requests (`{Tag, Node}`: `node` the node it goes to).
    static func anyRequest(_ payload: UnsafeRawBufferPointer) -> (tag: RefKey, node: String?, requestOffset: Int)? {
        // Most messages are not 3-tuples: answered from the first two bytes.
        guard startsTuple(payload, arity: 3) else { return nil }
        var cursor = TermCursor(payload)
        // `{'$gen_call', {` as OTP writes it, in two loads: the atom as ATOM_EXT (trace ports) or
        // SMALL_ATOM_UTF8_EXT (term_to_binary); any other encoding step by step.
        if payload.count >= 16, load(payload, 0) == word(104, 3, 100, 0, 9, 36, 103, 101),
           load(payload, 8) == word(110, 95, 99, 97, 108, 108, 104, 2) {
            cursor.offset = 16
        } else if payload.count >= 15, load(payload, 0) == word(104, 3, 119, 9, 36, 103, 101, 110),
                  load(payload, 7) == word(110, 95, 99, 97, 108, 108, 104, 2) {
            cursor.offset = 15
        } else {
            guard cursor.tupleArity() == 3, cursor.isAtom("$gen_call"), cursor.skipAtom(), cursor.tupleArity() == 2
            else { return nil }
        }
        guard skipPid(&cursor) else { return nil }
        if cursor.peek() == ExternalTag.smallTuple {
            guard let (tag, node) = multiTag(&cursor) else { return nil }
            return (tag, node, cursor.offset)
        }
        guard let tag = callTag(&cursor) else { return nil }
        return (tag, nil, cursor.offset)
    }

    /// The `{Tag, Node}` of a multi_call reply `{{Tag, Node}, Reply}`.
    static func multiReplyTag(_ payload: UnsafeRawBufferPointer) -> (tag: RefKey, node: String)? {
        var cursor = TermCursor(payload)
        guard cursor.tupleArity() == 2 else { return nil }
        return multiTag(&cursor)
    }

    /// `{Ref, Node}`.
    static func multiTag(_ cursor: inout TermCursor) -> (RefKey, String)? {
        guard cursor.tupleArity() == 2, let tag = reference(&cursor), let node = atomString(&cursor) else { return nil }
        return (tag, node)
    }

    /// The `{Name, Node}` of a `{'DOWN', Ref, process, {Name, Node}, Reason}` (a monitor by name,
    /// as multi_call sets on each server).
    static func downOfName(_ payload: UnsafeRawBufferPointer) -> (name: String, node: String)? {
        var cursor = TermCursor(payload)
        guard cursor.tupleArity() == 5, cursor.isAtom("DOWN"), cursor.skipAtom(), cursor.skipTerm(), cursor.skipAtom(),
              cursor.tupleArity() == 2, let name = atomString(&cursor), let node = atomString(&cursor) else { return nil }
        return (name, node)
    }

    /// The first reference of a `'DOWN'`'s reason: `{Receiver, Tag, Result}` of multi_call's middleman
    /// (the Tag), `{Res, Class, ...}` of an erpc call (the Res).
    static func downReasonRef(_ payload: UnsafeRawBufferPointer) -> RefKey? {
        var cursor = TermCursor(payload)
        guard cursor.tupleArity() == 5, cursor.isAtom("DOWN"), cursor.skipAtom(), cursor.skipTerm(), cursor.skipAtom(),
              cursor.skipTerm() else { return nil }
        return reasonRef(&cursor)
    }

    /// The reference of an exit reason `{Receiver, Tag, Result}` (a middleman's) or `{Res, Class, ...}`
    /// (an erpc process's).
    static func reasonRef(_ cursor: inout TermCursor) -> RefKey? {
        guard let arity = cursor.tupleArity(), arity >= 3 else { return nil }
        if let tag = cursor.peek(), TermCursor.isPidOrPortTag(tag) {
            guard cursor.skipTerm() else { return nil }
        }
        return reference(&cursor)
    }

    static func reasonRef(_ payload: UnsafeRawBufferPointer) -> RefKey? {
        var cursor = TermCursor(payload)
        return reasonRef(&cursor)
    }

    /// `{nodedown, Node}`: the node.
    static func nodedown(_ payload: UnsafeRawBufferPointer) -> String? {
        var cursor = TermCursor(payload)
        guard cursor.tupleArity() == 2, cursor.isAtom("nodedown"), cursor.skipAtom() else { return nil }
        return atomString(&cursor)
    }

    /// `{timeout, TimerRef, Msg}`: an `erlang:start_timer` firing (multi_call's middleman's timeout).
    static func isTimerTimeout(_ payload: UnsafeRawBufferPointer) -> Bool {
        var cursor = TermCursor(payload)
        guard cursor.tupleArity() == 3, cursor.isAtom("timeout"), cursor.skipAtom() else { return false }
        return reference(&cursor) != nil
    }

    /// `{Pid, Ref}`: what multi_call's caller sends its middleman to start it.
    static func handoffRef(_ payload: UnsafeRawBufferPointer) -> RefKey? {
        var cursor = TermCursor(payload)
        guard cursor.tupleArity() == 2, cursor.pid() != nil else { return nil }
        return reference(&cursor)
    }

    /// The arguments of a spawn through `erts_internal:dist_spawn_init/1` that runs
    /// `erpc:execute_call/4`: `[{erpc, execute_call, 4}]`.
    static func isErpcSpawn(_ payload: UnsafeRawBufferPointer) -> Bool {
        var cursor = TermCursor(payload)
        guard cursor.listHeader() == 1, cursor.tupleArity() == 3, cursor.isAtom("erpc"), cursor.skipAtom(),
              cursor.isAtom("execute_call") else { return false }
        return true
    }

    /// erpc's arguments `[Res, M, F, A]`, the first message of its remote process: the Res and
    /// `M:F(A...)` printed short.
    static func erpcRequest(_ payload: UnsafeRawBufferPointer) -> (tag: RefKey, request: String)? {
        var cursor = TermCursor(payload)
        guard cursor.listHeader() == 4, let tag = reference(&cursor) else { return nil }
        var text = "?"
        if let module = atomString(&cursor), let function = atomString(&cursor) {
            var at = cursor.offset
            let args = (try? TermDecoder().decode(payload, offset: &at, versioned: false))
                .map { $0.erlangText(ErlangPrintOptions(maxDepth: 4, maxWidth: 80)) } ?? "…"
            // A proper list prints as [..]: the call's arguments inside parentheses.
            let inner = args.hasPrefix("[") && args.hasSuffix("]") ? String(args.dropFirst().dropLast()) : args
            text = "\(module):\(function)(\(inner))"
        }
        return (tag, text)
    }

    /// The Res of erpc's exit reason `{Res, return | throw | exit | error, ...}` and whether it returned.
    static func erpcExit(_ payload: UnsafeRawBufferPointer) -> (tag: RefKey, returned: Bool)? {
        var cursor = TermCursor(payload)
        guard let arity = cursor.tupleArity(), arity >= 3, let tag = reference(&cursor) else { return nil }
        return (tag, cursor.isAtom("return"))
    }

    /// An atom's text (node and registered names).
    static func atomString(_ cursor: inout TermCursor) -> String? {
        guard let text = cursor.atomText() else { return nil }
        let bytes = cursor.slice(text.start, text.start + text.length)
        return text.latin1 ? String(bytes.map { Character(Unicode.Scalar($0)) }) : String(decoding: bytes, as: UTF8.self)
    }

    /// The tag of a reply `{Tag, Reply}` (Tag a reference or `[alias | Ref]`).
    static func replyTag(_ payload: UnsafeRawBufferPointer) -> RefKey? {
        guard startsTuple(payload, arity: 2) else { return nil }
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
        startsAtom(payload) && TermCursor(payload).isAtom("timeout")
    }

    /// False when the payload cannot start with a tuple of `arity` (the cheap first test of a shape;
    /// a LARGE_TUPLE_EXT, which OTP never writes this small, goes on to the full test).
    @inline(__always) static func startsTuple(_ payload: UnsafeRawBufferPointer, arity: UInt8) -> Bool {
        guard payload.count >= 2 else { return false }
        return payload[0] == ExternalTag.smallTuple ? payload[1] == arity : payload[0] == ExternalTag.largeTuple
    }

    /// True when the payload starts with one of the atom tags.
    @inline(__always) static func startsAtom(_ payload: UnsafeRawBufferPointer) -> Bool {
        guard let first = payload.first else { return false }
        return first == ExternalTag.atom || first == ExternalTag.atomUTF8 || first == ExternalTag.smallAtom
            || first == ExternalTag.smallAtomUTF8
    }

    /// The request of a `'$gen_call'`, printed short; "…" when the payload was cut before its end.
    static func requestText(_ payload: UnsafeRawBufferPointer, offset: Int) -> String {
        var at = offset
        guard let term = try? TermDecoder().decode(payload, offset: &at, versioned: false) else { return "…" }
        return term.erlangText(ErlangPrintOptions(maxDepth: 4, maxWidth: 80))
    }

    /// A call tag: a reference, or the improper list `[alias | Ref]`.
    @inline(__always) static func callTag(_ cursor: inout TermCursor) -> RefKey? {
        if cursor.peek() == ExternalTag.list {
            // `[alias |` as OTP writes it (a one-element list, the atom as ATOM_EXT or
            // SMALL_ATOM_UTF8_EXT), in two loads.
            let rest = cursor.slice(cursor.offset, cursor.count)
            if rest.count >= 13, load(rest, 0) == word(108, 0, 0, 0, 1, 100, 0, 5),
               load(rest, 5) == word(100, 0, 5, 97, 108, 105, 97, 115) {
                cursor.offset += 13
            } else if rest.count >= 12, load(rest, 0) == word(108, 0, 0, 0, 1, 119, 5, 97),
                      load(rest, 4) == word(1, 119, 5, 97, 108, 105, 97, 115) {
                cursor.offset += 12
            } else {
                guard cursor.listHeader() == 1, cursor.isAtom("alias"), cursor.skipAtom() else { return nil }
            }
        }
        return reference(&cursor)
    }

    /// Steps over a pid (PID_EXT or NEW_PID_EXT): `cursor.pid() != nil` without reading its parts.
    @inline(__always) static func skipPid(_ cursor: inout TermCursor) -> Bool {
        let begin = cursor.offset
        guard let tag = cursor.u8(), tag == ExternalTag.newPid || tag == ExternalTag.pid, cursor.skipAtom(),
              cursor.skip(tag == ExternalTag.newPid ? 12 : 9) else {
            cursor.offset = begin
            return false
        }
        return true
    }

    /// Eight little-endian bytes as one word (folded to a constant where the bytes are literals).
    @inline(__always) static func word(_ b0: UInt8, _ b1: UInt8, _ b2: UInt8, _ b3: UInt8, _ b4: UInt8, _ b5: UInt8,
                                       _ b6: UInt8, _ b7: UInt8) -> UInt64 {
        UInt64(b0) | UInt64(b1) << 8 | UInt64(b2) << 16 | UInt64(b3) << 24 | UInt64(b4) << 32 | UInt64(b5) << 40
            | UInt64(b6) << 48 | UInt64(b7) << 56
    }

    /// The eight bytes at `offset` (the caller has checked that they are in `bytes`).
    @inline(__always) static func load(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt64 {
        guard let base = bytes.baseAddress else { return 0 }  // no pattern word is 0
        return UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    /// A reference's key: node name, creation and id words hashed, whatever the node's atom tag.
    static func reference(_ cursor: inout TermCursor) -> RefKey? {
        // The node name hashed a word at a time (ByteHash), then each word folded in with a
        // multiply: this runs for every send and receive of a traced call. Read from the raw bytes
        // with one length check per part (the bytes left, `n`, checked before each read).
        @inline(__always) func mix(_ hash: UInt64, _ word: UInt32) -> UInt64 {
            let h = (hash ^ UInt64(word)) &* 0xBF58_476D_1CE4_E5B9
            return h ^ h >> 29
        }
        let rest = cursor.slice(cursor.offset, cursor.count)
        guard let p = rest.baseAddress, !rest.isEmpty else { return nil }
        let n = rest.count
        @inline(__always) func u32(_ at: Int) -> UInt32 {
            UInt32(bigEndian: p.loadUnaligned(fromByteOffset: at, as: UInt32.self))
        }
        /// The node atom at `at`: where its text starts and its length (nil when cut or not an atom).
        @inline(__always) func atom(_ at: Int) -> (start: Int, length: Int)? {
            guard n &- at >= 2 else { return nil }
            let start: Int, length: Int
            switch p.load(fromByteOffset: at, as: UInt8.self) {
            case ExternalTag.atom, ExternalTag.atomUTF8:
                guard n &- at >= 3 else { return nil }
                start = at &+ 3
                length = Int(UInt16(bigEndian: p.loadUnaligned(fromByteOffset: at &+ 1, as: UInt16.self)))
            case ExternalTag.smallAtom, ExternalTag.smallAtomUTF8:
                start = at &+ 2
                length = Int(p.load(fromByteOffset: at &+ 1, as: UInt8.self))
            default:
                return nil
            }
            guard n &- start >= length else { return nil }
            return (start, length)
        }
        let tag = p.load(as: UInt8.self)
        switch tag {
        case ExternalTag.newerReference, ExternalTag.newReference:
            guard n >= 3 else { return nil }
            let count = Int(UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 1, as: UInt16.self)))
            guard count >= 1, count <= 5, let node = atom(3) else { return nil }
            var hash = ByteHash.of(UnsafeRawBufferPointer(start: p + node.start, count: node.length))
            var at = node.start &+ node.length
            // The creation (4 bytes, or 1 in NEW_REFERENCE_EXT), then every id word.
            let newer = tag == ExternalTag.newerReference
            guard n &- at >= (newer ? 4 : 1) &+ 4 &* count else { return nil }
            if newer {
                hash = mix(hash, u32(at))
                at &+= 4
            } else {
                hash = mix(hash, UInt32(p.load(fromByteOffset: at, as: UInt8.self)))
                at &+= 1
            }
            let first = u32(at)
            at &+= 4
            hash = mix(hash, first)
            // Trailing zero words leave the key as it was: OTP pads a shorter reference with zeros
            // when it encodes it again, and holds both equal.
            var through = hash
            for _ in 1..<count {
                let word = u32(at)
                at &+= 4
                through = mix(through, word)
                if word != 0 { hash = through }
            }
            cursor.offset &+= at
            return RefKey(hash: hash, first: first)
        case ExternalTag.reference:
            guard let node = atom(1) else { return nil }
            var hash = ByteHash.of(UnsafeRawBufferPointer(start: p + node.start, count: node.length))
            let at = node.start &+ node.length
            guard n &- at >= 5 else { return nil }
            let word = u32(at)
            hash = mix(hash, UInt32(p.load(fromByteOffset: at &+ 4, as: UInt8.self)))
            hash = mix(hash, word)
            cursor.offset &+= at &+ 5
            return RefKey(hash: hash, first: word)
        default:
            return nil
        }
    }
}
