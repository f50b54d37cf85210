// Renders the libraries' progress updates as a one-line bar on stderr when stderr is a terminal;
// says nothing otherwise (pipes, CI logs, tests).
import CaptureStore
import Foundation

final class TerminalProgress: ProgressReporter, @unchecked Sendable {
    /// The bar on stderr, or nil when stderr is not a terminal.
    static let standardError: TerminalProgress? = isatty(STDERR_FILENO) == 1 ? TerminalProgress() : nil

    private let lock = NSLock()
    private var shown = false

    func report(_ update: ProgressUpdate) {
        lock.lock()
        defer { lock.unlock() }
        if update.finished {
            if shown { write("\r\u{1B}[2K") }
            shown = false
            return
        }
        let width = 30
        var line = "\r\u{1B}[2K" + update.task + " "
        if let fraction = update.fraction {
            let filled = Int(fraction * Double(width))
            line += "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] "
            line += String(format: "%3.0f%% ", fraction * 100)
            line += Self.count(update.done, update.unit) + " of " + Self.count(update.total, update.unit)
        } else {
            line += Self.count(update.done, update.unit)
        }
        write(line)
        shown = true
    }

    private func write(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }

    static func count(_ value: Int64, _ unit: String) -> String {
        if unit == "bytes" {
            return ByteCountFormatter.string(fromByteCount: value, countStyle: .binary)
        }
        let v = Double(value)
        if v >= 1e6 { return String(format: "%.1fM %@", v / 1e6, unit) }
        if v >= 1e4 { return String(format: "%.0fk %@", v / 1e3, unit) }
        return "\(value) \(unit)"
    }
}
