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

    final class Tally: Sendable {
        let acknowledged = Atomic<Int>(0)
        let failures = Mutex<[String]>([])
    }
}
