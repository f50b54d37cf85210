// `beamtrace ping NODE`: connect as a hidden node, print `pong` and the node's OTP release, or why not.
// Also holds what ping, rpc and nodes share: connection options and running async work from a
// synchronous command.
import ArgumentParser
import BeamDistribution
import BeamTerm
import Foundation

struct DistributionCommandOptions: ParsableArguments {
    @Option(help: "The cookie (default: ERLANG_COOKIE, then ~/.erlang.cookie). Never printed.")
    var cookie: String?

    @Option(help: "Our own node name, `name` or `name@host` (default: a random beamtrace_… name).")
    var name: String?

    @Option(help: ArgumentHelp("Seconds to wait for EPMD, the connection, the handshake and each reply (default: "
                               + "10; record: 30 for each step of starting on a node, as loading the agent "
                               + "compiles it there).", valueName: "seconds"))
    var timeout: Double?

    /// `--timeout` as a duration, or `seconds` when it was not given.
    func timeout(default seconds: Double) -> Duration {
        .milliseconds(Int64(max(timeout ?? seconds, 0.001) * 1000))
    }

    /// For a reply that did not come in time: the message, with the remedy that exists.
    func explain(_ error: any Error, default seconds: Double) -> String {
        guard let distribution = error as? DistributionError, distribution.code == .timeout,
              distribution.step?.hasPrefix("rpc ") == true else { return "\(error)" }
        return "\(error); raise --timeout (now \(timeout ?? seconds) s) if it is expected to take longer"
    }

    @Option(help: "The port EPMD listens on (default: ERL_EPMD_PORT or 4369).")
    var epmdPort: Int?

    @Option(help: "Our own net tick time in seconds: we tick every quarter of it and declare a silent node down after it (the node keeps its own net_ticktime).")
    var netTicktime: Double = 60

    @OptionGroup var logging: LoggingOptions

    var distributionOptions: DistributionOptions {
        let environmentPort = ProcessInfo.processInfo.environment["ERL_EPMD_PORT"].flatMap(Int.init)
        let seconds = timeout(default: 10)
        return DistributionOptions(epmdPort: epmdPort ?? environmentPort, connectTimeout: seconds,
                                   handshakeTimeout: seconds,
                                   netTickTime: .milliseconds(Int64(max(netTicktime, 1) * 1000)))
    }

    /// The cookie, with warnings (e.g. a world-readable cookie file) on stderr.
    func resolveCookie() throws -> Cookie {
        let resolved = try Cookie.resolve(explicit: cookie, environment: ProcessInfo.processInfo.environment)
        for warning in resolved.warnings { printError("warning: \(warning)") }
        return resolved.cookie
    }

    func connect(to node: String) async throws -> DistributionConnection {
        try await DistributionConnection.connect(to: node, cookie: resolveCookie(), localName: name,
                                                 options: distributionOptions)
    }
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// Runs async work from a synchronous command's `run()`; errors come back to the caller.
func runBlocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let semaphore = DispatchSemaphore(value: 0)
    let box = ResultBox<T>()
    Task {
        do {
            box.result = .success(try await body())
        } catch {
            box.result = .failure(error)
        }
        semaphore.signal()
    }
    semaphore.wait()
    guard let result = box.result else { throw ExitCode.failure }
    return try result.get()
}

private final class ResultBox<T: Sendable>: @unchecked Sendable {
    // Written once by the task before it signals, read after the wait.
    var result: Result<T, any Error>?
}

struct PingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ping",
        abstract: "Check that a node answers: prints pong and its OTP release, or why not.",
        discussion: "Connects as a hidden node (it does not appear in nodes() there) and asks the node's rex server."
    )

    @Argument(help: "The node, name@host (a bare name means this host).")
    var node: String

    @OptionGroup var connection: DistributionCommandOptions

    func run() throws {
        let connection = self.connection
        let node = self.node
        do {
            let line = try runBlocking { () async throws -> String in
                let conn = try await connection.connect(to: node)
                do {
                    let limit = connection.timeout(default: 10)
                    let release = try await conn.rpc(module: "erlang", function: "system_info",
                                                     arguments: [.atom("otp_release")], timeout: limit)
                    let erts = try await conn.rpc(module: "erlang", function: "system_info",
                                                  arguments: [.atom("version")], timeout: limit)
                    await conn.close()
                    return "pong \(conn.peer.node) (OTP \(Self.text(release)), erts \(Self.text(erts)))"
                } catch {
                    await conn.close()
                    throw error
                }
            }
            print(line)
        } catch {
            printError("pang: \(connection.explain(error, default: 10))")
            throw ExitCode.failure
        }
    }

    static func text(_ term: Term) -> String {
        if let bytes = term.listElements?.compactMap({ $0.int64Value.flatMap { UInt8(exactly: $0) } }) {
            return String(decoding: bytes, as: UTF8.self)
        }
        return term.erlangText()
    }
}
