// Names written straight from the atoms (FunctionTextWriter, `latency`'s rows) are functionText's and
// OTP's own `~tp`, and atom and function ids looked up by value after a restore by id (the lazy name
// index) are the ones the eager index gave: Elixir modules, quoted atoms and atoms beyond ASCII included.
import BeamTerm
import Foundation
import Testing
import TestSupport
import TraceModel

@Suite("function names from the atoms, ids by value built lazily")
struct FunctionTextWriterTests {
    static let erlangModules = ["gen_server", "My Mod", "lists", "é_mod", "日本", "Ärger", "a@b", "x1"]
    static let elixirModules = ["Elixir.MyApp.Worker", "Elixir.Kernel", "Elixir.lowercase", "Elixir.Ünicode", "Elixir"]
    static let functionNames = [
        "call", "handle_call", "f", "F", "_x", "x1", "a@b", "receive", "andalso", "orelse", "end", "endless",
        "do it", "quote'd", "back\\slash", "line\nbreak", "é_lower", "ßig", "Ünïcode", "日本語", "valid?", "run!",
        "+", "|>", "not", "", "f12345", "handle_info_with_a_long_name",
    ]

    static func dictionaries() -> (TraceDictionaries, [FunctionID]) {
        var d = TraceDictionaries()
        var ids: [FunctionID] = []
        for (m, module) in (erlangModules + elixirModules).enumerated() {
            for (f, function) in functionNames.enumerated() {
                ids.append(d.intern(module: module, function: function, arity: (m * 7 + f) % 300))
            }
        }
        return (d, ids)
    }

    @Test("the writer prints what functionText prints, in both syntaxes, module after module and interleaved")
    func writerAgainstFunctionText() {
        var (d, ids) = Self.dictionaries()
        for elixir in [false, true] {
            d.elixirSyntax = elixir
            // Interleaved ids make the writer switch modules on every row; 0 and an unknown id print `undefined`.
            for order in [ids, ids.enumerated().sorted { ($0.offset % 5, $0.offset) < ($1.offset % 5, $1.offset) }.map(\.element),
                          [0, FunctionID(ids.count + 10)] + ids.prefix(3)] {
                var writer = FunctionTextWriter(d)
                for id in order {
                    var out = TextBuffer()
                    writer.append(id, to: &out)
                    #expect(out.string() == d.functionText(id), "function \(id), elixir syntax \(elixir)")
                }
            }
        }
    }

    @Test("Erlang modules' names are OTP's io_lib:format(\"~tp:~tp/~p\")")
    func writerAgainstOTP() throws {
        let (d, ids) = Self.dictionaries()
        let erlangIDs = ids.prefix(Self.erlangModules.count * Self.functionNames.count)
        func codes(_ text: String) -> String { "[" + text.unicodeScalars.map { String($0.value) }.joined(separator: ",") + "]" }
        let entries = erlangIDs.compactMap { id -> String? in
            guard let mfa = d.function(id) else { return nil }
            return "{\(codes(d.atom(mfa.module))),\(codes(d.atom(mfa.function))),\(mfa.arity)}"
        }
        let source = """
        -module(bt_names).
        -export([main/0]).
        main() ->
            io:setopts([{encoding, unicode}]),
            [io:format("~ts~n", [io_lib:format("~tp:~tp/~p", [list_to_atom(M), list_to_atom(F), A])])
             || {M, F, A} <- [\(entries.joined(separator: ",\n        "))]].
        """
        let output = try Erlang.run(module: "bt_names", source: source)
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var writer = FunctionTextWriter(d)
        for (k, id) in erlangIDs.enumerated() {
            var out = TextBuffer()
            writer.append(id, to: &out)
            #expect(k < lines.count && out.string() == lines[k], "function \(id)")
        }
    }

    @Test("ids by value after a restore by id are the eager index's: first id wins, copies keep their own")
    func lazyIndexAgainstEager() {
        let (eager, ids) = Self.dictionaries()
        var restored = TraceDictionaries()
        for id in 1..<eager.atoms.count { restored.restore(atom: eager.atoms[id], id: AtomID(id)) }
        // The same text again under a later id: lookups keep the first.
        let duplicate = AtomID(eager.atoms.count)
        restored.restore(atom: eager.atoms[3], id: duplicate)
        for id in ids { if let mfa = eager.function(id) { restored.restore(function: mfa, id: id) } }
        restored.restore(function: eager.functions[5], id: FunctionID(eager.functions.count))
        for text in eager.atoms.dropFirst() { #expect(restored.atomID(text) == eager.atomID(text), "atom \(text)") }
        for id in ids {
            guard let mfa = eager.function(id) else { continue }
            #expect(restored.functionID(mfa) == id)
            #expect(restored.functionText(id) == eager.functionText(id))
        }
        #expect(restored.atomID("never seen") == nil)
        #expect(restored.functionID(MFA(module: 1, function: 1, arity: 999)) == nil)

        // A copy that interns gets ids of its own; the original does not see them, nor the copy the original's.
        var copy = restored
        let copyOnly = copy.intern(atom: "only in the copy")
        let originalOnly = restored.intern(atom: "only in the original")
        #expect(copyOnly == originalOnly)
        #expect(copy.atomID("only in the original") == nil)
        #expect(restored.atomID("only in the copy") == nil)
        #expect(copy.intern(atom: eager.atoms[3]) == 3)
        let f = copy.intern(module: "new_mod", function: "new_fun", arity: 1)
        #expect(copy.functionID(copy.functions[Int(f)]) == f && restored.function(f) == nil)

        // Lookups from many threads at once on one shared copy, the index built by whichever comes first.
        var shared = TraceDictionaries()
        for id in 1..<eager.atoms.count { shared.restore(atom: eager.atoms[id], id: AtomID(id)) }
        let frozen = shared
        let texts = Array(eager.atoms.dropFirst())
        let wrong = Tally()
        DispatchQueue.concurrentPerform(iterations: 8) { k in
            for (i, text) in texts.enumerated() where (i % 8 == k || k == 0) && frozen.atomID(text) != eager.atomID(text) {
                wrong.add()
            }
        }
        #expect(wrong.count == 0)
    }

    @Test("nodes and registered names by name after a restore, as before")
    func nodesAndNamesByText() {
        var eager = TraceDictionaries()
        let node = eager.intern(node: "app@host")
        let worker = eager.intern(atom: "Elixir.MyApp.Worker")
        let pid = eager.intern(process: .pid(node: node, id: 85, serial: 0, creation: 1))
        eager.setRegisteredName(worker, for: pid)
        var restored = TraceDictionaries()
        for id in 1..<eager.atoms.count { restored.restore(atom: eager.atoms[id], id: AtomID(id)) }
        restored.restore(node: eager.nodes[Int(node)], id: node)
        if let entry = eager.process(pid) { restored.restore(process: entry, id: pid) }
        #expect(restored.nodeID(named: "app@host") == node)
        #expect(restored.nodeID(named: "other@host") == nil)
        #expect(restored.processes(named: "Elixir.MyApp.Worker") == [pid])
        #expect(restored.registeredNameText(pid) == "MyApp.Worker")
    }
}

/// A count shared by threads.
final class Tally: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func add() { lock.withLock { value += 1 } }
    var count: Int { lock.withLock { value } }
}
