import Dispatch
import Synchronization
import SteleNative

/// The group commit: one sync makes the appended records of every waiting caller durable,
/// threads and tasks alike.
///
/// How a durable append goes: the caller copies its records into the segment under the store's
/// writer lock (microseconds), releases it, and waits here for the count of durable records to
/// reach its last sequence number + 1. Whoever syncs, syncs everything appended so far (one
/// `msync`), raises the count, and wakes every waiter it covered; callers that appended while
/// the sync ran are the next group. So the writer lock never spans a sync, and the disk is never
/// idle while someone waits.
///
/// Who syncs: a blocking caller that is alone (no sync running, nobody waiting, the committer
/// idle) runs the sync itself, on its own thread: a lone writer pays one `msync` and no hand-off,
/// as without a group commit (measured: the hand-off cost a one-caller workload of durable
/// 1,000-record batches some 4%). Otherwise it sleeps, and the store's committer thread syncs
/// for everyone waiting and wakes them (measured with 64 threads: 110,000 durable puts/s, against
/// 64,000-87,000 when each sync's end let the next woken caller lead). An async caller never
/// syncs nor takes the writer lock (either would block a thread of the cooperative pool): it
/// queues its append for the next round and suspends, and the committer appends it, syncs and
/// resumes it.
///
/// How waiters sleep: tasks each leave a continuation; threads sleep together on the
/// ``Broadcast`` word of their round (the next sync to start covers every thread registered
/// before it), and the sync's end wakes the whole round in one system call. Rounds alternate
/// between two words: threads registering during a sync belong to the next round and sleep
/// on the other word, so the end of a sync never wakes the next group for nothing.
///
/// Invariants: at most one sync runs at a time (`syncing`), and it is round `nextRound - 1`;
/// a waiter is released only once the durable count covers its target (then it succeeds) or
/// after a sync failed or found the store closed (then it is told why); a round's word advances
/// (under the state lock, so that a thread reading it afterwards waits for the next round on
/// it) only when that round's sync has ended or failed; a queued append is made at most once
/// (by the round that claims it, or by a caller combining for that round, before its sync) and
/// never after a sync failed, and its caller is woken or resumed either way; the committer sleeps only when no waiter
/// is left for it (none registered, or a sync running whose end hands the rest over), and
/// whoever leaves one for it while it sleeps wakes it.
final class GroupCommit: Sendable {
    /// A task waiting for the durable count to reach `target`; resumed once a sync covers it or
    /// failed, it reads the count to learn which.
    private typealias TaskWaiter = (target: UInt64, continuation: UnsafeContinuation<Void, Never>)
    typealias LockedAppend = (inout Store.State) throws -> ClosedRange<UInt64>

    /// A durable append waiting for the next round, which appends it and syncs: a blocking
    /// caller's (it sleeps on the round's word) or a task's (`continuation`, resumed once a sync
    /// covers its records or the append failed).
    private final class Request: @unchecked Sendable {
        let append: LockedAppend
        /// Set (a task's) before the request is queued.
        var continuation: UnsafeContinuation<Void, Never>?
        /// Set by whoever appends it, before the caller is woken or resumed; read by the caller after.
        var result: Result<ClosedRange<UInt64>, any Error>?
        init(_ append: @escaping LockedAppend) { self.append = append }

        /// The receipt's sequence numbers once the caller is woken: the append's error, or the
        /// store's failure if a sync did not cover them.
        func outcome(in store: Stele.Store) throws -> ClosedRange<UInt64> {
            // No result: a failed sync or a close released the round before it appended.
            guard let result else { throw store.commitFailure() }
            let sequences = try result.get()
            if store.durableCount.load(ordering: .acquiring) <= sequences.upperBound { throw store.commitFailure() }
            return sequences
        }
    }

    private struct State {
        var tasks: [TaskWaiter] = []
        /// Appends for the next round to make, in the order they came.
        var requests: [Request] = []
        /// Threads asleep on the word of round `nextRound`, which the next sync to start covers.
        var threadsInNextRound = 0
        /// The round of the next sync to start (one round per sync).
        var nextRound: UInt64 = 0
        /// A sync is running (a caller's or the committer's).
        var syncing = false
        /// A waiting caller is making the next round's appends (see ``combineQueued(into:)``).
        var combining = false
        var committerAsleep = false
        var stopped = false

        var hasWaiters: Bool { !tasks.isEmpty || threadsInNextRound > 0 || !requests.isEmpty }

        /// Starts the next round: its number, how many threads sleep on it, the appends it makes.
        mutating func claimRound() -> Round {
            defer {
                syncing = true
                nextRound += 1
                threadsInNextRound = 0
                requests = []
            }
            return Round(number: nextRound, threads: threadsInNextRound, requests: requests)
        }
    }

    private struct Round {
        let number: UInt64
        let threads: Int
        let requests: [Request]
    }

    private let state = Mutex(State())
    /// Round r's threads sleep on word r % 2.
    private let rounds = Broadcast(words: 2)
    private let wake = DispatchSemaphore(value: 0)

    init() {}

    /// Starts the committer for `store`, which syncs whenever someone waits, until ``stop()``.
    /// It holds the store weakly: the committer does not keep it open (a store nobody references
    /// closes in its deinit, which stops the committer).
    /// - Throws: ``SteleError/io(_:)`` if the system refuses a thread.
    func start(name: String, for store: Stele.Store) throws {
        try system { () throws(SystemError) in
            try DedicatedThread.start(name: name) { [weak store] in self.run { store } }
        }
    }

    /// Blocks until the first `count` records are durable: runs the sync on this thread when
    /// alone, else sleeps until a sync covers them.
    /// - Throws: the store's failure (``SteleError/writesDisabled(cause:)``, ``SteleError/closed``)
    ///   if they never will be.
    func waitUntilDurable(_ count: UInt64, in store: Stele.Store) throws(SteleError) {
        if store.durableCount.load(ordering: .acquiring) >= count { return }
        switch register(nil) {
        case .stopped: throw store.commitFailure()
        case .alone(let round): syncAndRelease(store, round)
        case .wait(let word, let seen, _): rounds.wait(word, past: seen)
        }
        if store.durableCount.load(ordering: .acquiring) < count { throw store.commitFailure() }
    }

    /// Appends with `append` (run under the writer lock) and blocks until the records are
    /// durable. Alone, the caller appends and syncs on its own thread; under load it leaves the
    /// append to the next round and sleeps: the round's thread makes every waiting append in one
    /// hold of the writer lock, in the order they came, syncs once, and wakes them all.
    ///
    /// Why the round appends for its callers: woken together, dozens of threads each taking the
    /// writer lock for a few microseconds formed a convoy (each hand-off a wake and a context
    /// switch, often after the holder was preempted) that made most of the puts' p99 with 64
    /// threads on 2 cores. LevelDB's writer queue does the same for the same reason.
    /// - Returns: the sequence numbers appended.
    /// - Throws: the append's error (nothing was appended), or as ``waitUntilDurable(_:in:)``.
    func appendDurably(_ append: @escaping LockedAppend, in store: Stele.Store) throws -> ClosedRange<UInt64> {
        let request = Request(append)
        switch register(request) {
        case .stopped:
            throw store.commitFailure()
        case .alone(let round):
            let appended = Result { try store.state.withLock(append) }
            syncAndRelease(store, round)
            request.result = appended
        case .wait(let word, let seen, let combine):
            if combine { combineQueued(into: store) }
            rounds.wait(word, past: seen)
        }
        return try request.outcome(in: store)
    }

    /// Hands `append` to the next round and suspends until its records are durable. The round's
    /// thread (the committer, or a blocking caller appending for the next round) makes it with
    /// the others under one hold of the writer lock: tasks never wait for that lock on the
    /// cooperative pool's few threads, nor make a convoy of it. Cancellation does not end the
    /// wait: once queued, the append is made, and the caller learns whether it is durable.
    /// - Returns: the sequence numbers appended.
    /// - Throws: as the blocking form.
    func appendDurably(_ append: @escaping LockedAppend, in store: Stele.Store) async throws -> ClosedRange<UInt64> {
        let request = Request(append)
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
            request.continuation = continuation
            let (queued, wakeCommitter) = state.withLock { state -> (Bool, Bool) in
                if state.stopped { return (false, false) }
                state.requests.append(request)
                guard !state.syncing, state.committerAsleep else { return (true, false) }
                state.committerAsleep = false
                return (true, true)
            }
            if wakeCommitter { wake.signal() }
            if !queued { continuation.resume() }
        }
        return try request.outcome(in: store)
    }

    private enum Registration {
        case stopped
        /// Nobody else is waiting, no sync runs, the committer is idle: the caller runs `Round`.
        case alone(Round)
        /// Sleep on `word` until it passes generation `seen`; first, if `combine`, make the
        /// appends waiting for the next round (``combineQueued(into:)``).
        case wait(word: Int, seen: UInt32, combine: Bool)
    }

    /// Registers a blocking caller (with its append, if it has one) for the next round.
    private func register(_ request: Request?) -> Registration {
        let (registration, wakeCommitter) = state.withLock { state -> (Registration, Bool) in
            if state.stopped { return (.stopped, false) }
            // Alone (no sync running, nobody waiting, the committer idle): no hand-off.
            if !state.syncing, !state.hasWaiters, state.committerAsleep { return (.alone(state.claimRound()), false) }
            // Under load the committer runs the rounds; it is awake, or a running sync's end
            // hands this waiter to it.
            state.threadsInNextRound += 1
            if let request { state.requests.append(request) }
            let word = Int(state.nextRound % 2)
            let wakeCommitter = !state.syncing && state.committerAsleep
            if wakeCommitter { state.committerAsleep = false }
            // While a sync runs, the first caller to come appends for the next round.
            let combine = request != nil && state.syncing && !state.combining
            if combine { state.combining = true }
            return (.wait(word: word, seen: rounds.generation(word), combine: combine), wakeCommitter)
        }
        if wakeCommitter { wake.signal() }
        return registration
    }

    /// Suspends until the first `count` records are durable, without blocking a thread (the
    /// committer syncs and resumes the task). Cancellation does not end the wait: the records are
    /// in the log already, and the caller learns that they are durable (or why not).
    /// - Throws: as ``waitUntilDurable(_:in:)``.
    func durable(_ count: UInt64, in store: Stele.Store) async throws {
        if store.durableCount.load(ordering: .acquiring) >= count { return }
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
            let (registered, wakeCommitter) = state.withLock { state -> (Bool, Bool) in
                if state.stopped { return (false, false) }
                state.tasks.append((count, continuation))
                // A running sync hands over at its end; else the committer must start one.
                guard !state.syncing, state.committerAsleep else { return (true, false) }
                state.committerAsleep = false
                return (true, true)
            }
            if wakeCommitter { wake.signal() }
            if !registered { continuation.resume() }
        }
        if store.durableCount.load(ordering: .acquiring) < count { throw store.commitFailure() }
    }

    /// Blocking callers registered for the round after the one running (for tests that hold a
    /// sync and need callers queued behind it).
    var threadsWaitingForNextRound: Int { state.withLock { $0.threadsInNextRound } }

    /// Appends queued for the round after the one running, not made yet (for tests).
    var appendsWaitingForNextRound: Int { state.withLock { $0.requests.count } }

    /// Stops the committer once it has released every waiter (after one more sync: call it
    /// after the store's final sync, so that those covered succeed and the rest learn why not).
    func stop() {
        let wakeCommitter = state.withLock { state -> Bool in
            state.stopped = true
            defer { state.committerAsleep = false }
            return state.committerAsleep
        }
        if wakeCommitter { wake.signal() }
    }

    /// Makes the appends waiting for the next round, under one hold of the writer lock, while
    /// the current round's sync runs: so the next round's sync starts as soon as it may, and
    /// appending overlaps syncing. Stops when none is left or the next round has begun (its
    /// sync then waits for this hold of the writer lock to end: `syncAppended` takes it, so
    /// whatever was taken from the queue here is appended before that sync looks).
    private func combineQueued(into store: Stele.Store) {
        store.state.withLock { writer in
            var round: UInt64?
            while true {
                let batch = state.withLock { state -> [Request] in
                    round = round ?? state.nextRound
                    guard !state.requests.isEmpty, state.nextRound == round else {
                        state.combining = false
                        return []
                    }
                    defer { state.requests = [] }
                    return state.requests
                }
                if batch.isEmpty { return }
                for request in batch { request.result = Result { try request.append(&writer) } }
                waitForCoveringSync(batch)
            }
        }
    }

    /// Tasks among `appended` (made for the next round, before its sync) wait for a sync that
    /// covers their records, as tasks that appended on their own do; those whose append failed
    /// are resumed now. Called with the writer lock held, so that the next sync (which takes it)
    /// finds them registered.
    private func waitForCoveringSync(_ appended: [Request]) {
        var failed: [UnsafeContinuation<Void, Never>] = []
        state.withLock { state in
            for request in appended {
                guard let continuation = request.continuation else { continue }
                if case .success(let sequences) = request.result {
                    state.tasks.append((sequences.upperBound + 1, continuation))
                } else {
                    failed.append(continuation)
                }
            }
        }
        for continuation in failed { continuation.resume() }
    }

    /// Runs `round` (the caller claimed it): makes its appends, syncs, releases its threads and
    /// the tasks it covered (every waiter if the sync failed or the store is gone), and hands any
    /// left over to the committer.
    ///
    /// Every waiter's records were appended before it registered or are appended here, so a
    /// sync that succeeds covers all who registered before the round began; those who came
    /// during it are the next round.
    private func syncAndRelease(_ store: Stele.Store?, _ round: Round) {
        if !round.requests.isEmpty {
            if let store {
                store.state.withLock { state in
                    for request in round.requests { request.result = Result { try request.append(&state) } }
                }
            } else {
                for request in round.requests { request.result = .failure(SteleError.closed) }
            }
        }
        var failed = store == nil
        do { try store?.syncAppended() } catch { failed = true }
        let reached = store?.durableCount.load(ordering: .acquiring) ?? 0
        let word = Int(round.number % 2)
        let (released, wakeNextRound, wakeCommitter) = state.withLock { state -> ([TaskWaiter], Bool, Bool) in
            state.syncing = false
            rounds.advance(word)
            var released: [TaskWaiter]
            var wakeNextRound = false
            if failed {
                // Nobody waiting will be made durable: the next round's threads and tasks learn
                // it too (their appends are not made).
                released = state.tasks
                state.tasks = []
                for request in state.requests {
                    if let continuation = request.continuation { released.append((.max, continuation)) }
                }
                state.requests = []
                if state.threadsInNextRound > 0 {
                    rounds.advance(Int(state.nextRound % 2))
                    state.threadsInNextRound = 0
                    wakeNextRound = true
                }
            } else {
                released = state.tasks.filter { $0.target <= reached }
                state.tasks.removeAll { $0.target <= reached }
            }
            guard state.hasWaiters, state.committerAsleep else { return (released, wakeNextRound, false) }
            state.committerAsleep = false
            return (released, wakeNextRound, true)
        }
        if wakeCommitter { wake.signal() }
        if round.threads > 0 { rounds.wakeAll(word) }
        if wakeNextRound { rounds.wakeAll(1 - word) }
        // The round's own tasks: appended (or refused) before its sync, so settled by it.
        for request in round.requests { request.continuation?.resume() }
        for (_, continuation) in released { continuation.resume() }
    }

    /// The committer's loop: syncs while waiters are left and no other sync runs.
    /// - Parameter owner: the store, while it lives.
    private func run(_ owner: () -> Stele.Store?) {
        while true {
            let work = state.withLock { state -> Round?? in
                if state.hasWaiters, !state.syncing { return state.claimRound() }
                if !state.hasWaiters, state.stopped { return nil }
                state.committerAsleep = true
                return .some(nil)
            }
            guard let work else { return }
            if let round = work {
                syncAndRelease(owner(), round)
            } else {
                wake.wait()
            }
        }
    }
}
