import Dispatch
import Foundation
import Synchronization
import Testing
@testable import Stele

/// The async write API (DocC: Concurrency): `try await` forms of put, append, putBatch, delete and
/// sync that suspend until the group commit's sync covers the records, on the store's committer
/// thread, never on a thread of the cooperative pool.
@Suite struct AsyncWriteTests {
    /// 256 tasks, 20 single puts each, through `try await store.put`: every receipt is durable on
    /// return (the store's durable count covers it), the tasks shared syncs, and every record is
    /// there after a reopen.
    @Test func manyTasksPutDurablyAndShareSyncs() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.child("store")
        try Store.create(at: path, segmentSize: 8 << 20)
        let (store, fs) = try openOnFaultyFileSystem(path)
        let syncsBefore = fs.calls("syncMapped")
        let (tasks, puts) = (256, 20)
        let sequences = try await withThrowingTaskGroup(of: [UInt64].self) { group in
            for task in 0 ..< tasks {
                group.addTask {
                    var mine: [UInt64] = []
                    for put in 0 ..< puts {
                        let receipt = try await store.put(namespace: "orders", key: Array("t\(task)-\(put)".utf8),
                                                          value: Array("value \(task) \(put)".utf8))
                        #expect(receipt.durability == .durable)
                        #expect(store.durableRecordCount > receipt.sequences.upperBound, "acknowledged before its sync")
                        mine.append(receipt.sequences.lowerBound)
                    }
                    return mine
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        let syncs = fs.calls("syncMapped") - syncsBefore
        try store.close()
        #expect(Set(sequences).count == tasks * puts, "every put got its own sequence number")
        print("async group commit: \(tasks * puts) acknowledged puts from \(tasks) tasks, \(syncs) msyncs")
        #expect(syncs > 0 && syncs < tasks * puts, "\(syncs) syncs for \(tasks * puts) puts: tasks did not share syncs")
        let reader = try Store(path: path, options: .init(readOnly: true))
        defer { try? reader.close() }
        #expect(reader.recordCount == firstRecord + UInt64(tasks * puts))
        #expect(try reader.get(namespace: "orders", key: Array("t17-3".utf8))?.value == Array("value 17 3".utf8))
    }

    /// Each async write call does what its blocking namesake does.
    @Test func everyAsyncWriteCallWrites() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.child("store")
        try Store.create(at: path, segmentSize: 1 << 20)
        let store = try Store(path: path)
        let one = try await store.append(Entry(namespace: "a", key: [1], value: [10]))
        let many = try await store.append(contentsOf: [Entry(namespace: "a", key: [2], value: [20]), Entry(namespace: "a", key: [3], value: [30])])
        let batch = try await store.putBatch([Entry(namespace: "b", key: [4], value: [40])])
        var packed = EntryBatch()
        packed.put(namespace: "b", key: [5], value: [50])
        packed.put(namespace: "b", key: [6], value: [60])
        let packedReceipt = try await store.putBatch(packed)
        let deleted = try await store.delete(namespace: "a", key: [1])
        #expect(many.sequences.count == 2 && packedReceipt.sequences.count == 2)
        #expect([one, many, batch, packedReceipt, deleted].allSatisfy { $0.durability == .durable })
        #expect(try store.get(namespace: "a", key: [1]) == nil, "the async delete wrote a tombstone")
        #expect(try store.get(namespace: "a", key: [3])?.value == [30])
        #expect(try store.get(namespace: "b", key: [6])?.value == [60])
        #expect(try store.history(namespace: "a", key: [1]).count == 2)
        let durable = try await store.sync()
        #expect(durable == store.recordCount)
        try store.close()
        await #expect(throws: SteleError.closed) { try await store.put(namespace: "a", key: [7], value: [70]) }
    }

    /// Under `.none` an async put returns at once, promising durability after a sync; the async
    /// `sync()` then makes it durable.
    @Test func asyncSyncMakesNonePolicyWritesDurable() async throws {
        try await withStoreAsync { path in
            let store = try Store(path: path, options: .init(commitPolicy: .none))
            defer { try? store.close() }
            let receipt = try await store.put(namespace: "n", key: [1], value: [1])
            #expect(receipt.durability == .afterSync)
            let durable = try await store.sync()
            #expect(durable > receipt.sequences.upperBound && store.durableRecordCount > receipt.sequences.upperBound)
        }
    }

    /// A task cancelled before it calls writes nothing and gets `CancellationError`.
    @Test func aCancelledTaskWritesNothing() async throws {
        try await withStoreAsync { path in
            let store = try Store(path: path)
            defer { try? store.close() }
            let before = store.recordCount
            let task = Task {
                withUnsafeCurrentTask { $0?.cancel() }
                return try await store.put(namespace: "c", key: [1], value: [1])
            }
            await #expect(throws: CancellationError.self) { try await task.value }
            #expect(store.recordCount == before)
        }
    }

    /// A task cancelled while it waits for the sync still gets its receipt, and the record is
    /// durable: cancellation never leaves a write half acknowledged.
    @Test func aTaskCancelledWhileWaitingIsStillCommitted() async throws {
        try await withStoreAsync { path in
            let (store, fs) = try openOnFaultyFileSystem(path)
            defer { try? store.close() }
            let hold = SyncHold()
            fs.beforeSyncMapped.withLock { $0 = hold.block }
            let task = Task { try await store.put(namespace: "c", key: [2], value: [2]) }
            await hold.entered()  // the committer is inside the sync that covers the put
            task.cancel()
            fs.beforeSyncMapped.withLock { $0 = nil }
            hold.release()
            let receipt = try await task.value
            #expect(receipt.durability == .durable && store.durableRecordCount > receipt.sequences.upperBound)
            #expect(try store.get(namespace: "c", key: [2])?.value == [2])
        }
    }

    /// Tasks waiting for a sync hold no thread. Everything here runs on an executor of one
    /// thread of the test's own (so that other tests, which may block the shared pool, cannot
    /// disturb it): with the sync held in flight and 40 puts waiting, a probe task still runs on
    /// that one thread before the sync is let go. A build whose async put blocked its thread in
    /// the sync leaves the probe no thread; then a watchdog on another thread lets the sync go
    /// after 60 s, the probe runs only after that, and the test fails instead of hanging.
    @Test func waitingTasksLeaveThePoolFree() async throws {
        try await withStoreAsync { path in
            let (store, fs) = try openOnFaultyFileSystem(path)
            defer { try? store.close() }
            let hold = SyncHold()
            fs.beforeSyncMapped.withLock { $0 = hold.block }
            DispatchQueue.global().asyncAfter(deadline: .now() + 60) { hold.release() }
            let executor = OneThreadExecutor()
            let ranWhileHeld = try await Task(executorPreference: executor) {
                let puts = (0 ..< 40).map { n in
                    Task(executorPreference: executor) {
                        try await store.put(namespace: "p", key: Array("k\(n)".utf8), value: [UInt8(n)])
                    }
                }
                await hold.entered()
                // Let every writer reach its wait (or the next sync's) before the probe.
                for _ in 0 ..< 50 { await Task.yield() }
                let ranWhileHeld = await Task(executorPreference: executor) { !hold.isReleased }.value
                fs.beforeSyncMapped.withLock { $0 = nil }
                hold.release()
                for put in puts {
                    let receipt = try await put.value
                    #expect(store.durableRecordCount > receipt.sequences.upperBound)
                }
                return ranWhileHeld
            }.value
            #expect(ranWhileHeld, "the probe ran only after the sync was let go: waiting puts held the executor's thread")
        }
    }

    /// A sync that fails fails every waiting task and thread with `writesDisabled`, and every
    /// later write too: nothing is acknowledged that the disk did not take.
    @Test func aFailedSyncFailsEveryWaiter() async throws {
        try await withStoreAsync { path in
            let (store, fs) = try openOnFaultyFileSystem(path)
            defer { try? store.close() }
            fs.fail("syncMapped", errno: EIO)
            let outcomes = await withTaskGroup(of: (any Error)?.self) { group in
                for n in 0 ..< 16 {
                    group.addTask {
                        do {
                            _ = try await store.put(namespace: "f", key: [UInt8(n)], value: [1])
                            return nil
                        } catch {
                            return error
                        }
                    }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
            #expect(outcomes.allSatisfy { error in
                if case SteleError.writesDisabled = error as? SteleError ?? .closed { return true }
                return false
            }, "\(outcomes)")
            #expect(throws: SteleError.self) { try store.put(namespace: "f", key: [99], value: [1]) }
        }
    }

    private func withStoreAsync(_ body: (String) async throws -> Void) async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.child("store")
        try Store.create(at: path, segmentSize: 1 << 20)
        try await body(path)
    }
}

/// Holds the committer inside a sync until the test releases it, and tells the test when a sync
/// is being held.
final class SyncHold: Sendable {
    private let gate = DispatchSemaphore(value: 0)
    private let arrived = Mutex<CheckedContinuation<Void, Never>?>(nil)
    private let hasArrivedFlag = Atomic(false)

    /// The file system's hook: runs on the syncing thread.
    var block: @Sendable () -> Void {
        { [self] in
            if !hasArrivedFlag.exchange(true, ordering: .acquiringAndReleasing) {
                arrived.withLock { $0?.resume(); $0 = nil }
            }
            gate.wait()
            gate.signal()  // once released, every later sync passes
        }
    }

    /// Whether a sync has reached the hook.
    var hasArrived: Bool { hasArrivedFlag.load(ordering: .acquiring) }

    /// Returns once a sync is held.
    func entered() async {
        await withCheckedContinuation { continuation in
            let already = arrived.withLock { slot -> Bool in
                if hasArrivedFlag.load(ordering: .acquiring) { return true }
                slot = continuation
                return false
            }
            if already { continuation.resume() }
        }
    }

    private let released = Atomic(false)

    /// Whether ``release()`` was called.
    var isReleased: Bool { released.load(ordering: .acquiring) }

    /// Lets the held sync (and every later one) go; more calls do nothing.
    func release() {
        if !released.exchange(true, ordering: .acquiringAndReleasing) { gate.signal() }
    }
}

/// A task executor with one thread (a serial queue): a task that blocks it blocks every task
/// that prefers it.
final class OneThreadExecutor: TaskExecutor, @unchecked Sendable {
    private let queue = DispatchQueue(label: "stele.tests.one-thread-executor")

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        queue.async { job.runSynchronously(on: executor) }
    }
}
