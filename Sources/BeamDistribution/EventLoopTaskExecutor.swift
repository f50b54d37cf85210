// A TaskExecutor that runs jobs on the connection's NIO event loop. Callers that make many
// sequential calls can run under `withTaskExecutorPreference(connection.taskExecutor)`: then the
// write happens inline and the reply resumes the caller on the same thread, with no thread hops.
import NIOCore

final class EventLoopTaskExecutor: TaskExecutor, @unchecked Sendable {
    // @unchecked: holds only the event loop, which is Sendable and thread-safe.
    let eventLoop: any EventLoop

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
