// Options shared by every command that prints a capture's events or instants: the time format
// (`--time abs|rel|ns`, one type from TraceModel) and the syntax (`--elixir`, `--erlang`, chosen
// automatically from the capture's modules otherwise).
import ArgumentParser
import CaptureStore
import TraceModel
import TraceSession

extension TimeStyle: ExpressibleByArgument {}

struct TimeOptions: ParsableArguments {
    @Option(help: ArgumentHelp("How times print: abs (wall clock, the date when it changes), rel (+seconds from "
                               + "the capture's start) or ns (raw). Default: abs, or rel for captures without a "
                               + "wall clock (monotonic imports).", valueName: "abs|rel|ns"))
    var time: TimeStyle?

    func text(for reader: CaptureReader, default fallback: TimeStyle? = nil) -> TimeText {
        TimeText(style: time ?? fallback, start: reader.blocks.map(\.timeMin).min() ?? 0, timeBase: reader.meta.timeBase)
    }
}

struct SyntaxOptions: ParsableArguments {
    @Flag(help: "Print functions, terms and pids in Elixir syntax (the default for captures of Elixir modules).")
    var elixir = false
    @Flag(help: "Print in Erlang syntax even for a capture of Elixir modules.")
    var erlang = false

    func validate() throws {
        if elixir && erlang { throw ValidationError("--elixir and --erlang exclude each other") }
    }

    func useElixir(_ dictionaries: TraceDictionaries) -> Bool {
        elixir || (!erlang && dictionaries.prefersElixir)
    }
}

extension Transport: ExpressibleByArgument {}
