// A payload transform for storage: a pid inside an argument, message or return value that is
// already in the process dictionary is stored as 0xF0 + varint(process id) instead of its ~30
// bytes of NEW_PID_EXT (messages carry `self()` all the time), and integers leave the payload for
// the block's integer column (PayloadIntegers). Only terms whose bytes rebuild exactly are
// replaced, so reading restores the original bytes. Events whose payload went through this have
// bit 7 set in the stored flags column.
import BeamTerm
import TraceModel

struct PayloadPids {
    static let tag: UInt8 = 0xF0
    /// INTEGER_EXT (98, 4 bytes big-endian) stored as 0xF1 + zigzag varint: counters and sums
    /// shrink, and their bytes rebuild exactly.
    static let integerTag: UInt8 = 0xF1
    /// A whole payload equal to the one N (1...255) events earlier in the block: 0xF3, N.
    static let copyTag: UInt8 = 0xF3
    /// How far back the encoder looks for an equal payload: as far as N's one byte holds (readers
    /// take any N in 1...255; a server's receive of a request comes after every queued caller's
    /// send, often more than 16 events after its own send).
    static let copyReach = Int(UInt8.max)
    /// Encoding 1: SMALL_BIG_EXT of N ≤ 8 digit bytes whose value fits an Int64, stored as 0xF4, N;
    /// the value is in the integer column (as INTEGER_EXT's is, after a bare 0xF1).
    static let bigTag: UInt8 = 0xF4
    static let storedFlag: UInt8 = 0x80

    private var table = RawPidTable()
    /// A node's name as the ATOM_EXT bytes trace ports write inside a pid, by node id (empty: a
    /// name that does not rebuild exactly). Nodes are few: this is the only cache, so reading a
    /// pid costs the same with 5 processes as with a million.
    private var nodeAtoms: [[UInt8]?] = []
    /// The bytes of the pids expanded last, by process id (a small table of fixed size: the
    /// processes a payload names repeat, and a million of them cost no more memory than five).
    private var images = PidImages()

    /// Called before a block is decoded: a copy of this transform (a copied decoder) gets a pid
    /// table of its own, so two threads never write one.
    mutating func prepareForDecoding() {
        if !isKnownUniquelyReferenced(&images) { images = PidImages() }
    }

    private mutating func nodeAtom(_ node: NodeID, _ d: TraceDictionaries) -> [UInt8] {
        let index = Int(node)
        if index < nodeAtoms.count, let cached = nodeAtoms[index] { return cached }
        if index >= nodeAtoms.count { nodeAtoms.append(contentsOf: repeatElement(nil, count: index - nodeAtoms.count + 1)) }
        let name = Array(d.nodeName(node).utf8)
        let atom: [UInt8] = name.count < 256 && name.allSatisfy({ $0 < 0x80 }) ? [100, 0, UInt8(name.count)] + name : []
        nodeAtoms[index] = atom
        return atom
    }

    /// Appends the exact NEW_PID_EXT bytes (node as ATOM_EXT, as trace ports write it) of a
    /// dictionary pid; false when it is not a pid whose bytes rebuild.
    mutating func appendBytes(for id: ProcessID, _ d: TraceDictionaries, into out: inout PayloadSink) -> Bool {
        if let image = images.image(of: id) {
            out.reserve(PidImages.imageCapacity)
            // A fixed-size copy (a few vector moves), of which the image's own length counts.
            out.put(image.bytes, at: 0)
            out.count += image.length
            return true
        }
        guard let entry = d.process(id), case .pid(let node, let number, let serial, let creation) = entry.identity else {
            return false
        }
        let index = Int(node)
        if index >= nodeAtoms.count || nodeAtoms[index] == nil { _ = nodeAtom(node, d) }
        let mark = out.count
        let atomOK = nodeAtoms[index]?.withUnsafeBytes { atom -> Bool in
            // Empty: a node name that does not rebuild exactly.
            guard !atom.isEmpty, let base = atom.baseAddress else { return false }
            out.reserve(1 + atom.count + 12)
            out.put(UInt8(88), at: 0)
            out.count += 1
            out.append(base, count: atom.count)
            return true
        } ?? false
        guard atomOK else { return false }
        out.put((number.bigEndian, serial.bigEndian, creation.bigEndian), at: 0)
        out.count += 12
        images.remember(id, UnsafeRawBufferPointer(start: out.base + mark, count: out.count - mark))
        return true
    }

    enum PlainStep { case stepped, malformed, other }

    /// One step of both payload walks (compaction and expansion) over a tag plain payloads are made
    /// of (atoms, small tuples, small integers, nil, lists, binaries, `NEWER_REFERENCE_EXT`), as
    /// `TermCursor.skipHeader` steps it: `.stepped` (`i` after it, its children added to
    /// `pending`), `.malformed`, or `.other` (`i` unmoved: a code, or a tag the walk leaves to
    /// `skipHeader`). `i < n` on entry. Transparent: `@inline(__always)` is a hint the optimizer
    /// declined inside the compaction's walk (callgrind: 7,155M against 6,874M for the HangWaits import).
    @_transparent
    static func stepPlain(_ p: UnsafeRawPointer, _ n: Int, at i: inout Int, pending: inout Int) -> PlainStep {
        switch p.load(fromByteOffset: i, as: UInt8.self) {
        case ExternalTag.smallAtomUTF8, ExternalTag.smallAtom, ExternalTag.atom, ExternalTag.atomUTF8:
            guard stepAtom(p, n, at: &i) else { return .malformed }
        case ExternalTag.smallTuple:
            guard n - i >= 2 else { return .malformed }
            pending += p.byte(i + 1)
            i += 2
        case ExternalTag.smallInteger:
            guard n - i >= 2 else { return .malformed }
            i += 2
        case ExternalTag.nil:
            i += 1
        case ExternalTag.list:
            guard n - i >= 5 else { return .malformed }
            pending += p.be32(i + 1) + 1
            i += 5
        case ExternalTag.binary:
            guard n - i >= 5 else { return .malformed }
            i += 5 + p.be32(i + 1)
        case ExternalTag.newerReference:
            // Length (at most 5 words), node atom, creation, the words.
            guard n - i >= 4 else { return .malformed }
            let words = p.be16(i + 1)
            guard words <= 5 else { return .malformed }
            i += 3
            guard stepAtom(p, n, at: &i) else { return .malformed }
            i += 4 + 4 * words
        default:
            return .other
        }
        return i <= n ? .stepped : .malformed
    }

    /// Steps over an atom of any of the four tags at `i` (`i < n`); the caller checks `i <= n` after.
    @inline(__always)
    static func stepAtom(_ p: UnsafeRawPointer, _ n: Int, at i: inout Int) -> Bool {
        switch p.load(fromByteOffset: i, as: UInt8.self) {
        case ExternalTag.smallAtomUTF8, ExternalTag.smallAtom:
            guard n - i >= 2 else { return false }
            i += 2 + p.byte(i + 1)
        case ExternalTag.atom, ExternalTag.atomUTF8:
            guard n - i >= 3 else { return false }
            i += 3 + p.be16(i + 1)
        default:
            return false
        }
        return true
    }

    /// Appends `payload` to `out` with known pids replaced; true when any was. A payload that does
    /// not walk as whole terms is appended unchanged.
    /// Block encoding 1: integers are appended to `integers`, in payload order, and only their tag
    /// stays in `out`. Encoding 2 also appends the payload's marks to `marks` (when any code was
    /// left in `out`): per code a varint of 1 + the plain bytes between it and the code before it
    /// (or the payload's start), then a 0.
    mutating func encode(_ payload: UnsafeRawBufferPointer, _ d: TraceDictionaries, into out: inout PayloadSink,
                         integers: inout [Int64], marks: inout PayloadSink) -> Bool {
        let mark = out.count
        let integerMark = integers.count
        let gapMark = marks.count
        if let replaced = transform(payload, d, into: &out, integers: &integers, marks: &marks) {
            if replaced {
                marks.reserve(1)
                marks.put(UInt8(0), at: 0)
                marks.count += 1
            } else {
                marks.count = gapMark
            }
            return replaced
        }
        out.count = mark
        if integers.count > integerMark { integers.removeSubrange(integerMark...) }
        marks.count = gapMark
        if let base = payload.baseAddress { out.append(base, count: payload.count) }
        return false
    }

    /// The walk of `encode`: the payload's bytes are read through a pointer, plain tags are
    /// stepped over by `stepPlain` (as `decode` steps them) and the rarer ones through
    /// `TermCursor.skipHeader`; runs of plain bytes are copied once, where a code or the end
    /// interrupts them, and codes and marks are written through pointers. nil: not whole terms.
    private mutating func transform(_ payload: UnsafeRawBufferPointer, _ d: TraceDictionaries, into out: inout PayloadSink,
                                    integers: inout [Int64], marks: inout PayloadSink) -> Bool? {
        guard let p = payload.baseAddress else { return false }
        let n = payload.count
        var i = 0
        var pending = 0
        var copyFrom = 0
        var replaced = false
        // Where in `out` the last code ended (the payload's start before the first).
        var codeEnd = out.count
        // The plain bytes before the code at `upTo`, then its mark; room for a code of `codeBytes`.
        @inline(__always) func flush(_ upTo: Int, codeBytes: Int) {
            out.append(p + copyFrom, count: upTo - copyFrom)
            var v = UInt64(out.count - codeEnd) + 1
            marks.reserve(10)
            while v >= 0x80 {
                marks.put(UInt8(truncatingIfNeeded: v) | 0x80, at: 0)
                marks.count += 1
                v >>= 7
            }
            marks.put(UInt8(v), at: 0)
            marks.count += 1
            out.reserve(codeBytes)
        }
        while i < n || pending > 0 {
            if pending == 0 { pending = 1 }
            pending -= 1
            guard i < n else { return nil }
            let start = i
            switch Self.stepPlain(p, n, at: &i, pending: &pending) {
            case .stepped: continue
            case .malformed: return nil
            case .other: break
            }
            switch p.load(fromByteOffset: i, as: UInt8.self) {
            case ExternalTag.newPid where n - i >= 4 && p.byte(i + 1) == Int(ExternalTag.atom):
                // NEW_PID_EXT with its node as ATOM_EXT, as trace ports write it.
                let end = i + 4 + p.be16(i + 2) + 12
                guard end <= n else { return nil }
                let raw = UnsafeRawBufferPointer(start: p + i, count: end - i)
                i = end
                var id = table.find(raw, processes: d.processes.count)
                if id == nil {
                    id = lookup(raw, d)
                    table.insert(raw, value: id ?? 0, processes: d.processes.count)
                }
                if let id, id != 0 {
                    flush(start, codeBytes: 6)
                    out.put(Self.tag, at: 0)
                    var v = UInt64(id)
                    var k = 1
                    while v >= 0x80 {
                        out.put(UInt8(truncatingIfNeeded: v) | 0x80, at: k)
                        k += 1
                        v >>= 7
                    }
                    out.put(UInt8(v), at: k)
                    out.count += k + 1
                    copyFrom = i
                    codeEnd = out.count
                    replaced = true
                }
                continue
            case ExternalTag.integer:
                guard n - i >= 5 else { return nil }
                flush(start, codeBytes: 1)
                out.put(Self.integerTag, at: 0)
                out.count += 1
                integers.append(Int64(Int32(bitPattern: UInt32(truncatingIfNeeded: p.be32(i + 1)))))
                i += 5
                copyFrom = i
                codeEnd = out.count
                replaced = true
                continue
            case ExternalTag.smallBig:
                var c = TermCursor(payload, offset: i + 1)
                if let value = Self.smallBig(&c) {
                    flush(start, codeBytes: 2)
                    out.put(Self.bigTag, at: 0)
                    out.put(value.digits, at: 1)
                    out.count += 2
                    integers.append(value.value)
                    i = c.offset
                    copyFrom = i
                    codeEnd = out.count
                    replaced = true
                    continue
                }
            default:
                break
            }
            var c = TermCursor(payload, offset: start)
            guard let children = c.skipHeader() else { return nil }
            pending += children
            i = c.offset
        }
        out.append(p + copyFrom, count: n - copyFrom)
        return replaced
    }

    /// A SMALL_BIG_EXT (tag already read) whose bytes rebuild exactly from an Int64 and its digit
    /// count: at most 8 digits, sign 0 or 1, no negative zero, magnitude within Int64. The cursor
    /// is left after it; nil (cursor back at the tag) otherwise.
    static func smallBig(_ c: inout TermCursor) -> (digits: UInt8, value: Int64)? {
        let tagOffset = c.offset - 1
        guard let n = c.u8(), n <= 8, let sign = c.u8(), sign <= 1 else {
            c.offset = tagOffset
            return nil
        }
        var magnitude: UInt64 = 0
        for k in 0..<Int(n) {
            guard let digit = c.u8() else {
                c.offset = tagOffset
                return nil
            }
            magnitude |= UInt64(digit) << (8 * UInt64(k))
        }
        guard magnitude <= UInt64(Int64.max), !(magnitude == 0 && sign == 1) else {
            c.offset = tagOffset
            return nil
        }
        let value = Int64(magnitude)
        return (n, sign == 1 ? -value : value)
    }

    private mutating func lookup(_ raw: UnsafeRawBufferPointer, _ d: TraceDictionaries) -> ProcessID? {
        var c = TermCursor(raw)
        guard let pid = c.pid(), c.offset == raw.count else { return nil }
        let name = String(decoding: c.slice(pid.nodeStart, pid.nodeStart + pid.nodeLength), as: UTF8.self)
        guard let node = d.nodeID(named: name),
              let id = d.processID(.pid(node: node, id: pid.id, serial: pid.serial, creation: pid.creation)) else { return nil }
        // The rest of the bytes came from the dictionary's own fields: only the node's atom can differ.
        let atom = nodeAtom(node, d)
        guard raw.count == 13 + atom.count, atom.elementsEqual(UnsafeRawBufferPointer(rebasing: raw[1..<(1 + atom.count)])) else {
            return nil
        }
        return id
    }

    /// Expands a stored payload back to the original bytes. With `expand` false it is only walked:
    /// its integers are taken from the column (the payloads after it need the column's position
    /// and predictions) and nothing is appended.
    /// The walk reads the bytes through a pointer and steps over the tags plain payloads are made
    /// of (atoms, small tuples, lists, small integers, binaries, references) itself; the rarer
    /// ones go through `TermCursor.skipHeader`. Runs of plain bytes are copied once, where a
    /// compacted term or the end interrupts them.
    mutating func decode(_ stored: UnsafeRawBufferPointer, _ d: TraceDictionaries, into out: inout PayloadSink,
                         integers: inout StoredIntegers, expand: Bool = true) -> Bool {
        guard let p = stored.baseAddress else { return stored.isEmpty }
        let n = stored.count
        var copyFrom = 0
        var i = 0
        var pending = 0
        while i < n || pending > 0 {
            if pending == 0 { pending = 1 }
            pending -= 1
            guard i < n else { return false }
            switch Self.stepPlain(p, n, at: &i, pending: &pending) {
            case .stepped: continue
            case .malformed: return false
            case .other: break
            }
            switch p.load(fromByteOffset: i, as: UInt8.self) {
            case Self.tag, Self.integerTag, Self.bigTag:
                guard expandCode(p, n, at: &i, copyFrom: &copyFrom, d, into: &out, integers: &integers, expand: expand) else {
                    return false
                }
            default:
                var c = TermCursor(stored, offset: i)
                guard let children = c.skipHeader() else { return false }
                pending += children
                i = c.offset
            }
        }
        if expand { out.append(p + copyFrom, count: n - copyFrom) }
        return true
    }

    /// Encoding 2: expands a stored payload by its marks (1 + the plain bytes before each code, then
    /// 0, from the block's mark column) instead of walking its terms; `expand` false takes its
    /// integers only.
    mutating func decode(_ stored: UnsafeRawBufferPointer, _ d: TraceDictionaries, into out: inout PayloadSink,
                         integers: inout StoredIntegers, marks: inout ByteCursor, expand: Bool = true) -> Bool {
        guard let p = stored.baseAddress else { return stored.isEmpty }
        let n = stored.count
        var copyFrom = 0
        var i = 0
        while true {
            guard let mark = marks.varint() else { return false }
            if mark == 0 { break }
            guard mark - 1 < UInt64(n - i) else { return false }
            i += Int(mark - 1)
            guard expandCode(p, n, at: &i, copyFrom: &copyFrom, d, into: &out, integers: &integers, expand: expand) else {
                return false
            }
        }
        if expand { out.append(p + copyFrom, count: n - copyFrom) }
        return true
    }

    /// The compacted code at `i` (a pid, an integer or a small big; false for any other byte):
    /// appends the plain bytes from `copyFrom` and the code's expansion, and leaves `i` and
    /// `copyFrom` after it.
    @inline(__always)
    private mutating func expandCode(_ p: UnsafeRawPointer, _ n: Int, at i: inout Int, copyFrom: inout Int,
                                     _ d: TraceDictionaries, into out: inout PayloadSink,
                                     integers: inout StoredIntegers, expand: Bool) -> Bool {
        let start = i
        switch p.load(fromByteOffset: i, as: UInt8.self) {
        case Self.tag:
            i += 1
            guard let id = readVarint(p, &i, count: n), id <= UInt64(UInt32.max) else { return false }
            if expand {
                out.append(p + copyFrom, count: start - copyFrom)
                guard appendBytes(for: ProcessID(truncatingIfNeeded: id), d, into: &out) else { return false }
            }
        case Self.integerTag:
            i += 1
            let value: UInt32
            if integers.column == nil {
                guard let zz = readVarint(p, &i, count: n), zz <= UInt64(UInt32.max) else { return false }
                value = UInt32(truncatingIfNeeded: Int64(bitPattern: zz >> 1) ^ -Int64(bitPattern: zz & 1))
            } else {
                guard let v = integers.next(), let v32 = Int32(exactly: v) else { return false }
                value = UInt32(bitPattern: v32)
            }
            if expand {
                out.append(p + copyFrom, count: start - copyFrom)
                out.reserve(5)
                out.put(UInt8(98), at: 0)
                out.put(value.bigEndian, at: 1)
                out.count += 5
            }
        case Self.bigTag where integers.column != nil:
            guard n - i >= 2 else { return false }
            let digits = Int(p.load(fromByteOffset: i + 1, as: UInt8.self))
            i += 2
            guard digits <= 8, let v = integers.next() else { return false }
            let magnitude = v.magnitude
            guard digits == 8 || magnitude >> (8 * UInt64(digits)) == 0 else { return false }
            if expand {
                out.append(p + copyFrom, count: start - copyFrom)
                out.reserve(11)
                out.put(UInt8(110), at: 0)
                out.put(UInt8(digits), at: 1)
                out.put(UInt8(v < 0 ? 1 : 0), at: 2)
                // The digits little-endian as one word; only `digits` of its bytes are kept.
                out.put(magnitude.littleEndian, at: 3)
                out.count += 3 + digits
            }
        default:
            return false
        }
        copyFrom = i
        return true
    }
}

/// Where the decoder writes expanded payloads: a buffer written through a pointer, so appending
/// costs one capacity compare (an array's append also checks its buffer is unique, per call). It
/// grows by doubling and is kept from block to block; `release` frees it.
struct PayloadSink {
    private(set) var base: UnsafeMutableRawPointer
    private(set) var capacity: Int
    /// Bytes written.
    var count = 0

    init(capacity: Int = 1 << 16) {
        self.capacity = max(capacity, 64)
        base = .allocate(byteCount: self.capacity, alignment: 16)
    }

    func release() { base.deallocate() }

    /// Makes room for `n` more bytes.
    @inline(__always) mutating func reserve(_ n: Int) {
        if capacity - count < n { grow(n) }
    }

    @inline(never) private mutating func grow(_ n: Int) {
        var newCapacity = capacity
        while newCapacity - count < n { newCapacity *= 2 }
        let bigger = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
        bigger.copyMemory(from: base, byteCount: count)
        base.deallocate()
        base = bigger
        capacity = newCapacity
    }

    @inline(__always) mutating func append(_ bytes: UnsafeRawPointer, count n: Int) {
        guard n > 0 else { return }
        reserve(n)
        (base + count).copyMemory(from: bytes, byteCount: n)
        count += n
    }

    /// Writes `value`'s bytes `offset` bytes past the end, without counting them (room reserved).
    @inline(__always) func put<T>(_ value: T, at offset: Int) {
        (base + count + offset).storeBytes(of: value, as: T.self)
    }

    /// The bytes written from `start` on.
    func bytes(from start: Int = 0) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base + start, count: count - start)
    }
}

/// A direct-mapped table of expanded pid bytes by process id: slot `id % slots` holds the id and
/// its NEW_PID_EXT bytes. A dictionary's process ids never change meaning (processes are only
/// appended), so an entry stays right for the decoder's dictionaries, as `nodeAtoms` does; pids
/// whose bytes do not fit a slot (node names over 40 bytes) are always built from the dictionary.
final class PidImages {
    static let slots = 1024
    /// NEW_PID_EXT: tag, ATOM_EXT header (3), the name, id, serial and creation (12).
    static let imageCapacity = 56
    /// Per slot: the process id (0: empty), the image's length, the image.
    private struct Slot {
        var id: ProcessID = 0
        var length: UInt32 = 0
        var bytes: PidImage = PidImage()
    }
    private let table: UnsafeMutablePointer<Slot>

    init() {
        table = .allocate(capacity: Self.slots)
        table.initialize(repeating: Slot(), count: Self.slots)
    }

    deinit { table.deallocate() }

    @inline(__always) func image(of id: ProcessID) -> (bytes: PidImage, length: Int)? {
        let slot = table + Int(id & UInt32(Self.slots - 1))
        guard slot.pointee.id == id, id != 0 else { return nil }
        return (slot.pointee.bytes, Int(slot.pointee.length))
    }

    func remember(_ id: ProcessID, _ bytes: UnsafeRawBufferPointer) {
        guard bytes.count <= Self.imageCapacity, let source = bytes.baseAddress else { return }
        let slot = table + Int(id & UInt32(Self.slots - 1))
        slot.pointee.id = id
        slot.pointee.length = UInt32(bytes.count)
        withUnsafeMutableBytes(of: &slot.pointee.bytes) { $0.baseAddress?.copyMemory(from: source, byteCount: bytes.count) }
    }
}

/// 56 bytes, copied as one value.
struct PidImage {
    var words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0)
}

/// Raw pid bytes → process id (0: not replaceable), without allocating per lookup: the last few
/// keys are compared first (payloads keep naming the same pids), then a hash map. A 0 holds only
/// while the dictionaries have as many processes as when it was looked up (`processes`): a pid a
/// message names before its process is traced is compacted once the process is known, and what an
/// encoder stores never depends on what it met before (two encoders of one capture, the writer's
/// and its caller's, write the same bytes for a block).
private struct RawPidTable {
    typealias Entry = (key: [UInt8], value: ProcessID, processes: Int)
    var map: [Int: [Entry]] = [:]
    var recent: [Entry] = []
    var next = 0

    /// The id cached for `raw`; nil when none, or when it is a 0 from fewer processes than
    /// `processes` (look it up again).
    @inline(__always)
    mutating func find(_ raw: UnsafeRawBufferPointer, processes: Int) -> ProcessID? {
        for entry in recent where entry.key.count == raw.count {
            let same = entry.key.withUnsafeBytes { memcmpRawBytes($0.baseAddress!, raw.baseAddress!, raw.count) }
            if same { return entry.value != 0 || entry.processes == processes ? entry.value : nil }
        }
        guard let bucket = map[Self.hash(raw)] else { return nil }
        for entry in bucket where entry.key.elementsEqual(raw) {
            guard entry.value != 0 || entry.processes == processes else { return nil }
            remember(entry)
            return entry.value
        }
        return nil
    }

    /// Entries kept before the table starts over (a system of a million processes must not keep
    /// a million keys here: a forgotten pid is only looked up again).
    static let limit = 1 << 16
    var entries = 0

    /// Caches `value` for `raw` (replacing what was cached for it).
    mutating func insert(_ raw: UnsafeRawBufferPointer, value: ProcessID, processes: Int) {
        if entries >= Self.limit {
            map.removeAll(keepingCapacity: true)
            recent.removeAll(keepingCapacity: true)
            next = 0
            entries = 0
        }
        let entry: Entry = (Array(raw), value, processes)
        let h = Self.hash(raw)
        if let k = map[h]?.firstIndex(where: { $0.key.elementsEqual(raw) }) {
            // A 0 looked up again: replaced where it is.
            map[h]?[k] = entry
            if let r = recent.firstIndex(where: { $0.key.elementsEqual(raw) }) {
                recent[r] = entry
                return
            }
        } else {
            entries += 1
            map[h, default: []].append(entry)
        }
        remember(entry)
    }

    /// (Only for a key not in `recent`: `find` looks there first, `insert` replaces it there.)
    private mutating func remember(_ entry: Entry) {
        if recent.count < 4 { recent.append(entry) } else { recent[next] = entry }
        next = (next + 1) & 3
    }

    static func hash(_ raw: UnsafeRawBufferPointer) -> Int {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(raw.count)
        guard let base = raw.baseAddress else { return Int(truncatingIfNeeded: h) }
        var i = 0
        while i + 8 <= raw.count {
            h = (h ^ base.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0xBF58_476D_1CE4_E5B9
            h ^= h >> 29
            i += 8
        }
        while i < raw.count {
            h = (h ^ UInt64(base.load(fromByteOffset: i, as: UInt8.self))) &* 0x100_0000_01B3
            i += 1
        }
        return Int(truncatingIfNeeded: h)
    }
}

private func memcmpRawBytes(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ n: Int) -> Bool {
    var i = 0
    while i + 8 <= n {
        if a.loadUnaligned(fromByteOffset: i, as: UInt64.self) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) { return false }
        i += 8
    }
    while i < n {
        if a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) { return false }
        i += 1
    }
    return true
}

/// The payload walks' reads: a byte, or a big-endian u16/u32, at an offset the caller has checked.
private extension UnsafeRawPointer {
    @inline(__always) func byte(_ at: Int) -> Int { Int(load(fromByteOffset: at, as: UInt8.self)) }
    @inline(__always) func be16(_ at: Int) -> Int { Int(UInt16(bigEndian: loadUnaligned(fromByteOffset: at, as: UInt16.self))) }
    @inline(__always) func be32(_ at: Int) -> Int { Int(UInt32(bigEndian: loadUnaligned(fromByteOffset: at, as: UInt32.self))) }
}
