import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A thread kept for one hand-off after another: the caller posts a job, does its own share of
/// the work, and waits for the job. Between jobs the thread watches for the next one for a
/// short while (``idleSpin``) before it sleeps, and a waiting caller watches for the end of the
/// job (``waitSpin``) before it sleeps.
///
/// Why not a dispatch queue: a batch on two cores handed its hashing to one, and waking a pooled
/// thread, then waking the caller when the job was done, took about 30 µs each, a tenth of a
/// 1,000-record batch. Watching costs a core that would otherwise idle, and yields it
/// (`sched_yield`) to anything else that is ready to run.
///
/// Invariants: at most one job at a time (``post(_:)`` only after the previous ``wait()``);
/// `job` is written by the caller only while no job is posted and read by the thread only after
/// it saw the post (release and acquire on `state`), and cleared by the thread before it
/// reports the job done; only the thread moves a job to done, and only the caller moves it on
/// from there. The thread ends at ``stop()``, which first waits for a job still posted; its
/// owner must call it.
package final class HelperThread: @unchecked Sendable {
    private enum State: Int {
        /// No job; the thread is watching.
        case idle
        /// No job; the thread sleeps on `wake`.
        case sleeping
        /// A job is posted or running; the caller is watching or working.
        case posted
        /// A job is posted or running; the caller sleeps on `finished`.
        case waiting
        /// The job is done and not yet collected.
        case done
        case stopping
    }

    /// How long the thread watches for a next job before it sleeps.
    package static let idleSpin: Duration = .microseconds(200)
    /// How long a caller watches for the end of a job before it sleeps.
    package static let waitSpin: Duration = .milliseconds(1)

    private let state = Atomic<Int>(State.idle.rawValue)
    private var job: (() -> Void)?
    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    /// Starts the thread, named `name` (as `top -H` and `perf` show it: its first 15 bytes).
    /// - Throws: ``SystemError`` if the system refuses a thread.
    package init(name: String) throws(SystemError) {
        // The thread holds a reference to the helper until `run` returns (at `stop()`).
        try DedicatedThread.start(name: name) { self.run() }
    }

    /// Hands `job` to the thread. Cost: an atomic exchange, and a wake-up only if the thread
    /// had gone to sleep (no job for ``idleSpin``).
    package func post(_ job: @escaping () -> Void) {
        self.job = job
        let previous = state.exchange(State.posted.rawValue, ordering: .acquiringAndReleasing)
        precondition(previous == State.idle.rawValue || previous == State.sleeping.rawValue, "a job posted over another")
        if previous == State.sleeping.rawValue { wake.signal() }
    }

    /// Returns once the posted job is done (its effects are visible to the caller).
    package func wait() {
        let deadline = ContinuousClock.now + HelperThread.waitSpin
        while true {
            let current = state.load(ordering: .acquiring)
            if current == State.done.rawValue { break }
            if ContinuousClock.now < deadline {
                sched_yield()
                continue
            }
            if state.compareExchange(expected: State.posted.rawValue, desired: State.waiting.rawValue,
                                     ordering: .acquiringAndReleasing).exchanged {
                finished.wait()
            }
        }
        state.store(State.idle.rawValue, ordering: .releasing)
    }

    /// Ends the thread: waits for a job still posted, then tells the thread to return (it
    /// holds the last reference to itself until then). Call once, from the posting side.
    package func stop() {
        while true {
            let current = state.load(ordering: .acquiring)
            if current == State.posted.rawValue || current == State.waiting.rawValue {
                wait()
                continue
            }
            guard current != State.stopping.rawValue else { return }
            // From idle, sleeping or done (a job finished but not collected): nothing is left to
            // run. Should the thread go to sleep meanwhile, the exchange fails and the next turn
            // sees it asleep and wakes it.
            if state.compareExchange(expected: current, desired: State.stopping.rawValue,
                                     ordering: .acquiringAndReleasing).exchanged {
                if current == State.sleeping.rawValue { wake.signal() }
                return
            }
        }
    }

    private func run() {
        var watchingSince = ContinuousClock.now
        while true {
            let current = state.load(ordering: .acquiring)
            switch current {
            case State.posted.rawValue, State.waiting.rawValue:
                job?()
                job = nil
                // Only the caller changes a posted job's state (to waiting), so one of these two holds.
                if !state.compareExchange(expected: State.posted.rawValue, desired: State.done.rawValue,
                                          ordering: .acquiringAndReleasing).exchanged {
                    state.store(State.done.rawValue, ordering: .releasing)
                    finished.signal()
                }
                watchingSince = ContinuousClock.now
            case State.stopping.rawValue:
                return
            default:
                if ContinuousClock.now - watchingSince < HelperThread.idleSpin {
                    sched_yield()
                } else {
                    if state.compareExchange(expected: State.idle.rawValue, desired: State.sleeping.rawValue,
                                             ordering: .acquiringAndReleasing).exchanged {
                        wake.wait()
                    }
                    watchingSince = ContinuousClock.now
                }
            }
        }
    }
}
