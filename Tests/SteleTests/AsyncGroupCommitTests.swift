import Dispatch
import Foundation
import Synchronization
import Testing
@testable import Stele

/// How async writes join the group commit: a task hands its append to the next round and never
/// takes the writer lock itself; the round's thread makes every queued append under one hold of
/// the lock, syncs once, and resumes each task with its own outcome.
@Suite struct AsyncGroupCommitTests {
    /// With a sync held, 32 tasks put: none of their records is appended while they wait (the
    /// round makes them), then the round appends all 32 as one run of sequence numbers, and each
    /// task gets a durable receipt of its own that reads back.
    @Test(.timeLimit(.minutes(1))) func queuedTaskAppendsAreMadeByTheNextRound() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let (store, fs, hold) = try Self.storeWithSyncsHeld(dir)
        defer { try? store.close() }

        let first = Task { try await store.put(namespace: "q", key: Array("first".utf8), value: [0]) }
        await hold.entered()
        let recordsWhileHeld = store.recordCount
        let tasks = 32
        let puts = Task {
            try await withThrowingTaskGroup(of: (Int, Receipt).self) { group in
                for n in 0 ..< tasks {
                    group.addTask { (n, try await store.put(namespace: "q", key: Array("k\(n)".utf8), value: Array("v\(n)".utf8))) }
                }
                return try await group.reduce(into: [Int: Receipt]()) { $0[$1.0] = $1.1 }
            }
        }
        let deadline = Date().addingTimeInterval(30)
        while store.groupCommit?.appendsWaitingForNextRound ?? 0 < tasks, Date() < deadline { try await Task.sleep(for: .milliseconds(1)) }
        #expect(store.groupCommit?.appendsWaitingForNextRound == tasks)
        #expect(store.recordCount == recordsWhileHeld, "a waiting task appended on its own")
        fs.beforeSyncMapped.withLock { $0 = nil }
        hold.release()

        _ = try await first.value
        let receipts = try await puts.value
        #expect(receipts.count == tasks)
        let firsts = receipts.values.map(\.sequences.lowerBound).sorted()
        #expect(firsts == Array(firsts[0] ..< firsts[0] + UInt64(tasks)), "not one run of sequence numbers: \(firsts)")
        for (n, receipt) in receipts {
            #expect(receipt.durability == .durable && store.durableRecordCount > receipt.sequences.upperBound)
            #expect(try store.get(namespace: "q", key: Array("k\(n)".utf8))?.value == Array("v\(n)".utf8))
        }
    }

    /// A held sync that then fails: the task whose round it was and the 16 tasks queued behind
    /// it all get `writesDisabled`, and the queued appends are never made (nothing was appended
    /// that no sync will cover).
    @Test(.timeLimit(.minutes(1))) func aFailedSyncDropsTheQueuedTaskAppends() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let (store, fs, hold) = try Self.storeWithSyncsHeld(dir)
        defer { try? store.close() }

        let recordsBefore = store.recordCount
        let first = Task { try await store.put(namespace: "q", key: Array("first".utf8), value: [0]) }
        await hold.entered()
        let tasks = 16
        let puts = Task {
            await withTaskGroup(of: (any Error)?.self) { group in
                for n in 0 ..< tasks {
                    group.addTask {
                        do {
                            _ = try await store.put(namespace: "q", key: Array("k\(n)".utf8), value: [1])
                            return nil
                        } catch {
                            return error
                        }
                    }
                }
                return await group.reduce(into: [(any Error)?]()) { $0.append($1) }
            }
        }
        let deadline = Date().addingTimeInterval(30)
        while store.groupCommit?.appendsWaitingForNextRound ?? 0 < tasks, Date() < deadline { try await Task.sleep(for: .milliseconds(1)) }
        #expect(store.groupCommit?.appendsWaitingForNextRound == tasks)
        fs.fail("syncMapped", errno: EIO)
        hold.release()

        let firstOutcome = await first.result
        let outcomes = await puts.value + [firstOutcome.failure]
        #expect(outcomes.count == tasks + 1)
        for outcome in outcomes {
            if case SteleError.writesDisabled = outcome as? SteleError ?? .closed {} else { Issue.record("outcome: \(String(describing: outcome))") }
        }
        #expect(store.recordCount == recordsBefore + 1, "a queued append was made after its round's sync failed")
    }
}

extension AsyncGroupCommitTests {
    /// A store on a faulty file system whose syncs wait at the hook until `hold` is released
    /// (by the test, or after 60 s so that a broken build fails instead of hanging).
    static func storeWithSyncsHeld(_ dir: TemporaryDirectory) throws -> (Store, FaultyFileSystem, SyncHold) {
        let path = dir.child("store")
        try Store.create(at: path, segmentSize: 8 << 20)
        let (store, fs) = try openOnFaultyFileSystem(path)
        let hold = SyncHold()
        fs.beforeSyncMapped.withLock { $0 = hold.block }
        DispatchQueue.global().asyncAfter(deadline: .now() + 60) { hold.release() }
        return (store, fs, hold)
    }
}

private extension Result {
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
