// Decodes OTP's External Term Format into `Term`, from a borrowed buffer with a cursor.
// Never traps on outside data: truncation, unknown tags, absurd lengths and deep nesting
// all become a `TermDecodingError` naming the byte offset.

public struct TermDecoder: Sendable {
    /// Deepest nesting of tuples, lists, maps and funs accepted (bounded recursion).
    public var maxDepth: Int
    /// The atoms a distribution header's cache references resolve to, by reference index.
    public var atomCacheReferences: [Atom]
    /// Largest size a compressed term may claim when inflated.
    public var maxUncompressedSize: Int

    public init(maxDepth: Int = 400, atomCacheReferences: [Atom] = [], maxUncompressedSize: Int = 256 << 20) {
        self.maxDepth = maxDepth
        self.atomCacheReferences = atomCacheReferences
        self.maxUncompressedSize = maxUncompressedSize
    }

    /// Decodes one whole `term_to_binary` result (version byte 131 first, nothing after the term).
    public func decode(_ bytes: [UInt8]) throws(TermDecodingError) -> Term {
        // A plain closure with captured outcome: a generic Result here costs a runtime metadata
        // lookup per call, which showed up as a fifth of decode time.
        var term = Term.nil
        var failure: TermDecodingError?
        bytes.withUnsafeBytes { buffer in
            do throws(TermDecodingError) {
                var offset = 0
                term = try decode(buffer, offset: &offset, versioned: true)
                if offset != buffer.count {
                    failure = TermDecodingError(.trailingBytes(count: buffer.count - offset), offset: offset,
                                                expected: "end of input")
                }
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        return term
    }

    /// Decodes one term starting at `offset` and advances it past the term. With `versioned`, the
    /// term must start with the version byte 131 (and may be compressed).
    public func decode(_ buffer: UnsafeRawBufferPointer, offset: inout Int, versioned: Bool = true)
        throws(TermDecodingError) -> Term
    {
        var reader = ByteReader(buffer, offset: offset)
        var state = DecoderState(options: self)
        let term: Term
        if versioned {
            guard let version = reader.readUInt8() else {
                throw TermDecodingError(.truncated, offset: reader.offset, expected: "version byte 131")
            }
            guard version == ExternalTag.version else {
                throw TermDecodingError(.badVersion(version), offset: reader.offset - 1, expected: "version byte 131")
            }
            if reader.remaining > 0, buffer[reader.offset] == ExternalTag.compressed {
                term = try state.decodeCompressed(&reader)
            } else {
                term = try state.decodeTerm(&reader, depth: 0)
            }
        } else {
            term = try state.decodeTerm(&reader, depth: 0)
        }
        offset = reader.offset
        return term
    }
}

/// Per-call decoding state (options plus the offset base used when inflating a compressed term).
struct DecoderState {
    let options: TermDecoder
    /// Added to offsets reported from inside an inflated buffer so errors still point somewhere useful.
    var offsetBase = 0
    /// Inside LOCAL_EXT, NIL_EXT may replace the node name of a pid, port or reference.
    var allowsLocalNode = false

    init(options: TermDecoder) { self.options = options }

    func error(_ reason: TermDecodingError.Reason, _ reader: ByteReader, at offset: Int? = nil,
               _ expected: String) -> TermDecodingError {
        TermDecodingError(reason, offset: offsetBase + (offset ?? reader.offset), expected: expected)
    }

    mutating func decodeCompressed(_ reader: inout ByteReader) throws(TermDecodingError) -> Term {
        let start = reader.offset
        _ = reader.readUInt8()
        guard let size = reader.readUInt32() else { throw error(.truncated, reader, "uncompressed size") }
        guard Int(size) <= options.maxUncompressedSize else {
            throw error(.inflatesTooLarge(size: UInt64(size), limit: options.maxUncompressedSize), reader, at: start + 1,
                        "an uncompressed size within the limit")
        }
        guard let compressedInput = reader.readSlice(reader.remaining) else {
            throw error(.truncated, reader, "zlib data")
        }
        guard let (inflated, consumed) = Inflate.inflate(compressedInput, expectedSize: Int(size)) else {
            throw error(.compression, reader, at: start + 5, "zlib stream of \(size) bytes")
        }
        reader.offset = start + 5 + consumed
        let outerOffset = reader.offset
        let result = inflated.withUnsafeBytes { buffer in
            Result { () throws(TermDecodingError) -> Term in
                var inner = ByteReader(buffer)
                var innerState = DecoderState(options: options)
                innerState.offsetBase = start + 5
                let term = try innerState.decodeTerm(&inner, depth: 0)
                if inner.remaining != 0 {
                    throw TermDecodingError(.trailingBytes(count: inner.remaining), offset: outerOffset,
                                            expected: "compressed term filling its stated size")
                }
                return term
            }
        }
        return try result.get()
    }

    mutating func decodeTerm(_ reader: inout ByteReader, depth: Int) throws(TermDecodingError) -> Term {
        guard depth <= options.maxDepth else {
            throw error(.tooDeep(limit: options.maxDepth), reader, "a shallower term")
        }
        let tagOffset = reader.offset
        guard let tag = reader.readUInt8() else { throw error(.truncated, reader, "a tag") }
        switch tag {
        case ExternalTag.smallInteger:
            guard let value = reader.readUInt8() else { throw error(.truncated, reader, "8-bit integer") }
            return .integer(Int64(value))
        case ExternalTag.integer:
            guard let value = reader.readUInt32() else { throw error(.truncated, reader, "32-bit integer") }
            return .integer(Int64(Int32(bitPattern: value)))
        case ExternalTag.newFloat:
            guard let bits = reader.readUInt64() else { throw error(.truncated, reader, "IEEE 754 double") }
            let value = Double(bitPattern: bits)
            guard value.isFinite else { throw error(.invalidValue, reader, at: tagOffset + 1, "a finite float") }
            return .float(value)
        case ExternalTag.float:
            guard let raw = reader.readSlice(31) else { throw error(.truncated, reader, "31-byte float string") }
            let text = String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self).trimmingSpaces
            guard let value = Double(text), value.isFinite else {
                throw error(.invalidValue, reader, at: tagOffset + 1, "a float in %.20e format")
            }
            return .float(value)
        case ExternalTag.atom, ExternalTag.smallAtom, ExternalTag.atomUTF8, ExternalTag.smallAtomUTF8,
             ExternalTag.atomCacheRef:
            reader.offset = tagOffset
            return .atom(try readAtom(&reader))
        case ExternalTag.smallTuple:
            guard let arity = reader.readUInt8() else { throw error(.truncated, reader, "tuple arity") }
            return .tuple(try readElements(&reader, count: Int(arity), depth: depth))
        case ExternalTag.largeTuple:
            guard let arity = reader.readUInt32() else { throw error(.truncated, reader, "tuple arity") }
            return .tuple(try readElements(&reader, count: Int(arity), depth: depth))
        case ExternalTag.nil:
            return .nil
        case ExternalTag.string:
            guard let length = reader.readUInt16() else { throw error(.truncated, reader, "string length") }
            guard let bytes = reader.readBytes(Int(length)) else { throw error(.truncated, reader, "\(length) string bytes") }
            return bytes.isEmpty ? .nil : .string(bytes)
        case ExternalTag.list:
            return try readList(&reader, depth: depth)
        case ExternalTag.binary:
            guard let length = reader.readUInt32() else { throw error(.truncated, reader, "binary length") }
            guard let bytes = reader.readBytes(Int(length)) else {
                throw error(.truncated, reader, "\(length) binary bytes")
            }
            return .binary(bytes)
        case ExternalTag.bitBinary:
            guard let length = reader.readUInt32(), let bits = reader.readUInt8() else {
                throw error(.truncated, reader, "bit binary length and bits")
            }
            guard var bytes = reader.readBytes(Int(length)) else {
                throw error(.truncated, reader, "\(length) bit binary bytes")
            }
            if bytes.isEmpty {
                guard bits == 0 || bits == 8 else { throw error(.invalidValue, reader, at: tagOffset + 5, "0 bits") }
                return .binary([])
            }
            guard (1...8).contains(bits) else { throw error(.invalidValue, reader, at: tagOffset + 5, "1 to 8 bits") }
            if bits == 8 { return .binary(bytes) }
            // Unused low bits are zero in a canonical bit string.
            bytes[bytes.count - 1] &= UInt8(truncatingIfNeeded: 0xFF << (8 - Int(bits)))
            return .bitBinary(bytes, trailingBits: bits)
        case ExternalTag.smallBig:
            guard let n = reader.readUInt8() else { throw error(.truncated, reader, "big integer length") }
            return try readBig(&reader, count: Int(n))
        case ExternalTag.largeBig:
            guard let n = reader.readUInt32() else { throw error(.truncated, reader, "big integer length") }
            return try readBig(&reader, count: Int(n))
        case ExternalTag.pid, ExternalTag.newPid:
            reader.offset = tagOffset
            return .pid(try readPid(&reader))
        case ExternalTag.port, ExternalTag.newPort, ExternalTag.v4Port:
            let node = try readAtom(&reader)
            let id: UInt64
            if tag == ExternalTag.v4Port {
                guard let v = reader.readUInt64() else { throw error(.truncated, reader, "64-bit port id") }
                id = v
            } else {
                guard let v = reader.readUInt32() else { throw error(.truncated, reader, "32-bit port id") }
                id = UInt64(v)
            }
            let creation = try readCreation(&reader, wide: tag != ExternalTag.port)
            return .port(Port(node: node, id: id, creation: creation))
        case ExternalTag.reference:
            let node = try readAtom(&reader)
            guard let id = reader.readUInt32() else { throw error(.truncated, reader, "reference id") }
            let creation = try readCreation(&reader, wide: false)
            return .reference(Reference(node: node, creation: creation, ids: [id]))
        case ExternalTag.newReference, ExternalTag.newerReference:
            guard let count = reader.readUInt16() else { throw error(.truncated, reader, "reference length") }
            guard count <= 5 else { throw error(.lengthTooLarge(UInt64(count)), reader, at: tagOffset + 1, "at most 5 words") }
            let node = try readAtom(&reader)
            let creation = try readCreation(&reader, wide: tag == ExternalTag.newerReference)
            var ids: [UInt32] = []
            ids.reserveCapacity(Int(count))
            for _ in 0..<count {
                guard let id = reader.readUInt32() else { throw error(.truncated, reader, "reference word") }
                ids.append(id)
            }
            return .reference(Reference(node: node, creation: creation, ids: ids))
        case ExternalTag.newFun:
            return try readNewFun(&reader, depth: depth, tagOffset: tagOffset)
        case ExternalTag.fun:
            return try readOldFun(&reader, depth: depth)
        case ExternalTag.export:
            let module = try readAtom(&reader)
            let function = try readAtom(&reader)
            let arityTerm = try decodeTerm(&reader, depth: depth + 1)
            guard case .integer(let arity) = arityTerm, (0...255).contains(arity) else {
                throw error(.invalidValue, reader, "an arity from 0 to 255")
            }
            return .export(module: module, function: function, arity: Int(arity))
        case ExternalTag.map:
            guard let arity = reader.readUInt32() else { throw error(.truncated, reader, "map arity") }
            guard UInt64(arity) * 2 <= UInt64(reader.remaining) else {
                throw error(.lengthTooLarge(UInt64(arity)), reader, at: tagOffset + 1, "a map arity the input can hold")
            }
            var pairs: [MapPair] = []
            pairs.reserveCapacity(Int(arity))
            var sorted = true
            for _ in 0..<arity {
                let key = try decodeTerm(&reader, depth: depth + 1)
                let value = try decodeTerm(&reader, depth: depth + 1)
                if sorted, let last = pairs.last, Term.compare(last.key, key) >= 0 { sorted = false }
                pairs.append(MapPair(key, value))
            }
            return sorted ? .map(pairs) : .map(unordered: pairs)
        case ExternalTag.local:
            // term_to_binary(T, [local]) (OTP 26+): a 32-bit hash seeded by the creating runtime, then an
            // ordinary term in which NIL_EXT may stand for that runtime's own node name in pids, ports
            // and refs. Outside that runtime the hash cannot be checked; the node becomes the atom ''.
            guard reader.readUInt32() != nil else { throw error(.truncated, reader, "LOCAL_EXT hash") }
            let wasLocal = allowsLocalNode
            allowsLocalNode = true
            defer { allowsLocalNode = wasLocal }
            return try decodeTerm(&reader, depth: depth + 1)
        default:
            throw error(.unknownTag(tag), reader, at: tagOffset, "an external term tag")
        }
    }

    mutating func readElements(_ reader: inout ByteReader, count: Int, depth: Int) throws(TermDecodingError) -> [Term] {
        guard count <= reader.remaining else {
            throw error(.lengthTooLarge(UInt64(count)), reader, "\(count) elements, at least a byte each")
        }
        var elements: [Term] = []
        elements.reserveCapacity(count)
        for _ in 0..<count { elements.append(try decodeTerm(&reader, depth: depth + 1)) }
        return elements
    }

    /// LIST_EXT, flattening tails that are themselves lists so crafted cons chains cannot recurse.
    mutating func readList(_ reader: inout ByteReader, depth: Int) throws(TermDecodingError) -> Term {
        var elements: [Term] = []
        while true {
            guard let count = reader.readUInt32() else { throw error(.truncated, reader, "list length") }
            if elements.isEmpty {
                elements = try readElements(&reader, count: Int(count), depth: depth)
            } else {
                elements.append(contentsOf: try readElements(&reader, count: Int(count), depth: depth))
            }
            guard let tailTag = reader.bytes.dropFirst(reader.offset).first else {
                throw error(.truncated, reader, "list tail")
            }
            switch tailTag {
            case ExternalTag.nil:
                reader.offset += 1
                return .list(elements)
            case ExternalTag.list:
                reader.offset += 1
                continue
            case ExternalTag.string:
                let tail = try decodeTerm(&reader, depth: depth + 1)
                elements.append(contentsOf: tail.listElements ?? [])
                return .list(elements)
            default:
                let tail = try decodeTerm(&reader, depth: depth + 1)
                if elements.isEmpty { return tail }
                return .improperList(elements, tail: tail)
            }
        }
    }

    mutating func readBig(_ reader: inout ByteReader, count: Int) throws(TermDecodingError) -> Term {
        guard let sign = reader.readUInt8() else { throw error(.truncated, reader, "big integer sign") }
        guard sign <= 1 else { throw error(.invalidValue, reader, at: reader.offset - 1, "sign 0 or 1") }
        guard let digits = reader.readBytes(count) else { throw error(.truncated, reader, "\(count) big integer bytes") }
        return .integer(BigInteger(isNegative: sign == 1, magnitude: digits))
    }

    func readCreation(_ reader: inout ByteReader, wide: Bool) throws(TermDecodingError) -> UInt32 {
        if wide {
            guard let value = reader.readUInt32() else { throw error(.truncated, reader, "32-bit creation") }
            return value
        }
        guard let value = reader.readUInt8() else { throw error(.truncated, reader, "8-bit creation") }
        return UInt32(value)
    }

    func readPid(_ reader: inout ByteReader) throws(TermDecodingError) -> Pid {
        guard let tag = reader.readUInt8() else { throw error(.truncated, reader, "a pid") }
        guard tag == ExternalTag.pid || tag == ExternalTag.newPid else {
            throw error(.unknownTag(tag), reader, at: reader.offset - 1, "PID_EXT or NEW_PID_EXT")
        }
        let node = try readAtom(&reader)
        guard let id = reader.readUInt32(), let serial = reader.readUInt32() else {
            throw error(.truncated, reader, "pid id and serial")
        }
        let creation = try readCreation(&reader, wide: tag == ExternalTag.newPid)
        return Pid(node: node, id: id, serial: serial, creation: creation)
    }

    func readAtom(_ reader: inout ByteReader) throws(TermDecodingError) -> Atom {
        let tagOffset = reader.offset
        guard let tag = reader.readUInt8() else { throw error(.truncated, reader, "an atom") }
        let length: Int
        switch tag {
        case ExternalTag.atom, ExternalTag.atomUTF8:
            guard let n = reader.readUInt16() else { throw error(.truncated, reader, "atom length") }
            length = Int(n)
        case ExternalTag.smallAtom, ExternalTag.smallAtomUTF8:
            guard let n = reader.readUInt8() else { throw error(.truncated, reader, "atom length") }
            length = Int(n)
        case ExternalTag.nil where allowsLocalNode:
            return Atom("")
        case ExternalTag.atomCacheRef:
            guard let index = reader.readUInt8() else { throw error(.truncated, reader, "atom cache index") }
            guard Int(index) < options.atomCacheReferences.count else {
                throw error(.atomCacheMiss(index: Int(index)), reader, at: tagOffset, "a known atom cache reference")
            }
            return options.atomCacheReferences[Int(index)]
        default:
            throw error(.unknownTag(tag), reader, at: tagOffset, "an atom")
        }
        guard let text = reader.readSlice(length) else { throw error(.truncated, reader, "\(length) atom bytes") }
        if let ascii = Atom(ascii: text) { return ascii }
        if tag == ExternalTag.atom || tag == ExternalTag.smallAtom {
            return Atom(latin1: text)
        }
        guard let name = String(validating: text, as: UTF8.self) else {
            throw error(.invalidUTF8, reader, at: tagOffset, "UTF-8 atom text")
        }
        return Atom(name)
    }

    mutating func readNewFun(_ reader: inout ByteReader, depth: Int, tagOffset: Int) throws(TermDecodingError) -> Term {
        guard let size = reader.readUInt32(), let arity = reader.readUInt8(), let uniq = reader.readBytes(16),
              let index = reader.readUInt32(), let freeCount = reader.readUInt32()
        else { throw error(.truncated, reader, "NEW_FUN_EXT header") }
        guard Int(size) - 1 <= reader.remaining + (reader.offset - tagOffset - 1) else {
            throw error(.lengthTooLarge(UInt64(size)), reader, at: tagOffset + 1, "a fun size the input can hold")
        }
        let module = try readAtom(&reader)
        let oldIndex = try readSmallInteger(&reader, depth: depth, what: "OldIndex")
        let oldUniq = try readSmallInteger(&reader, depth: depth, what: "OldUniq")
        let pid = try readPid(&reader)
        let freeVars = try readElements(&reader, count: Int(freeCount), depth: depth)
        // Size counts itself and everything after it: a fun of another size is damaged (found by fuzzing).
        guard reader.offset - tagOffset - 1 == Int(size) else {
            throw error(.invalidValue, reader, at: tagOffset + 1, "a NEW_FUN_EXT size of \(reader.offset - tagOffset - 1)")
        }
        return .fun(Fun(arity: Int(arity), uniq: uniq, index: index, module: module, oldIndex: oldIndex,
                        oldUniq: oldUniq, pid: pid, freeVars: freeVars))
    }

    mutating func readOldFun(_ reader: inout ByteReader, depth: Int) throws(TermDecodingError) -> Term {
        guard let freeCount = reader.readUInt32() else { throw error(.truncated, reader, "FUN_EXT free count") }
        let pid = try readPid(&reader)
        let module = try readAtom(&reader)
        let index = try readSmallInteger(&reader, depth: depth, what: "Index")
        let uniq = try readSmallInteger(&reader, depth: depth, what: "Uniq")
        let freeVars = try readElements(&reader, count: Int(freeCount), depth: depth)
        return .fun(Fun(arity: -1, uniq: [], index: UInt32(truncatingIfNeeded: index), module: module,
                        oldIndex: index, oldUniq: uniq, pid: pid, freeVars: freeVars, isOldFormat: true))
    }

    mutating func readSmallInteger(_ reader: inout ByteReader, depth: Int, what: String) throws(TermDecodingError) -> Int64 {
        let term = try decodeTerm(&reader, depth: depth + 1)
        guard case .integer(let value) = term else { throw error(.invalidValue, reader, "an integer \(what)") }
        return value
    }
}

extension Atom {
    /// An atom from ASCII bytes, or nil if any byte is not ASCII. Non-generic on purpose: the generic
    /// `String(validating:as:)` costs a runtime metadata lookup per call on this hot path.
    init?(ascii bytes: UnsafeRawBufferPointer) {
        var allASCII = true
        for byte in bytes where byte >= 0x80 { allASCII = false; break }
        guard allASCII else { return nil }
        let name = String(unsafeUninitializedCapacity: bytes.count) { buffer in
            UnsafeMutableRawBufferPointer(buffer).copyMemory(from: bytes)
            return bytes.count
        }
        self.init(name)
    }

    /// An atom from Latin-1 bytes (ATOM_EXT, SMALL_ATOM_EXT).
    init(latin1 bytes: UnsafeRawBufferPointer) {
        if bytes.allSatisfy({ $0 < 0x80 }) {
            self.init(String(decoding: bytes, as: UTF8.self))
        } else {
            var scalars = String.UnicodeScalarView()
            for byte in bytes { scalars.append(Unicode.Scalar(byte)) }
            self.init(String(scalars))
        }
    }
}

extension String {
    var trimmingSpaces: String {
        String(self.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}


