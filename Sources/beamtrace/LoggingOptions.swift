// `--log-level`: the CLI bootstraps swift-log once (stderr) and hands loggers to the libraries,
// which never make their own level choices.
import ArgumentParser
import Logging

extension Logger.Level: @retroactive ExpressibleByArgument {}

struct LoggingOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Diagnostics from the libraries on stderr at this level and above.",
                               valueName: "trace|debug|info|notice|warning|error|critical"))
    var logLevel: Logger.Level = .warning

    /// Bootstraps logging (once per process) and returns a logger for `label`.
    func bootstrap(label: String) -> Logger {
        LoggingBootstrap.once(level: logLevel)
        var logger = Logger(label: label)
        logger.logLevel = logLevel
        return logger
    }
}

extension LoggingOptions {
    /// `--log-level X` (or `--log-level=X`) if the command line has it, read before parsing so
    /// logging is set up before any library runs.
    static func level(in arguments: [String]) -> Logger.Level? {
        for (i, argument) in arguments.enumerated() {
            if argument == "--log-level", i + 1 < arguments.count { return Logger.Level(rawValue: arguments[i + 1]) }
            if argument.hasPrefix("--log-level=") { return Logger.Level(rawValue: String(argument.dropFirst(12))) }
        }
        return nil
    }
}

enum LoggingBootstrap {
    nonisolated(unsafe) private static var done = false
    static func once(level: Logger.Level) {
        guard !done else { return }
        done = true
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}
