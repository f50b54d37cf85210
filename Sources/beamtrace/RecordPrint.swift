// `record --print`: prints each trace event as the recording writes it, one line each (redbug's
// view: time, process with its name, the call with its arguments, the return value, the message).
// It follows the capture being written on a thread of its own (the writer flushes at least every
// 200 ms), so what is printed is exactly what the capture holds; after the session has stopped it
// prints what is left and ends.
import Foundation
import CaptureStore
import TraceModel

final class LivePrinter: @unchecked Sendable {
    let capture: String
    let times: TimeOptions
    let syntax: SyntaxOptions
    private let done = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var sessionEnded = false

    init(capture: String, times: TimeOptions, syntax: SyntaxOptions) {
        self.capture = capture
        self.times = times
        self.syntax = syntax
    }

    func start() {
        let thread = Thread { [self] in
            follow()
            done.signal()
        }
        thread.start()
    }

    /// Called once the session has returned: prints the rest and waits for the printer to end.
    func finish() {
        lock.withLock { sessionEnded = true }
        done.wait()
    }

    private var ended: Bool { lock.withLock { sessionEnded } }

    private func follow() {
        let window = Follower.Window()
        var time: TimeText?
        var out: [UInt8] = []
        while true {
            let endedBefore = ended
            var printed = 0
            if let reader = try? CaptureReader(opening: capture) {
                var query = EventQuery()
                query.from = window.low
                var printer = EventPrinter(dictionaries: reader.dictionaries,
                                           time: time ?? times.text(for: reader, default: .abs),
                                           elixir: syntax.useElixir(reader.dictionaries))
                try? reader.forEach(matching: query) { event, payload in
                    guard !Self.ownKinds.contains(event.kind), window.accept(event, payload: payload) else { return true }
                    out.append(contentsOf: printer.line(event, payload: payload).utf8)
                    out.append(10)
                    printed += 1
                    if out.count > 1 << 15 {
                        FileHandle.standardOutput.write(Data(out))
                        out.removeAll(keepingCapacity: true)
                    }
                    return true
                }
                time = printer.time
                window.prune()
            }
            if !out.isEmpty {
                FileHandle.standardOutput.write(Data(out))
                out.removeAll(keepingCapacity: true)
            }
            // The capture is closed once the session has returned: one more pass found nothing new.
            if endedBefore && printed == 0 { return }
            if !endedBefore { Thread.sleep(forTimeInterval: 0.1) }
        }
    }

    /// Session bookkeeping, not trace messages (`events` shows them).
    static let ownKinds: Set<EventKind> = [.sample, .monitor, .marker]
}
