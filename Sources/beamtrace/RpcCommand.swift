// `beamtrace rpc NODE MOD FUN [ARG...]`: call a function on a node through its rex server and print
// the reply in Erlang (or Elixir) syntax. Arguments are Erlang terms; `<0.X.Y>` means a pid on NODE.
import ArgumentParser
import BeamDistribution
import BeamTerm
import Foundation

struct RpcCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rpc",
        abstract: "Call MOD:FUN(ARG...) on a node and print the reply.",
        discussion: """
            Each ARG is one Erlang term: atoms, integers (16#ff, big ones), floats, "strings", \
            <<"binaries">>, [lists], {tuples}, #{maps}, pids <0.1.0>. Quote them for your shell, e.g. \
            beamtrace rpc app@host lists seq 1 10   or   beamtrace rpc app@host erlang process_info '<0.1.0>'. \
            {badrpc, Reason} is printed on stderr with exit status 2.
            """
    )

    @Argument(help: "The node, name@host.")
    var node: String

    @Argument(help: "The module.")
    var module: String

    @Argument(help: "The function.")
    var function: String

    @Argument(parsing: .allUnrecognized, help: "The arguments, one Erlang term each.")
    var arguments: [String] = []

    @OptionGroup var connection: DistributionCommandOptions

    @Flag(help: "Print the reply in Elixir syntax.")
    var elixir = false

    /// The term arguments; a `--` separator (for arguments that look like options) is dropped.
    var termArguments: [String] {
        var terms = arguments
        if let separator = terms.firstIndex(of: "--") { terms.remove(at: separator) }
        return terms
    }

    func validate() throws {
        for argument in termArguments {
            do {
                _ = try TermParser().parse(argument)
            } catch {
                throw ValidationError("argument \(argument): \(error)")
            }
        }
    }

    func run() throws {
        let connection = self.connection
        let (node, module, function, arguments, elixir) = (self.node, self.module, self.function, self.termArguments, self.elixir)
        do {
            let text = try runBlocking { () async throws -> String in
                let conn = try await connection.connect(to: node)
                do {
                    let parser = TermParser(options: .init(localNode: Atom(conn.peer.node.description),
                                                           localCreation: conn.peer.creation))
                    let terms = try arguments.map { try parser.parse($0) }
                    let reply = try await conn.rpc(module: module, function: function, arguments: terms,
                                                   timeout: connection.timeout(default: 10))
                    await conn.close()
                    if elixir { return reply.elixirText() }
                    return reply.erlangText(ErlangPrintOptions(localNode: Atom(conn.peer.node.description)))
                } catch {
                    await conn.close()
                    throw error
                }
            }
            print(text)
        } catch let error as DistributionError where error.code == .badRPC {
            printError("\(error)")
            throw ExitCode(2)
        } catch {
            printError("error: \(connection.explain(error, default: 10))")
            throw ExitCode.failure
        }
    }
}
