// Functions print as BEAM engineers write them: `mod:fun/arity`, Elixir modules as `Mod.fun/arity`.
import Testing
import TraceModel

@Test("Erlang functions as mod:fun/arity with quoting, Elixir modules as Mod.fun/arity")
func functionText() {
    var d = TraceDictionaries()
    let erlang = d.intern(module: "gen_server", function: "call", arity: 3)
    let quoted = d.intern(module: "My Mod", function: "do it", arity: 0)
    let elixir = d.intern(module: "Elixir.MyApp.Worker", function: "handle_call", arity: 3)
    let elixirOperator = d.intern(module: "Elixir.Kernel", function: "+", arity: 2)
    let notAlias = d.intern(module: "Elixir.lowercase", function: "f", arity: 1)
    #expect(d.functionText(erlang) == "gen_server:call/3")
    #expect(d.functionText(quoted) == "'My Mod':'do it'/0")
    #expect(d.functionText(elixir) == "MyApp.Worker.handle_call/3")
    #expect(d.functionText(elixirOperator) == "Kernel.+/2")
    let spaced = d.intern(module: "Elixir.MyApp", function: "do it", arity: 0)
    #expect(d.functionText(spaced) == "MyApp.\"do it\"/0")
    #expect(d.functionText(notAlias) == "'Elixir.lowercase':f/1")
}
