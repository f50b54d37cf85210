// A process of our own on the hidden node: a local pid that remote processes can send to, link to
// and monitor, with everything addressed to it delivered as an AsyncSequence.
import BeamTerm
import NIOCore

/// What arrives in a mailbox.
public enum MailboxMessage: Sendable {
    /// A message sent to the mailbox's pid.
    case message(Term)
    /// A process this mailbox monitored went down (`{'DOWN', Ref, process, Process, Reason}`); the
    /// reason is `noconnection` when the connection to its node was lost.
    case down(monitor: Reference, process: Term, reason: Term)
    /// An exit signal: a linked process died, or someone called `exit(Pid, Reason)` on us.
    case exit(from: Pid, reason: Term)
    /// The connection is gone; the sequence ends after this.
    case nodeDown(DistributionError)
}

/// Takes messages to a mailbox as bytes, on the connection's event loop, before any term is built.
/// Returns true when it took the message; false lets it be decoded and delivered as usual. It runs on
/// the event loop: it must not block for long (the connection reads nothing meanwhile).
public typealias MailboxInterceptor = @Sendable (_ message: ReceivedMessage) -> Bool

/// A message as received: its external term format (from the version byte 131), a view of the frame
/// read from the socket (no copy). It may be kept and read later, from any thread.
public struct ReceivedMessage: Sendable {
    let buffer: ByteBuffer

    public var count: Int { buffer.readableBytes }

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try buffer.withUnsafeReadableBytes(body)
    }
}

/// Where a message goes: a pid, or a name registered on the connected node.
public enum ProcessAddress: Sendable, Hashable {
    case pid(Pid)
    case name(Atom)
}

public final class Mailbox: AsyncSequence, Sendable {
    public typealias Element = MailboxMessage
    public typealias AsyncIterator = AsyncStream<MailboxMessage>.Iterator

    /// Our pid: hand it to remote processes (e.g. as an rpc argument) so they can send to us.
    public let pid: Pid
    private let stream: AsyncStream<MailboxMessage>
    private let core: ConnectionCore

    init(pid: Pid, stream: AsyncStream<MailboxMessage>, core: ConnectionCore) {
        self.pid = pid
        self.stream = stream
        self.core = core
    }

    /// One consumer at a time (it is an `AsyncStream`).
    public func makeAsyncIterator() -> AsyncStream<MailboxMessage>.Iterator { stream.makeAsyncIterator() }

    /// Sends `message` from this mailbox's pid.
    public func send(to address: ProcessAddress, _ message: Term) throws(DistributionError) {
        try core.send(to: address, message: message, from: pid)
    }

    /// Sends like `send(to:_:)`; called from an interceptor (on the event loop), the write is flushed
    /// once when the current read completes, together with the others made meanwhile.
    public func sendSoon(to address: ProcessAddress, _ message: Term) throws(DistributionError) {
        try core.send(to: address, message: message, from: pid, coalesce: true)
    }

    /// Offers every message to this mailbox to `interceptor` first (see `MailboxInterceptor`); nil
    /// removes it. Messages it declines, and those that came before, are delivered in the sequence.
    public func intercept(_ interceptor: MailboxInterceptor?) {
        core.setInterceptor(pid.id, interceptor)
    }

    /// Monitors a remote process (a pid, or a name registered on the node); a `.down` arrives when it
    /// ends, at once with reason `noproc` if it does not exist.
    @discardableResult
    public func monitor(_ process: ProcessAddress) throws(DistributionError) -> Reference {
        try core.monitor(process, owner: pid)
    }

    public func demonitor(_ reference: Reference) {
        core.demonitor(reference, owner: pid)
    }

    /// Ends the mailbox: remote monitors of it see `normal`, and the sequence finishes.
    public func close() {
        core.closeMailbox(pid.id, reason: .atom("normal"))
    }
}
