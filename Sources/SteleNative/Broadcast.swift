import CSteleSys

/// Words that many threads sleep on and one thread wakes all at once: each word counts the
/// broadcasts made on it (its generation), and a sleeper waits for the generation it saw to pass.
///
/// Why not a semaphore per sleeper: the group commit releases a whole group (dozens of request
/// threads) after each sync. Waking them one `sem_post` at a time let the first woken preempt
/// the waker, so the rest of the group woke one by one between other threads' work, and the
/// last of a group returned milliseconds after its records were durable (measured with 64
/// threads on 2 cores: 3,953 preemptions of the waker inside `sem_post` in one run, and most of
/// the puts' p99). One `FUTEX_WAKE` makes every sleeper of the group runnable in one system call.
///
/// Invariant: a word's generation only grows (wrapping at 2^32, which a sleeper would have to
/// sleep through 4 billion broadcasts to miss).
package final class Broadcast: @unchecked Sendable {
    private let words: UnsafeMutablePointer<UInt32>
    package let count: Int

    /// `count` independent words, each at generation 0.
    package init(words count: Int) {
        self.count = count
        words = .allocate(capacity: count)
        words.initialize(repeating: 0, count: count)
    }

    deinit {
        words.deinitialize(count: count)
        words.deallocate()
    }

    /// The number of broadcasts made on word `word` so far.
    package func generation(_ word: Int) -> UInt32 {
        stele_load_acquire(words + word)
    }

    /// Sleeps until word `word` has moved past generation `seen` (returns at once if it has).
    package func wait(_ word: Int, past seen: UInt32) {
        while stele_load_acquire(words + word) == seen {
            // EINTR and EAGAIN (it moved before the sleep began) both mean: look again.
            _ = stele_futex_wait(words + word, seen)
        }
    }

    /// Advances word `word` by one generation: sleepers past it may go (after ``wakeAll(_:)``),
    /// and a thread that reads the generation from now on waits for the next one.
    package func advance(_ word: Int) {
        stele_advance_release(words + word)
    }

    /// Wakes every thread sleeping on word `word`, in one system call. A sleeper whose
    /// generation has not passed goes back to sleep.
    package func wakeAll(_ word: Int) {
        _ = stele_futex_wake_all(words + word)
    }
}
