import Foundation
import Testing
@testable import Stele
@testable import SteleMirror
import SteleNative

/// An encrypted store off the host (issue 20, step 6): the segments (ciphertext) under Object
/// Lock as ever, the keyring to a target of its own that replaces it and keeps no older version,
/// so that a shred reaches the copy; a restore needs the keyring copy and the master key, and
/// says which namespaces are shredded. No plaintext in any copy.
@Suite struct EncryptedCopyTests {
    static let signer = try! NoteSigner.generate(name: "encrypted-copy.test/log")

    /// Writes, seals and signs a checkpoint; returns the checkpoint.
    static func fill(_ store: Store, from: Int, count: Int, namespaces: [String] = ["acme", "globex"]) throws -> String {
        for n in from ..< from + count {
            try store.put(namespace: namespaces[n % namespaces.count], key: Array("KEYMARK-\(n)".utf8), value: Array("VALUEMARK-\(n)".utf8))
        }
        try store.seal()
        return try store.checkpoint(signer: signer)
    }

    static func run(segments: any MirrorTarget, keyring: any KeyringTarget, keyringFiles: () throws -> [Data], dir: TemporaryDirectory) throws {
        let master = try EncryptionKey.generate()
        let primary = dir.child("primary")
        try Store.create(at: primary, segmentSize: 1 << 20, encryptionKey: master)
        var options = Store.Options()
        options.encryptionKey = master
        var mirrorOptions = Mirror.Options()
        // Without a keyring target an encrypted store's mirror refuses to run.
        #expect(throws: SteleError.self) { try Mirror(storePath: primary, target: segments).runOnce() }
        mirrorOptions.keyringTarget = keyring
        let mirror = Mirror(storePath: primary, target: segments, options: mirrorOptions)

        var store = try Store(path: primary, options: options)
        _ = try fill(store, from: 0, count: 40)
        try store.close()
        #expect(try mirror.runOnce().keyringCopied)
        let keyringBefore = try #require(try keyring.fetchKeyring())

        // Shred acme; the next pass replaces the keyring copy.
        store = try Store(path: primary, options: options)
        try store.shred(namespace: "acme", reason: "erasure request")
        let checkpoint = try fill(store, from: 40, count: 10, namespaces: ["globex"])
        try store.close()
        let pass = try mirror.runOnce()
        #expect(pass.keyringCopied)
        #expect(try mirror.runOnce().keyringCopied == false, "an unchanged keyring was sent again")
        // The acme slot's wrapped key is in no copy of the keyring any more.
        let acmeHash = Data(sha256(Array("acme".utf8)))
        var wrapped: Data?
        for slot in 0 ..< (keyringBefore.count - Keyring.headerLength) / Keyring.slotLength {
            let start = Keyring.headerLength + slot * Keyring.slotLength
            if Data(keyringBefore[start + 8 ..< start + 40]) == acmeHash { wrapped = Data(keyringBefore[start + 52 ..< start + 100]) }
        }
        let acmeKey = try #require(wrapped)
        for file in try keyringFiles() { #expect(file.range(of: acmeKey) == nil, "a keyring copy still holds the destroyed key") }

        // A restore needs the keyring copy and the key; it says acme is shredded.
        #expect(throws: SteleError.self) {
            try Restore.run(from: segments, to: dir.child("no-keyring"), checkpoint: checkpoint, verifier: signer.verifier)
        }
        #expect(throws: SteleError.self) {
            try Restore.run(from: segments, to: dir.child("wrong-key"), checkpoint: checkpoint, verifier: signer.verifier,
                            keyring: keyring, encryptionKey: try EncryptionKey.generate())
        }
        let restored = dir.child("restored")
        let report = try Restore.run(from: segments, to: restored, checkpoint: checkpoint, verifier: signer.verifier,
                                     keyring: keyring, encryptionKey: master)
        #expect(report.shreddedNamespaces == ["acme"] && report.keyringFrom == keyring.description)
        let back = try Store(path: restored, options: options)
        defer { try? back.close() }
        #expect(try back.get(namespace: "globex", key: Array("KEYMARK-41".utf8))?.value == Array("VALUEMARK-41".utf8))
        #expect(throws: SteleError.encryption(.shredded(namespace: "acme", at: try #require(try back.shreddedNamespaces()["acme"])))) {
            _ = try back.get(namespace: "acme", key: Array("KEYMARK-2".utf8))
        }
    }

    @Test func directoryTargets() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let segments = DirectoryTarget(root: dir.child("copy")), keyring = DirectoryKeyringTarget(root: dir.child("keys"))
        try Self.run(segments: segments, keyring: keyring, keyringFiles: {
            [try #require(FileManager.default.contents(atPath: dir.child("keys") + "/keyring"))]
        }, dir: dir)
        #expect(try EncryptedStoreTests.filesHolding(["KEYMARK", "VALUEMARK"], under: dir.child("copy")) == [])
        #expect(try EncryptedStoreTests.filesHolding(["KEYMARK", "VALUEMARK"], under: dir.child("keys")) == [])
    }

    /// Segments in an Object Lock bucket; the keyring in a versioned bucket without Object Lock,
    /// where every older version of the keyring object is deleted after each upload.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["STELE_S3_ENDPOINT"] != nil, "needs STELE_S3_ENDPOINT"))
    func s3Targets() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let suffix = UInt32.random(in: 0 ... .max)
        let segments = S3Target(client: try S3MirrorTests.bucket("stele-enc-segments-\(suffix)"), prefix: "store")
        let keysClient = try S3MirrorTests.client(bucket: "stele-enc-keys-\(suffix)")
        #expect(try keysClient.send(.init(method: "PUT", key: "")).status == 200)
        let versioning = Array("<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>".utf8)
        #expect(try keysClient.send(.init(method: "PUT", key: "", query: [("versioning", "")], body: versioning)).status == 200)
        let keyring = S3Target(client: keysClient, prefix: "store")
        try Self.run(segments: segments, keyring: keyring, keyringFiles: {
            try keyring.versions(prefix: "keyring").map { Data(try keyring.get($0.name, version: $0.versionID)) }
        }, dir: dir)
        #expect(try keyring.versions(prefix: "keyring").count == 1, "older versions of the keyring copy were kept")
    }
}
