// Elixir syntax checked against the real `inspect/2` of the installed Elixir.
import BeamTerm
import Foundation
import Testing
import TestSupport

@Suite("Elixir printing against Elixir's inspect")
struct ElixirPrintingTests {
    static let script = #"""
    File.stream!(System.get_env("BT_VECTORS"))
    |> Enum.each(fn line ->
      term = line |> String.trim() |> Base.decode16!(case: :mixed) |> :erlang.binary_to_term()
      text = inspect(term, limit: :infinity, printable_limit: :infinity)
      IO.puts(Base.encode16(text))
    end)
    """#

    @Test("literal terms print as Elixir's inspect prints them")
    func matchesInspect() throws {
        guard let elixir = Erlang.executable("elixir") else {
            Issue.record("elixir is not installed: run scripts/bootstrap")
            return
        }
        let vectors = try OTPVectors.generated.get().vectors.filter { vector in
            guard let term = try? TermDecoder().decode(vector.bytes) else { return false }
            return !term.hasOpaqueParts && !term.hasLargeMap
        }
        let directory = try Erlang.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("vectors.hex")
        try vectors.map(\.bytes.hexString).joined(separator: "\n").appending("\n")
            .write(to: file, atomically: true, encoding: .utf8)
        let scriptFile = directory.appendingPathComponent("inspect.exs")
        try Self.script.write(to: scriptFile, atomically: true, encoding: .utf8)
        var environment = ProcessInfo.processInfo.environment
        environment["BT_VECTORS"] = file.path
        let output = try Shell.run(elixir, [scriptFile.path], timeout: 120, environment: environment)
        let printed = output.split(separator: "\n").map { String(decoding: [UInt8](hex: $0) ?? [], as: UTF8.self) }
        #expect(printed.count == vectors.count)
        var mismatches = 0
        for (vector, expected) in zip(vectors, printed) {
            let term = try TermDecoder().decode(vector.bytes)
            if term.elixirText() != expected {
                mismatches += 1
                if mismatches <= 15 { Issue.record("\(term.erlangText()): ours \(term.elixirText()) elixir \(expected)") }
            }
        }
        #expect(mismatches == 0)
    }

    @Test("opaque terms use Elixir's #PID, #Reference, #Port and & notations")
    func opaqueTerms() {
        let node = Atom("a@host")
        #expect(Term.pid(Pid(node: node, id: 80, serial: 0, creation: 1)).elixirText() == "#PID<a@host.80.0>")
        #expect(Term.export(module: "Elixir.Enum", function: "map", arity: 2).elixirText() == "&Enum.map/2")
        #expect(Term.export(module: "lists", function: "map", arity: 2).elixirText() == "&:lists.map/2")
        #expect(Term.atom("Elixir.MyApp.Worker").elixirText() == "MyApp.Worker")
    }
}
