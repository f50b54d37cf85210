// Errors of a recording session: what failed, on which node, and what was kept.

public struct SessionError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        case invalidSpec
        case connectFailed
        case agentLoadFailed
        case patternFailed
        case startFailed
        case captureFailed
        case alreadyRecording
        /// The node has no `compiler` application (the agent cannot be built there).
        case noCompiler
    }
    public var code: Code
    public var node: String?
    public var message: String
    /// The message already says whether the nodes were left clean (TraceSession.noting): said once.
    var cleanupNoted = false

    public init(_ code: Code, node: String? = nil, _ message: String) {
        self.code = code
        self.node = node
        self.message = message
    }

    public var description: String {
        if let node { return "\(node): \(message)" }
        return message
    }
}
