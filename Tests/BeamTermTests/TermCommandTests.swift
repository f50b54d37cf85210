// `beamtrace term`: its Erlang output reads back in OTP as an exactly equal term.
import BeamTerm
import Foundation
import Testing
import TestSupport

@Suite("beamtrace term")
struct TermCommandTests {
    func beamtrace() throws -> String {
        try #require(BuiltProducts.executable("beamtrace"), "the beamtrace executable was not built")
    }

    @Test("default output parses back in erl_scan/erl_parse to a term =:= the original")
    func parseBack() throws {
        let cli = try beamtrace()
        let vectors = try OTPVectors.generated.get().vectors.filter { vector in
            guard let term = try? TermDecoder().decode(vector.bytes) else { return false }
            return !term.hasOpaqueParts
        }
        var lines: [String] = []
        for vector in vectors {
            let printed = try Shell.run(cli, ["term", vector.bytes.hexString])
                .trimmingCharacters(in: .newlines)
            lines.append(vector.bytes.hexString + " " + [UInt8](printed.utf8).hexString)
        }
        #expect(lines.count > 650)
        let verdict = try OTPVectors.runCheck("parse_back", lines: lines)
        #expect(verdict == "ok \(lines.count)")
    }

    @Test("reads a binary file and stdin, and prints Elixir with --elixir")
    func inputsAndElixir() throws {
        let cli = try beamtrace()
        let term = Term.tuple([.atom("Elixir.MyApp.Worker"), .map(unordered: [MapPair(.atom("count"), .integer(3))]),
                               .binary(Array("héllo".utf8))])
        let bytes = TermEncoder().encode(term)
        let directory = try Erlang.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("term.bin")
        try Data(bytes).write(to: file)
        #expect(try Shell.run(cli, ["term", file.path]) == "{'Elixir.MyApp.Worker',#{count => 3},<<\"héllo\"/utf8>>}\n")
        #expect(try Shell.run(cli, ["term", "-"], stdin: Data(bytes)) == "{'Elixir.MyApp.Worker',#{count => 3},<<\"héllo\"/utf8>>}\n")
        #expect(try Shell.run(cli, ["term", "--elixir", "-"], stdin: Data(bytes.hexString.utf8)) == "{MyApp.Worker, %{count: 3}, \"héllo\"}\n")
        #expect(try Shell.run(cli, ["term", "--depth", "3", TermEncoder().encode(.list((1...10).map { .integer($0) })).hexString]) == "[1,2|...]\n")
    }

    @Test("bad input gets a clear error and a non-zero exit, no crash")
    func badInput() throws {
        let cli = try beamtrace()
        let result = try Shell.runCapturing(cli, ["term", "8368"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("bad external term at byte 2"))
        let notHex = try Shell.runCapturing(cli, ["term", "zz-not-a-file"])
        #expect(notHex.status != 0)
        #expect(notHex.stderr.contains("neither a file nor hex"))
    }
}
