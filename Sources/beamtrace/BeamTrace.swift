// The beamtrace command line: a root command with one subcommand per job. Thin: parses, calls a
// library, prints.
import ArgumentParser

@main
struct BeamTrace: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "beamtrace",
        abstract: "Trace capture and replay for BEAM (Erlang/Elixir) systems.",
        subcommands: [TermCommand.self, PingCommand.self, NodesCommand.self, RpcCommand.self,
                      ImportCommand.self, InfoCommand.self, EventsCommand.self, IndexCommand.self, SynthCommand.self,
                      TimelineCommand.self, LatencyCommand.self, QueuesCommand.self, HangCommand.self,
                      DiffCommand.self, StateCommand.self, ExportCommand.self, ReportCommand.self,
                      RecordCommand.self]
    )
}
