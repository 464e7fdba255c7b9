import Foundation
import Glibc
import Testing
@testable import Stele

@Suite struct PurgeTests {
    static let day: Int64 = RetentionTests.day

    /// 300 keys written twice (the first versions superseded), 30-day governance locks on the
    /// first versions of keys 0..<100 and compliance on 100..<200, none on the rest.
    static func populate(_ store: Store, _ clock: TestClock) throws {
        let t0 = clock.nanosecondsSinceEpoch()
        for i in 0 ..< 300 {
            let lock: RetentionLock? = i < 100 ? RetentionLock(mode: .governance, retainUntil: t0 + 30 * day)
                : i < 200 ? RetentionLock(mode: .compliance, retainUntil: t0 + 30 * day) : nil
            try store.put(namespace: "orders", key: Array("o-\(i)".utf8), value: [UInt8](repeating: UInt8(i & 0xff), count: 400), lock: lock)
        }
        for i in 0 ..< 300 { try store.put(namespace: "orders", key: Array("o-\(i)".utf8), value: Array("v2".utf8)) }
        try store.seal()
    }

    @Test func purgeAfterExpiryFreesSpaceAndEveryEarlierProofStillVerifies() throws {
        try withStore(segmentSize: 256 * 1024) { _, path in
            let clock = TestClock()
            let store = try RetentionTests.open(path, clock)
            try Self.populate(store, clock)
            let signer = try NoteSigner.generate(name: "purge.test/log")
            let note = try store.checkpoint(signer: signer)
            let checkpoint = try store.verify(checkpoint: note, verifier: signer.verifier).checkpoint
            let proofs = try (0 ..< 50).map { i in try store.inclusionProof(index: UInt64(i * 7), treeSize: checkpoint.treeSize) }
            let leaves = try (0 ..< 50).map { i in try store.leafHash(at: UInt64(i * 7)) }

            // Before expiry only the unlocked superseded versions (200..<300) go.
            let first = try store.purge()
            #expect(first.purged.count == 100 && first.stillProtected == 200)
            #expect(first.bytesReclaimed > 0 && first.payloadBytes >= 100 * 400)
            // After expiry everything superseded goes; live versions never do.
            clock.advance(.seconds(31 * 86_400))
            let second = try store.purge()
            #expect(second.purged.count == 200 && second.stillProtected == 0)
            #expect(try store.purge(dryRun: true).purged.isEmpty)
            print("purge: \(first.payloadBytes + second.payloadBytes) payload bytes purged, \(first.bytesReclaimed + second.bytesReclaimed) bytes of disk reclaimed")

            // Stubs keep the leaf hash: old proofs, the old checkpoint and the history all hold.
            for (i, proof) in proofs.enumerated() {
                let leaf = try store.leafHash(at: proof.index)
                #expect(leaf == leaves[i])
                #expect(MerkleVerifier.verifyInclusion(leafHash: leaf, index: proof.index, treeSize: proof.treeSize,
                                                       proof: proof.hashes, root: checkpoint.root))
            }
            #expect(try store.verify(checkpoint: note, verifier: signer.verifier).checkpoint.treeSize == checkpoint.treeSize)
            let history = try store.history(namespace: "orders", key: Array("o-5".utf8))
            #expect(history.count == 2 && history[0].redactedLeafHash != nil && history[0].value == [] && history[1].value == Array("v2".utf8))
            #expect(try store.get(namespace: "orders", key: "o-5")?.value == Array("v2".utf8))
            // Purge moved the live versions' frames in the rewritten segments: every read still
            // finds them (the index's frame hints are checked, then the offset table decides).
            for i in 0 ..< 300 {
                #expect(try store.get(namespace: "orders", key: "o-\(i)")?.value == Array("v2".utf8))
                #expect(try store.withValue(namespace: "orders", key: Array("o-\(i)".utf8)) { Array($0) } == Array("v2".utf8))
            }
            // A purged payload reads as no bytes in place too.
            #expect(try store.withValue(namespace: "orders", key: Array("o-5".utf8), asOf: history[0].sequence) { Array($0) } == [])
            try store.close()

            // The rewritten chain reopens, and the redaction records are in the log.
            let reopened = try Store(path: path)
            #expect(try reopened.history(namespace: "orders", key: Array("o-150".utf8)).first?.redactedLeafHash != nil)
            let redactions = try reopened.records(from: 0, count: Int(reopened.recordCount)).filter { $0.type == .redaction }
            #expect(redactions.count == 2)
            #expect(try reopened.verify(checkpoint: note, verifier: signer.verifier).checkpoint.treeSize == checkpoint.treeSize)
            try reopened.close()
        }
    }

    @Test func locksHoldsAndTheMinimumBlockPurgeWithTypedErrors() throws {
        try withStore(segmentSize: 256 * 1024) { _, path in
            let clock = TestClock()
            let store = try RetentionTests.open(path, clock)
            try Self.populate(store, clock)
            func first(_ key: String) throws -> UInt64 {
                try #require(try store.history(namespace: "orders", key: Array(key.utf8)).first).sequence
            }
            // Compliance: refused, naming the lock.
            let v150 = try first("o-150"), v50 = try first("o-50"), v10 = try first("o-10")
            #expect {
                try store.purgeVersion(namespace: "orders", key: Array("o-150".utf8), version: v150)
            } throws: { error in
                guard case SteleError.retention(.complianceLock(let lock)) = error else { return false }
                return lock.mode == .compliance && lock.scope == .version
            }
            #expect {
                try store.purgeVersion(namespace: "orders", key: Array("o-50".utf8), version: v50)
            } throws: { error in
                guard case SteleError.retention(.governanceAuthorizationRequired) = error else { return false }
                return true
            }
            // The live version is never purged.
            let live = try #require(try store.get(namespace: "orders", key: "o-250")).sequence
            #expect(throws: SteleError.retention(.liveVersion(sequence: live))) {
                try store.purgeVersion(namespace: "orders", key: Array("o-250".utf8), version: live)
            }
            // A legal hold outlives the locks.
            try store.setLegalHold(namespace: "orders", key: Array("o-10".utf8), on: true, reason: "litigation 42")
            clock.advance(.seconds(31 * 86_400))
            #expect(throws: SteleError.retention(.legalHold(sequence: v10, reason: "litigation 42"))) {
                try store.purgeVersion(namespace: "orders", key: Array("o-10".utf8), version: v10)
            }
            let report = try store.purge()
            #expect(report.stillProtected == 1 && !report.purged.contains { $0.sequence == v10 })
            #expect(try store.history(namespace: "orders", key: Array("o-10".utf8)).first?.value?.count == 400)
            try store.close()
        }
    }

    @Test func storeMinimumBlocksPurge() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.child("s")
        try Store.create(at: path, segmentSize: 256 * 1024, minimumRetention: .seconds(7 * 86_400))
        let clock = TestClock()
        let store = try RetentionTests.open(path, clock)
        clock.advance(.seconds(1))
        for v in 0 ..< 3 { try store.put(namespace: "n", key: "k", value: "v\(v)") }
        try store.seal()
        #expect(try store.purge().purged.isEmpty)
        clock.advance(.seconds(8 * 86_400))
        #expect(try store.purge().purged.count == 2)
        try store.close()
    }

    /// README: purge reclaims versions that are deleted (a tombstone is the key's latest version)
    /// once their locks expire: every put of a deleted key becomes a stub, the tombstone stays,
    /// and a key that was not deleted keeps its latest version.
    @Test func aDeletedKeysVersionsArePurgedOnceTheirLocksExpire() throws {
        try withStore(segmentSize: 256 * 1024) { _, path in
            let clock = TestClock()
            let store = try RetentionTests.open(path, clock)
            let value = [UInt8](repeating: 9, count: 400)
            func put(_ key: String, lock: RetentionLock? = nil) throws -> UInt64 {
                try store.put(namespace: "n", key: Array(key.utf8), value: value, lock: lock).sequences.lowerBound
            }
            let deleted = [try put("deleted"), try put("deleted")]
            let tombstone = try store.delete(namespace: "n", key: Array("deleted".utf8)).sequences.lowerBound
            let kept = [try put("kept"), try put("kept")]
            let locked = try put("locked", lock: RetentionLock(mode: .governance, retainUntil: clock.nanosecondsSinceEpoch() + Self.day))
            try store.delete(namespace: "n", key: Array("locked".utf8))
            try store.seal()

            let first = try store.purge()
            #expect(first.purged.map(\.sequence).sorted() == deleted + [kept[0]] && first.stillProtected == 1, "\(first)")
            let history = try store.history(namespace: "n", key: Array("deleted".utf8))
            #expect(history.map(\.sequence) == deleted + [tombstone])
            #expect(history[0].redactedLeafHash != nil && history[0].value == [] && history[1].redactedLeafHash != nil && history[1].value == [])
            #expect(history[2].isTombstone && history[2].redactedLeafHash == nil)
            #expect(try store.get(namespace: "n", key: "deleted") == nil)
            #expect(try store.get(namespace: "n", key: "kept")?.sequence == kept[1])
            #expect(try store.record(at: kept[1]).value == value, "the latest live version is never purged")
            #expect(try store.record(at: locked).value == value, "deleted, but its lock has not expired")

            clock.advance(.seconds(86_400))
            #expect(try store.purge().purged.map(\.sequence) == [locked])
            #expect(try store.record(at: locked).value == [])
            try store.close()
            #expect(try Fsck.check(path: path).problems.isEmpty)
        }
    }

    @Test func aCrashInTheMiddleOfAPurgeLeavesTheOldSegment() throws {
        try withStore(segmentSize: 256 * 1024) { _, path in
            let clock = TestClock()
            let fs = FaultyFileSystem()
            var options = Store.Options()
            options.clock = clock
            options.fileSystem = fs
            let store = try Store(path: path, options: options)
            try Self.populate(store, clock)
            clock.advance(.seconds(31 * 86_400))
            let before = try readFile(segmentPath(path, 1))
            fs.fail("rename", path: ".seg.tmp", errno: EIO)
            #expect {
                try store.purge()
            } throws: { error in
                guard case SteleError.io(let io) = error else { return false }
                return io.operation == "rename" && io.errno == EIO && io.path.hasSuffix(".seg.tmp")
            }
            #expect(fs.fired("rename") == 1)
            #expect(try readFile(segmentPath(path, 1)) == before, "the old segment is untouched")
            try? store.close()

            // Reopens clean (the temporary file is removed); running purge again completes it.
            let reopened = try RetentionTests.open(path, clock)
            #expect(reopened.recovery.removedTemporaryFiles.count == 1)
            let report = try reopened.purge()
            #expect(report.purged.count == 300)
            try reopened.close()
            #expect(try Store(path: path).recordCount > 600)
        }
    }

    /// No API removes or rewrites locked data: every destructive entry point is tried against a
    /// compliance-locked, superseded, held version. Each is either refused with the exact error
    /// that names its protection, or (a delete, a purge, releasing the hold) allowed and
    /// harmless: the version's bytes are checked after every attempt.
    @Test func noDestructiveEntryPointTouchesLockedData() throws {
        try withStore(segmentSize: 256 * 1024) { _, path in
            let clock = TestClock()
            let store = try RetentionTests.open(path, clock)
            let t0 = clock.nanosecondsSinceEpoch()
            let key = Array("locked".utf8), value = [UInt8](repeating: 7, count: 500)
            let v = try store.put(namespace: "vault", key: key, value: value,
                                  lock: RetentionLock(mode: .compliance, retainUntil: t0 + 365 * Self.day)).sequences.lowerBound
            try store.put(namespace: "vault", key: key, value: Array("newer".utf8))
            try store.raiseMinimumRetention(to: .seconds(30 * 86_400))
            try store.setDefaultRetention(namespace: "vault", mode: .compliance, duration: .seconds(30 * 86_400))
            try store.setLegalHold(namespace: "vault", key: key, on: true, reason: "audit")
            try store.seal()

            enum Outcome { case refused((SteleError) -> Bool), allowed }
            func retention(_ match: @escaping (RetentionError) -> Bool) -> Outcome {
                .refused { if case .retention(let e) = $0 { match(e) } else { false } }
            }
            let attempts: [(String, Outcome, () throws -> Void)] = [
                ("purgeVersion", retention { if case .complianceLock = $0 { true } else { false } },
                 { _ = try store.purgeVersion(namespace: "vault", key: key, version: v) }),
                ("shorten lock", retention { if case .complianceLock = $0 { true } else { false } },
                 { _ = try store.lock(namespace: "vault", key: key, version: v, lock: RetentionLock(mode: .compliance, retainUntil: t0 + Self.day)) }),
                ("downgrade lock to governance", retention { if case .complianceLock = $0 { true } else { false } },
                 { _ = try store.lock(namespace: "vault", key: key, version: v, lock: RetentionLock(mode: .governance, retainUntil: t0 + 400 * Self.day)) }),
                ("lower minimum", retention { if case .minimumCanOnlyGrow = $0 { true } else { false } },
                 { _ = try store.raiseMinimumRetention(to: .seconds(1)) }),
                ("weaker default", retention { if case .defaultCanOnlyGrow = $0 { true } else { false } },
                 { _ = try store.setDefaultRetention(namespace: "vault", mode: .governance, duration: .seconds(1)) }),
                ("shorter default", retention { if case .defaultCanOnlyGrow = $0 { true } else { false } },
                 { _ = try store.setDefaultRetention(namespace: "vault", mode: .compliance, duration: .seconds(1)) }),
                ("delete", .allowed, { _ = try store.delete(namespace: "vault", key: key) }),
                ("purge", .allowed, { _ = try store.purge() }),
                ("release hold", .allowed, { _ = try store.setLegalHold(namespace: "vault", key: key, on: false, reason: "try") }),
                ("purge after the hold", .allowed, { _ = try store.purge() }),
            ]
            for (name, expected, attempt) in attempts {
                var thrown: (any Error)?
                do { try attempt() } catch { thrown = error }
                switch expected {
                case .refused(let matches):
                    #expect((thrown as? SteleError).map(matches) == true, "\(name): expected its refusal, got \(thrown.map { "\($0)" } ?? "success")")
                case .allowed:
                    #expect(thrown == nil, "\(name): \(thrown.map { "\($0)" } ?? "")")
                }
                let version = try #require(try store.history(namespace: "vault", key: key).first { $0.sequence == v })
                #expect(version.value == value, "\(name) changed the locked version")
                #expect(version.redactedLeafHash == nil, "\(name) redacted the locked version")
            }
            // The lock expires; then (and only then) the superseded version may go.
            clock.advance(.seconds(364 * 86_400))
            _ = try store.purge()
            #expect(try store.history(namespace: "vault", key: key).first { $0.sequence == v }?.value == value, "a day before expiry")
            clock.advance(.seconds(2 * 86_400))
            _ = try store.purge()
            #expect(try store.history(namespace: "vault", key: key).first { $0.sequence == v }?.redactedLeafHash != nil, "purged after expiry")
            try store.close()
        }
    }
}
