// The ping, nodes and rpc commands run as a user would, against a real node; the cookie must not
// appear in anything they print.
import Foundation
import Testing
import TestSupport

@Suite("beamtrace ping / nodes / rpc")
struct CommandTests {
    let node: ErlangNode
    let executable: String

    init() throws {
        node = try SharedNodes.plain.get()
        executable = try #require(BuiltProducts.executable("beamtrace"), "build the beamtrace executable first")
    }

    func run(_ arguments: [String], environment: [String: String]? = nil) throws -> Shell.Result {
        var env = ProcessInfo.processInfo.environment
        env["ERLANG_COOKIE"] = nil
        for (key, value) in environment ?? [:] { env[key] = value }
        let result = try Shell.runCapturing(executable, arguments, timeout: 60, environment: env)
        #expect(!result.stdout.contains(node.cookie) && !result.stderr.contains(node.cookie),
                "the cookie appeared in the output of \(arguments.first ?? "")")
        return result
    }

    @Test("ping prints pong and the OTP release")
    func ping() throws {
        let result = try run(["ping", node.nodeName, "--cookie", node.cookie])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.hasPrefix("pong \(node.nodeName) (OTP 25"))
    }

    @Test("ping with a wrong cookie says pang and why; the cookie can come from ERLANG_COOKIE")
    func pingWrongCookie() throws {
        let wrong = Erlang.randomName("wrong")
        let result = try run(["ping", node.nodeName, "--cookie", wrong])
        #expect(result.status == 1)
        #expect(result.stderr.contains("pang") && result.stderr.contains("rejected the cookie"))
        #expect(!result.stderr.contains(wrong))
        let fromEnvironment = try run(["ping", node.name], environment: ["ERLANG_COOKIE": node.cookie])
        #expect(fromEnvironment.status == 0 && fromEnvironment.stdout.hasPrefix("pong"))
    }

    @Test("nodes lists the names in epmd")
    func nodes() throws {
        let result = try run(["nodes"])
        #expect(result.status == 0)
        #expect(result.stdout.contains(node.nodeName))
        let json = try run(["nodes", "--json"])
        #expect(json.stdout.contains("\"name\":\"\(node.name)\""))
        let down = try run(["nodes", "127.0.0.1", "--epmd-port", "1"])
        #expect(down.status == 1 && down.stderr.contains("EPMD is not running"))
    }

    @Test("rpc parses Erlang terms as arguments and prints the reply in Erlang syntax")
    func rpc() throws {
        let base = ["rpc", node.nodeName, "--cookie", node.cookie]
        let seq = try run(base + ["lists", "seq", "1", "5"])
        #expect(seq.stdout == "[1,2,3,4,5]\n", "\(seq.stderr)")
        let echo = try run(base + ["bt_dist", "echo", #"#{k => [1.5, "s", <<"b">>, {t, 'A b'}], 16#10 => -7}"#])
        #expect(echo.stdout == #"#{16 => -7,k => [1.5,"s",<<"b">>,{t,'A b'}]}"# + "\n", "\(echo.stderr)")
        let negative = try run(base + ["erlang", "+", "-1", "--", "-2.5"])
        #expect(negative.stdout == "-3.5\n", "\(negative.stderr)")
        let pid = try run(base + ["erlang", "is_process_alive", "<0.1.0>"])
        #expect(pid.stdout == "true\n", "\(pid.stderr)")
        let elixir = try run(base + ["--elixir", "bt_dist", "echo", "{a, [1]}"])
        #expect(elixir.stdout == "{:a, [1]}\n", "\(elixir.stderr)")
        let bad = try run(base + ["erlang", "list_to_atom", "1"])
        #expect(bad.status == 2 && bad.stderr.contains("badrpc") && bad.stderr.contains("badarg"))
        let syntax = try run(base + ["erlang", "is_atom", "{a,"])
        #expect(syntax.status != 0 && syntax.stderr.contains("cannot parse term"))
    }
}
