// Turns command-line filters (names as people write them) into an `EventQuery` of dictionary ids.
import TraceModel

extension EventQuery {
    /// - Parameters:
    ///   - from/to: nanoseconds, absolute, or `+N[ns|us|ms|s]` from the capture's first event.
    ///   - pids: `<0.80.0>`-style text or registered names.
    ///   - functions: `mod`, `mod:fun` or `mod:fun/arity`.
    public static func parse(reader: CaptureReader, start: Int64?, from: String?, to: String?, nodes: [String],
                             pids: [String], functions: [String], kinds: [String]) throws -> EventQuery {
        let d = reader.dictionaries
        var query = EventQuery()
        func time(_ text: String) throws -> Int64 {
            if text.hasPrefix("+") {
                var body = text.dropFirst()
                var scale: Double = 1
                for (suffix, factor) in [("ns", 1.0), ("us", 1e3), ("ms", 1e6), ("s", 1e9)] where body.hasSuffix(suffix) {
                    body = body.dropLast(suffix.count)
                    scale = factor
                    break
                }
                guard let value = Double(body) else { throw CaptureError(.invalidArgument, "bad time \(text)") }
                return (start ?? 0) + Int64(value * scale)
            }
            guard let value = Int64(text) else {
                throw CaptureError(.invalidArgument, "bad time \(text): give nanoseconds or +N[ns|us|ms|s]")
            }
            return value
        }
        if let from { query.from = try time(from) }
        if let to { query.to = try time(to) }
        if !kinds.isEmpty {
            query.kinds = Set(try kinds.flatMap { $0.split(separator: ",") }.map { name in
                guard let kind = EventKind(otpName: String(name)) else {
                    throw CaptureError(.invalidArgument, "unknown kind \(name): use OTP's tag names (call, return_from, receive...)")
                }
                return kind
            })
        }
        if !nodes.isEmpty {
            query.nodes = Set(nodes.compactMap { d.nodeID(named: $0) })
        }
        if !pids.isEmpty {
            var set = Set<ProcessID>()
            for text in pids {
                let named = d.processes(named: text)
                if !named.isEmpty { set.formUnion(named); continue }
                for id in d.processes.indices.dropFirst() where d.processText(ProcessID(id)) == text { set.insert(ProcessID(id)) }
            }
            query.pids = set
        }
        if !functions.isEmpty {
            var set = Set<FunctionID>()
            for text in functions {
                let parts = text.split(separator: ":", maxSplits: 1)
                let module = String(parts[0])
                var function: String?
                var arity: UInt32?
                if parts.count == 2 {
                    let fa = parts[1].split(separator: "/", maxSplits: 1)
                    function = String(fa[0])
                    if fa.count == 2 {
                        guard let a = UInt32(fa[1]) else { throw CaptureError(.invalidArgument, "bad arity in \(text)") }
                        arity = a
                    }
                }
                for (id, mfa) in d.functions.enumerated().dropFirst() where d.atom(mfa.module) == module {
                    if let function, d.atom(mfa.function) != function { continue }
                    if let arity, mfa.arity != arity { continue }
                    set.insert(FunctionID(id))
                }
            }
            query.functions = set
        }
        return query
    }
}
