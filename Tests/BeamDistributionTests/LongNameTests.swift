// Long node names (`erl -name name@127.0.0.1`): we connect with a long name of our own.
import BeamDistribution
import BeamTerm
import Foundation
import Testing
import TestSupport

@Suite("long node names")
struct LongNameTests {
    static func stop(_ process: Process, input: Pipe) {
        try? input.fileHandleForWriting.close()
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    @Test("a -name node on 127.0.0.1 answers rpc; our own name is long too")
    func longName() async throws {
        guard let erl = Erlang.executable("erl") else { throw ErlangError.notInstalled }
        let name = Erlang.randomName()
        let cookie = Erlang.randomName("c")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: erl)
        process.arguments = ["-name", "\(name)@127.0.0.1", "-setcookie", cookie, "-noshell", "-eval",
                             #"spawn(fun() -> io:get_line(""), erlang:halt(0) end), io:format("ready~n")."#]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        try process.run()
        defer { Self.stop(process, input: input) }
        var seen = Data()
        while !String(decoding: seen, as: UTF8.self).contains("ready") {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            seen.append(chunk)
        }
        let log = CapturedLog()
        let connection = try await DistributionConnection.connect(to: "\(name)@127.0.0.1", cookie: Cookie(cookie),
                                                                  logger: log.logger)
        #expect(connection.localNode.isLongName)
        #expect(try await connection.rpc(module: "erlang", function: "node") == .atom("\(name)@127.0.0.1"))
        let hidden = try await connection.rpc(module: "erlang", function: "nodes", arguments: [.atom("hidden")])
        #expect(hidden == .list([.atom(connection.localNode.description)]))
        await connection.close()
        #expect(!log.text.contains(cookie))
    }
}
