import Dispatch

/// Work started on another thread now and joined later: its value, or the error it threw.
///
/// The one shape behind the second core's work outside the append path: tiles rebuilt while the
/// key index is (open), the next segment prescanned while this one is checked (fsck), the next
/// objects fetched and checked while this one is written (restore).
///
/// Invariant: `result` is written once, by the worker, before `done` is left; it is read only
/// after waiting on `done`, which orders the two. The work closure is dropped as soon as it has
/// run, so that what it captured (a log and its files) is never released by the worker thread
/// after the caller has moved on.
package final class BackgroundTask<Value>: @unchecked Sendable {
    private let done = DispatchGroup()
    private var work: (() throws -> Value)?
    private var result: Result<Value, any Error>?

    /// Starts `work` on a global queue at `qos`.
    ///
    /// Unchecked: `work` need not be `@Sendable`. The caller vouches that what it touches is
    /// either immutable or left alone by every other thread until the task is joined (each use
    /// says why that holds).
    /// Cost: a thread hand-off (microseconds); the work's own cost on the other core.
    package init(qos: DispatchQoS.QoSClass = .userInitiated, _ work: @escaping () throws -> Value) {
        self.work = work
        done.enter()
        DispatchQueue.global(qos: qos).async {
            if let work = self.work { self.result = Result(catching: work) }
            self.work = nil
            self.done.leave()
        }
    }

    /// Waits for the work to finish and returns its value (any number of times).
    /// - Throws: what the work threw.
    package func value() throws -> Value {
        done.wait()
        guard let result else { preconditionFailure("a background task finished without a result") }
        return try result.get()
    }

    /// Waits for the work to finish, ignoring its outcome (for work whose result is no longer
    /// wanted, so that no thread outlives the operation that started it).
    package func join() {
        done.wait()
    }
}
