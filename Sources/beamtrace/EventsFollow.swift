// `events --follow`: tails a capture while `beamtrace record` writes it. Every 200 ms the capture
// is opened again (the writer flushes blocks at least every 200 ms); events are printed once each:
// newer than any printed so far, or within the last 2 s (a node's blocks can lag another's) and
// not printed yet. It ends when the capture's session has stopped and nothing new came.
import ArgumentParser
import CaptureStore
import Foundation
import TraceModel

struct Follower {
    let command: EventsCommand
    static let lag: Int64 = 2_000_000_000

    /// What one round may print.
    final class Window {
        var newest: Int64 = .min
        /// Events printed in the last `lag` before `newest`, with their times.
        var seen: [EventKey: Int64] = [:]
        var low: Int64? { newest == .min ? nil : newest - Follower.lag }

        func accept(_ event: TraceEvent, payload: UnsafeRawBufferPointer) -> Bool {
            if let low, event.time < low { return false }
            let key = EventKey(event, payloadBytes: payload.count)
            if seen[key] != nil { return false }
            seen[key] = event.time
            if event.time > newest { newest = event.time }
            return true
        }

        func prune() {
            guard let low else { return }
            seen = seen.filter { $0.value >= low }
        }
    }

    struct EventKey: Hashable {
        var time: Int64, node: NodeID, pid: ProcessID, kind: EventKind, mfa: FunctionID, value: Int64, bytes: Int
        init(_ e: TraceEvent, payloadBytes: Int) {
            time = e.time; node = e.node; pid = e.pid; kind = e.kind; mfa = e.mfa; value = e.value; bytes = payloadBytes
        }
    }

    func run(first: CaptureReader, output: inout EventOutput) throws {
        let window = Window()
        var reader = first
        while true {
            let before = output.printed
            let more = try command.emit(reader, output: &output, after: window)
            output.flush()
            window.prune()
            if !more { return }
            if reader.meta.stopReason != nil && output.printed == before { return }
            Thread.sleep(forTimeInterval: 0.2)
            do {
                reader = try CaptureReader(opening: command.capture)
            } catch {
                throw CLIError("cannot reopen \(command.capture) while following it: \(error)")
            }
        }
    }
}
