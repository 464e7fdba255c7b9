import Foundation
import Testing
@testable import Stele
import SteleNative

/// README, "clock moved forward": what a purge judges locks against, and what the log keeps of
/// it. A purge judges every lock at the clock's reading and writes that reading (or the log's
/// last timestamp, if later) as its redaction record's timestamp; the store minimum counts from
/// each version's own record timestamp; fsck judges every redaction record by its timestamp. So
/// a clock moved forward does purge early, and the jump is in the signed tree.
@Suite struct PurgeClockTests {
    static let day: Int64 = RetentionTests.day
    static let key = Array("acct-1".utf8)

    /// A compliance-locked version (30 days from the clock's `t0`), superseded, sealed.
    static func lockedAndSuperseded(_ store: Store, _ clock: TestClock) throws -> (version: UInt64, lock: RetentionLock) {
        let lock = RetentionLock(mode: .compliance, retainUntil: clock.nanosecondsSinceEpoch() + 30 * day)
        let v = try store.put(namespace: "ledger", key: key, value: Array("100".utf8), lock: lock).sequences.lowerBound
        try store.put(namespace: "ledger", key: key, value: Array("200".utf8))
        try store.seal()
        return (v, lock)
    }

    @Test func aClockMovedForwardPurgesEarlyAndTheJumpIsTheRedactionRecordsTimestamp() throws {
        try withStore { _, path in
            let clock = TestClock()
            let store = try RetentionTests.open(path, clock)
            let (v, lock) = try Self.lockedAndSuperseded(store, clock)
            #expect {
                try store.purgeVersion(namespace: "ledger", key: Self.key, version: v)
            } throws: { error in
                guard case SteleError.retention(.complianceLock(let applied)) = error else { return false }
                return applied.retainUntil == lock.retainUntil && applied.scope == .version && applied.mode == .compliance
            }
            let lastBefore = try store.record(at: store.recordCount - 1).timestamp
            #expect(lastBefore < lock.retainUntil)

            // Two years later by the clock: the lock has expired by it, and the purge goes ahead.
            clock.advance(.seconds(2 * 365 * 86_400))
            let report = try store.purge()
            #expect(report.purged.map(\.sequence) == [v] && report.redactionRecords.count == 1, "\(report)")
            #expect(try store.history(namespace: "ledger", key: Self.key).first?.redactedLeafHash != nil)
            // The time it was judged at is the redaction record's timestamp: the jump is a gap in the log.
            let redaction = try store.record(at: try #require(report.redactionRecords.first))
            #expect(redaction.type == .redaction && redaction.timestamp == clock.nanosecondsSinceEpoch())
            let previous = try store.record(at: redaction.sequence - 1).timestamp
            #expect(previous == lastBefore && redaction.timestamp - previous == 2 * 365 * Self.day)
            #expect(redaction.timestamp >= lock.retainUntil)
            try store.close()
            // fsck judges the purge by that timestamp, and finds it justified.
            let fsck = try Fsck.check(path: path)
            #expect(fsck.problems.isEmpty, "\(fsck.problems)")
        }
    }

    /// The same redaction record, forged into the log while the lock is in force and after it
    /// expired: fsck names only the first, from its timestamp alone.
    @Test func fsckJudgesEachRedactionRecordByItsOwnTimestamp() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        for (name, days) in [("early", 1), ("late", 31)] {
            let path = dir.child(name)
            try Store.create(at: path, segmentSize: 64 * 1024)
            let clock = TestClock()
            let store = try RetentionTests.open(path, clock)
            let (v, lock) = try Self.lockedAndSuperseded(store, clock)
            clock.advance(.seconds(Int64(days) * 86_400))
            let redaction = try store.appendEntries([Entry]()) { _, _, _ in
                [Entry(type: .redaction, namespace: [], key: [], value: RedactionRecord(sequences: [v]).encoded)]
            }.sequences.lowerBound
            try store.close()
            let problems = try Fsck.check(path: path).problems
            if days == 1 {
                #expect(problems.count == 1 && problems.first?.category == .retention && problems.first?.sequence == v
                    && problems.first?.found == "redaction record \(redaction) purged it under a compliance lock until \(lock.retainUntil)",
                        "\(problems)")
            } else {
                #expect(problems.isEmpty, "\(problems)")
            }
        }
    }

    /// The store minimum counts from each version's record timestamp, which is the clamped one
    /// when the clock was behind the log: not from the clock's reading at the write.
    @Test func theStoreMinimumCountsFromTheVersionsRecordTimestamp() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.child("s")
        try Store.create(at: path, segmentSize: 64 * 1024, minimumRetention: .seconds(7 * 86_400))
        let clock = TestClock()
        let store = try RetentionTests.open(path, clock)
        try store.put(namespace: "n", key: "k", value: "v0")
        // The clock goes back a day: the next version is timestamped at the log's last time.
        clock.now.store(clock.nanosecondsSinceEpoch() - Self.day, ordering: .relaxed)
        let v1 = try store.put(namespace: "n", key: "k", value: "v1").sequences.lowerBound
        let written = try store.record(at: v1).timestamp
        #expect(written == clock.nanosecondsSinceEpoch() + Self.day, "clamped to the log, a day ahead of the clock")
        try store.put(namespace: "n", key: "k", value: "v2")
        try store.seal()

        // One nanosecond before the record timestamp plus the minimum: still protected.
        clock.now.store(written + 7 * Self.day - 1, ordering: .relaxed)
        #expect {
            try store.purgeVersion(namespace: "n", key: Array("k".utf8), version: v1)
        } throws: { error in
            guard case SteleError.retention(.complianceLock(let applied)) = error else { return false }
            return applied.scope == .storeMinimum && applied.retainUntil == written + 7 * Self.day
        }
        clock.now.store(written + 7 * Self.day, ordering: .relaxed)
        #expect(try store.purgeVersion(namespace: "n", key: Array("k".utf8), version: v1).purged.map(\.sequence) == [v1])
        try store.close()
        #expect(try Fsck.check(path: path).problems.isEmpty)
    }
}
