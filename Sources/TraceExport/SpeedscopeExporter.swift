// speedscope's file format (https://www.speedscope.app/file-format-schema.json): one evented
// profile per Erlang process, an open and a close event per traced call, `at` in nanoseconds from
// the stream's start, never decreasing within a profile. Profiles must each be one JSON array, so
// events are spooled per process to a temporary file (in chunks) and written out at the end:
// memory stays bounded by the spool buffer, not by the capture.
import Foundation
import TraceAnalysis
import TraceModel

public final class SpeedscopeExporter: AnalysisStreamConsumer {
    public struct Options: Sendable {
        /// Bytes of events kept in memory before they are spooled to disk. 1 MiB: the buffers' spare
        /// capacity comes on top, and what the export holds must stay small beside the replay's own.
        public var memoryBudget = 1 << 20
        public init() {}
    }

    /// One spooled event: open (1) or close (2), frame, at.
    static let recordSize = 13

    final class Profile {
        var buffer: [UInt8] = []
        var chunks: [(offset: Int64, length: Int)] = []
        var first: Int64 = .max
        var last: Int64 = .min
        var depth = 0
    }

    public let options: Options
    let out: ExportOutput
    private var text: ExportText?
    private var base: Int64 = 0
    private var profiles: [ProcessID: Profile] = [:]
    private var frames: [FunctionID: UInt32] = [:]
    private var frameNames: [FunctionID] = []
    private var buffered = 0
    private var spool: Int32 = -1
    private var spoolPath = ""
    private var spoolSize: Int64 = 0
    private var failure: ExportError?
    public private(set) var stats = ExportStats()

    public init(output: ExportOutput, options: Options = Options()) {
        out = output
        self.options = options
    }

    deinit { closeSpool() }

    public func begin(_ context: StreamContext) {
        text = ExportText(context)
        base = context.startTime
    }

    private func frame(_ mfa: FunctionID) -> UInt32 {
        if let known = frames[mfa] { return known }
        let index = UInt32(frameNames.count)
        frames[mfa] = index
        frameNames.append(mfa)
        return index
    }

    private func record(_ pid: ProcessID, open: Bool, frame: UInt32, at time: Int64) {
        let profile: Profile
        if let existing = profiles[pid] { profile = existing } else { profile = Profile(); profiles[pid] = profile }
        let at = time - base
        profile.first = min(profile.first, at)
        profile.last = max(profile.last, at)
        profile.buffer.append(open ? 1 : 2)
        withUnsafeBytes(of: frame.littleEndian) { profile.buffer.append(contentsOf: $0) }
        withUnsafeBytes(of: at.littleEndian) { profile.buffer.append(contentsOf: $0) }
        buffered += Self.recordSize
        if buffered >= options.memoryBudget { spoolAll() }
    }

    public func spanBegan(_ span: Span, arguments: StreamPayload) {
        record(span.pid, open: true, frame: frame(span.mfa), at: span.start)
        profiles[span.pid]?.depth += 1
    }

    public func spanEnded(_ span: Span, result: StreamPayload) {
        guard span.startKnown, let profile = profiles[span.pid], profile.depth > 0 else { return }
        profile.depth -= 1
        record(span.pid, open: false, frame: frame(span.mfa), at: span.end)
        stats.slices += 1
    }

    private func spoolAll() {
        if spool < 0 {
            spoolPath = NSTemporaryDirectory() + "/beamtrace-speedscope-\(getpid())-\(UInt32.random(in: 0 ... .max))"
            spool = open(spoolPath, O_RDWR | O_CREAT | O_TRUNC, 0o600)
            unlink(spoolPath)
            if spool < 0 { failure = ExportError("cannot create a spool file in \(NSTemporaryDirectory())"); return }
        }
        for profile in profiles.values where !profile.buffer.isEmpty {
            let written = profile.buffer.withUnsafeBytes { pwrite(spool, $0.baseAddress, $0.count, off_t(spoolSize)) }
            guard written == profile.buffer.count else {
                failure = ExportError("writing the speedscope spool failed: \(String(cString: strerror(errno)))")
                return
            }
            profile.chunks.append((spoolSize, profile.buffer.count))
            spoolSize += Int64(profile.buffer.count)
            profile.buffer.removeAll(keepingCapacity: false)
        }
        buffered = 0
    }

    private func closeSpool() {
        if spool >= 0 { close(spool) }
        spool = -1
    }

    public func end(_ analysis: CaptureAnalysis) {
        guard let text else { return }
        out.write("{\"$schema\":\"https://www.speedscope.app/file-format-schema.json\",\"exporter\":\"beamtrace\",")
        out.write("\"name\":")
        out.write(JSONText.quoted("beamtrace capture " + text.context.meta.captureID))
        out.write(",\"activeProfileIndex\":0,\"shared\":{\"frames\":[")
        for (i, mfa) in frameNames.enumerated() {
            if i > 0 { out.write(byte: UInt8(ascii: ",")) }
            out.write("{\"name\":")
            out.write(JSONText.quoted(text.function(mfa)))
            out.write(byte: UInt8(ascii: "}"))
        }
        out.write("]},\"profiles\":[")
        var firstProfile = true
        var chunk: [UInt8] = []
        for pid in profiles.keys.sorted() {
            guard let profile = profiles[pid], profile.first <= profile.last else { continue }
            if !firstProfile { out.write(",\n") }
            firstProfile = false
            out.write("{\"type\":\"evented\",\"name\":")
            out.write(JSONText.quoted(text.process(pid)))
            out.write(",\"unit\":\"nanoseconds\",\"startValue\":")
            out.write(decimal: profile.first)
            out.write(",\"endValue\":")
            out.write(decimal: profile.last)
            out.write(",\"events\":[")
            var firstEvent = true
            func emit(_ bytes: UnsafeRawBufferPointer) {
                var offset = 0
                while offset + Self.recordSize <= bytes.count {
                    let kind = bytes[offset]
                    let frame = bytes.loadUnaligned(fromByteOffset: offset + 1, as: UInt32.self).littleEndian
                    let at = bytes.loadUnaligned(fromByteOffset: offset + 5, as: Int64.self).littleEndian
                    if !firstEvent { out.write(byte: UInt8(ascii: ",")) }
                    firstEvent = false
                    out.write(kind == 1 ? "{\"type\":\"O\",\"frame\":" : "{\"type\":\"C\",\"frame\":")
                    out.write(decimal: Int64(frame))
                    out.write(",\"at\":")
                    out.write(decimal: at)
                    out.write(byte: UInt8(ascii: "}"))
                    offset += Self.recordSize
                }
            }
            for (offset, length) in profile.chunks {
                chunk = Array(repeating: 0, count: length)
                let read = chunk.withUnsafeMutableBytes { pread(spool, $0.baseAddress, length, off_t(offset)) }
                if read != length { failure = ExportError("reading the speedscope spool failed"); break }
                chunk.withUnsafeBytes { emit($0) }
            }
            profile.buffer.withUnsafeBytes { emit($0) }
            out.write("]}")
        }
        out.write("]}\n")
        closeSpool()
        stats.bytes = out.bytesWritten
    }

    /// Set when spooling failed; the export must not be kept.
    public var error: ExportError? { failure }
}
