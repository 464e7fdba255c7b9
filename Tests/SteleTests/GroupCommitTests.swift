import Foundation
import Synchronization
import Testing
@testable import Stele

/// Group commit (README, docs/durability.md: "concurrent callers share one sync"): under
/// `.everyBatch`, callers that append while another caller's `msync` runs find their records
/// covered by the next sync one of them issues, instead of each issuing its own.
@Suite struct GroupCommitTests {
    /// Eight threads append single records under `.everyBatch` on a counting file system: every
    /// call is acknowledged as durable, and the store issues fewer syncs (of any kind: `msync`,
    /// `fdatasync`, `fsync`) than it acknowledges calls. Without sharing (each caller syncing for
    /// itself, as a build without the leader/follower check in `Store.makeDurable` does) there
    /// is at least one `msync` per acknowledgement.
    @Test func concurrentCallersShareSyncs() throws {
        let dir = TemporaryDirectory()  // a real disk (/tmp), where an msync takes a while
        defer { dir.remove() }
        let path = dir.child("store")
        try Store.create(at: path, segmentSize: 8 << 20)  // one segment: no seal among the syncs
        let fs = FaultyFileSystem()
        var options = Store.Options(commitPolicy: .everyBatch)
        options.fileSystem = fs
        let store = try Store(path: path, options: options)
        let syncsBefore = fs.calls("syncMapped") + fs.calls("syncData") + fs.calls("syncAll")

        let (threads, appends) = (8, 200)
        let tally = Tally()
        let done = DispatchGroup()
        for writer in 0 ..< threads {
            done.enter()
            Thread.detachNewThread {
                defer { done.leave() }
                for i in 0 ..< appends {
                    do {
                        let receipt = try store.append(Entry(namespace: "group", key: Array("w\(writer)-\(i)".utf8),
                                                             value: Array("value \(writer) \(i)".utf8)))
                        // Durable on return: the store's own count covers the record.
                        guard receipt.durability == .durable, store.durableRecordCount > receipt.sequences.upperBound else {
                            tally.failures.withLock { $0.append("w\(writer)-\(i): \(receipt) not durable on return") }
                            return
                        }
                        tally.acknowledged.add(1, ordering: .relaxed)
                    } catch {
                        tally.failures.withLock { $0.append("w\(writer)-\(i): \(error)") }
                        return
                    }
                }
            }
        }
        done.wait()
        let msyncs = fs.calls("syncMapped")
        let syncs = msyncs + fs.calls("syncData") + fs.calls("syncAll") - syncsBefore
        let acks = tally.acknowledged.load(ordering: .relaxed)
        try store.close()

        #expect(tally.failures.withLock { $0 }.isEmpty, "\(tally.failures.withLock { $0.prefix(3) })")
        #expect(acks == threads * appends)
        print("group commit: \(acks) acknowledged appends on \(threads) threads, \(syncs) syncs (\(msyncs) msyncs)")
        #expect(syncs > 0, "the appends were synced at all")
        #expect(syncs < acks, "\(syncs) syncs for \(acks) acknowledged calls: concurrent callers did not share a sync")
        // Every acknowledged record is there after a reopen.
        let reader = try Store(path: path, options: .init(readOnly: true))
        #expect(reader.recordCount == firstRecord + UInt64(threads * appends))
        try reader.close()
    }

    /// Callers that arrive while a sync runs leave their appends to the next round, which one
    /// of them (or the committer) makes for all under one hold of the writer lock. Each caller
    /// still gets its own outcome: with the sync held, 24 threads queue behind it, half putting
    /// records and half trying to shorten a compliance lock (refused by the retention check
    /// that runs inside the append); every put is acknowledged durable with its own sequence
    /// number and reads back, every refusal is the retention error and wrote nothing.
    @Test func queuedAppendsKeepEachCallersOwnOutcome() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.child("store")
        try Store.create(at: path, segmentSize: 8 << 20)
        let (store, fs) = try openOnFaultyFileSystem(path)
        defer { try? store.close() }
        let now = Int64(Date().timeIntervalSince1970 * 1e9)
        try store.put(namespace: "locked", key: [1], value: [1],
                      lock: RetentionLock(mode: .compliance, retainUntil: now + 86_400_000_000_000))
        let recordsBefore = store.recordCount

        let hold = SyncHold()
        fs.beforeSyncMapped.withLock { $0 = hold.block }
        DispatchQueue.global().asyncAfter(deadline: .now() + 60) { hold.release() }
        // One put to start a sync that the hook holds.
        let first = Thread { _ = try? store.put(namespace: "q", key: Array("first".utf8), value: [0]) }
        first.start()
        let deadline = Date().addingTimeInterval(30)
        while !hold.hasArrived, Date() < deadline { usleep(1000) }
        #expect(hold.hasArrived, "no sync was held")

        let threads = 24
        let outcomes = Mutex<[Int: Result<Receipt, any Error>]>([:])
        let done = DispatchGroup()
        for n in 0 ..< threads {
            done.enter()
            Thread.detachNewThread {
                defer { done.leave() }
                let outcome = Result {
                    n % 2 == 0
                        ? try store.put(namespace: "q", key: Array("k\(n)".utf8), value: Array("v\(n)".utf8))
                        : try store.lock(namespace: "locked", key: [1], lock: RetentionLock(mode: .compliance, retainUntil: now + 1))
                }
                outcomes.withLock { $0[n] = outcome }
            }
        }
        // Every caller waits behind the held sync before it is let go.
        while store.groupCommit?.threadsWaitingForNextRound ?? 0 < threads, Date() < deadline { usleep(1000) }
        #expect(store.groupCommit?.threadsWaitingForNextRound == threads)
        fs.beforeSyncMapped.withLock { $0 = nil }
        hold.release()
        done.wait()

        var sequences: Set<UInt64> = []
        for (n, outcome) in outcomes.withLock({ $0 }).sorted(by: { $0.key < $1.key }) {
            if n % 2 == 0 {
                let receipt = try outcome.get()
                #expect(receipt.durability == .durable && store.durableRecordCount > receipt.sequences.upperBound)
                #expect(sequences.insert(receipt.sequences.lowerBound).inserted)
                #expect(try store.get(namespace: "q", key: Array("k\(n)".utf8))?.value == Array("v\(n)".utf8))
            } else {
                #expect(throws: SteleError.self) { try outcome.get() }
                if case .failure(SteleError.retention) = outcome {} else { Issue.record("caller \(n): \(outcome)") }
            }
        }
        #expect(sequences.count == threads / 2)
        #expect(store.recordCount == recordsBefore + 1 + UInt64(threads / 2), "a refused append wrote something")
    }

    /// A sync that fails fails every caller queued behind it with `writesDisabled`, whether or
    /// not its append was made: none of them is acknowledged.
    @Test func aFailedSyncFailsEveryQueuedCaller() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.child("store")
        try Store.create(at: path, segmentSize: 8 << 20)
        let (store, fs) = try openOnFaultyFileSystem(path)
        defer { try? store.close() }
        let hold = SyncHold()
        fs.beforeSyncMapped.withLock { $0 = hold.block }
        DispatchQueue.global().asyncAfter(deadline: .now() + 60) { hold.release() }
        let first = Thread { _ = try? store.put(namespace: "q", key: Array("first".utf8), value: [0]) }
        first.start()
        let deadline = Date().addingTimeInterval(30)
        while !hold.hasArrived, Date() < deadline { usleep(1000) }

        let threads = 16
        let outcomes = Mutex<[Result<Receipt, any Error>]>([])
        let done = DispatchGroup()
        for n in 0 ..< threads {
            done.enter()
            Thread.detachNewThread {
                defer { done.leave() }
                let outcome = Result { try store.put(namespace: "q", key: Array("k\(n)".utf8), value: [1]) }
                outcomes.withLock { $0.append(outcome) }
            }
        }
        while store.groupCommit?.threadsWaitingForNextRound ?? 0 < threads, Date() < deadline { usleep(1000) }
        // The held sync passed its check already; the next round's fails.
        fs.fail("syncMapped", errno: EIO)
        fs.beforeSyncMapped.withLock { $0 = nil }
        hold.release()
        done.wait()
        let results = outcomes.withLock { $0 }
        #expect(results.count == threads)
        for outcome in results {
            if case .failure(SteleError.writesDisabled) = outcome {} else { Issue.record("\(outcome)") }
        }
    }

    final class Tally: Sendable {
        let acknowledged = Atomic<Int>(0)
        let failures = Mutex<[String]>([])
    }
}
