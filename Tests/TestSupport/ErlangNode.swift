// A real distributed Erlang node for tests: random name and cookie, started on loopback, stopped by
// closing its stdin (it halts itself, even if the test process dies) or, failing that, by SIGKILL.
import Foundation

public final class ErlangNode: @unchecked Sendable {
    public let name: String
    public let host: String
    public let cookie: String
    public let process: Process
    private let stdinPipe: Pipe
    private let outputBox = DataBox()
    private let lock = NSLock()

    /// `name@host` as the node calls itself.
    public var nodeName: String { "\(name)@\(host)" }

    /// Starts `erl -sname NAME -setcookie COOKIE -noshell` plus `extraArguments`, with `codePaths` on
    /// the code path, and waits until it runs. `setup` is an Erlang expression run before it reports ready.
    public init(name: String = Erlang.randomName(), cookie: String = Erlang.randomName("c"),
                extraArguments: [String] = [], codePaths: [String] = [], setup: String = "ok",
                timeout: TimeInterval = 30) throws {
        guard let erl = Erlang.executable("erl") else { throw ErlangError.notInstalled }
        self.name = name
        self.host = Erlang.shortHostName
        self.cookie = cookie
        process = Process()
        process.executableURL = URL(fileURLWithPath: erl)
        var arguments = ["-sname", name, "-setcookie", cookie, "-noshell"]
        for path in codePaths { arguments += ["-pa", path] }
        arguments += extraArguments
        arguments += ["-eval", """
            spawn(fun() -> io:get_line(""), erlang:halt(0) end), \
            \(setup), \
            io:format("beamtrace-node-ready~n").
            """]
        process.arguments = arguments
        stdinPipe = Pipe()
        let out = Pipe()
        process.standardInput = stdinPipe
        process.standardOutput = out
        process.standardError = out
        let box = outputBox
        let lock = self.lock
        out.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            lock.lock()
            box.data.append(data)
            lock.unlock()
        }
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if output.contains("beamtrace-node-ready") { return }
            if !process.isRunning { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        stop()
        throw ErlangError.failed(command: "erl -sname \(name)", status: process.isRunning ? -1 : process.terminationStatus,
                                 output: output)
    }

    /// What the node printed so far.
    public var output: String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: outputBox.data, as: UTF8.self)
    }

    public var pid: pid_t { process.processIdentifier }

    /// Closes stdin so the node halts; kills it if it has not gone within `grace` seconds.
    public func stop(grace: TimeInterval = 5) {
        try? stdinPipe.fileHandleForWriting.close()
        let deadline = Date().addingTimeInterval(grace)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    /// SIGKILLs the node at once (a node dying mid-session).
    public func kill9() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit {
        if process.isRunning {
            try? stdinPipe.fileHandleForWriting.close()
            kill(process.processIdentifier, SIGKILL)
        }
    }
}
