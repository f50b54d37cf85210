// The byte buffer printers write into on their hot paths (`beamtrace events`, exports): one owned
// allocation that grows by doubling, appended to without the uniqueness check and reference counting
// an `[UInt8]` pays on every append. `ByteSink` lets the term writer print into it or into an array.

/// Where printers append bytes: `TextBuffer` on hot paths, `[UInt8]` elsewhere.
public protocol ByteSink: ~Copyable {
    var count: Int { get }
    mutating func append(_ byte: UInt8)
    mutating func append(bytes: UnsafeRawBufferPointer)
    /// Drops everything from `count` on.
    mutating func truncate(to count: Int)
    /// The byte at `index` (< count).
    func byte(at index: Int) -> UInt8
}

extension Array: ByteSink where Element == UInt8 {
    /// One copy of the bytes: as a typed buffer (an array appends an untyped one byte by byte,
    /// about 100 instructions for a 30-byte payload).
    @inlinable public mutating func append(bytes: UnsafeRawBufferPointer) {
        append(contentsOf: bytes.assumingMemoryBound(to: UInt8.self))
    }
    @inlinable public mutating func truncate(to count: Int) { removeSubrange(count...) }
    @inlinable public func byte(at index: Int) -> UInt8 { self[index] }
}

/// Moves the `count` bytes at `base` into new memory of at least `needed` bytes (doubling
/// `capacity` until it fits) and frees the old: the growth of every byte buffer built on a pointer.
public func regrowBytes(_ base: inout UnsafeMutablePointer<UInt8>, count: Int, capacity: inout Int, needed: Int) {
    var size = max(capacity, 1) * 2
    while size < needed { size *= 2 }
    let bigger = UnsafeMutablePointer<UInt8>.allocate(capacity: size)
    bigger.update(from: base, count: count)
    base.deallocate()
    base = bigger
    capacity = size
}

/// A growable byte buffer owned by one printer (not copyable: it frees its memory when it goes).
@frozen
public struct TextBuffer: ~Copyable, ByteSink {
    @usableFromInline var base: UnsafeMutablePointer<UInt8>
    @usableFromInline var capacity: Int
    @usableFromInline var used: Int
    @inlinable public var count: Int { used }

    @inlinable
    public init(capacity: Int = 1 << 16) {
        self.capacity = max(capacity, 64)
        base = UnsafeMutablePointer<UInt8>.allocate(capacity: self.capacity)
        used = 0
    }

    deinit { base.deallocate() }

    @inlinable public var isEmpty: Bool { count == 0 }

    /// Makes room for `extra` more bytes.
    @inlinable @inline(__always)
    public mutating func reserve(_ extra: Int) {
        if count + extra > capacity { grow(count + extra) }
    }

    @usableFromInline
    mutating func grow(_ needed: Int) {
        regrowBytes(&base, count: used, capacity: &capacity, needed: needed)
    }

    @inlinable @inline(__always)
    public mutating func append(_ byte: UInt8) {
        if count == capacity { grow(count + 1) }
        base[count] = byte
        used += 1
    }

    @inlinable @inline(__always)
    public mutating func append(_ a: UInt8, _ b: UInt8) {
        reserve(2)
        base[count] = a
        base[count + 1] = b
        used += 2
    }

    @inlinable @inline(__always)
    public mutating func append(bytes: UnsafeRawBufferPointer) {
        let n = bytes.count
        guard n > 0, let source = bytes.baseAddress else { return }
        reserve(n)
        let from = source.assumingMemoryBound(to: UInt8.self)
        let to = base + used
        if n <= 16 {
            // Most pieces are short: a loop beats a call to memmove.
            for i in 0..<n { to[i] = from[i] }
        } else {
            to.update(from: from, count: n)
        }
        used += n
    }

    @inlinable @inline(__always)
    public mutating func append(_ text: StaticString) {
        append(bytes: UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    @inlinable
    public mutating func append(contentsOf bytes: [UInt8]) {
        bytes.withUnsafeBytes { append(bytes: $0) }
    }

    @inlinable
    public mutating func append(string: String) {
        var text = string
        text.withUTF8 { append(bytes: UnsafeRawBufferPointer($0)) }
    }

    @inlinable public mutating func truncate(to count: Int) { used = min(max(0, count), used) }

    @inlinable public mutating func removeAll() { used = 0 }

    @inlinable public func byte(at index: Int) -> UInt8 { base[index] }

    /// Overwrites the byte at `index` (< count).
    @inlinable public mutating func set(_ index: Int, _ byte: UInt8) { base[index] = byte }

    /// Appends `n` uninitialised bytes for `body` to fill (it gets a pointer to the first).
    @inlinable @inline(__always)
    public mutating func appendUninitialized(_ n: Int, _ body: (UnsafeMutablePointer<UInt8>) -> Void) {
        reserve(n)
        body(base + count)
        used += n
    }

    /// The bytes written so far (valid until the next change).
    @inlinable
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: base, count: count))
    }

    /// The bytes from `start` on as an array.
    public func bytes(from start: Int = 0) -> [UInt8] {
        Array(UnsafeBufferPointer(start: base + start, count: max(0, count - start)))
    }

    /// The bytes from `start` on as a string.
    public func string(from start: Int = 0) -> String {
        String(decoding: UnsafeBufferPointer(start: base + start, count: max(0, count - start)), as: UTF8.self)
    }
}

extension ByteSink where Self: ~Copyable {
    /// Appends the UTF-8 of `text`.
    @inlinable
    public mutating func append(utf8 text: String) {
        var text = text
        text.withUTF8 { append(bytes: UnsafeRawBufferPointer($0)) }
    }
}
