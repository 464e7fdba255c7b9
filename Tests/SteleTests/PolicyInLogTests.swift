import Foundation
import Testing
@testable import Stele
import SteleNative

/// The store's identity and governance key are records in its log: the genesis of a new store,
/// the adoption of an old one, and changes signed by the key in force.
@Suite struct PolicyInLogTests {
    static let day: Int64 = 86_400 * 1_000_000_000

    @Test func theGenesisRecordsWhatTheConfigFileCaches() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let authority = try NoteSigner.generate(name: "gov/key")
        let path = dir.child("s")
        let config = try Store.create(at: path, segmentSize: 128 * 1024, origin: "example.com/ledger", minimumRetention: .seconds(3600),
                                      governanceKey: authority.verifier)
        let store = try Store(path: path)
        let genesis = try store.record(at: 0)
        #expect(genesis.type == .config && genesis.namespace.isEmpty && genesis.key.isEmpty)
        guard case .genesis(let identity, let minimum, let key)? = ConfigRecord.decode(genesis.value) else {
            Issue.record("record 0 is not a genesis")
            return
        }
        #expect(identity == config.identity && key == authority.verifier && minimum == 3_600_000_000_000)
        #expect(store.minimumRetention == .seconds(3600) && store.governanceKey == authority.verifier)
        // The minimum is in force for the first record written.
        let v = try store.put(namespace: "n", key: "k", value: "v").sequences.lowerBound
        #expect(try store.protection(namespace: "n", key: Array("k".utf8), version: v).locks.contains { $0.scope == .storeMinimum })
        try store.close()
    }

    @Test func aGovernanceKeyChangesOnlyUnderANoteByTheKeyInForce() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let a = try NoteSigner.generate(name: "gov/a"), b = try NoteSigner.generate(name: "gov/b"), c = try NoteSigner.generate(name: "gov/c")
        let path = dir.child("s")
        try Store.create(at: path, segmentSize: 64 * 1024, origin: "example.com/ledger", governanceKey: a.verifier)
        let store = try Store(path: path)
        let now = Int64(Date().timeIntervalSince1970 * 1e9)
        func note(_ to: NoteVerifier?, signedBy signer: NoteSigner, asOf: UInt64? = nil) throws -> String {
            try GovernanceAuthorization.signKeyChange(origin: "example.com/ledger", newKey: to, asOf: asOf ?? store.treeSize,
                                                      notAfter: now + Self.day, with: signer)
        }
        #expect(throws: SteleError.checkpoint(.noTrustedSignature(key: "gov/a")), "signed by a key not in force") { try store.changeGovernanceKey(to: c.verifier, authorization: try note(c.verifier, signedBy: b)) }
        #expect(throws: SteleError.retention(.authorizationMismatch), "not this change") {
            try store.changeGovernanceKey(to: c.verifier, authorization: try note(b.verifier, signedBy: a))
        }
        let toB = try note(b.verifier, signedBy: a)
        let change = try store.changeGovernanceKey(to: b.verifier, authorization: toB).sequences.lowerBound
        #expect(store.governanceKey == b.verifier && store.config.governanceKey == b.verifier)
        #expect(try Store.readConfig(fs: PosixFileSystem(), layout: StoreLayout(root: path)).governanceKey == b.verifier, "the file follows the log")
        // The old key no longer authorizes anything, and its old note cannot be replayed.
        #expect(throws: SteleError.checkpoint(.noTrustedSignature(key: "gov/b"))) {
            try store.changeGovernanceKey(to: a.verifier, authorization: try note(a.verifier, signedBy: a))
        }
        #expect(throws: SteleError.checkpoint(.noTrustedSignature(key: "gov/b"))) { try store.changeGovernanceKey(to: b.verifier, authorization: toB) }
        // The new one must look at a tree that includes the change before it.
        #expect(throws: SteleError.retention(.authorizationMismatch)) {
            try store.changeGovernanceKey(to: nil, authorization: try note(nil, signedBy: b, asOf: change))
        }
        try store.changeGovernanceKey(to: nil, authorization: try note(nil, signedBy: b))
        #expect(store.governanceKey == nil)
        try store.close()
        let reopened = try Store(path: path)
        #expect(reopened.governanceKey == nil)
        try reopened.close()
        #expect(try Fsck.check(path: path).problems.isEmpty)
    }

    @Test func aStoreCreatedBeforeConfigRecordsIsMigratedAndItsOldBypassesStillHold() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let a = try NoteSigner.generate(name: "gov/a"), b = try NoteSigner.generate(name: "gov/b")
        // An empty one: the adoption becomes record 0.
        let empty = dir.child("empty")
        try Store.create(at: empty, segmentSize: 64 * 1024, origin: "example.com/empty", governanceKey: a.verifier,
                         fileSystem: PosixFileSystem(), clock: SystemClock(), legacy: true)
        #expect(throws: SteleError.notMigrated(path: empty + "/stele.conf")) { try Store(path: empty) }
        #expect(try Store.migrate(at: empty) == 0)
        let migratedEmpty = try Store(path: empty)
        try migratedEmpty.put(namespace: "n", key: "k", value: "v")
        try migratedEmpty.close()
        #expect(try Fsck.check(path: empty).problems.isEmpty)

        // One with a governance bypass (written as older versions wrote it, judged by the file's key).
        let path = dir.child("s")
        try Store.create(at: path, segmentSize: 64 * 1024, origin: "example.com/ledger", governanceKey: a.verifier,
                         fileSystem: PosixFileSystem(), clock: SystemClock(), legacy: true)
        var options = Store.Options()
        options.migrating = true
        let old = try Store(path: path, options: options)
        let now = Int64(Date().timeIntervalSince1970 * 1e9)
        let v1 = try old.put(namespace: "ledger", key: Array("acct".utf8), value: Array("v1".utf8),
                             lock: RetentionLock(mode: .governance, retainUntil: now + 30 * Self.day)).sequences.lowerBound
        try old.put(namespace: "ledger", key: Array("acct".utf8), value: Array("v2".utf8))
        let bypass = try GovernanceAuthorization.sign(origin: "example.com/ledger", namespace: "ledger", key: Array("acct".utf8), version: v1,
                                                      retainUntil: now - 1, asOf: old.treeSize, notAfter: now + Self.day, with: a)
        try old.shortenGovernanceLock(namespace: "ledger", key: Array("acct".utf8), version: v1, retainUntil: now - 1, authorization: bypass)
        try old.close()
        let report = try Fsck.check(path: path)
        #expect(report.problems.map(\.category) == [.config], "only: not migrated yet (\(report.problems))")
        let adoption = try Store.migrate(at: path)
        #expect(adoption > v1)
        // The key changes after the migration: the bypass before it is still judged by the key
        // that signed it (the adopted one), not by the file's key of now.
        let store = try Store(path: path)
        try store.changeGovernanceKey(to: b.verifier, authorization: try GovernanceAuthorization.signKeyChange(
            origin: "example.com/ledger", newKey: b.verifier, asOf: store.treeSize, notAfter: now + Self.day, with: a))
        try store.close()
        let reopened = try Store(path: path)
        #expect(try !reopened.protection(namespace: "ledger", key: Array("acct".utf8), version: v1).isProtected(at: now))
        try reopened.append(testEntry(1))
        try reopened.close()
        #expect(try Fsck.check(path: path).problems.isEmpty)
        #expect(throws: SteleError.invalidArgument("\(path) already records its identity in its log; nothing to migrate"), "migrated once") {
            try Store.migrate(at: path)
        }
    }

    @Test func theConfigFileIsRepairedFromTheLogIncludingItsUUIDAndSegmentSize() throws {
        try withStore { _, path in
            let pristine = try readFile(path + "/stele.conf")
            var config = try Store.readConfig(fs: PosixFileSystem(), layout: StoreLayout(root: path))
            config.storeID = StoreConfig.randomStoreID()
            config.segmentSize = 128 * 1024
            try writeFile(path + "/stele.conf", Array(config.encoded.utf8))
            #expect {
                try Store(path: path)
            } throws: { error in
                guard case SteleError.corruption(let c) = error else { return false }
                return c.file == path + "/stele.conf" && c.detail.contains("uuid") && c.detail.contains("segment-size")
            }
            let report = try Fsck.check(path: path)
            #expect(report.problems.allSatisfy { $0.category == .config } && !report.problems.isEmpty, "\(report.problems)")
            #expect(try Fsck.check(path: path, repair: true).exitCode == 1)
            #expect(try readFile(path + "/stele.conf") == pristine)
        }
    }
}
