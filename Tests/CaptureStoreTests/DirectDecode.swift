// A dbg trace file decoded straight by the trace-message decoder, with no capture in between: what
// an imported capture must read back as (round-trip and column-pruning tests).
import Foundation
import TraceModel

enum DirectDecode {
    /// The file's events with their payloads, in a capture's order (time, then file order), and the
    /// decoder that read them (its dictionaries).
    static func of(_ trace: String) throws -> (events: [RecordedEvent], decoder: TraceMessageDecoder) {
        var decoder = TraceMessageDecoder()
        var direct = EventBatch()
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: trace)))
        _ = try bytes.withUnsafeBytes { raw in
            try FrameScanner().scan(raw, streamOffset: 0) { frame, _ in
                switch frame {
                case .message(let body): try decoder.decode(body, into: &direct)
                case .drop(let n): decoder.appendDrop(count: Int64(n), into: &direct)
                }
            }
        }
        let events = (0..<direct.count).map { RecordedEvent(event: direct[$0], payload: Array(direct.payload($0))) }
            .enumerated().sorted { ($0.element.event.time, $0.offset) < ($1.element.event.time, $1.offset) }.map(\.element)
        return (events, decoder)
    }
}
