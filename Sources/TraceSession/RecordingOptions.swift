// The knobs of a recording session: which nodes, what to trace, the limits that keep the nodes
// safe (all on by default), sampling, and where the capture goes.
import BeamDistribution
import CaptureStore
import Foundation

/// Limits in force during a session. The defaults are safe; each is recorded as the stop reason when hit.
public struct RecordingLimits: Sendable, Hashable {
    /// Stop after this long (nil: no time limit, only with an explicit choice).
    public var duration: Duration? = .seconds(30)
    /// Stop after this many trace events in total (nil: none).
    public var maxEvents: Int? = 1_000_000
    /// Per node: trace events per second beyond which the agent drops and counts (nil: none).
    public var maxRate: Int? = 200_000
    /// Stop `after` past the first sample in which some process's queue exceeds this.
    public var untilQueue: Int?
    public var after: Duration = .seconds(5)
    /// Flight-recorder mode: keep only the newest this many bytes of segments.
    public var ringBytes: Int?
    /// The agent's own mailbox: drop above `softQueue` messages, stop tracing above `hardQueue`.
    public var softQueue = 50_000
    public var hardQueue = 500_000
    /// Events the agent holds while the recorder is behind, before it drops.
    public var maxPendingEvents = 50_000

    public init() {}
}

/// How trace frames travel from a node to the recorder.
public enum Transport: String, Sendable, Hashable {
    /// The beamtrace agent: batches over distribution, with the node-side protections.
    case agent
    /// OTP's `ip` trace port (`dbg:trace_port(ip, ...)`), read over TCP. It listens on all
    /// interfaces without authentication, and nothing on the node switches tracing off if the
    /// recorder dies: use it only when asked (or when the node cannot compile the agent).
    case ip
}

public struct RecordingOptions: Sendable {
    /// `name@host` of each node to record.
    public var nodes: [String]
    public var cookie: Cookie
    /// Our own node name (a random `beamtrace_…` by default).
    public var localName: String?
    public var distribution: DistributionOptions
    public var spec: TraceSpec
    public var limits: RecordingLimits
    /// Sample queues, memory and reductions this often (nil: no sampling).
    public var sampleInterval: Duration? = .milliseconds(100)
    /// At most this many processes per sample (the longest queues).
    public var sampleTop = 50
    /// Subscribe to `system_monitor` (long_gc, long_schedule, large_heap, busy_port, busy_dist_port...).
    public var systemMonitor = true
    /// system_monitor thresholds: long_gc and long_schedule in ms, large_heap in words.
    /// After a multi-node session, refine the clock offsets from send -> receive pairs and
    /// rewrite the capture when a receive precedes its send (ClockRefinement).
    public var refineClocks = true
    public var longGCMilliseconds = 100
    public var longScheduleMilliseconds = 100
    public var largeHeapWords = 8 << 20
    public var transport: Transport = .agent
    /// The capture directory to create.
    public var output: String
    /// The command line, for the capture's session record (the cookie must already be removed).
    public var commandLine: [String] = []
    /// Payload bytes kept per event (arguments, messages, return values).
    public var payloadLimit = 256
    /// The agent ships a batch at this many events or after `batchInterval`, whichever first.
    public var batchEvents = 4000
    public var batchInterval: Duration = .milliseconds(5)
    /// Batches in flight per node before the agent holds back.
    public var batchesInFlight = 8
    /// Stop the session at the first trace message or batch that does not decode (default: count
    /// it, skip it, go on), as `import --strict` does.
    public var strict = false
    /// How long each step of starting on a node may wait for the node's reply (its OTP release, the
    /// `--procs` checks, each step of loading the agent — scanning, parsing and compiling it there is slow
    /// on a busy node —, the guard, the clock measurement, the start) and of confirming it clean.
    public var setupTimeout: Duration = .seconds(30)

    public init(nodes: [String], cookie: Cookie, spec: TraceSpec, output: String,
                distribution: DistributionOptions = DistributionOptions()) {
        self.nodes = nodes
        self.cookie = cookie
        self.spec = spec
        self.output = output
        self.distribution = distribution
        self.limits = RecordingLimits()
    }
}

/// What a running session looks like now (for a status line).
public struct RecordingStatus: Sendable {
    public struct Node: Sendable {
        public var name: String
        /// "recording", "stopping", "stopped", "down: reason"...
        public var state: String
        public var events: Int
        public var drops: Int
    }
    public var elapsed: Duration
    public var events: Int
    public var eventsPerSecond: Double
    public var drops: Int
    public var bytesWritten: Int64
    public var nodes: [Node]
}

/// Receives status updates about twice a second while recording.
public protocol RecordingProgress: Sendable {
    func update(_ status: RecordingStatus)
}

/// The outcome of a session.
public struct RecordingSummary: Sendable {
    public struct Node: Sendable {
        public var name: String
        public var otpRelease: String?
        public var events: Int
        public var drops: Int
        /// Drops by reason as the agent counted them (rate, queue, backpressure, overload).
        public var dropsByReason: [String: Int]
        public var clockOffsetStartNs: Int64?
        public var clockOffsetEndNs: Int64?
        /// Why this node's recording ended ("session stopped", "node down: ...").
        public var endReason: String
        /// True when the agent reported everything switched off and the module is unloaded.
        public var cleanedUp: Bool
    }
    public var output: String
    public var events: Int
    public var drops: Int
    public var bytesWritten: Int64
    public var startReason: String
    public var stopReason: String
    public var duration: Duration
    public var nodes: [Node]
    /// Things that went wrong but did not stop the session (undecodable frames, cleanup trouble).
    public var problems: [String]
    /// The error that stopped the session (writing the capture failed: a full disk...), if one did.
    public var failure: String?
    /// Events the capture actually holds (trace events plus samples and markers, in blocks written).
    public var eventsInCapture = 0
    /// What refining the nodes' clock offsets from send -> receive pairs did (multi-node sessions).
    public var clockRefinement: ClockRefinement? = nil
    /// Trace messages that did not decode and were skipped, the bytes skipped in all, and where
    /// (node and byte of its stream; the first 100 places).
    public var messagesSkipped = 0
    public var bytesSkipped: Int64 = 0
    public var skipped: [IngestDamage] = []
}
