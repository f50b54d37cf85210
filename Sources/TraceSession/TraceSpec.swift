// What a recording traces: function patterns (compiled to match specs), which processes, which
// event sets, and the flags that follow from them. Parsed from the command line's words by
// `TracePattern(parsing:)` and friends; turned into the agent's configuration by `TraceSession`.
import BeamTerm
import TraceModel

/// One function pattern: `mod`, `mod:fun`, `mod:fun/arity`, `Mod.fun/arity` (Elixir), `mod:fun(Args)`,
/// optionally `when Guard`, `-> actions`, or a raw match spec after the head.
public struct TracePattern: Sendable, Hashable, CustomStringConvertible {
    public enum Scope: String, Sendable, Hashable {
        /// `tpl`: every call, local ones included.
        case local
        /// `tp`: calls to exported functions from other modules only.
        case global
    }

    public enum Action: String, Sendable, Hashable, CaseIterable {
        case `return`, exception, caller, processDump = "process_dump"
    }

    /// The text as given.
    public var text: String
    public var module: String
    /// nil for every function (`'_'`).
    public var function: String?
    /// nil for every arity.
    public var arity: Int?
    /// The argument patterns of `mod:fun(A, B)`, as Erlang source.
    public var argumentPatterns: String?
    /// The guard after `when`, as Erlang source.
    public var guardText: String?
    /// Actions after `->`.
    public var actions: [Action]
    /// A raw match spec given after the head.
    public var rawMatchSpec: Term?
    public var scope: Scope

    public var description: String { text }

    /// Modules whose every function would flood a node; refused without `--i-know`.
    public static let broadModules: Set<String> = [
        "_", "erlang", "lists", "maps", "ets", "proplists", "binary", "string", "unicode", "io_lib", "io",
        "gen", "gen_server", "gen_statem", "gen_event", "proc_lib", "sys", "erts_internal", "prim_eval",
        "Elixir.Enum", "Elixir.Kernel", "Elixir.Map", "Elixir.List", "Elixir.GenServer",
    ]

    /// True when the pattern covers a whole broad module (or every module).
    public var isBroad: Bool {
        module == "_" || (function == nil && Self.broadModules.contains(module))
    }

    public init(parsing text: String, scope: Scope = .local) throws(TraceSpecError) {
        self.text = text
        self.scope = scope
        self.actions = []
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        guard !rest.isEmpty else { throw TraceSpecError("empty pattern") }
        // Head: up to " when ", "->" or a raw match spec "[".
        let (head, tail) = Self.splitHead(rest)
        rest = tail
        (module, function, arity, argumentPatterns) = try Self.parseHead(head, whole: text)
        rest = rest.drop { $0 == " " }
        if rest.hasPrefix("[") {
            do {
                rawMatchSpec = try TermParser().parse(String(rest))
            } catch {
                throw TraceSpecError("pattern \(text): the match spec does not parse: \(error)")
            }
            guard case .list = rawMatchSpec else {
                throw TraceSpecError("pattern \(text): a match spec is a list of {Head, Guards, Body} tuples")
            }
            return
        }
        if rest.hasPrefix("when ") || rest.hasPrefix("when(") {
            let afterWhen = rest.dropFirst(4)
            if let arrow = afterWhen.range(of: "->") {
                guardText = afterWhen[..<arrow.lowerBound].trimmingCharacters(in: .whitespaces)
                rest = afterWhen[arrow.lowerBound...]
            } else {
                guardText = afterWhen.trimmingCharacters(in: .whitespaces)
                rest = ""
            }
            if guardText?.isEmpty ?? true { throw TraceSpecError("pattern \(text): nothing after `when`") }
            if argumentPatterns == nil {
                throw TraceSpecError("pattern \(text): a guard needs named arguments, e.g. mod:fun(A, B) when A > 10")
            }
        }
        if rest.hasPrefix("->") {
            for word in rest.dropFirst(2).split(separator: ",") {
                let name = word.trimmingCharacters(in: .whitespaces)
                let normalized = name == "return_trace" ? "return" : name == "exception_trace" ? "exception" : name
                guard let action = Action(rawValue: normalized) else {
                    throw TraceSpecError("pattern \(text): unknown action `\(name)` (known: return, exception, caller, process_dump)")
                }
                actions.append(action)
            }
            rest = ""
        }
        guard rest.isEmpty else {
            throw TraceSpecError("pattern \(text): cannot read `\(rest)` (expected `when Guard`, `-> actions` or a match spec)")
        }
    }

    private static func splitHead(_ text: Substring) -> (Substring, Substring) {
        var depth = 0
        var quoted = false
        var index = text.startIndex
        while index < text.endIndex {
            let c = text[index]
            if c == "'" { quoted.toggle() }
            if !quoted {
                if c == "(" { depth += 1 }
                if c == ")" { depth -= 1 }
                if depth == 0 {
                    let remainder = text[index...]
                    if c == "[" || remainder.hasPrefix("->") || remainder.hasPrefix(" when ") || remainder.hasPrefix(" when(")
                        || remainder.hasPrefix(" ->") || remainder.hasPrefix(" [") {
                        return (text[..<index], remainder)
                    }
                }
            }
            index = text.index(after: index)
        }
        return (text, "")
    }

    private static func parseHead(_ head: Substring, whole: String) throws(TraceSpecError)
        -> (String, String?, Int?, String?) {
        var head = head.trimmingCharacters(in: .whitespaces)[...]
        var arguments: String?
        if head.hasSuffix(")"), let open = head.firstIndex(of: "(") {
            arguments = String(head[head.index(after: open)..<head.index(before: head.endIndex)])
            head = head[..<open]
        }
        if arguments != nil, head.contains("/") {
            throw TraceSpecError("pattern \(whole): the arity after `/` must be a number 0–255")
        }
        let matcher: FunctionMatcher
        do {
            matcher = try FunctionMatcher(parsing: String(head))
        } catch {
            let reason = error.description.hasPrefix(String(head) + ": ")
                ? String(error.description.dropFirst(head.count + 2)) : error.description
            throw TraceSpecError("pattern \(whole): \(reason)")
        }
        let module = matcher.module
        let function = matcher.function
        var arity = matcher.arity
        if function == nil, arguments != nil {
            throw TraceSpecError("pattern \(whole): an arity or arguments need a function name")
        }
        if let arguments {
            arity = Self.countArguments(arguments)
        }
        return (module, function, arity, arguments)
    }

    /// Top-level commas + 1, skipping brackets, braces, strings and quoted atoms.
    static func countArguments(_ text: String) -> Int {
        if text.trimmingCharacters(in: .whitespaces).isEmpty { return 0 }
        var depth = 0
        var count = 1
        var quote: Character?
        for c in text {
            if let q = quote {
                if c == q { quote = nil }
                continue
            }
            switch c {
            case "'", "\"": quote = c
            case "(", "[", "{": depth += 1
            case ")", "]", "}": depth -= 1
            case "<" where false: break
            case ",": if depth == 0 { count += 1 }
            default: break
            }
        }
        return count
    }

    /// True when the match spec can be built here (no argument patterns or guards to compile).
    public var needsNodeCompile: Bool { argumentPatterns != nil }

    /// The actions the match spec carries: returns and exceptions unless `callsOnly`.
    public func effectiveActions(callsOnly: Bool) -> [Action] {
        var list: [Action] = []
        if !callsOnly || actions.contains(.exception) { list.append(.exception) }
        if actions.contains(.return) && !list.contains(.exception) { list.append(.return) }
        if actions.contains(.caller) { list.append(.caller) }
        if actions.contains(.processDump) { list.append(.processDump) }
        return list
    }

    /// The match spec for a pattern without argument patterns (built locally).
    public func localMatchSpec(callsOnly: Bool) -> Term {
        if let rawMatchSpec { return rawMatchSpec }
        var body: [Term] = []
        var message: Term?
        for action in effectiveActions(callsOnly: callsOnly) {
            switch action {
            case .return: body.append(.tuple([.atom("return_trace")]))
            case .exception: body.append(.tuple([.atom("exception_trace")]))
            case .caller: message = .tuple([.atom("caller")])
            case .processDump: message = .tuple([.atom("process_dump")])
            }
        }
        if let message { body.append(.tuple([.atom("message"), message])) }
        return .list([.tuple([.atom("_"), .list([]), .list(body)])])
    }

    /// `{M, F, A}` with `'_'` for wildcards.
    public var mfaTerms: (Term, Term, Term) {
        (.atom(module), .atom(function ?? "_"), arity.map { .integer(Int64($0)) } ?? .atom("_"))
    }
}

/// Which processes are traced.
public enum ProcessSelector: Sendable, Hashable, CustomStringConvertible {
    /// Existing and new processes.
    case all
    case new
    case existing
    /// A pid on the node, written `<0.123.0>` (its node part is the traced node).
    case pid(String)
    /// A registered name, resolved on the node.
    case name(String)

    public init(parsing text: String) throws(TraceSpecError) {
        switch text {
        case "all": self = .all
        case "new": self = .new
        case "existing": self = .existing
        default:
            if text.hasPrefix("<") && text.hasSuffix(">") {
                // <0.N.S>, or <node@host.N.S> naming the node it is on.
                let inner = text.dropFirst().dropLast().split(separator: ".", omittingEmptySubsequences: false)
                guard inner.count >= 3, inner.suffix(2).allSatisfy({ UInt32($0) != nil }),
                      inner.count == 3 && UInt32(inner[0]) != nil || inner.dropLast(2).joined(separator: ".").contains("@")
                else {
                    throw TraceSpecError("process \(text): a pid is written <0.N.S> or <node@host.N.S>")
                }
                self = .pid(text)
            } else if !text.isEmpty, text.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "." || $0 == "@" }) {
                self = .name(text.first?.isUppercase == true && !text.hasPrefix("Elixir.") ? "Elixir." + text : text)
            } else {
                throw TraceSpecError("process \(text): expected all, new, existing, <X.Y.Z> or a registered name")
            }
        }
    }

    public var description: String {
        switch self {
        case .all: "all"
        case .new: "new"
        case .existing: "existing"
        case .pid(let text): text
        case .name(let name): name
        }
    }
}

/// Event sets beyond calls.
public struct EventSet: OptionSet, Sendable, Hashable {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let calls = EventSet(rawValue: 1 << 0)
    public static let send = EventSet(rawValue: 1 << 1)
    public static let `receive` = EventSet(rawValue: 1 << 2)
    public static let procs = EventSet(rawValue: 1 << 3)
    public static let running = EventSet(rawValue: 1 << 4)
    public static let garbageCollection = EventSet(rawValue: 1 << 5)

    static let names: [(String, EventSet)] = [
        ("calls", .calls), ("send", .send), ("receive", .receive), ("procs", .procs), ("running", .running),
        ("gc", .garbageCollection), ("garbage_collection", .garbageCollection), ("messages", [.send, .receive]),
    ]

    /// `calls,send,receive,procs,running,gc` (comma separated; `messages` = send + receive).
    public init(parsing text: String) throws(TraceSpecError) {
        self = []
        for word in text.split(separator: ",") {
            let name = word.trimmingCharacters(in: .whitespaces)
            guard let entry = Self.names.first(where: { $0.0 == name }) else {
                throw TraceSpecError("unknown event set `\(name)` (known: calls, send, receive, messages, procs, running, gc)")
            }
            insert(entry.1)
        }
    }
}

/// The whole specification of what a session traces.
public struct TraceSpec: Sendable, Hashable {
    public var patterns: [TracePattern]
    public var processes: [ProcessSelector]
    public var events: EventSet
    /// Calls without return_from/exception_from.
    public var callsOnly: Bool
    /// Record call arguments (otherwise the arity only).
    public var arguments: Bool
    /// `strict_monotonic_timestamp` instead of `monotonic_timestamp`.
    public var strictTimestamps: Bool
    /// Accept broad patterns (`'_'`, `erlang`, `lists`...).
    public var allowBroad: Bool

    public init(patterns: [TracePattern] = [], processes: [ProcessSelector] = [.all], events: EventSet = .calls,
                callsOnly: Bool = false, arguments: Bool = false, strictTimestamps: Bool = false,
                allowBroad: Bool = false) {
        self.patterns = patterns
        self.processes = processes
        self.events = events
        self.callsOnly = callsOnly
        self.arguments = arguments
        self.strictTimestamps = strictTimestamps
        self.allowBroad = allowBroad
    }

    /// Refuses specs that would trace nothing or flood a node.
    public func validate() throws(TraceSpecError) {
        if events.contains(.calls) && patterns.isEmpty && events == .calls {
            throw TraceSpecError("nothing to trace: give at least one pattern (e.g. mymod:myfun/2) or --events")
        }
        if !allowBroad, let broad = patterns.first(where: \.isBroad) {
            throw TraceSpecError("pattern \(broad.text) covers a whole busy module and could flood the node; "
                                 + "name functions (mod:fun/arity), or pass --i-know to insist")
        }
        if processes.isEmpty { throw TraceSpecError("no processes selected") }
    }

    /// erlang:trace/3 flags (without the tracer and the timestamp flag).
    public var traceFlags: [Term] {
        var flags: [Term] = []
        if events.contains(.calls) && !patterns.isEmpty {
            flags.append(.atom("call"))
            if !arguments { flags.append(.atom("arity")) }
        }
        if events.contains(.send) { flags.append(.atom("send")) }
        if events.contains(.receive) { flags.append(.atom("receive")) }
        if events.contains(.procs) { flags.append(.atom("procs")) }
        if events.contains(.running) { flags.append(.atom("running")) }
        if events.contains(.garbageCollection) { flags.append(.atom("garbage_collection")) }
        if processes.contains(where: { if case .pid = $0 { true } else if case .name = $0 { true } else { false } }) {
            flags.append(.atom("set_on_spawn"))
        }
        return flags
    }
}

public struct TraceSpecError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
