// Import of what OTP writes: dbg file-port files, wrap sets, ttb upload directories (with their
// .ti process names), raw ip-port streams (a file or stdin). Several sources are merged by time.
import Foundation
import SystemPackage
import BeamTerm
import TraceModel

public struct ImportReport: Sendable {
    public var events = 0
    public var drops: Int64 = 0
    public var files: [String] = []
    /// Truncated tails and other things imported with a caveat.
    public var warnings: [String] = []
}

/// One stream of trace-port frames: a sequence of files read in order (one, or a wrap set).
public struct TraceSource: Sendable, Hashable {
    public var name: String
    /// Files in reading order; "-" is standard input.
    public var files: [String]
    /// ttb `.ti` metadata files that name this source's processes.
    public var metadata: [String] = []
    public init(name: String, files: [String], metadata: [String] = []) {
        self.name = name
        self.files = files
        self.metadata = metadata
    }

    /// Works out what a path is: "-" (stdin), a file, a wrap set (a file of one, or a prefix), or a
    /// ttb upload directory (one source per node).
    public static func detect(_ path: String) throws -> [TraceSource] {
        if path == "-" { return [TraceSource(name: "stdin", files: ["-"])] }
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
        if exists && isDirectory.boolValue { return try ttbDirectory(path) }
        if let wrap = wrapSet(path), wrap.count > 1 || !exists { return [TraceSource(name: path, files: wrap)] }
        guard exists else { throw CaptureError(.importFailed, "\(path): no such file, wrap set or ttb directory") }
        return [TraceSource(name: path, files: [path])]
    }

    /// Files of a wrap set named by one of its files (`w3.trc`) or its prefix (`w`), ordered as
    /// `dbg:wrap_sortfix` does: by counter, starting just after the gap.
    static func wrapSet(_ path: String) -> [String]? {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        let base = url.lastPathComponent
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return nil }
        // Prefix and suffix: either `base` is the prefix, or base = prefix + digits + suffix.
        var candidates: [(prefix: String, suffix: String)] = []
        if let match = base.firstMatch(of: /^(.*?)([0-9]+)(\.[^0-9]*)?$/) {
            candidates.append((String(match.1), String(match.3 ?? "")))
        }
        candidates.append((base, ""))
        for (prefix, fixedSuffix) in candidates {
            var numbered: [(Int, String)] = []
            for name in names where name.hasPrefix(prefix) && name.count > prefix.count {
                let rest = name.dropFirst(prefix.count)
                let digits = rest.prefix { $0.isNumber }
                let suffix = rest.dropFirst(digits.count)
                guard !digits.isEmpty, let number = Int(digits) else { continue }
                if !fixedSuffix.isEmpty && suffix != fixedSuffix { continue }
                if fixedSuffix.isEmpty && !(suffix.isEmpty || suffix.hasPrefix(".")) { continue }
                numbered.append((number, directory + "/" + name))
            }
            if numbered.isEmpty { continue }
            numbered.sort { $0.0 < $1.0 }
            var start = 0
            for i in 0..<(numbered.count - 1) where numbered[i + 1].0 != numbered[i].0 + 1 {
                start = i + 1
                break
            }
            return (numbered[start...] + numbered[..<start]).map(\.1)
        }
        return nil
    }

    /// A `ttb:stop([fetch])` upload directory: per node a `<node>-<name>` file (or wrap set) and its `.ti`.
    static func ttbDirectory(_ path: String) throws -> [TraceSource] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
        var sources: [TraceSource] = []
        for ti in names where ti.hasSuffix(".ti") {
            let stem = String(ti.dropLast(3))
            var files: [String] = []
            if names.contains(stem) {
                files = [path + "/" + stem]
            } else if let wrap = wrapSet(path + "/" + stem + "."), !wrap.isEmpty {
                files = wrap
            }
            if !files.isEmpty { sources.append(TraceSource(name: stem, files: files, metadata: [path + "/" + ti])) }
        }
        guard !sources.isEmpty else {
            throw CaptureError(.importFailed, "\(path): a directory without ttb trace files (<node>-<name> with <node>-<name>.ti)")
        }
        return sources
    }
}

/// Reads frames from a source's files in order, a chunk at a time.
final class FrameStream {
    let source: TraceSource
    private var fileIndex = 0
    private var fd: FileDescriptor?
    private var buffer: [UInt8]
    private var start = 0
    private var end = 0
    private var fileOffset: Int64 = 0
    /// Bytes read from all files so far (progress).
    private(set) var bytesRead: Int64 = 0
    private(set) var finished = false
    var lastTime: Int64 = 0
    var warnings: [String] = []
    private let scanner = FrameScanner()

    init(_ source: TraceSource, chunkSize: Int = 4 << 20) {
        self.source = source
        buffer = Array(repeating: 0, count: chunkSize)
    }

    deinit { closeFile() }

    private func closeFile() {
        if let fd, fd.rawValue != 0 { try? fd.close() }
        fd = nil
    }

    /// Decodes up to `limit` events into `batch`; false once the source is exhausted.
    func decode(limit: Int, decoder: inout TraceMessageDecoder, into batch: inout EventBatch) throws -> Bool {
        let target = batch.count + limit
        while batch.count < target {
            if fd == nil {
                guard fileIndex < source.files.count else {
                    finished = true
                    return false
                }
                let path = source.files[fileIndex]
                fd = path == "-" ? FileDescriptor.standardInput : try SegmentIO.openForReading(path)
                fileOffset = 0
                start = 0
                end = 0
            }
            // Frames in the buffer.
            let path = source.files[fileIndex]
            var consumed = 0
            let bufferOffset = fileOffset - Int64(end - start)
            do {
                consumed = try buffer.withUnsafeBytes { raw in
                    try scanner.scan(UnsafeRawBufferPointer(rebasing: raw[start..<end]), streamOffset: bufferOffset) { frame, at in
                        guard batch.count < target else { throw StopScan(offset: at) }
                        switch frame {
                        case .message(let body):
                            do {
                                try decoder.decode(body, into: &batch)
                            } catch {
                                throw CaptureError(.importFailed, "\(path): trace message at byte \(at) does not decode: \(error)")
                            }
                        case .drop(let count):
                            decoder.appendDrop(count: Int64(count), into: &batch)
                        }
                    }
                }
            } catch let stop as StopScan {
                consumed = Int(stop.offset - bufferOffset)
            } catch let error as FrameError {
                throw CaptureError(.importFailed, "\(path): \(error); not a trace-port file or corrupt (nothing after it was imported)")
            }
            start += consumed
            if batch.count >= target { return true }
            // Refill: keep the partial frame.
            if start > 0 {
                let remaining = end - start
                if remaining > 0 {
                    buffer.withUnsafeMutableBytes { raw in
                        raw.baseAddress!.copyMemory(from: raw.baseAddress! + start, byteCount: remaining)
                    }
                }
                end = remaining
                start = 0
            }
            if end == buffer.count {
                // One frame larger than the buffer: grow.
                buffer.append(contentsOf: repeatElement(0, count: buffer.count))
            }
            guard let fd else { continue }
            let n = try buffer.withUnsafeMutableBytes { raw in
                try fd.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[end...]))
            }
            if n == 0 {
                if end - start > 0 {
                    warnings.append("\(path): the last \(end - start) bytes are an incomplete trace frame (cut off while being written?); imported up to byte \(fileOffset - Int64(end - start))")
                }
                closeFile()
                fileIndex += 1
                continue
            }
            end += n
            fileOffset += Int64(n)
            bytesRead += Int64(n)
        }
        return true
    }

    struct StopScan: Error { var offset: Int64 }
}

public struct Importer {
    public var decoderOptions: TraceDecoderOptions
    public var writerOptions: CaptureWriter.Options
    /// Told how many bytes of the sources were read.
    public var progress: (any ProgressReporter)?
    public init(decoderOptions: TraceDecoderOptions = .init(), writerOptions: CaptureWriter.Options = .init()) {
        self.decoderOptions = decoderOptions
        self.writerOptions = writerOptions
    }

    /// Imports `sources` (merged by time) into a new capture at `output`.
    public func run(sources paths: [String], output: String) throws -> ImportReport {
        var sources: [TraceSource] = []
        for path in paths { sources += try TraceSource.detect(path) }
        return try run(sources: sources, output: output)
    }

    public func run(sources: [TraceSource], output: String) throws -> ImportReport {
        var meta = CaptureMeta()
        meta.sources = sources.flatMap(\.files)
        meta.payloadLimit = decoderOptions.payloadLimit
        meta.redacted = decoderOptions.redact
        meta.startReason = "import"
        var decoder = TraceMessageDecoder(options: decoderOptions)
        var report = ImportReport()
        report.files = meta.sources
        for source in sources {
            for ti in source.metadata { report.warnings += applyTraceInfo(ti, decoder: &decoder, meta: &meta) }
        }
        let writer = try CaptureWriter(creating: output, meta: meta, options: writerOptions)
        let streams = sources.map { FrameStream($0) }
        let totalBytes = sources.flatMap(\.files).reduce(Int64(0)) { sum, path in
            sum + ((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int64) ?? 0)
        }
        var meter = ProgressMeter(progress, task: "import", total: totalBytes, unit: "bytes", step: 1)
        defer { meter.finish() }
        let blockEvents = writerOptions.blockEvents
        var out = EventBatch(reservingCapacity: blockEvents)
        do {
            if streams.count == 1, let stream = streams.first {
                while try stream.decode(limit: blockEvents - out.count, decoder: &decoder, into: &out) || !out.isEmpty {
                    if out.count >= blockEvents || stream.finished {
                        report.events += out.count
                        try writer.append(out, dictionaries: decoder.dictionaries)
                        out.removeAll()
                        meter.set(done: stream.bytesRead)
                    }
                    if stream.finished { break }
                }
            } else {
                try merge(streams, decoder: &decoder, writer: writer, report: &report, meter: &meter)
            }
            writer.updateMeta { $0.timeBase = Self.name(decoder.timeBase) }
            try writer.close(stopReason: "end of input")
        } catch {
            try? writer.close(stopReason: "import failed: \(error)")
            throw error
        }
        for stream in streams { report.warnings += stream.warnings }
        return report
    }

    static func name(_ base: TimeBase) -> String {
        switch base {
        case .none: return "none"
        case .monotonic: return "monotonic"
        case .system: return "system"
        }
    }

    /// k-way merge of several sources by time, a chunk of each at a time.
    private func merge(_ streams: [FrameStream], decoder: inout TraceMessageDecoder, writer: CaptureWriter,
                       report: inout ImportReport, meter: inout ProgressMeter) throws {
        var chunks = streams.map { _ in EventBatch(reservingCapacity: 4096) }
        var cursors = Array(repeating: 0, count: streams.count)
        var out = EventBatch(reservingCapacity: writerOptions.blockEvents)
        func refill(_ s: Int) throws {
            guard cursors[s] >= chunks[s].count, !streams[s].finished else { return }
            chunks[s].removeAll()
            cursors[s] = 0
            decoder.lastTime = streams[s].lastTime
            _ = try streams[s].decode(limit: 4096, decoder: &decoder, into: &chunks[s])
            streams[s].lastTime = decoder.lastTime
        }
        while true {
            for s in streams.indices { try refill(s) }
            var best = -1
            var bestTime = Int64.max
            for s in streams.indices where cursors[s] < chunks[s].count {
                let t = chunks[s].times[cursors[s]]
                if best < 0 || t < bestTime { best = s; bestTime = t }
            }
            if best < 0 { break }
            var limit = Int64.max
            for s in streams.indices where s != best && cursors[s] < chunks[s].count {
                limit = min(limit, chunks[s].times[cursors[s]])
            }
            let chunk = chunks[best]
            var i = cursors[best]
            repeat {
                out.append(chunk[i], payload: chunk.payload(i))
                i += 1
            } while i < chunk.count && chunk.times[i] <= limit
            cursors[best] = i
            if out.count >= writerOptions.blockEvents {
                report.events += out.count
                try writer.append(out, dictionaries: decoder.dictionaries)
                out.removeAll()
                meter.set(done: streams.reduce(0) { $0 + $1.bytesRead })
            }
        }
        if !out.isEmpty {
            report.events += out.count
            try writer.append(out, dictionaries: decoder.dictionaries)
        }
    }

    /// Reads a ttb `.ti` file: `Len:8, term_to_binary(Term)` records; `{'$size', N}` announces a long
    /// term. Process names and initial calls go into the dictionaries, nodes into the meta.
    func applyTraceInfo(_ path: String, decoder: inout TraceMessageDecoder, meta: inout CaptureMeta) -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else { return ["\(path): cannot read"] }
        let bytes = [UInt8](data)
        var offset = 0
        let termDecoder = TermDecoder()
        while offset < bytes.count {
            var length = Int(bytes[offset])
            offset += 1
            guard offset + length <= bytes.count,
                  var term = try? termDecoder.decode(Array(bytes[offset..<(offset + length)])) else {
                return ["\(path): unreadable metadata at byte \(offset - 1); process names after it are missing"]
            }
            offset += length
            if case .tuple(let sized) = term, sized.count == 2, sized[0] == .atom("$size"), let n = sized[1].int64Value {
                length = Int(n)
                guard offset + length <= bytes.count, let long = try? termDecoder.decode(Array(bytes[offset..<(offset + length)])) else {
                    return ["\(path): unreadable metadata at byte \(offset); process names after it are missing"]
                }
                offset += length
                term = long
            }
            guard case .tuple(let elements) = term, elements.count == 2, case .atom(let key) = elements[0] else { continue }
            switch key.name {
            case "node":
                if case .atom(let node) = elements[1], !meta.nodes.contains(where: { $0.name == node.name }) {
                    meta.nodes.append(CaptureMeta.NodeInfo(name: node.name))
                }
            case "pid":
                guard case .tuple(let info) = elements[1], info.count == 2, let process = decoder.internProcess(info[0]) else { continue }
                switch info[1] {
                case .atom(let name):
                    let atom = decoder.dictionaries.intern(atom: name.name)
                    decoder.dictionaries.setRegisteredName(atom, for: process)
                case .tuple(let mfa) where mfa.count == 3:
                    if case .atom(let m) = mfa[0], case .atom(let f) = mfa[1] {
                        let arity = mfa[2].int64Value ?? Int64(mfa[2].listElements?.count ?? 0)
                        let id = decoder.dictionaries.intern(module: m.name, function: f.name, arity: Int(arity))
                        decoder.dictionaries.setInitialCall(id, for: process)
                    }
                default: break
                }
            default: break
            }
        }
        return []
    }
}
