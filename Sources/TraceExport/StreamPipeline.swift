// Runs a stream consumer (an exporter) on a thread of its own, so encoding and writing an export
// no longer wait on the analysis pass and the other way round: the analysis thread copies each call
// (span, instant or counter, with its payload's bytes) into a chunk, and the consumer's thread
// replays the chunks in order. At most `chunkCount` chunks exist, so memory stays bounded and a
// slow consumer holds the analysis back instead of piling up. `begin` and `end` are called on the
// caller's thread, `end` after every other call was replayed.
import Foundation
import TraceAnalysis
import TraceModel

final class PipelinedConsumer: AnalysisStreamConsumer, @unchecked Sendable {
    /// Bytes of records in flight at most: `chunkCount` chunks of `chunkSize` (8 MiB, about 80,000
    /// records: enough that the two threads run through each other's time slices on two cores
    /// instead of waiting on each other every millisecond).
    static let chunkSize = 1 << 20
    static let chunkCount = 8
    /// Records are copied as bytes: only plain values can be (checked once, else no pipeline).
    static let possible = _isPOD(Span.self) && _isPOD(StreamInstant.self) && _isPOD(StreamCounter.self)

    private enum Record: UInt8 { case spanBegan = 1, spanEnded, instant, counter }

    /// Each record: this header, then its value's bytes, then its payload's bytes.
    private struct Header {
        var record: UInt8
        var flags: UInt8
        var payloadLength: UInt32
    }

    private struct Chunk {
        var base: UnsafeMutableRawPointer
        var capacity: Int
        var count = 0

        /// The chunk's pages are touched at once: the pipeline's memory is all taken at the start,
        /// so a run's peak does not depend on how far the consumer falls behind.
        init(capacity: Int) {
            self.capacity = capacity
            base = .allocate(byteCount: capacity, alignment: 16)
            base.initializeMemory(as: UInt8.self, repeating: 0, count: capacity)
        }

        /// Room for `n` bytes in an empty chunk (a record larger than a chunk gets a larger one).
        mutating func fit(_ n: Int) {
            guard n > capacity else { return }
            base.deallocate()
            capacity = n
            base = .allocate(byteCount: n, alignment: 16)
        }
    }

    private let next: any AnalysisStreamConsumer
    @exclusivity(unchecked) private var current: Chunk
    private let lock = NSLock()
    /// Chunks the consumer is done with (guarded by `lock`).
    private var spare: [Chunk] = []
    /// Chunks to replay, in order; nil marks the end (guarded by `lock`).
    private var filled: [Chunk?] = []
    private let spareCount: DispatchSemaphore
    private let filledCount = DispatchSemaphore(value: 0)
    private let done = DispatchSemaphore(value: 0)
    private var running = false

    init(_ next: any AnalysisStreamConsumer) {
        self.next = next
        current = Chunk(capacity: Self.chunkSize)
        for _ in 1..<Self.chunkCount { spare.append(Chunk(capacity: Self.chunkSize)) }
        spareCount = DispatchSemaphore(value: Self.chunkCount - 1)
    }

    deinit {
        current.base.deallocate()
        for chunk in spare { chunk.base.deallocate() }
        for case let chunk? in filled { chunk.base.deallocate() }
    }

    // MARK: the analysis thread

    func begin(_ context: StreamContext) {
        next.begin(context)
        running = true
        let thread = Thread { [self] in replay() }
        thread.name = "beamtrace.export"
        thread.start()
    }

    func spanBegan(_ span: Span, arguments: StreamPayload) { append(.spanBegan, span, arguments) }

    func spanEnded(_ span: Span, result: StreamPayload) { append(.spanEnded, span, result) }

    func instant(_ instant: StreamInstant, payload: StreamPayload) { append(.instant, instant, payload) }

    func counter(_ counter: StreamCounter) { append(.counter, counter, .empty) }

    func end(_ analysis: CaptureAnalysis) {
        stop()
        next.end(analysis)
    }

    /// Replays what is left and ends the consumer's thread (also when the analysis failed and no
    /// `end` comes).
    func stop() {
        guard running else { return }
        running = false
        handOff(current)
        current = Chunk(capacity: 0)
        lock.withLock { filled.append(nil) }
        filledCount.signal()
        done.wait()
    }

    @inline(__always)
    private func append<Value>(_ record: Record, _ value: Value, _ payload: StreamPayload) {
        let valueSize = MemoryLayout<Value>.size
        let size = MemoryLayout<Header>.size + valueSize + payload.bytes.count
        if current.count + size > current.capacity {
            handOff(current)
            current = takeSpare()
            current.fit(size)
        }
        var header = Header(record: record.rawValue, flags: payload.flags.rawValue, payloadLength: UInt32(payload.bytes.count))
        let p = current.base + current.count
        withUnsafeBytes(of: &header) { p.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        var value = value
        withUnsafeBytes(of: &value) { (p + MemoryLayout<Header>.size).copyMemory(from: $0.baseAddress!, byteCount: valueSize) }
        if let source = payload.bytes.baseAddress, !payload.bytes.isEmpty {
            (p + MemoryLayout<Header>.size + valueSize).copyMemory(from: source, byteCount: payload.bytes.count)
        }
        current.count += size
    }

    private func handOff(_ chunk: Chunk) {
        lock.withLock { filled.append(chunk) }
        filledCount.signal()
    }

    private func takeSpare() -> Chunk {
        spareCount.wait()
        return lock.withLock { spare.removeLast() }
    }

    // MARK: the consumer's thread

    private func replay() {
        while true {
            filledCount.wait()
            let next = lock.withLock { filled.removeFirst() }
            guard var chunk = next else { break }
            replay(chunk)
            chunk.count = 0
            lock.withLock { spare.append(chunk) }
            spareCount.signal()
        }
        done.signal()
    }

    private func replay(_ chunk: Chunk) {
        var offset = 0
        let headerSize = MemoryLayout<Header>.size
        while offset < chunk.count {
            let p = UnsafeRawPointer(chunk.base + offset)
            let header = p.loadUnaligned(as: Header.self)
            let length = Int(header.payloadLength)
            func payload(after valueSize: Int) -> StreamPayload {
                StreamPayload(bytes: UnsafeRawBufferPointer(start: length == 0 ? nil : p + headerSize + valueSize, count: length),
                              flags: EventFlags(rawValue: header.flags))
            }
            switch Record(rawValue: header.record) {
            case .spanBegan?:
                let size = MemoryLayout<Span>.size
                next.spanBegan(p.loadUnaligned(fromByteOffset: headerSize, as: Span.self), arguments: payload(after: size))
                offset += headerSize + size + length
            case .spanEnded?:
                let size = MemoryLayout<Span>.size
                next.spanEnded(p.loadUnaligned(fromByteOffset: headerSize, as: Span.self), result: payload(after: size))
                offset += headerSize + size + length
            case .instant?:
                let size = MemoryLayout<StreamInstant>.size
                next.instant(p.loadUnaligned(fromByteOffset: headerSize, as: StreamInstant.self), payload: payload(after: size))
                offset += headerSize + size + length
            case .counter?:
                let size = MemoryLayout<StreamCounter>.size
                next.counter(p.loadUnaligned(fromByteOffset: headerSize, as: StreamCounter.self))
                offset += headerSize + size + length
            case nil:
                // Written by `append` above only: cannot happen; stop rather than misread.
                return
            }
        }
    }
}
