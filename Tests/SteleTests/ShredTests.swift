import Foundation
import Testing
@testable import Stele
import SteleNative

/// Crypto-shredding (issue 20, step 5): refused under every kind of protection, as a purge is;
/// afterwards the namespace is unreadable everywhere while records, proofs and checkpoints stay
/// and verify; a crash between the shred record and the key's destruction is completed.
@Suite struct ShredTests {
    static let signer = try! NoteSigner.generate(name: "shred.test/log")

    static func open(_ path: String, _ master: EncryptionKey, clock: TestClock? = nil) throws -> Store {
        var options = Store.Options()
        options.encryptionKey = master
        if let clock { options.clock = clock }
        return try Store(path: path, options: options)
    }

    static func expectRefused(_ store: Store, _ namespace: String, _ what: String) {
        let before = store.recordCount
        #expect(performing: { try store.shred(namespace: namespace, reason: "erasure request") }, throws: { error in
            if case SteleError.retention = error { return true }
            Issue.record("\(what): \(error)")
            return false
        })
        #expect(store.recordCount == before, "\(what): a refused shred wrote something")
        #expect((try? store.get(namespace: namespace, key: Array("k".utf8)))??.value == Array("v".utf8), "\(what): no longer readable")
    }

    @Test func refusedUnderEachProtectionUntilItEnds() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let master = try EncryptionKey.generate()
        let path = dir.child("store")
        try Store.create(at: path, segmentSize: 1 << 20, encryptionKey: master)
        let clock = TestClock()
        let store = try Self.open(path, master, clock: clock)
        defer { try? store.close() }
        let day = Int64(86_400) * 1_000_000_000
        let until = clock.nanosecondsSinceEpoch() + day
        for namespace in ["compliance", "governance", "hold", "default", "free"] {
            try store.put(namespace: namespace, key: Array("k".utf8), value: Array("v".utf8))
        }
        try store.lock(namespace: "compliance", key: Array("k".utf8), lock: RetentionLock(mode: .compliance, retainUntil: until))
        try store.lock(namespace: "governance", key: Array("k".utf8), lock: RetentionLock(mode: .governance, retainUntil: until))
        try store.setLegalHold(namespace: "hold", key: Array("k".utf8), on: true, reason: "litigation")
        try store.setDefaultRetention(namespace: "default", mode: .governance, duration: .seconds(86_400))
        try store.put(namespace: "default", key: Array("k".utf8), value: Array("v".utf8))
        for namespace in ["compliance", "governance", "hold", "default"] { Self.expectRefused(store, namespace, namespace) }
        #expect(try store.shred(namespace: "free", reason: "erasure request").versions == 1)
        // Once protection ends (the locks and the default expire, the hold is released): shredded.
        try store.setLegalHold(namespace: "hold", key: Array("k".utf8), on: false, reason: "case closed")
        clock.advance(.seconds(2 * 86_400))
        for namespace in ["compliance", "governance", "hold", "default"] {
            let report = try store.shred(namespace: namespace, reason: "erasure request")
            #expect(report.versions >= 1 && report.keyFingerprint.count == 16)
        }

        // The store minimum protects too.
        let minimumPath = dir.child("minimum")
        try Store.create(at: minimumPath, segmentSize: 1 << 20, minimumRetention: .seconds(3_600), encryptionKey: master)
        let minimum = try Self.open(minimumPath, master, clock: clock)
        defer { try? minimum.close() }
        try minimum.put(namespace: "n", key: Array("k".utf8), value: Array("v".utf8))
        Self.expectRefused(minimum, "n", "store minimum")
        clock.advance(.seconds(7_200))
        try minimum.shred(namespace: "n", reason: "erasure request")
    }

    @Test func afterAShredTheNamespaceIsUnreadableAndEverythingVerifies() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let master = try EncryptionKey.generate()
        let path = dir.child("store")
        try Store.create(at: path, segmentSize: 1 << 20, encryptionKey: master)
        let store = try Self.open(path, master)
        var acme: [UInt64] = []
        for n in 0 ..< 50 {
            acme.append(try store.put(namespace: "acme", key: Array("a\(n)".utf8), value: Array("acme value \(n)".utf8)).sequences.lowerBound)
            try store.put(namespace: "globex", key: Array("g\(n)".utf8), value: Array("globex value \(n)".utf8))
        }
        try store.delete(namespace: "acme", key: Array("a1".utf8))
        try store.seal()
        let before = try store.checkpoint(signer: Self.signer)
        let keyringBefore = try #require(FileManager.default.contents(atPath: path + "/keyring"))
        let storeID = store.config.storeID

        let report = try store.shred(namespace: "acme", reason: "GDPR art. 17 request 2026-118")
        #expect(report.versions == 50 && report.sequence == store.recordCount - 1)
        func isShredded(_ body: () throws -> Void) -> Bool {
            do { try body() } catch SteleError.encryption(.shredded(let namespace, let at)) { return namespace == "acme" && at == report.shreddedAt } catch { return false }
            return false
        }
        #expect(isShredded { _ = try store.get(namespace: "acme", key: Array("a2".utf8)) })
        #expect(isShredded { _ = try store.history(namespace: "acme", key: Array("a2".utf8)) })
        #expect(isShredded { _ = try store.scan(namespace: "acme") })
        #expect(isShredded { _ = try store.record(at: acme[7]) })
        #expect(isShredded { try store.put(namespace: "acme", key: Array("new".utf8), value: [1]) })
        #expect(isShredded { try store.shred(namespace: "acme", reason: "again") })
        #expect(try store.get(namespace: "globex", key: Array("g7".utf8))?.value == Array("globex value 7".utf8))
        // Its versions are still listed, where and when, as shredded: 50 puts and the tombstone.
        let listed = try store.shreddedVersions(namespace: "acme")
        #expect(listed.count == 51 && listed.filter(\.isTombstone).count == 1 && listed.first?.sequence == acme[0])
        #expect(throws: SteleError.self) { _ = try store.shreddedVersions(namespace: "globex") }
        // Proofs and checkpoints made before the shred verify after it, and so does a new one.
        #expect(try store.verify(checkpoint: before, verifier: Self.signer.verifier).checkpoint.treeSize == acme[49] + 2 + 1)
        let proof = try store.inclusionProof(index: acme[7])
        #expect(MerkleVerifier.verifyInclusion(leafHash: try store.leafHash(at: acme[7]), index: acme[7], treeSize: proof.treeSize,
                                               proof: proof.hashes, root: proof.root))
        let after = try store.checkpoint(signer: Self.signer)
        try store.close()

        // The wrapped key's bytes are gone from the keyring file; the slot says when.
        let keyringAfter = try #require(FileManager.default.contents(atPath: path + "/keyring"))
        let ring = try Keyring(fs: PosixFileSystem(), path: path + "/keyring", storeID: storeID, master: master)
        #expect(ring.entry(for: "acme") == .shredded(at: report.shreddedAt))
        let acmeHash = Data(sha256(Array("acme".utf8)))
        let slots = (keyringBefore.count - Keyring.headerLength) / Keyring.slotLength
        var acmeSlot: Int?
        for slot in 0 ..< slots {
            let start = Keyring.headerLength + slot * Keyring.slotLength
            if keyringBefore[start + 8 ..< start + 40] == acmeHash { acmeSlot = start }
        }
        let slotStart = try #require(acmeSlot)
        let wrapped = Data(keyringBefore[slotStart + 52 ..< slotStart + 100])
        #expect(keyringAfter.range(of: wrapped) == nil, "the wrapped data key is still in the keyring file")

        let report2 = try Fsck.check(path: path, externalCheckpoints: [Fsck.ExternalCheckpoint(note: before, verifier: Self.signer.verifier),
                                                                      Fsck.ExternalCheckpoint(note: after, verifier: Self.signer.verifier)])
        #expect(report2.problems.isEmpty, "\(report2.problems)")
        // Reopened: still shredded, the rest readable, a purge pass runs.
        let reopened = try Self.open(path, master)
        defer { try? reopened.close() }
        #expect(isShredded { _ = try reopened.get(namespace: "acme", key: Array("a2".utf8)) })
        #expect(try reopened.get(namespace: "globex", key: Array("g9".utf8))?.value == Array("globex value 9".utf8))
        _ = try reopened.purge(dryRun: true)
    }

    /// The shred record is durable but the key's overwrite fails (as a crash there would leave
    /// it): the namespace is refused at once, and the next writable open destroys the key.
    @Test func aShredCutBeforeTheKeyIsDestroyedIsCompletedAtTheNextOpen() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let master = try EncryptionKey.generate()
        let path = dir.child("store")
        try Store.create(at: path, segmentSize: 1 << 20, encryptionKey: master)
        let storeID: [UInt8]
        do {
            let (store, fs) = try openOnFaultyFileSystem(path) { $0.encryptionKey = master }
            defer { try? store.close() }
            storeID = store.config.storeID
            try store.put(namespace: "acme", key: Array("k".utf8), value: Array("v".utf8))
            fs.fail("write", path: "keyring", errno: EIO)
            #expect(throws: SteleError.self) { try store.shred(namespace: "acme", reason: "erasure request") }
            #expect(throws: SteleError.self) { _ = try store.get(namespace: "acme", key: Array("k".utf8)) }
        }
        let stale = try Keyring(fs: PosixFileSystem(), path: path + "/keyring", storeID: storeID, master: master)
        guard case .live? = stale.entry(for: "acme") else {
            Issue.record("the failed overwrite destroyed the key anyway: the test shows nothing")
            return
        }
        // A reader refuses the namespace (the log says shredded), though the key is still there.
        var readOnly = Store.Options(readOnly: true)
        readOnly.encryptionKey = master
        let reader = try Store(path: path, options: readOnly)
        #expect(throws: SteleError.self) { _ = try reader.get(namespace: "acme", key: Array("k".utf8)) }
        try reader.close()
        let store = try Self.open(path, master)
        try store.close()
        let ring = try Keyring(fs: PosixFileSystem(), path: path + "/keyring", storeID: storeID, master: master)
        guard case .shredded? = ring.entry(for: "acme") else {
            Issue.record("the writable open left the shredded namespace's key in the keyring")
            return
        }
    }
}
