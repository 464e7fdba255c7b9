import Foundation
import Synchronization
import Testing
@testable import Stele
import SteleNative

/// A clock the test moves by hand.
final class TestClock: WallClock {
    /// Ahead of the real clock that timestamped the store's genesis record, so that the first
    /// reading is never "behind" it (which the store would log as a clock step back).
    let now = Atomic<Int64>(max(1_800_000_000_000_000_000, SystemClock().nanosecondsSinceEpoch() + 86_400_000_000_000))
    func nanosecondsSinceEpoch() -> Int64 { now.load(ordering: .relaxed) }
    func advance(_ d: Duration) { now.add(Int64(d.nanoseconds), ordering: .relaxed) }
}

@Suite struct RetentionTests {
    static let day: Int64 = 86_400 * 1_000_000_000

    static func open(_ path: String, _ clock: TestClock) throws -> Store {
        var options = Store.Options()
        options.clock = clock
        return try Store(path: path, options: options)
    }

    @Test func complianceLocksOnlyGrow() throws {
        try withStore { _, path in
            let clock = TestClock()
            let store = try Self.open(path, clock)
            let t0 = clock.nanosecondsSinceEpoch()
            let v = try store.put(namespace: "ledger", key: Array("acct-1".utf8), value: Array("100".utf8),
                                  lock: RetentionLock(mode: .compliance, retainUntil: t0 + 30 * Self.day)).sequences.lowerBound
            let p = try store.protection(namespace: "ledger", key: Array("acct-1".utf8), version: v)
            #expect(p.locks.map(\.mode) == [.compliance] && p.retainUntil == t0 + 30 * Self.day)
            #expect(p.isProtected(at: t0 + 29 * Self.day) && !p.isProtected(at: t0 + 31 * Self.day))

            // Shorter, or governance instead: refused, naming the lock.
            #expect {
                try store.lock(namespace: "ledger", key: Array("acct-1".utf8), version: v,
                               lock: RetentionLock(mode: .compliance, retainUntil: t0 + 10 * Self.day))
            } throws: { error in
                guard case SteleError.retention(.complianceLock(let lock)) = error else { return false }
                return lock.mode == .compliance && lock.retainUntil == t0 + 30 * Self.day && lock.setBy == v + 1
            }
            #expect(throws: SteleError.retention(.complianceLock(AppliedLock(RetentionLock(mode: .compliance, retainUntil: t0 + 30 * Self.day),
                                                                             scope: .version, setBy: v + 1)))) {
                try store.lock(namespace: "ledger", key: Array("acct-1".utf8), version: v,
                               lock: RetentionLock(mode: .governance, retainUntil: t0 + 90 * Self.day))
            }
            // Extending is allowed and logged as a record.
            let before = store.recordCount
            try store.lock(namespace: "ledger", key: Array("acct-1".utf8), version: v,
                           lock: RetentionLock(mode: .compliance, retainUntil: t0 + 60 * Self.day))
            #expect(store.recordCount == before + 1)
            #expect(try store.record(at: before).type == .retention)
            #expect(try store.protection(namespace: "ledger", key: Array("acct-1".utf8), version: v).retainUntil == t0 + 60 * Self.day)
            #expect(throws: SteleError.retention(.dateInThePast(t0 - 1))) {
                try store.lock(namespace: "ledger", key: Array("acct-1".utf8), lock: RetentionLock(mode: .compliance, retainUntil: t0 - 1))
            }
            try store.close()

            // The rules survive a reopen: the state is rebuilt from the records.
            let reopened = try Self.open(path, clock)
            #expect(try reopened.protection(namespace: "ledger", key: Array("acct-1".utf8), version: v).retainUntil == t0 + 60 * Self.day)
            #expect(throws: SteleError.retention(.complianceLock(AppliedLock(RetentionLock(mode: .compliance, retainUntil: t0 + 60 * Self.day),
                                                                             scope: .version, setBy: before)))) {
                try reopened.lock(namespace: "ledger", key: Array("acct-1".utf8), version: v,
                                  lock: RetentionLock(mode: .compliance, retainUntil: t0 + 59 * Self.day))
            }
            try reopened.close()
        }
    }

    @Test func governanceShorteningNeedsAuthorization() throws {
        try withStore { _, path in
            let clock = TestClock()
            let store = try Self.open(path, clock)
            let t0 = clock.nanosecondsSinceEpoch()
            let v1 = try store.put(namespace: "ns", key: "k", value: "v1").sequences.lowerBound
            let v2 = try store.put(namespace: "ns", key: "k", value: "v2").sequences.lowerBound
            // A key-wide governance lock covers both versions.
            try store.lock(namespace: "ns", key: Array("k".utf8), lock: RetentionLock(mode: .governance, retainUntil: t0 + 10 * Self.day))
            #expect {
                try store.lock(namespace: "ns", key: Array("k".utf8), version: v1, lock: RetentionLock(mode: .governance, retainUntil: t0 + Self.day))
            } throws: { error in
                guard case SteleError.retention(.governanceAuthorizationRequired(let lock)) = error else { return false }
                return lock.scope == .key
            }
            // Upgrading to compliance is strengthening: allowed.
            try store.lock(namespace: "ns", key: Array("k".utf8), version: v2, lock: RetentionLock(mode: .compliance, retainUntil: t0 + 10 * Self.day))
            #expect(try store.protection(namespace: "ns", key: Array("k".utf8), version: v2).strongest(at: t0)?.mode == .compliance)
            // A version written after the key-wide lock is not covered by it.
            let v3 = try store.put(namespace: "ns", key: "k", value: "v3").sequences.lowerBound
            #expect(try store.protection(namespace: "ns", key: Array("k".utf8), version: v3).locks.isEmpty)
            #expect(throws: SteleError.retention(.noSuchVersion(namespace: "ns", key: Array("k".utf8), sequence: 99))) {
                try store.lock(namespace: "ns", key: Array("k".utf8), version: 99, lock: RetentionLock(mode: .governance, retainUntil: t0 + Self.day))
            }
            try store.close()
        }
    }

    @Test func governanceBypassWithTheAuthorityKeyIsAllowedAndLogged() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let authority = try NoteSigner.generate(name: "ops.example/governance")
        let path = dir.child("s")
        try Store.create(at: path, segmentSize: 256 * 1024, origin: "example.com/ledger", governanceKey: authority.verifier)
        let clock = TestClock()
        let store = try Self.open(path, clock)
        let t0 = clock.nanosecondsSinceEpoch()
        let key = Array("acct".utf8)
        let v = try store.put(namespace: "ledger", key: key, value: Array("old".utf8),
                              lock: RetentionLock(mode: .governance, retainUntil: t0 + 30 * Self.day)).sequences.lowerBound
        try store.put(namespace: "ledger", key: key, value: Array("new".utf8))
        func authorization(_ until: Int64, version: UInt64? = nil, signer: NoteSigner? = nil, notAfter: Int64? = nil) throws -> String {
            try GovernanceAuthorization.sign(origin: "example.com/ledger", namespace: "ledger", key: key, version: version ?? v,
                                             retainUntil: until, asOf: store.treeSize, notAfter: notAfter ?? t0 + Self.day, with: signer ?? authority)
        }
        // Without the authority's signature, or not matching the request, or expired: refused.
        let impostor = try NoteSigner.generate(name: "ops.example/governance")
        #expect(throws: SteleError.checkpoint(.noTrustedSignature(key: "ops.example/governance"))) {
            try store.shortenGovernanceLock(namespace: "ledger", key: key, version: v, retainUntil: t0, authorization: try authorization(t0, signer: impostor))
        }
        #expect(throws: SteleError.retention(.authorizationMismatch)) {
            try store.shortenGovernanceLock(namespace: "ledger", key: key, version: v, retainUntil: t0, authorization: try authorization(t0 + 1))
        }
        #expect(throws: SteleError.retention(.authorizationExpired(t0 - 1))) {
            try store.shortenGovernanceLock(namespace: "ledger", key: key, version: v, retainUntil: t0, authorization: try authorization(t0, notAfter: t0 - 1))
        }
        #expect(try store.purge().purged.isEmpty)
        // With it: the lock is capped, the bypass is a record holding the authorization, purge proceeds.
        let bypass = try store.shortenGovernanceLock(namespace: "ledger", key: key, version: v, retainUntil: t0,
                                                     authorization: try authorization(t0)).sequences.lowerBound
        let record = try store.record(at: bypass)
        #expect(record.type == .retention && String(decoding: record.value, as: UTF8.self).contains("stele-governance-bypass v1"))
        #expect(!(try store.protection(namespace: "ledger", key: key, version: v).isProtected(at: t0 + 1)))
        // Replaying the note cannot remove a lock set after the tree size it names.
        let note = try authorization(t0)
        try store.lock(namespace: "ledger", key: key, version: v, lock: RetentionLock(mode: .governance, retainUntil: t0 + 3650 * Self.day))
        _ = try? store.shortenGovernanceLock(namespace: "ledger", key: key, version: v, retainUntil: t0, authorization: note)
        #expect(try store.protection(namespace: "ledger", key: key, version: v).isProtected(at: t0 + 1))
        try store.seal()
        clock.advance(.seconds(1))
        #expect(try store.purge().purged.isEmpty)
        try store.close()

        // A store without a governance key refuses every bypass.
        try withStore { _, other in
            let plain = try Store(path: other)
            try plain.put(namespace: "n", key: "k", value: "v")
            #expect(throws: SteleError.retention(.noGovernanceKey)) {
                try plain.shortenGovernanceLock(namespace: "n", key: Array("k".utf8), retainUntil: 0, authorization: "x")
            }
            try plain.close()
        }
    }

    @Test func legalHoldsNamespaceDefaultsAndTheStoreMinimum() throws {
        try withStore { _, path in
            let clock = TestClock()
            let store = try Self.open(path, clock)
            let t0 = clock.nanosecondsSinceEpoch()
            let early = try store.put(namespace: "audit", key: "e1", value: "before the default").sequences.lowerBound
            try store.setDefaultRetention(namespace: "audit", mode: .governance, duration: .seconds(7 * 86_400))
            let late = try store.put(namespace: "audit", key: "e2", value: "after the default").sequences.lowerBound
            #expect(try store.protection(namespace: "audit", key: Array("e1".utf8), version: early).locks.isEmpty)
            let lateLocks = try store.protection(namespace: "audit", key: Array("e2".utf8), version: late).locks
            #expect(lateLocks.map(\.scope) == [.namespaceDefault] && lateLocks.first?.retainUntil == t0 + 7 * Self.day)
            #expect(throws: SteleError.retention(.defaultCanOnlyGrow(mode: .governance, nanoseconds: UInt64(7 * Self.day)))) {
                try store.setDefaultRetention(namespace: "audit", mode: .governance, duration: .seconds(86_400))
            }
            try store.setDefaultRetention(namespace: "audit", mode: .compliance, duration: .seconds(30 * 86_400))

            try store.raiseMinimumRetention(to: .seconds(3 * 86_400))
            #expect(throws: SteleError.retention(.minimumCanOnlyGrow(currentNanoseconds: UInt64(3 * Self.day)))) {
                try store.raiseMinimumRetention(to: .seconds(86_400))
            }
            clock.advance(.seconds(10))
            let afterMinimum = try store.put(namespace: "other", key: "x", value: "y").sequences.lowerBound
            let minimumLock = try store.protection(namespace: "other", key: Array("x".utf8), version: afterMinimum).locks
            #expect(minimumLock.map(\.scope) == [.storeMinimum] && minimumLock.first?.mode == .compliance)

            // Legal hold: protection without a date, until released; both logged with reasons.
            try store.setLegalHold(namespace: "audit", key: Array("e1".utf8), on: true, reason: "case 2026-17")
            let held = try store.protection(namespace: "audit", key: Array("e1".utf8), version: early)
            #expect(held.legalHold?.reason == "case 2026-17" && held.isProtected(at: .max))
            try store.setLegalHold(namespace: "audit", key: Array("e1".utf8), on: false, reason: "case closed")
            #expect(try store.protection(namespace: "audit", key: Array("e1".utf8), version: early).legalHold == nil)
            #expect(throws: SteleError.invalidArgument("a legal hold needs a reason (1-4096 bytes)")) {
                try store.setLegalHold(namespace: "audit", key: Array("e1".utf8), on: true, reason: "")
            }
            try store.close()

            let reopened = try Self.open(path, clock)
            #expect(reopened.minimumRetention == .seconds(3 * 86_400))
            #expect(try reopened.protection(namespace: "audit", key: Array("e2".utf8), version: late).locks.count == 1)
            try reopened.close()
        }
    }

    @Test func deleteUnderALockKeepsHistoryReadable() throws {
        try withStore { _, path in
            let clock = TestClock()
            let store = try Self.open(path, clock)
            let t0 = clock.nanosecondsSinceEpoch()
            let v = try store.put(namespace: "orders", key: Array("o-9".utf8), value: Array("paid".utf8),
                                  lock: RetentionLock(mode: .compliance, retainUntil: t0 + Self.day)).sequences.lowerBound
            try store.delete(namespace: "orders", key: Array("o-9".utf8))
            #expect(try store.get(namespace: "orders", key: "o-9") == nil)
            let history = try store.history(namespace: "orders", key: Array("o-9".utf8))
            #expect(history.count == 2 && history[0].value == Array("paid".utf8) && history[1].isTombstone)
            #expect(try store.protection(namespace: "orders", key: Array("o-9".utf8), version: v).isProtected(at: t0))
            try store.close()
        }
    }
}
