// The session clock: nanoseconds since 1970 as the recorder's machine sees them, advanced by its
// monotonic clock from one reading at session start (so a wall-clock step mid-session does not
// move it). Each node's offset to it comes from several rpc round trips of
// `erlang:monotonic_time(nanosecond)`; the tightest round trip wins.
import BeamDistribution
import BeamTerm
import Foundation

struct SessionClock: Sendable {
    let wallAtStart: Int64
    let monotonicAtStart: ContinuousClock.Instant

    init() {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        wallAtStart = Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec)
        monotonicAtStart = .now
    }

    var now: Int64 {
        let elapsed = ContinuousClock.now - monotonicAtStart
        return wallAtStart + elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000
    }

    struct Offset: Sendable {
        /// Add to the node's monotonic nanoseconds to get session time.
        var offset: Int64
        /// The round trip of the best measurement (the offset's uncertainty is half of it).
        var roundTrip: Int64
    }

    /// Measures a node's offset with `rounds` rpc round trips, keeping the tightest.
    func measure(_ connection: DistributionConnection, rounds: Int = 7,
                 timeout: Duration = .seconds(10)) async throws -> Offset {
        var best: Offset?
        for _ in 0..<rounds {
            let before = now
            let reply = try await connection.rpc(module: "erlang", function: "monotonic_time",
                                                 arguments: [.atom("nanosecond")], timeout: timeout)
            let after = now
            guard let remote = reply.intValue else { continue }
            let roundTrip = after - before
            let offset = before + roundTrip / 2 - remote
            if let current = best, current.roundTrip <= roundTrip { continue }
            best = Offset(offset: offset, roundTrip: roundTrip)
        }
        guard let best else {
            throw SessionError(.startFailed, node: connection.peer.node.description,
                               "erlang:monotonic_time(nanosecond) did not answer with an integer")
        }
        return best
    }
}
