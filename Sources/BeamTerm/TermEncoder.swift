// Encodes `Term` in OTP's External Term Format, the way OTP 25+ does (UTF-8 atoms, NEW_PID_EXT,
// NEWER_REFERENCE_EXT, NEW_FLOAT_EXT), so `binary_to_term/1` returns an equal term.

public struct TermEncoder: Sendable {
    public init() {}

    /// `term_to_binary(Term)`: the version byte 131, then the term; with `compressed`, zlib as tag 80.
    public func encode(_ term: Term, compressed: Bool = false) -> [UInt8] {
        var out: [UInt8] = [ExternalTag.version]
        encode(term, into: &out)
        if compressed, let deflated = Inflate.deflate(Array(out.dropFirst())) {
            var result: [UInt8] = [ExternalTag.version, ExternalTag.compressed]
            result.appendUInt32(UInt32(out.count - 1))
            result.append(contentsOf: deflated)
            return result
        }
        return out
    }

    /// Appends the term without the version byte (as inside a distribution message after its header).
    public func encode(_ term: Term, into out: inout [UInt8]) {
        switch term {
        case .integer(let value):
            if (0...255).contains(value) {
                out.append(ExternalTag.smallInteger)
                out.append(UInt8(value))
            } else if let small = Int32(exactly: value) {
                out.append(ExternalTag.integer)
                out.appendUInt32(UInt32(bitPattern: small))
            } else {
                encodeBig(BigInteger(value), into: &out)
            }
        case .bigInteger(let value):
            encodeBig(value, into: &out)
        case .float(let value):
            out.append(ExternalTag.newFloat)
            out.appendUInt64(value.bitPattern)
        case .atom(let atom):
            encodeAtom(atom, into: &out)
        case .tuple(let elements):
            if elements.count <= 255 {
                out.append(ExternalTag.smallTuple)
                out.append(UInt8(elements.count))
            } else {
                out.append(ExternalTag.largeTuple)
                out.appendUInt32(UInt32(elements.count))
            }
            for element in elements { encode(element, into: &out) }
        case .list(let elements):
            encodeList(elements, tail: nil, into: &out)
        case .string(let bytes):
            if bytes.isEmpty {
                out.append(ExternalTag.nil)
            } else if bytes.count <= 65535 {
                out.append(ExternalTag.string)
                out.appendUInt16(UInt16(bytes.count))
                out.append(contentsOf: bytes)
            } else {
                encodeList(bytes.map { .integer(Int64($0)) }, tail: nil, into: &out)
            }
        case .improperList(let elements, let tail):
            encodeList(elements, tail: tail, into: &out)
        case .binary(let bytes):
            out.append(ExternalTag.binary)
            out.appendUInt32(UInt32(bytes.count))
            out.append(contentsOf: bytes)
        case .bitBinary(let bytes, let bits):
            out.append(ExternalTag.bitBinary)
            out.appendUInt32(UInt32(bytes.count))
            out.append(bits)
            out.append(contentsOf: bytes)
        case .pid(let pid):
            encodePid(pid, into: &out)
        case .port(let port):
            if port.id > UInt64(UInt32.max) {
                out.append(ExternalTag.v4Port)
                encodeAtom(port.node, into: &out)
                out.appendUInt64(port.id)
            } else {
                out.append(ExternalTag.newPort)
                encodeAtom(port.node, into: &out)
                out.appendUInt32(UInt32(port.id))
            }
            out.appendUInt32(port.creation)
        case .reference(let reference):
            out.append(ExternalTag.newerReference)
            out.appendUInt16(UInt16(reference.ids.count))
            encodeAtom(reference.node, into: &out)
            out.appendUInt32(reference.creation)
            for id in reference.ids { out.appendUInt32(id) }
        case .fun(let fun):
            encodeFun(fun, into: &out)
        case .export(let module, let function, let arity):
            out.append(ExternalTag.export)
            encodeAtom(module, into: &out)
            encodeAtom(function, into: &out)
            out.append(ExternalTag.smallInteger)
            out.append(UInt8(clamping: arity))
        case .map(let pairs):
            out.append(ExternalTag.map)
            out.appendUInt32(UInt32(pairs.count))
            for pair in pairs {
                encode(pair.key, into: &out)
                encode(pair.value, into: &out)
            }
        }
    }

    public func encodeAtom(_ atom: Atom, into out: inout [UInt8]) {
        let utf8 = atom.name.utf8
        if utf8.count <= 255 {
            out.append(ExternalTag.smallAtomUTF8)
            out.append(UInt8(utf8.count))
        } else {
            out.append(ExternalTag.atomUTF8)
            out.appendUInt16(UInt16(clamping: utf8.count))
        }
        out.append(contentsOf: utf8.prefix(65535))
    }

    public func encodePid(_ pid: Pid, into out: inout [UInt8]) {
        out.append(ExternalTag.newPid)
        encodeAtom(pid.node, into: &out)
        out.appendUInt32(pid.id)
        out.appendUInt32(pid.serial)
        out.appendUInt32(pid.creation)
    }

    private func encodeBig(_ value: BigInteger, into out: inout [UInt8]) {
        let digits = value.magnitude
        if digits.count <= 255 {
            out.append(ExternalTag.smallBig)
            out.append(UInt8(digits.count))
        } else {
            out.append(ExternalTag.largeBig)
            out.appendUInt32(UInt32(digits.count))
        }
        out.append(value.isNegative ? 1 : 0)
        out.append(contentsOf: digits)
    }

    private func encodeList(_ elements: [Term], tail: Term?, into out: inout [UInt8]) {
        if elements.isEmpty {
            if let tail { encode(tail, into: &out) } else { out.append(ExternalTag.nil) }
            return
        }
        if tail == nil, elements.count <= 65535, let bytes = Self.smallIntegerBytes(elements) {
            out.append(ExternalTag.string)
            out.appendUInt16(UInt16(bytes.count))
            out.append(contentsOf: bytes)
            return
        }
        out.append(ExternalTag.list)
        out.appendUInt32(UInt32(elements.count))
        for element in elements { encode(element, into: &out) }
        if let tail { encode(tail, into: &out) } else { out.append(ExternalTag.nil) }
    }

    private static func smallIntegerBytes(_ elements: [Term]) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(elements.count)
        for element in elements {
            guard case .integer(let value) = element, (0...255).contains(value) else { return nil }
            bytes.append(UInt8(value))
        }
        return bytes
    }

    private func encodeFun(_ fun: Fun, into out: inout [UInt8]) {
        var body: [UInt8] = []
        body.append(UInt8(clamping: max(fun.arity, 0)))
        var uniq = fun.uniq
        if uniq.count != 16 { uniq = Array((uniq + [UInt8](repeating: 0, count: 16)).prefix(16)) }
        body.append(contentsOf: uniq)
        body.appendUInt32(fun.index)
        body.appendUInt32(UInt32(fun.freeVars.count))
        encodeAtom(fun.module, into: &body)
        encode(.integer(fun.oldIndex), into: &body)
        encode(.integer(fun.oldUniq), into: &body)
        encodePid(fun.pid, into: &body)
        for value in fun.freeVars { encode(value, into: &body) }
        out.append(ExternalTag.newFun)
        out.appendUInt32(UInt32(body.count + 4))
        out.append(contentsOf: body)
    }
}

extension Array where Element == UInt8 {
    @inlinable mutating func appendUInt16(_ value: UInt16) {
        append(UInt8(value >> 8))
        append(UInt8(truncatingIfNeeded: value))
    }

    @inlinable mutating func appendUInt32(_ value: UInt32) {
        append(UInt8(truncatingIfNeeded: value >> 24))
        append(UInt8(truncatingIfNeeded: value >> 16))
        append(UInt8(truncatingIfNeeded: value >> 8))
        append(UInt8(truncatingIfNeeded: value))
    }

    @inlinable mutating func appendUInt64(_ value: UInt64) {
        appendUInt32(UInt32(truncatingIfNeeded: value >> 32))
        appendUInt32(UInt32(truncatingIfNeeded: value))
    }
}
