// Perfetto's protobuf trace format (perfetto/trace/trace.proto), written by our own encoder as
// the stream goes: a TrackDescriptor per node (a Perfetto process) and per Erlang process (a
// thread), TrackEvent slices for traced calls with their arguments and return values as debug
// annotations, instants, flows from each send to the receive it was matched to, counter tracks for
// queue lengths, memory and run queues. Names are interned; timestamps are deltas on an
// incremental clock of the sequence, so an event costs about 20 bytes.
import CaptureStore
import Foundation
import TraceAnalysis
import TraceModel

public final class PerfettoExporter: AnalysisStreamConsumer {
    public struct Options: Sendable {
        /// Annotate slices with arguments and return values (printed in Erlang syntax).
        public var arguments = true
        /// Longest printed term.
        public var termWidth = 120
        public init() {}
    }

    // Field numbers from perfetto_trace.proto.
    enum Field {
        static let tracePacket: UInt32 = 1
        static let timestamp: UInt32 = 8, timestampClockID: UInt32 = 58, trackEvent: UInt32 = 11
        static let trackDescriptor: UInt32 = 60, clockSnapshot: UInt32 = 6, sequenceID: UInt32 = 10
        static let internedData: UInt32 = 12, sequenceFlags: UInt32 = 13, packetDefaults: UInt32 = 59
        static let firstPacketOnSequence: UInt32 = 87
    }

    enum EventType: UInt64 { case sliceBegin = 1, sliceEnd = 2, instant = 3, counter = 4 }

    static let sequence: UInt64 = 1
    static let incrementalClock: UInt64 = 64
    static let bootClock: UInt64 = 6
    /// Trace time of the stream's start (any positive base; the viewer shows times relative to it).
    static let origin: Int64 = 1_000_000_000
    static let nodeTrackBase: UInt64 = 1 << 32
    static let counterTrackBase: UInt64 = 1 << 36

    /// Debug annotation names, interned up front.
    enum Annotation: UInt64, CaseIterable {
        case args = 1, result, message, reason, to, from, value, info
        var name: String { "\(self)" }
    }

    public let options: Options
    let out: ExportOutput
    /// A `let` (started over in `begin`): its calls per event cost no retain.
    private let text: ExportText
    /// Printed terms, one after another (see `scratchStart`).
    @exclusivity(unchecked) private var scratch: [UInt8] = []
    private var base: Int64 = 0
    @exclusivity(unchecked) private var lastTime: Int64 = 0
    @exclusivity(unchecked) private var functionIIDs: [UInt64] = []
    @exclusivity(unchecked) private var kindIIDs: [UInt64] = Array(repeating: 0, count: 64)
    private var nextIID: UInt64 = 1
    @exclusivity(unchecked) private var hasInterned = false
    @exclusivity(unchecked) private var threadSeen: [Bool] = []
    @exclusivity(unchecked) private var nodeSeen: [Bool] = []
    private var counterSeen: Set<UInt64> = []
    private var tidBase: Int64 = 1
    /// Each packet's fields before its track event, and the track event, built in place.
    @exclusivity(unchecked) private var packet = RawBytes(capacity: 64)
    @exclusivity(unchecked) private var event = RawBytes(capacity: 256)
    /// Names interned since the last packet: they go into the next one.
    @exclusivity(unchecked) private var interned = ProtobufWriter(capacity: 128)
    @exclusivity(unchecked) public private(set) var stats = ExportStats()

    public init(output: ExportOutput, options: Options = Options()) {
        out = output
        self.options = options
        text = ExportText(termWidth: options.termWidth)
    }

    deinit {
        packet.deallocate()
        event.deallocate()
    }

    public func begin(_ context: StreamContext) {
        text.begin(context)
        base = context.startTime
        lastTime = Self.origin
        functionIIDs = Array(repeating: 0, count: context.dictionaries.functions.count + 1)
        threadSeen = Array(repeating: false, count: context.dictionaries.processes.count + 1)
        nodeSeen = Array(repeating: false, count: context.dictionaries.nodes.count + 1)
        tidBase = Int64(context.dictionaries.nodes.count) + 1
        // The first packet: incremental state cleared, the sequence's clock and defaults, and the
        // annotation names.
        var packet = ProtobufWriter(capacity: 256)
        packet.uint(Field.timestamp, UInt64(Self.origin))
        packet.uint(Field.timestampClockID, Self.bootClock)
        packet.uint(Field.sequenceID, Self.sequence)
        packet.uint(Field.sequenceFlags, 1)
        packet.uint(Field.firstPacketOnSequence, 1)
        packet.message(Field.clockSnapshot) { snapshot in
            snapshot.message(1) { clock in
                clock.uint(1, Self.incrementalClock)
                clock.uint(2, UInt64(Self.origin))
                clock.uint(3, 1)
            }
            snapshot.message(1) { clock in
                clock.uint(1, Self.bootClock)
                clock.uint(2, UInt64(Self.origin))
            }
        }
        packet.message(Field.packetDefaults) { defaults in defaults.uint(58, Self.incrementalClock) }
        packet.message(Field.internedData) { data in
            for annotation in Annotation.allCases {
                data.message(3) { name in
                    name.uint(1, annotation.rawValue)
                    name.string(2, annotation.name)
                }
            }
        }
        out.write(byte: 0x0A)
        var length = ProtobufWriter(capacity: 8)
        length.varint(UInt64(packet.bytes.count))
        out.write(length.bytes)
        out.write(packet.bytes)
        describeMeta(context)
    }

    /// A track named after the capture: what was recorded.
    private func describeMeta(_ context: StreamContext) {
        var descriptor = ProtobufWriter(capacity: 64)
        descriptor.uint(1, Self.nodeTrackBase - 1)
        let nodes = context.meta.nodes.map(\.name).joined(separator: ", ")
        descriptor.string(2, "beamtrace capture " + context.meta.captureID + (nodes.isEmpty ? "" : " of " + nodes))
        writeDescriptor(descriptor.bytes)
    }

    // MARK: stream

    public func spanBegan(_ span: Span, arguments: StreamPayload) {
        let track = threadTrack(span.pid, node: span.node)
        let name = functionIID(span.mfa)
        event.removeAll()
        event.uint(9, EventType.sliceBegin.rawValue)
        event.uint(11, track)
        event.uint(10, name)
        if options.arguments {
            let start = scratchStart()
            if text.appendArguments(arguments, to: &scratch) { annotateScratch(.args, from: start) }
        }
        emit(time: span.start)
        stats.slices += 1
    }

    public func spanEnded(_ span: Span, result: StreamPayload) {
        let track = threadTrack(span.pid, node: span.node)
        if !span.startKnown {
            // Its start is before the capture (or a gap): the begin comes now, stamped in the past.
            event.removeAll()
            event.uint(9, EventType.sliceBegin.rawValue)
            event.uint(11, track)
            event.uint(10, functionIID(span.mfa))
            annotate(.info, "started before the capture")
            emit(time: span.start)
            stats.slices += 1
        }
        event.removeAll()
        event.uint(9, EventType.sliceEnd.rawValue)
        event.uint(11, track)
        if span.ending != .returned { annotate(.reason, span.ending.rawValue) }
        if options.arguments {
            let start = scratchStart()
            if text.appendTerm(result, to: &scratch) { annotateScratch(.result, from: start) }
        }
        emit(time: span.end)
    }

    public func instant(_ instant: StreamInstant, payload: StreamPayload) {
        let e = instant.event
        let track = e.pid != 0 ? threadTrack(e.pid, node: e.node) : nodeTrack(e.node)
        event.removeAll()
        event.uint(9, EventType.instant.rawValue)
        event.uint(11, track)
        event.uint(10, kindIID(e.kind))
        switch e.kind {
        case .send:
            event.fixed64(47, UInt64(instant.flow))
            stats.flowsStarted += 1
        case .receive:
            if let matched = instant.matched {
                event.fixed64(48, UInt64(matched.flow))
                stats.flowsEnded += 1
            }
        case .exit, .monitor, .marker:
            let start = scratchStart()
            if text.appendTerm(payload, to: &scratch) { annotateScratch(.reason, from: start) }
        case .drop:
            annotate(.value, String(e.value))
        default:
            break
        }
        emit(time: e.time)
        stats.instants += 1
    }

    public func counter(_ counter: StreamCounter) {
        let track = counterTrack(counter)
        event.removeAll()
        event.uint(9, EventType.counter.rawValue)
        event.uint(11, track)
        event.int(30, counter.value)
        emit(time: counter.time)
        stats.counters += 1
    }

    public func end(_ analysis: CaptureAnalysis) {
        stats.bytes = out.bytesWritten
    }

    // MARK: packets

    private func annotate(_ name: Annotation, _ value: String) {
        var value = value
        value.withUTF8 { annotate(name, UnsafeRawBufferPointer($0)) }
    }

    /// Where the next printed term goes in `scratch`: terms follow one another (no emptying per
    /// term), the array is emptied once it holds 64 KiB.
    @inline(__always)
    private func scratchStart() -> Int {
        if scratch.count >= 1 << 16 { scratch.removeAll(keepingCapacity: true) }
        return scratch.count
    }

    /// The term printed into `scratch` from `start` as an annotation.
    @inline(__always)
    private func annotateScratch(_ name: Annotation, from start: Int) {
        scratch.withUnsafeBytes { annotate(name, UnsafeRawBufferPointer(rebasing: $0[start...])) }
    }

    /// A DebugAnnotation {name_iid, string_value} written straight into the track event.
    @inline(__always)
    private func annotate(_ name: Annotation, _ value: UnsafeRawBufferPointer) {
        let length = 1 + ProtobufWriter.varintSize(name.rawValue) + 1
            + ProtobufWriter.varintSize(UInt64(value.count)) + value.count
        event.tag(4, 2)
        event.varint(UInt64(length))
        event.uint(1, name.rawValue)
        event.tag(6, 2)
        event.varint(UInt64(value.count))
        event.append(value)
    }

    /// Writes the pending track event (and any names interned for it) as one packet at `time`,
    /// straight into the output.
    private func emit(time: Int64) {
        let t = max(0, time - base) + Self.origin
        packet.removeAll()
        if t >= lastTime {
            packet.uint(Field.timestamp, UInt64(t - lastTime))
            lastTime = t
        } else {
            packet.uint(Field.timestamp, UInt64(t))
            packet.uint(Field.timestampClockID, Self.bootClock)
        }
        packet.uint(Field.sequenceID, Self.sequence)
        packet.uint(Field.sequenceFlags, 2)
        if hasInterned {
            interned.bytes.withUnsafeBytes { names in
                packet.tag(Field.internedData, 2)
                packet.varint(UInt64(names.count))
                packet.append(names)
            }
            interned.bytes.removeAll(keepingCapacity: true)
            hasInterned = false
        }
        packet.tag(Field.trackEvent, 2)
        packet.varint(UInt64(event.count))
        out.reserve()
        out.write(byte: 0x0A)
        out.write(varint: UInt64(packet.count + event.count))
        out.write(packet.bytes)
        out.write(event.bytes)
        stats.packets += 1
    }

    private func writeDescriptor(_ descriptor: [UInt8]) {
        var p = ProtobufWriter(capacity: descriptor.count + 8)
        p.uint(Field.sequenceID, Self.sequence)
        p.message(Field.trackDescriptor, descriptor)
        out.write(byte: 0x0A)
        var length = ProtobufWriter(capacity: 8)
        length.varint(UInt64(p.bytes.count))
        out.write(length.bytes)
        out.write(p.bytes)
        stats.tracks += 1
    }

    private func functionIID(_ mfa: FunctionID) -> UInt64 {
        let index = Int(mfa)
        if index < functionIIDs.count, functionIIDs[index] != 0 { return functionIIDs[index] }
        let iid = intern(text.function(mfa))
        if index < functionIIDs.count { functionIIDs[index] = iid }
        return iid
    }

    private func kindIID(_ kind: EventKind) -> UInt64 {
        let index = Int(kind.rawValue)
        if kindIIDs[index] != 0 { return kindIIDs[index] }
        let iid = intern(kind.otpName)
        kindIIDs[index] = iid
        return iid
    }

    private func intern(_ name: String) -> UInt64 {
        let iid = nextIID
        nextIID += 1
        hasInterned = true
        interned.message(2) { entry in
            entry.uint(1, iid)
            entry.string(2, name)
        }
        return iid
    }

    private func nodeTrack(_ node: NodeID) -> UInt64 {
        let index = Int(node)
        if index >= nodeSeen.count { nodeSeen.append(contentsOf: repeatElement(false, count: index - nodeSeen.count + 1)) }
        if !nodeSeen[index] {
            nodeSeen[index] = true
            var descriptor = ProtobufWriter(capacity: 64)
            descriptor.uint(1, Self.nodeTrackBase + UInt64(node))
            descriptor.message(3) { process in
                process.int(1, Int64(node))
                process.string(6, text.node(node))
            }
            writeDescriptor(descriptor.bytes)
        }
        return Self.nodeTrackBase + UInt64(node)
    }

    private func threadTrack(_ pid: ProcessID, node eventNode: NodeID) -> UInt64 {
        let index = Int(pid)
        if index < threadSeen.count, threadSeen[index] { return UInt64(pid) }
        if index >= threadSeen.count { threadSeen.append(contentsOf: repeatElement(false, count: index - threadSeen.count + 1)) }
        threadSeen[index] = true
        let node = text.node(of: pid, eventNode)
        _ = nodeTrack(node)
        var descriptor = ProtobufWriter(capacity: 64)
        descriptor.uint(1, UInt64(pid))
        descriptor.message(4) { thread in
            thread.int(1, Int64(node))
            thread.int(2, tidBase + Int64(pid))
            thread.string(5, text.process(pid))
        }
        writeDescriptor(descriptor.bytes)
        return UInt64(pid)
    }

    private func counterTrack(_ counter: StreamCounter) -> UInt64 {
        let kindIndex = UInt64(StreamCounter.Kind.allCases.firstIndex(of: counter.kind) ?? 0)
        let id = counter.pid != 0 ? UInt64(counter.pid) : UInt64(counter.node)
        let uuid = Self.counterTrackBase + (kindIndex << 32) + id
        if counterSeen.insert(uuid).inserted {
            let node = nodeTrack(counter.node)
            var descriptor = ProtobufWriter(capacity: 64)
            descriptor.uint(1, uuid)
            descriptor.uint(5, node)
            descriptor.string(2, text.counterName(counter))
            descriptor.message(8) { counterDescriptor in
                if counter.kind == .memory || counter.kind == .nodeMemory { counterDescriptor.uint(3, 3) }  // UNIT_SIZE_BYTES
            }
            writeDescriptor(descriptor.bytes)
        }
        return uuid
    }
}

/// What an export wrote.
public struct ExportStats: Sendable, Codable, Hashable {
    public var slices = 0
    public var instants = 0
    public var counters = 0
    public var flowsStarted = 0
    public var flowsEnded = 0
    public var tracks = 0
    public var packets = 0
    public var bytes: Int64 = 0

    public init() {}
}
