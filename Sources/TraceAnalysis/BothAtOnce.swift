// Two pieces of work run at the same time, one on the caller's thread's pool and one on another
// (Dispatch's `concurrentPerform` of 2), returning when both are done. For a report's CPU-bound tail on
// a machine whose decoding core is idle by then; the caller keeps the two from touching the same memory.
import Dispatch

/// Runs `first` and `second` concurrently and returns when both have finished. They must not write
/// what the other reads (each gets its own buffers; shared inputs are only read).
func bothAtOnce(_ first: () -> Void, _ second: () -> Void) {
    withoutActuallyEscaping(first) { first in
        withoutActuallyEscaping(second) { second in
            let work = Unchecked(first: first, second: second)
            DispatchQueue.concurrentPerform(iterations: 2) { i in
                if i == 0 { work.first() } else { work.second() }
            }
        }
    }
}

/// The two closures handed across threads (`bothAtOnce`'s callers keep their accesses apart).
private struct Unchecked: @unchecked Sendable {
    let first: () -> Void
    let second: () -> Void
}
