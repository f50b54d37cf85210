// Import of what OTP writes: dbg file-port files, wrap sets, ttb upload directories (with their
// .ti process names), raw ip-port streams (a file or stdin). Several sources are merged by time.
// Each file is imported exactly once and only when named: a path that is a file is that file
// alone; a wrap set is named by its prefix (or with `wrap`). Frames go through `FrameIngest`, the
// same loop live recording uses; a failed import keeps every good event before the failure and
// says where the capture is.
import Foundation
import SystemPackage
import BeamTerm
import TraceModel

public struct ImportReport: Sendable {
    /// Events written to the capture.
    public var events = 0
    public var drops: Int64 = 0
    /// Every file read, in reading order.
    public var files: [String] = []
    /// Truncated tails and other things imported with a caveat.
    public var warnings: [String] = []
    /// Trace messages that did not decode (skipped), and all bytes skipped (bad frames, bytes between frames).
    public var framesSkipped = 0
    public var bytesSkipped: Int64 = 0
    /// Where input was skipped (the first 100 places per source).
    public var damage: [IngestDamage] = []
    /// The input had damage that was skipped (an exit status of its own for scripts).
    public var isDamaged: Bool { !damage.isEmpty || framesSkipped > 0 }
}

/// An import that stopped: why, and what it kept where.
public struct ImportFailure: Error, Sendable, CustomStringConvertible {
    public var reason: String
    public var report: ImportReport
    /// The capture directory holding what was kept, or nil when nothing was and it was removed.
    public var capture: String?
    public var description: String {
        if let capture {
            return "\(reason); the \(report.events) events before it are kept in \(capture) (readable: beamtrace info "
                + "\(capture)); to retry, import into a new directory"
        }
        return "\(reason); nothing was imported (no capture was left behind)"
    }
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

    /// Works out what a path is: "-" (stdin), a file (that file alone), a wrap set named by its
    /// prefix (`w` for `w0.trc`, `w1.trc`, ...), or a ttb upload directory (one source per node).
    /// With `wrap`, a file of a wrap set stands for its whole set.
    public static func detect(_ path: String, wrap: Bool = false) throws -> [TraceSource] {
        if path == "-" { return [TraceSource(name: "stdin", files: ["-"])] }
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
        if exists && isDirectory.boolValue { return try ttbDirectory(path) }
        if exists && !wrap { return [TraceSource(name: path, files: [path])] }
        if !exists, path.contains(where: { "*?[".contains($0) }) {
            // A pattern the shell did not expand (quoted): each file it matches, alone.
            let matches = Self.glob(path)
            guard !matches.isEmpty else { throw CaptureError(.importFailed, "\(path): no file matches") }
            return try matches.flatMap { try detect($0, wrap: wrap) }
        }
        if let set = wrapSet(path, asPrefix: !exists), !set.isEmpty { return [TraceSource(name: path, files: set)] }
        guard exists else {
            throw CaptureError(.importFailed, "\(path): no such file, wrap-set prefix (\(path)<N><suffix>) or ttb directory")
        }
        return [TraceSource(name: path, files: [path])]
    }

    /// The sources of several paths, each file once: a file named twice (or both alone and as part
    /// of a wrap set) is read only where it first appears.
    public static func detect(_ paths: [String], wrap: Bool = false) throws -> [TraceSource] {
        var seen = Set<String>()
        var result: [TraceSource] = []
        for path in paths {
            for var source in try detect(path, wrap: wrap) {
                source.files = source.files.filter { file in
                    file == "-" ? seen.insert("-").inserted : seen.insert(Self.identity(file)).inserted
                }
                if !source.files.isEmpty { result.append(source) }
            }
        }
        return result
    }

    static func glob(_ pattern: String) -> [String] {
        var result = glob_t()
        defer { globfree(&result) }
        guard Glibc.glob(pattern, 0, nil, &result) == 0 else { return [] }
        return (0..<Int(result.gl_pathc)).compactMap { result.gl_pathv[$0].map { String(cString: $0) } }
    }

    /// A file's identity across spellings (`./a`, `a`, a symlink): device and inode, else the resolved path.
    static func identity(_ path: String) -> String {
        var info = stat()
        if stat(path, &info) == 0 { return "\(info.st_dev):\(info.st_ino)" }
        return URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
    }

    /// Files of a wrap set named by its prefix (`w`) or, unless `asPrefix`, by one of its files
    /// (`w3.trc`), ordered as `dbg:wrap_sortfix` does: by counter, starting just after the gap.
    static func wrapSet(_ path: String, asPrefix: Bool = true) -> [String]? {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        let base = url.lastPathComponent
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return nil }
        // Prefix and suffix: either `base` is the prefix, or base = prefix + digits + suffix.
        var candidates: [(prefix: String, suffix: String)] = []
        if !asPrefix, let match = base.firstMatch(of: /^(.*?)([0-9]+)(\.[^0-9]*)?$/) {
            candidates.append((String(match.1), String(match.3 ?? "")))
        }
        if asPrefix { candidates.append((base, "")) }
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

/// Reads frames from a source's files in order, a chunk at a time (read ahead on another core, see
/// ChunkReader), through the ingest loop.
final class FrameStream {
    let source: TraceSource
    private let chunkSize: Int
    private var fileIndex = 0
    private var fd: FileDescriptor?
    private var reader: ChunkReader?
    /// The bytes of the file at hand not consumed yet end at `fileOffset`; `bytes[start...]` are they.
    private var bytes = UnsafeRawBufferPointer(start: nil, count: 0)
    private var start = 0
    private var fileOffset: Int64 = 0
    /// Bytes read from all files so far (progress).
    private(set) var bytesRead: Int64 = 0
    private var atEnd = false
    private(set) var finished = false
    var lastTime: Int64 = 0
    var warnings: [String] = []
    var ingest: FrameIngest

    init(_ source: TraceSource, strict: Bool, chunkSize: Int) {
        self.source = source
        self.chunkSize = chunkSize
        ingest = FrameIngest(strict: strict)
    }

    deinit { closeFile() }

    private func closeFile() {
        reader?.wait()
        reader = nil
        bytes = UnsafeRawBufferPointer(start: nil, count: 0)
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
                let opened = path == "-" ? FileDescriptor.standardInput : try SegmentIO.openForReading(path)
                fd = opened
                // Standard input is read when needed: a read ahead could wait on it for ever.
                reader = ChunkReader(opened, chunkSize: chunkSize, ahead: path != "-")
                fileOffset = 0
                bytes = UnsafeRawBufferPointer(start: nil, count: 0)
                start = 0
                atEnd = false
            }
            let path = source.files[fileIndex]
            let bufferOffset = fileOffset - Int64(bytes.count - start)
            let consumed = try ingest.consume(UnsafeRawBufferPointer(rebasing: bytes[start...]), streamOffset: bufferOffset,
                                              source: path, atEnd: atEnd, limit: target - batch.count,
                                              decoder: &decoder, into: &batch)
            start += consumed
            if batch.count >= target { return true }
            if atEnd {
                try ingest.finish(source: path, at: fileOffset)
                if let tail = ingest.tail, tail.source == path {
                    warnings.append("\(path): the last \(tail.bytes) bytes are an incomplete trace frame (cut off while "
                                    + "being written?); imported up to byte \(tail.offset)")
                }
                closeFile()
                fileIndex += 1
                continue
            }
            guard let reader else { continue }
            let next: (bytes: UnsafeRawBufferPointer, read: Int)
            do {
                next = try reader.next(keeping: UnsafeRawBufferPointer(rebasing: bytes[start...]))
            } catch {
                throw CaptureError(.io, "cannot read \(path) at byte \(fileOffset): \(error)")
            }
            bytes = next.bytes
            start = 0
            if next.read == 0 { atEnd = true; continue }
            fileOffset += Int64(next.read)
            bytesRead += Int64(next.read)
        }
        return true
    }
}

/// Batches handed to the writer, reused once it is done with them: the writer holds at most a few
/// blocks at a time, so the batch handed over several blocks ago is free again and refilling it
/// touches no new memory (a fresh batch per block costs page faults on every block).
struct BatchRing {
    private var spares: [EventBatch] = Array(repeating: EventBatch(), count: 4)
    private var next = 0

    /// Takes a spare batch, empty, into `batch` and keeps the one just handed over for later.
    mutating func rotate(_ batch: inout EventBatch) {
        let events = batch.count, payloadBytes = batch.payloadBytes.count
        swap(&batch, &spares[next])
        next = (next + 1) % spares.count
        batch.removeAll()
        if batch.times.capacity < events { batch.reserveCapacity(events, payloadBytes: payloadBytes) }
    }
}

public struct Importer {
    public var decoderOptions: TraceDecoderOptions
    public var writerOptions: CaptureWriter.Options
    /// Stop at the first bad frame (default: count it, skip it, go on).
    public var strict = false
    /// A file of a wrap set stands for its whole set.
    public var wrap = false
    /// Told how many bytes of the sources were read.
    public var progress: (any ProgressReporter)?
    /// Bytes read from a file at a time (small in tests, so frames straddle many chunks).
    var chunkSize = 4 << 20
    public init(decoderOptions: TraceDecoderOptions = .init(), writerOptions: CaptureWriter.Options = .init(),
                strict: Bool = false, wrap: Bool = false) {
        self.decoderOptions = decoderOptions
        self.writerOptions = writerOptions
        self.strict = strict
        self.wrap = wrap
    }

    /// Imports `sources` (merged by time) into a new capture at `output`.
    public func run(sources paths: [String], output: String) throws -> ImportReport {
        try run(sources: try TraceSource.detect(paths, wrap: wrap), output: output)
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
        let existed = FileManager.default.fileExists(atPath: output)
        let writer = try CaptureWriter(creating: output, meta: meta, options: writerOptions)
        let streams = sources.map { FrameStream($0, strict: strict, chunkSize: chunkSize) }
        let totalBytes = sources.flatMap(\.files).reduce(Int64(0)) { sum, path in
            sum + ((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int64) ?? 0)
        }
        var meter = ProgressMeter(progress, task: "import", total: totalBytes, unit: "bytes", step: 1)
        defer { meter.finish() }
        let blockEvents = writerOptions.blockEvents
        var out = EventBatch(reservingCapacity: blockEvents)
        var spares = BatchRing()
        var written = 0
        func collect() {
            for stream in streams {
                report.framesSkipped += stream.ingest.framesSkipped
                report.bytesSkipped += stream.ingest.bytesSkipped
                report.damage += stream.ingest.damage
                report.warnings += stream.warnings
            }
        }
        do {
            if streams.count == 1, let stream = streams.first {
                do {
                    while try stream.decode(limit: blockEvents - out.count, decoder: &decoder, into: &out) || !out.isEmpty {
                        if out.count >= blockEvents || stream.finished {
                            try writer.append(out, dictionaries: decoder.dictionaries)
                            written += out.count
                            spares.rotate(&out)
                            meter.set(done: stream.bytesRead)
                        }
                        if stream.finished { break }
                    }
                } catch {
                    // Every good event before the failure is kept.
                    if !out.isEmpty, (try? writer.append(out, dictionaries: decoder.dictionaries)) != nil { written += out.count }
                    throw error
                }
            } else {
                try merge(streams, decoder: &decoder, writer: writer, written: &written, meter: &meter)
            }
            writer.updateMeta { $0.timeBase = Self.name(decoder.timeBase) }
            try writer.close(stopReason: "end of input")
        } catch {
            writer.updateMeta { $0.timeBase = Self.name(decoder.timeBase) }
            try? writer.close(stopReason: "import failed: \(error)")
            collect()
            // What is on disk: after a write failure, fewer than were handed to the writer.
            report.events = min(written, writer.statistics.events)
            var kept: String? = output
            if report.events == 0 {
                Self.remove(output, wholeDirectory: !existed)
                kept = nil
            }
            throw ImportFailure(reason: "import stopped: \(error)", report: report, capture: kept)
        }
        collect()
        report.events = written
        report.drops = streams.reduce(0) { $0 + $1.ingest.dropped }
        return report
    }

    /// Removes a capture this import created (only its own files when the directory existed before).
    static func remove(_ output: String, wholeDirectory: Bool) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: output)) ?? []
        for name in names where name.hasPrefix("segment-") {
            try? FileManager.default.removeItem(atPath: output + "/" + name)
        }
        if wholeDirectory { try? FileManager.default.removeItem(atPath: output) }
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
                       written: inout Int, meter: inout ProgressMeter) throws {
        var chunks = streams.map { _ in EventBatch(reservingCapacity: 4096) }
        var cursors = Array(repeating: 0, count: streams.count)
        var out = EventBatch(reservingCapacity: writerOptions.blockEvents)
        var spares = BatchRing()
        func refill(_ s: Int) throws {
            guard cursors[s] >= chunks[s].count, !streams[s].finished else { return }
            chunks[s].removeAll()
            cursors[s] = 0
            decoder.lastTime = streams[s].lastTime
            _ = try streams[s].decode(limit: 4096, decoder: &decoder, into: &chunks[s])
            streams[s].lastTime = decoder.lastTime
        }
        func mergeLoop() throws {
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
                    try writer.append(out, dictionaries: decoder.dictionaries)
                    written += out.count
                    spares.rotate(&out)
                    meter.set(done: streams.reduce(0) { $0 + $1.bytesRead })
                }
            }
            if !out.isEmpty {
                try writer.append(out, dictionaries: decoder.dictionaries)
                written += out.count
                out.removeAll()
            }
        }
        do {
            try mergeLoop()
        } catch {
            // Keep every good event decoded before the failure, including what the other sources had ready.
            for s in streams.indices where cursors[s] < chunks[s].count {
                for i in cursors[s]..<chunks[s].count { out.append(chunks[s][i], payload: chunks[s].payload(i)) }
            }
            if !out.isEmpty, (try? writer.append(out, dictionaries: decoder.dictionaries)) != nil { written += out.count }
            throw error
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
                guard n >= 0, n <= Int64(bytes.count - offset) else {
                    return ["\(path): metadata at byte \(offset) announces a \(n)-byte term the file cannot hold; "
                            + "process names after it are missing"]
                }
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
