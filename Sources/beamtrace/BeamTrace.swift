// The beamtrace command line: a root command with one subcommand per job. Thin: parses, calls a
// library, prints.
import ArgumentParser

@main
struct BeamTrace: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "beamtrace",
        abstract: "Trace capture and replay for BEAM (Erlang/Elixir) systems.",
        discussion: """
            Examples:
              beamtrace record --node app@host 'my_server:handle_call/3' -o cap.btrace      (30 s, 1M events)
              beamtrace record --node app@host MyApp.Worker.handle_call/3 --print --max-events 10 --no-capture
              beamtrace hang cap.btrace
              beamtrace events cap.btrace --mfa MyApp.Worker --time rel
              beamtrace diff before.btrace after.btrace --fail-on-regression 10

            Times: instants print as wall clock (14:52:20.159690) or +seconds from the start (--time abs|rel|ns);
            durations and instants are typed with a unit everywhere (ns us ms s m h: 250ms, 1.5s, 2m).
            Exit codes: 0 ok, 1 runtime error, 2 badrpc (rpc) or problems found (index), 3 regression (diff),
            64 usage, 130 interrupted (SIGINT).
            """,
        version: BeamTrace.version,
        subcommands: [TermCommand.self, PingCommand.self, NodesCommand.self, RpcCommand.self,
                      ImportCommand.self, InfoCommand.self, EventsCommand.self, IndexCommand.self, SynthCommand.self,
                      TimelineCommand.self, LatencyCommand.self, QueuesCommand.self, HangCommand.self,
                      DiffCommand.self, StateCommand.self, ExportCommand.self, ReportCommand.self,
                      RecordCommand.self]
    )

    static let version = "0.4.0"

    /// Logging first (stderr, `--log-level`, warning by default), then the command.
    static func main() {
        LoggingBootstrap.once(level: LoggingOptions.level(in: CommandLine.arguments) ?? .warning)
        main(nil)
    }
}
