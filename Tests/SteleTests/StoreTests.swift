import Foundation
import Testing
import Synchronization
@testable import Stele
import SteleNative

@Suite struct StoreTests {
    @Test func roundTripAcrossManySegmentRotations() throws {
        try withStore { _, path in
            let store = try Store(path: path)
            var expected: [Entry] = []
            for batch in 0 ..< 60 {
                let entries = (0 ..< 25).map { testEntry(batch * 25 + $0) }
                let receipt = try store.append(contentsOf: entries)
                #expect(receipt.sequences == firstRecord + UInt64(batch * 25) ... firstRecord + UInt64(batch * 25 + 24))
                #expect(receipt.durability == .durable)
                expected += entries
            }
            let stats = try store.stats()
            #expect(stats.sealedSegments >= 5, "64 KiB segments must have rotated")
            #expect(stats.records == firstRecord + 1500 && stats.durableRecords == firstRecord + 1500)
            try Self.expectContents(store, expected)
            try store.close()

            let reopened = try Store(path: path)
            #expect(reopened.recovery.isClean)
            try Self.expectContents(reopened, expected)
            #expect(try reopened.stats().treeRoot == stats.treeRoot)
            let more = try reopened.append(testEntry(1500))
            #expect(more.sequences == firstRecord + 1500 ... firstRecord + 1500)
            try reopened.close()
        }
    }

    static func expectContents(_ store: Store, _ expected: [Entry]) throws {
        #expect(store.recordCount == firstRecord + UInt64(expected.count))
        let records = try store.records(from: firstRecord, count: expected.count)
        #expect(records.count == expected.count)
        for (i, record) in records.enumerated() {
            #expect(record.sequence == firstRecord + UInt64(i))
            #expect(record.namespace == expected[i].namespace && record.key == expected[i].key && record.value == expected[i].value,
                    "record \(i)")
        }
    }

    @Test func sealsFormAHashChainAndCarryTheMerkleRoot() throws {
        try withStore { _, path in
            let store = try Store(path: path)
            for i in 0 ..< 900 { try store.append(testEntry(i)) }
            try store.seal()
            let stats = try store.stats()
            try store.close()

            // Recompute every leaf from the records, independently of the writer's state.
            let reader = try Store(path: path, options: .init(readOnly: true))
            var leaves: [Digest] = []
            try reader.forEachRecord(from: 0, count: 901) { r in
                leaves.append(TreeHash.leaf(CanonicalEntry.bytes(type: r.type, sequence: r.sequence, timestamp: r.timestamp,
                                                                 namespace: r.namespace, key: r.key, value: r.value)))
            }
            try reader.close()

            var previousSeal = Digest.zero
            var frontier = Frontier()
            for index in 1 ... UInt64(stats.sealedSegments) {
                let segment = try SealedSegment.open(fs: PosixFileSystem(), path: segmentPath(path, index), expectedIndex: index)
                #expect(segment.header.previousSeal == previousSeal, "segment \(index) links to its predecessor")
                var content = SHA256Hasher()
                for seq in segment.footer.firstSequence ... segment.footer.lastSequence {
                    content.update(leaves[Int(seq)])
                    frontier.append(leaves[Int(seq)])
                }
                #expect(segment.footer.contentDigest == content.finalize())
                #expect(segment.footer.treeRoot == frontier.root)
                #expect(segment.footer.frontier == frontier.hashes)
                #expect(segment.footer.computeSealHash(header: segment.header) == segment.footer.sealHash)
                let mode = try #require(try PosixFileSystem().status(segment.path)).permissions
                #expect(mode == 0o444, "sealed segments are read-only")
                previousSeal = segment.footer.sealHash
            }
            #expect(previousSeal == stats.lastSealHash)
            #expect(frontier.root == stats.treeRoot)
        }
    }

    @Test func largeCompressibleValuesAreStoredCompressed() throws {
        try withStore(segmentSize: 1 << 20) { _, path in
            let store = try Store(path: path)
            let value = Array(String(repeating: "{\"sku\":\"tea\",\"qty\":1}", count: 500).utf8)
            try store.append(Entry(namespace: "n", key: Array("big".utf8), value: value))
            let used = try store.stats().activeBytesUsed
            #expect(used < SegmentHeader.size + value.count / 4)
            #expect(try store.record(at: firstRecord).value == value)
            try store.close()
        }
    }

    @Test func concurrentWritersAndReadersShareTheLog() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.child("store")
        try Store.create(at: path, segmentSize: 256 * 1024)
        let store = try Store(path: path)
        let receipts = try await withThrowingTaskGroup(of: [(Int, ClosedRange<UInt64>)].self) { group in
            for writer in 0 ..< 8 {
                group.addTask {
                    var mine: [(Int, ClosedRange<UInt64>)] = []
                    for i in 0 ..< 100 {
                        let base = (writer * 100 + i) * 5
                        let receipt = try store.append(contentsOf: (base ..< base + 5).map { testEntry($0) })
                        mine.append((base, receipt.sequences))
                    }
                    return mine
                }
            }
            group.addTask {
                // A reader beside the writers sees only whole records, each exactly as written.
                var reads = 0
                while reads < 2000 {
                    let count = store.recordCount
                    if count > firstRecord {
                        let record = try store.record(at: UInt64.random(in: firstRecord ..< count))
                        let n = try #require(Int(String(decoding: record.key.dropFirst(), as: UTF8.self)), "key \(record.key)")
                        let written = testEntry(n)
                        #expect(record.namespace == written.namespace && record.key == written.key && record.value == written.value, "record \(n)")
                        reads += 1
                    } else {
                        await Task.yield()
                    }
                }
                return []
            }
            var all: [(Int, ClosedRange<UInt64>)] = []
            for try await mine in group { all += mine }
            return all
        }
        #expect(store.recordCount == firstRecord + 4000)
        #expect(store.durableRecordCount == firstRecord + 4000)
        // Every batch got five consecutive numbers, and each number holds its own record.
        #expect(receipts.count == 800)
        #expect(Set(receipts.map(\.1.lowerBound)).count == 800)
        for (base, sequences) in receipts {
            #expect(sequences.count == 5)
            for (offset, sequence) in sequences.enumerated() {
                #expect(try store.record(at: sequence).key == testEntry(base + offset).key)
            }
        }
        try store.close()
    }

    @Test func intervalPolicyMakesRecordsDurableWithoutAnExplicitSync() throws {
        try withStore { _, path in
            let store = try Store(path: path, options: .init(commitPolicy: .interval(.milliseconds(5))))
            let receipt = try store.append(contentsOf: (0 ..< 50).map { testEntry($0) })
            #expect(receipt.durability == .withinInterval(.milliseconds(5)))
            let deadline = ContinuousClock.now + .seconds(5)
            while store.durableRecordCount < firstRecord + 50 && ContinuousClock.now < deadline { usleep(1000) }
            #expect(store.durableRecordCount == firstRecord + 50)
            try store.close()
        }
    }

    @Test func noSyncPolicyIsDurableAfterSync() throws {
        try withStore { _, path in
            let store = try Store(path: path, options: .init(commitPolicy: .none))
            let receipt = try store.append(contentsOf: (0 ..< 50).map { testEntry($0) })
            #expect(receipt.durability == .afterSync)
            #expect(store.durableRecordCount == firstRecord, "the genesis, durable since the store was created")
            #expect(try store.sync() == firstRecord + 50)
            try store.close()
        }
    }

    @Test func aClockThatJumpsBackIsClampedAndLogged() throws {
        try withStore { _, path in
            let clock = TestClock()
            var options = Store.Options()
            options.clock = clock
            let store = try Store(path: path, options: options)
            try store.put(namespace: "n", key: "a", value: "1")
            let before = clock.nanosecondsSinceEpoch()
            clock.now.store(before - 3_600_000_000_000, ordering: .relaxed)  // one hour back
            let receipt = try store.put(namespace: "n", key: "b", value: "2")
            #expect(receipt.sequences == firstRecord + 1 ... firstRecord + 2)
            let note = try store.record(at: firstRecord + 2)
            #expect(note.type == .policy && PolicyRecord.decode(note.value)?.kind == .clockBehind)
            #expect(PolicyRecord.decode(note.value)?.duration == 3_600_000_000_000)
            #expect(try store.record(at: firstRecord + 1).timestamp == before, "clamped to the last timestamp")
            try store.close()
        }
    }

    /// The log's clock survives a reopen: a wall clock behind the last record's timestamp after
    /// a restart is clamped and logged, as within one run; a jump forward (ten years) is kept,
    /// and a return to the true time afterwards is clamped and logged too. A lock taken from a
    /// namespace default counts from the clamped time, so a clock going back never shortens one.
    @Test func aClockBehindTheLogAfterReopenAndAForwardJumpAreClampedAndLogged() throws {
        try withStore { _, path in
            let clock = TestClock()
            var options = Store.Options()
            options.clock = clock
            func behindNotes(_ store: Store) throws -> [UInt64] {
                try store.records(from: 0, count: Int(store.recordCount)).filter { $0.type == .policy }
                    .compactMap { PolicyRecord.decode($0.value) }.filter { $0.kind == .clockBehind }.map(\.duration)
            }
            var store = try Store(path: path, options: options)
            let a = try store.put(namespace: "n", key: "a", value: "1").sequences.lowerBound
            let t0 = try store.record(at: a).timestamp
            try store.close()

            clock.now.store(t0 - 3_600_000_000_000, ordering: .relaxed)  // restarted an hour behind
            store = try Store(path: path, options: options)
            let b = try store.put(namespace: "n", key: "b", value: "2").sequences.lowerBound
            #expect(try store.record(at: b).timestamp == t0, "clamped to the log's last timestamp")
            #expect(try behindNotes(store) == [3_600_000_000_000])

            let decade: Int64 = 3650 * 86_400_000_000_000
            clock.now.store(t0 + decade, ordering: .relaxed)  // a jump forward: kept, not logged
            let c = try store.put(namespace: "n", key: "c", value: "3").sequences.lowerBound
            #expect(try store.record(at: c).timestamp == t0 + decade && behindNotes(store).count == 1)
            try store.setDefaultRetention(namespace: "n", mode: .compliance, duration: .seconds(86_400))
            try store.close()

            clock.now.store(t0 + 1_000_000_000, ordering: .relaxed)  // back to the true time, after a restart
            store = try Store(path: path, options: options)
            let d = try store.put(namespace: "n", key: "d", value: "4").sequences.lowerBound
            let dTime = try store.record(at: d).timestamp
            #expect(dTime == t0 + decade)
            #expect(try behindNotes(store).count == 2 && behindNotes(store)[1] >= UInt64(decade - 1_000_000_000))
            let lock = try #require(try store.history(namespace: "n", key: Array("d".utf8)).first?.protection?.retainUntil)
            #expect(lock >= dTime + 86_400_000_000_000, "the default lock counts from the log's time, not the clock's")
            try store.close()
            #expect(try Fsck.check(path: path).problems.isEmpty)
        }
    }

    @Test func timestampsNeverGoBackwards() throws {
        final class SteppingClock: WallClock, @unchecked Sendable {
            var readings: [Int64] = [500, 1000, 5000, 3000, 7000]
            func nanosecondsSinceEpoch() -> Int64 { readings.isEmpty ? 9000 : readings.removeFirst() }
        }
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.child("store")
        let clock = SteppingClock()
        try Store.create(at: path, segmentSize: 64 * 1024, origin: nil, fileSystem: PosixFileSystem(), clock: clock)  // genesis at 500
        do {
            var options = Store.Options()
            options.clock = clock
            let store = try Store(path: path, options: options)
            for i in 0 ..< 4 { try store.append(testEntry(i)) }
            let times = try store.records(from: firstRecord, count: 4).map(\.timestamp)
            #expect(times == [1000, 5000, 5000, 7000])
            #expect(store.recordCount == firstRecord + 4, "a step of 2 µs is jitter, not logged")
            try store.close()
        }
    }
}

/// Regression (found by the mirror tests): a read-only open maps the writer's active segment,
/// and when the writer sealed it (truncating the file) a reader touching the tail past the new
/// end died of SIGBUS. Readers now read a copy of a segment that may still be truncated.
@Suite struct ReaderBesideWriterTests {
    @Test func readOnlyOpensAndFsckBesideASealingWriterNeverFault() throws {
        try withStore(segmentSize: 256 * 1024) { _, path in
            let store = try Store(path: path, options: .init(commitPolicy: .none))
            try store.append(testEntry(0))
            let writerErrors = Mutex<[String]>([])
            let writing = DispatchGroup()
            DispatchQueue.global().async(group: writing) {
                for round in 0 ..< 200 {
                    do {
                        try store.append(contentsOf: (0 ..< 20).map { testEntry(round * 20 + $0 + 1, valueLength: 50) })
                        try store.seal()
                    } catch {
                        writerErrors.withLock { $0.append("round \(round): \(error)") }
                    }
                }
            }
            var opened = 0
            var lastCount: UInt64 = 0
            var fsckProblems: [String] = []
            while writing.wait(timeout: .now()) == .timedOut {
                let reader = try Store(path: path, options: .init(readOnly: true))
                // A reader sees a prefix of the log that only grows, its last record whole.
                #expect(reader.recordCount >= lastCount)
                lastCount = reader.recordCount
                let last = try reader.record(at: reader.recordCount - 1)
                if let n = Int(String(decoding: last.key.dropFirst(), as: UTF8.self)) {
                    #expect(last.value == testEntry(n, valueLength: n == 0 ? nil : 50).value, "record \(n)")
                }
                try reader.close()
                // fsck beside the writer reads a consistent prefix of the log: no record, chain or
                // tree problem. It sees the writer's lock, so files in flight (a seal between its
                // truncation and its mode change, tiles past `tiles/state`) are `inFlight`, not problems.
                let report = try Fsck.check(path: path)
                fsckProblems += report.problems.map { "\($0)" }
                if !report.writerActive { fsckProblems.append("fsck did not see the writer") }
                opened += 1
            }
            #expect(writerErrors.withLock { $0 }.isEmpty, "\(writerErrors.withLock { $0 })")
            #expect(opened > 0)
            #expect(fsckProblems.isEmpty, "\(fsckProblems.prefix(5))")
            try store.close()
            let final = try Store(path: path, options: .init(readOnly: true))
            #expect(final.recordCount == firstRecord + 4001)
            try final.close()
            let quiet = try Fsck.check(path: path)
            #expect(quiet.problems.isEmpty && quiet.inFlight.isEmpty && !quiet.writerActive, "\(quiet.problems)")
        }
    }
}
