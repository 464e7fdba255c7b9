import Foundation
import Testing
@testable import Stele
import SteleNative

/// An encrypted store end to end (issue 20, step 3): created with a master key, every put and
/// tombstone written as blobs under its namespace's data key, read back with the key, and
/// nothing of the plaintext keys and values in any file.
@Suite struct EncryptedStoreTests {
    static let signer = try! NoteSigner.generate(name: "encrypted.test/log")

    /// Markers that must never be found in the store's files (the namespace names are in clear
    /// by design: retention and fsck read them).
    static func key(_ n: Int) -> [UInt8] { Array("KEYMARKER-\(n)".utf8) }
    static func value(_ n: Int, long: Bool = false) -> [UInt8] {
        // Long values compress (LZ4 before encryption); short ones are stored as they are.
        Array((long ? String(repeating: "VALUEMARKER-\(n) compressible text, ", count: 60) : "VALUEMARKER-\(n)").utf8)
    }

    static func create(_ dir: TemporaryDirectory, key: EncryptionKey) throws -> String {
        let path = dir.child("store")
        try Store.create(at: path, segmentSize: 1 << 20, encryptionKey: key)
        return path
    }

    static func open(_ path: String, key: EncryptionKey?, readOnly: Bool = false) throws -> Store {
        var options = Store.Options(readOnly: readOnly)
        options.encryptionKey = key
        return try Store(path: path, options: options)
    }

    /// The files under `root` (by path relative to it) that hold one of `markers`.
    static func filesHolding(_ markers: [String], under root: String) throws -> [String] {
        try contents(root).sorted { $0.key < $1.key }.flatMap { relative, bytes in
            markers.filter { bytes.range(of: Data($0.utf8)) != nil }.map { "\(relative): \($0)" }
        }
    }

    @Test func writesReadBackAndNoPlaintextReachesAFile() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let master = try EncryptionKey.generate()
        let path = try Self.create(dir, key: master)
        #expect(try Store.readConfig(fs: PosixFileSystem(), layout: StoreLayout(root: path)).encryptionKey == master.fingerprint)
        var checkpoint = ""
        do {
            let store = try Self.open(path, key: master)
            defer { try? store.close() }
            // Single puts (short and compressed values), a batch for two threads' size (the
            // packed path), an EntryBatch, a tombstone, a second namespace, and a seal between.
            for n in 0 ..< 20 { try store.put(namespace: "acme", key: Self.key(n), value: Self.value(n, long: n % 2 == 0)) }
            try store.putBatch((20 ..< 220).map { Entry(namespace: "acme", key: Self.key($0), value: Self.value($0)) })
            var batch = EntryBatch()
            for n in 220 ..< 240 { batch.put(namespace: "globex", key: Self.key(n), value: Self.value(n, long: true)) }
            try store.putBatch(batch)
            try store.seal()
            try store.put(namespace: "acme", key: Self.key(3), value: Self.value(1003))
            try store.delete(namespace: "acme", key: Self.key(4))
            #expect(try store.get(namespace: "acme", key: Self.key(0))?.value == Self.value(0, long: true))
            #expect(try store.get(namespace: "acme", key: Self.key(3))?.value == Self.value(1003))
            #expect(try store.get(namespace: "acme", key: Self.key(4)) == nil)
            #expect(try store.history(namespace: "acme", key: Self.key(3)).map(\.value) == [Self.value(3), Self.value(1003)])
            #expect(try store.scan(namespace: "globex", limit: 1000).count == 20)
            #expect(try store.withValue(namespace: "globex", key: Self.key(230)) { Array($0) } == Self.value(230, long: true))
            checkpoint = try store.checkpoint(signer: Self.signer)
        }
        // Reopened: the key index is rebuilt from the opened key blobs.
        let store = try Self.open(path, key: master)
        #expect(try store.get(namespace: "acme", key: Self.key(150))?.value == Self.value(150))
        #expect(try store.get(namespace: "acme", key: Self.key(4)) == nil)
        #expect(try store.scan(namespace: "acme", limit: 1000, includeDeleted: true).count == 220)
        let record = try store.record(at: 1)
        #expect(record.key == Self.key(0) && record.value == Self.value(0, long: true))
        // Proofs and checkpoints cover the ciphertext: they verify as for any store.
        #expect(try store.verify(checkpoint: checkpoint, verifier: Self.signer.verifier).checkpoint.treeSize > 240)
        try store.close()
        let markers = ["KEYMARKER-", "VALUEMARKER-", "compressible text"]
        #expect(try Self.filesHolding(markers, under: path) == [])
        // fsck needs no key: it checks checksums, chain, leaves and tiles over the blobs.
        let report = try Fsck.check(path: path, externalCheckpoints: [Fsck.ExternalCheckpoint(note: checkpoint, verifier: Self.signer.verifier)])
        #expect(report.problems.isEmpty, "\(report.problems)")
    }

    /// The two ways a sealed batch reaches the log: on both cores when it fits in the active
    /// segment (puts, compressed puts and tombstones of two namespaces mixed), and record by
    /// record across segments when it is larger than one; each record at the sequence number its
    /// blobs were sealed for, readable after a reopen, and fsck clean.
    @Test func largeSealedBatchesOnBothPathsReadBackAfterReopen() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let master = try EncryptionKey.generate()
        let path = dir.child("store")
        try Store.create(at: path, segmentSize: 64 * 1024, encryptionKey: master)
        var expected: [[UInt8]: [UInt8]?] = [:]
        do {
            let store = try Self.open(path, key: master)
            defer { try? store.close() }
            let mixed = (0 ..< 150).map { n in
                let namespace = Array((n % 3 == 0 ? "globex" : "acme").utf8)
                return n % 7 == 6 ? Entry(type: .tombstone, namespace: namespace, key: Self.key(n), value: [])
                    : Entry(type: .put, namespace: namespace, key: Self.key(n), value: Self.value(n, long: n % 5 == 0))
            }
            let fitting = try store.putBatch(mixed)
            #expect(fitting.sequences.count == 150)
            // About 200 KiB of frames: over three segments of 64 KiB.
            let large = (150 ..< 850).map { Entry(namespace: "acme", key: Self.key($0), value: Self.value($0) + [UInt8](repeating: UInt8($0 % 251), count: 250)) }
            let spanning = try store.putBatch(large)
            #expect(spanning.sequences.count == 700 && spanning.sequences.lowerBound == fitting.sequences.upperBound + 1)
            for n in 0 ..< 150 { expected[Self.key(n)] = n % 7 == 6 ? nil : Self.value(n, long: n % 5 == 0) }
            for entry in large { expected[entry.key] = entry.value }
        }
        let store = try Self.open(path, key: master)
        defer { try? store.close() }
        #expect(try store.stats().sealedSegments >= 3)
        for n in 0 ..< 850 {
            let namespace = n < 150 && n % 3 == 0 ? "globex" : "acme"
            let value = try store.get(namespace: namespace, key: Self.key(n))?.value
            #expect(value == expected[Self.key(n)] ?? nil, "key \(n)")
        }
        let report = try Fsck.check(path: path)
        #expect(report.problems.isEmpty, "\(report.problems)")
        #expect(try Self.filesHolding(["KEYMARKER-", "VALUEMARKER-"], under: path) == [])
    }

    /// A wrong key, no key for a writer, and a key for a store that is not encrypted are each
    /// refused with their error before anything is written; without the key a reader still
    /// verifies, but every key read says the key is required.
    @Test func aWrongOrMissingKeyIsRefusedAndChangesNothing() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let master = try EncryptionKey.generate()
        let path = try Self.create(dir, key: master)
        do {
            let store = try Self.open(path, key: master)
            for n in 0 ..< 10 { try store.put(namespace: "acme", key: Self.key(n), value: Self.value(n)) }
            try store.close()
        }
        let before = try Self.contents(path)
        let other = try EncryptionKey.generate()
        #expect(throws: SteleError.encryption(.wrongKey(expected: master.fingerprint, given: other.fingerprint))) {
            _ = try Self.open(path, key: other)
        }
        #expect(throws: SteleError.encryption(.keyRequired)) { _ = try Self.open(path, key: nil) }
        let reader = try Self.open(path, key: nil, readOnly: true)
        #expect(throws: SteleError.encryption(.keyRequired)) { _ = try reader.get(namespace: "acme", key: Self.key(1)) }
        #expect(throws: SteleError.encryption(.keyRequired)) { _ = try reader.history(namespace: "acme", key: Self.key(1)) }
        #expect(throws: SteleError.encryption(.keyRequired)) { _ = try reader.scan(namespace: "acme") }
        #expect(throws: SteleError.encryption(.keyRequired)) { _ = try reader.record(at: 2) }
        let proof = try reader.inclusionProof(index: 2)
        #expect(MerkleVerifier.verifyInclusion(leafHash: try reader.leafHash(at: 2), index: 2, treeSize: proof.treeSize,
                                               proof: proof.hashes, root: proof.root))
        try reader.close()
        #expect(try Self.contents(path) == before, "a refused open changed a file")

        let plainPath = dir.child("plain")
        try Store.create(at: plainPath, segmentSize: 1 << 20)
        #expect(throws: SteleError.self) { _ = try Self.open(plainPath, key: master) }
        // A keyring that is gone is named, not taken for an empty one.
        try FileManager.default.removeItem(atPath: path + "/keyring")
        #expect {
            _ = try Self.open(path, key: master)
        } throws: { error in
            if case SteleError.encryption(.keyringDamaged) = error { return true }
            return false
        }
    }

    /// Locks and holds name a key by its id, never in clear: they protect exactly as in a
    /// plain store (a purge passes over what they protect and takes the rest), they survive a
    /// reopen (replayed from the log), fsck judges the purge without the master key, and no
    /// key reaches a file. Shortening a governance lock is refused (its authorization names
    /// the key in clear).
    @Test func locksAndHoldsNameKeysByTheirID() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let master = try EncryptionKey.generate()
        let path = try Self.create(dir, key: master)
        let until = Int64(Date().timeIntervalSince1970 * 1e9) + 86_400_000_000_000
        do {
            let store = try Self.open(path, key: master)
            defer { try? store.close() }
            // Keys 1-4 have two versions each: v1 of 1 locked, of 2 locked with the put (every
            // version of the key so far, by a later lock), of 3 held, of 4 unprotected.
            var first: [Int: UInt64] = [:]
            for n in 1 ... 4 { first[n] = try store.put(namespace: "acme", key: Self.key(n), value: Self.value(n)).sequences.lowerBound }
            try store.lock(namespace: "acme", key: Self.key(1), version: first[1], lock: RetentionLock(mode: .governance, retainUntil: until))
            try store.lock(namespace: "acme", key: Self.key(2), lock: RetentionLock(mode: .compliance, retainUntil: until))
            try store.setLegalHold(namespace: "acme", key: Self.key(3), on: true, reason: "case 1")
            for n in 1 ... 4 { try store.put(namespace: "acme", key: Self.key(n), value: Self.value(100 + n)) }
            #expect(throws: SteleError.self) {
                try store.shortenGovernanceLock(namespace: "acme", key: Self.key(1), version: first[1], retainUntil: 0, authorization: "x")
            }
            let history = try store.history(namespace: "acme", key: Self.key(1))
            #expect(history.first?.protection?.locks.first?.retainUntil == until, "\(history)")
            try store.seal()
            let report = try store.purge()
            #expect(report.purged.map(\.sequence) == [first[4]!], "\(report.purged)")
        }
        let store = try Self.open(path, key: master)
        #expect(try store.history(namespace: "acme", key: Self.key(2)).first?.protection?.locks.first?.mode == .compliance)
        #expect(try store.history(namespace: "acme", key: Self.key(3)).first?.protection?.legalHold?.reason == "case 1")
        #expect(try store.history(namespace: "acme", key: Self.key(4)).first?.value == [], "the purged payload")
        #expect(try store.purge(dryRun: true).purged.isEmpty, "a reopened store forgot a lock or the hold")
        try store.close()
        #expect(try Self.filesHolding(["KEYMARKER-", "VALUEMARKER-4"], under: path) == [])
        let fsck = try Fsck.check(path: path)
        #expect(fsck.problems.isEmpty, "\(fsck.problems)")
    }

    /// A batch whose records fit the active segment but whose locks do not: the records are
    /// staged, the locks fill the segment and seal it. The staged frames must reach the file
    /// before that seal's sync (found by review: a seal over a staging buffer vouched for frames
    /// not yet written, which a power cut then lost). Power-cut images taken once the durable
    /// batch returned each hold every record, and fsck finds nothing wrong.
    @Test func aBatchWhoseLocksSealTheSegmentSurvivesAPowerCut() throws {
        let dir = TemporaryDirectory(inMemory: true)
        defer { dir.remove() }
        let master = try EncryptionKey.generate()
        let path = dir.child("store")
        try Store.create(at: path, segmentSize: 64 * 1024, encryptionKey: master)
        var generator = SystemRandomNumberGenerator()
        let values = (0 ..< 36).map { _ in (0 ..< 1_550).map { _ in UInt8.random(in: 0 ... 255, using: &generator) } }
        let until = Int64(Date().timeIntervalSince1970 * 1e9) + 86_400_000_000_000
        let fs = try PowerLossFileSystem(root: path)
        var options = Store.Options()
        options.encryptionKey = master
        options.fileSystem = fs
        let store = try Store(path: path, options: options)
        let entries = values.enumerated().map { Entry(namespace: "acme", key: Self.key($0.offset), value: $0.element) }
        try store.putBatch(entries, locks: entries.map { _ in RetentionLock(mode: .governance, retainUntil: until) })
        #expect(try store.stats().sealedSegments >= 1, "the locks did not seal the segment: the test shows nothing")
        var random = SplitMix64(seed: 7)
        let images = try (0 ..< 8).map { _ in try fs.crashImage(&random) }
        try store.close()
        var plain = Store.Options()
        plain.encryptionKey = master
        for (n, image) in images.enumerated() {
            let copy = dir.child("image-\(n)")
            try image.materialize(at: copy)
            let reopened = try Store(path: copy, options: plain)
            for (i, value) in values.enumerated() where try reopened.get(namespace: "acme", key: Self.key(i))?.value != value {
                Issue.record("image \(n): record \(i) lost after its durable batch returned")
                break
            }
            try reopened.close()
            let report = try Fsck.check(path: copy)
            #expect(report.problems.isEmpty, "image \(n): \(report.problems)")
        }
    }

    static func contents(_ root: String) throws -> [String: Data] {
        var out: [String: Data] = [:]
        let enumerator = FileManager.default.enumerator(atPath: root)
        while let relative = enumerator?.nextObject() as? String {
            let path = root + "/" + relative
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            out[relative] = try Data(contentsOf: URL(fileURLWithPath: path))
        }
        return out
    }
}

/// One data key seals at most so many records (2^31 in a store: random 96-bit nonces, two per
/// record, and NIST's 2^32 messages per key); here a limit of 100 shows the count kept across
/// batches and reopens, and a refused batch writes nothing.
@Suite struct DataKeyBudgetTests {
    static func open(_ path: String, key: EncryptionKey) throws -> Store {
        var options = Store.Options()
        options.encryptionKey = key
        options.recordsPerDataKey = 100
        return try Store(path: path, options: options)
    }

    @Test func aNamespacesKeySealsNoMoreRecordsThanItsBudget() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let master = try EncryptionKey.generate()
        let path = dir.child("store")
        try Store.create(at: path, encryptionKey: master)
        let exhausted = SteleError.encryption(.keyExhausted(namespace: "acme", limit: 100))
        do {
            let store = try Self.open(path, key: master)
            defer { try? store.close() }
            try store.putBatch((0 ..< 60).map { Entry(namespace: "acme", key: Array("k\($0)".utf8), value: [1]) })
            for n in 60 ..< 99 { try store.put(namespace: "acme", key: Array("k\(n)".utf8), value: [1]) }
            let before = store.recordCount
            // Two records when one is left: the whole batch is refused, the other namespace's too.
            #expect(throws: exhausted) {
                try store.putBatch([Entry(namespace: "globex", key: [1], value: [1]), Entry(namespace: "acme", key: [1], value: [1]),
                                    Entry(namespace: "acme", key: [2], value: [2])])
            }
            #expect(store.recordCount == before, "nothing of a refused batch is written")
            try store.delete(namespace: "acme", key: Array("k0".utf8))  // the 100th
            #expect(throws: exhausted) { try store.put(namespace: "acme", key: [3], value: [3]) }
            // The refused batches took nothing from globex's budget: 100 records still fit.
            try store.putBatch((0 ..< 100).map { Entry(namespace: "globex", key: Array("g\($0)".utf8), value: [1]) })
            #expect(throws: SteleError.encryption(.keyExhausted(namespace: "globex", limit: 100))) {
                try store.put(namespace: "globex", key: [1], value: [1])
            }
        }
        // The count comes back from the log at the next open.
        let store = try Self.open(path, key: master)
        defer { try? store.close() }
        #expect(throws: exhausted) { try store.put(namespace: "acme", key: [4], value: [4]) }
        #expect(throws: SteleError.encryption(.keyExhausted(namespace: "globex", limit: 100))) {
            try store.put(namespace: "globex", key: [2], value: [2])
        }
        try store.put(namespace: "initech", key: [2], value: [2])
        #expect(try store.get(namespace: "acme", key: Array("k98".utf8))?.value == [1])
    }
}
