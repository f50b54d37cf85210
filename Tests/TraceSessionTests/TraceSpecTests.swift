// Pattern, process and event-set parsing, and the match specs built without a node.
import BeamTerm
import Testing
import TraceSession

@Suite struct TraceSpecTests {
    @Test func patternHeads() throws {
        let module = try TracePattern(parsing: "mymod")
        #expect(module.module == "mymod" && module.function == nil && module.arity == nil)
        let function = try TracePattern(parsing: "mymod:run")
        #expect(function.function == "run" && function.arity == nil)
        let arity = try TracePattern(parsing: "mymod:run/2")
        #expect(arity.function == "run" && arity.arity == 2)
        let elixir = try TracePattern(parsing: "MyApp.Worker.handle_call/3")
        #expect(elixir.module == "Elixir.MyApp.Worker" && elixir.function == "handle_call" && elixir.arity == 3)
        let elixirModule = try TracePattern(parsing: "MyApp.Worker")
        #expect(elixirModule.module == "Elixir.MyApp.Worker" && elixirModule.function == nil)
        let quoted = try TracePattern(parsing: "'Elixir.Foo':bar/1")
        #expect(quoted.module == "Elixir.Foo" && quoted.function == "bar" && quoted.arity == 1)
    }

    @Test func guardsActionsAndRawMatchSpecs() throws {
        let guarded = try TracePattern(parsing: "lists:seq(A, B) when A > 10 -> return, caller")
        #expect(guarded.module == "lists" && guarded.function == "seq" && guarded.arity == 2)
        #expect(guarded.argumentPatterns == "A, B")
        #expect(guarded.guardText == "A > 10")
        #expect(guarded.actions == [.return, .caller])
        #expect(guarded.needsNodeCompile)
        // Returns come with exception_trace by default (return_trace would duplicate them).
        #expect(guarded.effectiveActions(callsOnly: false) == [.exception, .caller])
        #expect(guarded.effectiveActions(callsOnly: true) == [.return, .caller])
        #expect(try TracePattern(parsing: "m:f({X, [Y]}, \"a,b\", Z)").arity == 3)
        #expect(try TracePattern(parsing: "m:f()").arity == 0)

        let raw = try TracePattern(parsing: "m:f/2 [{'_',[],[{return_trace}]}]")
        #expect(raw.arity == 2)
        #expect(raw.localMatchSpec(callsOnly: false).erlangText() == "[{'_',[],[{return_trace}]}]")

        let plain = try TracePattern(parsing: "m:f/1")
        #expect(plain.localMatchSpec(callsOnly: false).erlangText() == "[{'_',[],[{exception_trace}]}]")
        #expect(plain.localMatchSpec(callsOnly: true).erlangText() == "[{'_',[],[]}]")
        let caller = try TracePattern(parsing: "m:f/1 -> caller")
        #expect(caller.localMatchSpec(callsOnly: false).erlangText() == "[{'_',[],[{exception_trace},{message,{caller}}]}]")
    }

    @Test func badPatternsAreRefused() {
        #expect(throws: TraceSpecError.self) { try TracePattern(parsing: "") }
        #expect(throws: TraceSpecError.self) { try TracePattern(parsing: "m:f/x") }
        #expect(throws: TraceSpecError.self) { try TracePattern(parsing: "m:f/1 when A > 1") }
        #expect(throws: TraceSpecError.self) { try TracePattern(parsing: "m:f(A) -> launch") }
        #expect(throws: TraceSpecError.self) { try TracePattern(parsing: "m:f/1 [{broken") }
    }

    @Test func broadPatternsNeedConsent() throws {
        for text in ["'_':'_'", "erlang", "lists", "'_'"] {
            let spec = TraceSpec(patterns: [try TracePattern(parsing: text)])
            #expect(throws: TraceSpecError.self) { try spec.validate() }
            var insisted = spec
            insisted.allowBroad = true
            #expect(throws: Never.self) { try insisted.validate() }
        }
        // A named function of a busy module is fine.
        #expect(throws: Never.self) { try TraceSpec(patterns: [try TracePattern(parsing: "lists:seq/2")]).validate() }
        // Nothing to trace.
        #expect(throws: TraceSpecError.self) { try TraceSpec().validate() }
    }

    @Test func processesAndEvents() throws {
        #expect(try ProcessSelector(parsing: "all") == .all)
        #expect(try ProcessSelector(parsing: "<0.85.0>") == .pid("<0.85.0>"))
        #expect(try ProcessSelector(parsing: "my_server") == .name("my_server"))
        #expect(try ProcessSelector(parsing: "MyApp.Repo") == .name("Elixir.MyApp.Repo"))
        #expect(throws: TraceSpecError.self) { try ProcessSelector(parsing: "<0.1>") }
        let events = try EventSet(parsing: "calls,messages,gc")
        #expect(events.contains(.send) && events.contains(.receive) && events.contains(.garbageCollection))
        #expect(throws: TraceSpecError.self) { try EventSet(parsing: "calls,everything") }
        let spec = TraceSpec(patterns: [try TracePattern(parsing: "m:f/1")], processes: [.name("srv")],
                             events: [.calls, .send])
        #expect(spec.traceFlags.map { $0.erlangText() } == ["call", "arity", "send", "set_on_spawn"])
        var withArgs = spec
        withArgs.arguments = true
        #expect(!withArgs.traceFlags.contains { $0.erlangText() == "arity" })
    }
}
