// Shared helpers for the distribution tests: real nodes, a log handler that keeps every line (to
// check the cookie never shows up), and waiting with a deadline.
import BeamDistribution
import BeamTerm
import Foundation
import Logging
import Synchronization
import TestSupport

/// Collects every log line at trace level, so tests can grep them.
final class CapturedLog: Sendable {
    let lines = Mutex<[String]>([])
    /// What every connection made without a log of its own logs (at trace level).
    static let shared = CapturedLog()

    var logger: Logger {
        let box = self
        var logger = Logger(label: "beamtrace.test") { _ in CapturingHandler(box: box) }
        logger.logLevel = .trace
        return logger
    }

    var text: String { lines.withLock { $0.joined(separator: "\n") } }
}

struct CapturingHandler: LogHandler {
    let box: CapturedLog
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let line = "\(event.level) \(event.message) \(metadata.merging(event.metadata ?? [:]) { $1 })"
        box.lines.withLock { $0.append(line) }
    }
}

/// A test module loaded on test nodes.
enum TestModule {
    static let source = #"""
    -module(bt_dist).
    -export([every_kind/0, sleep_then/2, echo/1, spawn_waiter/0, register_echo/1, link_to/1, burst/2]).

    every_kind() ->
        Env = {captured, node()},
        [0, 255, -1, 2147483648, 1 bsl 100, -(1 bsl 70), 1.5, -0.0, 1.0e300, a, 'héllo', 'привет', '',
         {}, {a, {b}}, list_to_tuple(lists:seq(1, 300)), [], "abc", [1, 2 | 3], [a | b], lists:seq(1, 300),
         <<>>, <<"bin">>, <<1:3>>, <<1, 2, 3:4>>, #{}, #{a => 1, "k" => [x], 3 => #{}},
         maps:from_list([{I, I} || I <- lists:seq(1, 40)]),
         self(), make_ref(), hd(erlang:ports()), fun() -> ok end, fun(X) -> {X, Env} end, fun lists:map/2].

    sleep_then(Ms, Value) -> timer:sleep(Ms), Value.
    echo(X) -> X.

    spawn_waiter() -> spawn(fun() -> receive stop -> ok; {crash, R} -> exit(R) end end).

    link_to(Pid) -> spawn(fun() -> link(Pid), receive stop -> exit(stopped) end end).

    %% Sends {burst, I, Bin} for each size, back to back (Bin: Size bytes of I rem 251).
    burst(To, Sizes) ->
        lists:foldl(fun(Size, I) -> To ! {burst, I, binary:copy(<<(I rem 251)>>, Size)}, I + 1 end, 1, Sizes),
        ok.

    register_echo(Name) ->
        Pid = spawn(fun Loop() -> receive {From, Msg} -> From ! {echoed, Msg}, Loop() end end),
        register(Name, Pid),
        Pid.
    """#

    static let directory: Result<String, any Error> = Result {
        let directory = try Erlang.temporaryDirectory("beamtrace-dist")
        try Erlang.compile(module: "bt_dist", source: source, in: directory)
        return directory.path
    }
}

/// Nodes shared by the tests of a suite; they halt when the test process ends (their stdin closes).
enum SharedNodes {
    static let plain: Result<ErlangNode, any Error> = Result { try ErlangNode.forDistribution() }
}

extension ErlangNode {
    /// A node with the test module on its path.
    static func forDistribution(extraArguments: [String] = []) throws -> ErlangNode {
        try ErlangNode(extraArguments: extraArguments, codePaths: [TestModule.directory.get()])
    }

    func connect(logger: Logger = CapturedLog.shared.logger,
                 options: DistributionOptions = DistributionOptions()) async throws -> DistributionConnection {
        try await DistributionConnection.connect(to: nodeName, cookie: Cookie(cookie), options: options,
                                                 logger: logger)
    }
}

struct TimedOut: Error {}

/// Runs `body`, failing with `TimedOut` after `seconds` (the body is cancelled).
func within<T: Sendable>(_ seconds: Double, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else { throw TimedOut() }
        return value
    }
}

/// The next message of a mailbox within `seconds`, or nil.
func nextMessage(_ mailbox: Mailbox, within seconds: Double = 10) async -> MailboxMessage? {
    try? await within(seconds) { () async throws -> MailboxMessage in
        for await message in mailbox { return message }
        throw TimedOut()
    }
}
