import Crypto
import Foundation
import Testing
@testable import Stele
import SteleNative

@Suite struct CheckpointTests {
    /// RFC 8032 §7.1, TEST 1 and TEST 2.
    @Test func ed25519MatchesRFC8032Vectors() throws {
        let vectors = [
            ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", "",
             "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
             "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
            ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb", "72",
             "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
             "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
        ]
        for (secret, message, publicKey, signature) in vectors {
            let seed = try #require(bytesFromHex(secret)), msg = try #require(bytesFromHex(message))
            #expect(Ed25519.publicKey(seed: seed).map { hexString($0) } == publicKey)
            #expect(Ed25519.sign(msg, seed: seed).map { hexString($0) } == signature)
            #expect(Ed25519.verify(try #require(bytesFromHex(signature)), message: msg, publicKey: try #require(bytesFromHex(publicKey))))
        }
    }

    /// The key and note from golang.org/x/mod/sumdb/note's note_test.go (TestSign, TestOpen).
    static let goVerifierKey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    static let goSignerKey = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
    static let goText = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
    static let goSignature = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"

    @Test func signedNoteMatchesTheGoReferenceVectors() throws {
        let signer = try NoteSigner(parsing: Self.goSignerKey)
        #expect(signer.verifier.encoded == Self.goVerifierKey)
        #expect(signer.encoded == Self.goSignerKey)
        let note = try SignedNote.sign(Self.goText, with: signer)
        #expect(note == Self.goText + "\n" + Self.goSignature)
        let verifier = try NoteVerifier(parsing: Self.goVerifierKey)
        #expect(try SignedNote.open(note, verifier: verifier) == Self.goText)
        // Any change to the text breaks the signature.
        let altered = note.replacingOccurrences(of: "cryptography", with: "cryptograph!")
        #expect(throws: SteleError.checkpoint(.badSignature(key: "PeterNeumann"))) { try SignedNote.open(altered, verifier: verifier) }
        // Another key with the same name is not trusted, and an unsigned text is refused.
        let other = try NoteSigner.generate(name: "PeterNeumann").verifier
        #expect(throws: SteleError.checkpoint(.noTrustedSignature(key: "PeterNeumann"))) { try SignedNote.open(note, verifier: other) }
        #expect(throws: SteleError.checkpoint(.malformedNote("no blank line before the signatures"))) { try SignedNote.open(Self.goText, verifier: verifier) }
        // Mangled keys are refused.
        #expect(throws: SteleError.checkpoint(.malformedKey("key id does not match the key"))) {
            try NoteVerifier(parsing: "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
        }
        #expect(throws: SteleError.checkpoint(.malformedKey("bad key name"))) {
            try NoteVerifier(parsing: "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
        }
    }

    /// A checkpoint made by Stele verifies with an independent Ed25519 implementation
    /// (swift-crypto, BoringSSL) given only the note text and the verifier key string.
    @Test func storeCheckpointVerifiesIndependently() throws {
        try withStore { _, path in
            let signer = try NoteSigner.generate(name: "stele.test/log")
            let store = try Store(path: path)
            try store.append(contentsOf: (0 ..< 500).map { testEntry($0) })
            let note = try store.checkpoint(signer: signer)
            let verifierKey = signer.verifier.encoded
            try store.close()

            // Independent parse of `name+id+base64(0x01 || key)` and of the note.
            let keyParts = verifierKey.split(separator: "+", maxSplits: 2)
            let keyBytes = try #require(Data(base64Encoded: String(keyParts[2])))
            #expect(keyBytes.first == 0x01)
            let publicKey = try Curve25519.Signing.PublicKey(rawRepresentation: keyBytes.dropFirst())
            let pieces = note.components(separatedBy: "\n\n")
            #expect(pieces.count == 2)
            let text = pieces[0] + "\n"
            let line = pieces[1].trimmingCharacters(in: .newlines)
            #expect(line.hasPrefix("\u{2014} stele.test/log "))
            let blob = try #require(Data(base64Encoded: String(line.split(separator: " ")[2])))
            #expect(blob.prefix(4).map { String(format: "%02x", $0) }.joined() == String(keyParts[1]))
            #expect(publicKey.isValidSignature(blob.dropFirst(4), for: Data(text.utf8)))
            #expect(!publicKey.isValidSignature(blob.dropFirst(4), for: Data(text.replacingOccurrences(of: "\n501\n", with: "\n502\n").utf8)))
            let lines = text.split(separator: "\n")
            #expect(lines[0] == Substring(try Store(path: path, options: .init(readOnly: true)).config.origin))
            #expect(lines[1] == "501", "500 records and the genesis")
        }
    }

    /// Regression: `checkpoint(signer:)` synced, then signed the tree as it was when it took the
    /// lock, which could include records other writers appended in between and that were not
    /// yet durable: a power cut could then leave a signed checkpoint ahead of the log.
    @Test func aCheckpointNeverCoversRecordsThatAreNotDurable() throws {
        try withStore(segmentSize: 1 << 20) { _, path in
            let signer = try NoteSigner.generate(name: "stele.test/log")
            let store = try Store(path: path, options: .init(commitPolicy: .none))
            try store.append(testEntry(0))
            let writing = DispatchGroup()
            DispatchQueue.global().async(group: writing) {
                for round in 1 ..< 400 { _ = try? store.append(contentsOf: (0 ..< 20).map { testEntry(round * 20 + $0, valueLength: 30) }) }
            }
            for _ in 0 ..< 60 {
                let note = try store.checkpoint(signer: signer)
                let size = try #require(UInt64(note.split(separator: "\n")[1]))
                #expect(size <= store.durableRecordCount, "signed \(size), durable \(store.durableRecordCount)")
            }
            writing.wait()
            try store.close()
        }
    }

    /// Regression, found by the power-cut model's concurrent writers: a checkpoint persisted the
    /// tiles of records that other threads appended after its sync, so a power cut could leave
    /// `tiles/state` vouching for records that never reached the disk, which the next open takes
    /// as evidence of records lost. Every `tiles/state` the store writes must cover only records
    /// already durable when it is written.
    @Test func theTilesACheckpointWritesCoverOnlyDurableRecords() throws {
        try withStore(segmentSize: 1 << 20) { _, path in
            final class Watch: @unchecked Sendable {
                let lock = NSLock()
                var store: Store?
                var states = 0
                var violations: [String] = []
            }
            let watch = Watch()
            let fs = FaultyFileSystem()
            fs.onWrite.withLock {
                $0 = { path, bytes in
                    guard path.hasSuffix("/tiles/state.tmp") else { return }
                    let fields = String(decoding: bytes, as: UTF8.self).split(separator: " ")
                    watch.lock.withLock {
                        guard let store = watch.store, fields.count > 2, let size = UInt64(fields[2]) else { return }
                        watch.states += 1
                        let durable = store.durableRecordCount
                        if size > durable { watch.violations.append("tiles/state of \(size) records written with \(durable) durable") }
                    }
                }
            }
            let signer = try NoteSigner.generate(name: "stele.test/log")
            var options = Store.Options(commitPolicy: .none)
            options.fileSystem = fs
            let store = try Store(path: path, options: options)
            watch.lock.withLock { watch.store = store }
            try store.append(testEntry(0))
            let writing = DispatchGroup()
            DispatchQueue.global().async(group: writing) {
                for round in 1 ..< 400 { _ = try? store.append(contentsOf: (0 ..< 20).map { testEntry(round * 20 + $0, valueLength: 30) }) }
            }
            for _ in 0 ..< 60 { try store.checkpoint(signer: signer) }
            writing.wait()
            watch.lock.withLock { watch.store = nil }
            try store.close()
            #expect(watch.states >= 60)
            #expect(watch.violations.isEmpty, "\(watch.violations.count) of \(watch.states): \(watch.violations.prefix(3))")
        }
    }

    @Test func verifyingAgainstExternalCheckpoints() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let signer = try NoteSigner.generate(name: "example.com/orders")
        let origin = "example.com/orders"
        func makeStore(_ name: String, records: Range<Int>, valueLength: Int = 30) throws -> Store {
            try Store.create(at: dir.child(name), segmentSize: 64 * 1024, origin: origin)
            let store = try Store(path: dir.child(name))
            try store.append(contentsOf: records.map { testEntry($0, valueLength: valueLength) })
            return store
        }
        let a = try makeStore("a", records: 0 ..< 1000)
        let note = try a.checkpoint(signer: signer)
        try a.append(contentsOf: (1000 ..< 1500).map { testEntry($0, valueLength: 30) })
        // The store extends its checkpoint.
        #expect(try a.verify(checkpoint: note, verifier: signer.verifier).checkpoint.treeSize == firstRecord + 1000)
        // Edited body, unknown key, other origin.
        let edited = note.replacingOccurrences(of: "\n1001\n", with: "\n999\n")
        #expect(throws: SteleError.checkpoint(.badSignature(key: origin))) { try a.verify(checkpoint: edited, verifier: signer.verifier) }
        let stranger = try NoteSigner.generate(name: origin)
        #expect(throws: SteleError.checkpoint(.noTrustedSignature(key: origin))) { try a.verify(checkpoint: note, verifier: stranger.verifier) }
        let foreign = try SignedNote.sign(Checkpoint(origin: "elsewhere/log", treeSize: 10, root: .zero).text, with: signer)
        #expect(throws: SteleError.checkpoint(.wrongOrigin(expected: origin, found: "elsewhere/log"))) {
            try a.verify(checkpoint: foreign, verifier: signer.verifier)
        }
        #expect(throws: SteleError.checkpoint(.malformedNote("no blank line before the signatures"))) {
            try a.verify(checkpoint: "not a note", verifier: signer.verifier)
        }

        // A store that lost its tail, and one whose history was rewritten.
        let truncated = try makeStore("b", records: 0 ..< 600)
        #expect(throws: SteleError.checkpoint(.storeBehindCheckpoint(checkpointSize: firstRecord + 1000, storeSize: firstRecord + 600))) {
            try truncated.verify(checkpoint: note, verifier: signer.verifier)
        }
        let rewritten = try makeStore("c", records: 0 ..< 1200, valueLength: 31)
        #expect {
            try rewritten.verify(checkpoint: note, verifier: signer.verifier)
        } throws: { error in
            guard case SteleError.checkpoint(.rootMismatch(let size, _, _)) = error else { return false }
            return size == firstRecord + 1000
        }
        // The rewritten store refuses to sign over the other store's latest checkpoint.
        try writeFile(dir.child("c") + "/checkpoints/checkpoint", Array(note.utf8))
        #expect {
            try rewritten.checkpoint(signer: signer)
        } throws: { error in
            guard case SteleError.checkpoint(.inconsistentWithPrevious(let size, _)) = error else { return false }
            return size == firstRecord + 1000
        }
        for store in [a, truncated, rewritten] { try store.close() }
    }

    @Test func getVerifiedProvesAVersionAgainstACheckpoint() throws {
        try withStore { _, path in
            let signer = try NoteSigner.generate(name: "verified.test/log")
            let store = try Store(path: path)
            for i in 0 ..< 300 { try store.put(namespace: "m", key: "k\(i % 40)", value: "v\(i)") }
            let checkpoint = try store.verify(checkpoint: try store.checkpoint(signer: signer), verifier: signer.verifier).checkpoint
            try store.put(namespace: "m", key: "k7", value: "after the checkpoint")
            let verified = try #require(try store.getVerified(namespace: "m", key: Array("k7".utf8), checkpoint: checkpoint))
            #expect(verified.version.value == Array("v287".utf8), "as of the checkpoint's tree size")
            #expect(verified.isValid)
            var forged = verified
            forged.version.value = Array("v999".utf8)
            #expect(!forged.isValid, "a changed value no longer matches its leaf")
            #expect(try store.getVerified(namespace: "m", key: Array("nope".utf8), checkpoint: checkpoint) == nil)
            try store.close()
        }
    }

    @Test func aCheckpointIsSignedAtEverySeal() throws {
        try withStore { _, path in
            let signer = try NoteSigner.generate(name: "seal.test/log")
            let store = try Store(path: path, options: .init(checkpointSigner: signer))
            for i in 0 ..< 900 { try store.append(testEntry(i)) }
            let sealed = try store.stats().sealedSegments
            #expect(sealed >= 3)
            let history = try FileManager.default.contentsOfDirectory(atPath: path + "/checkpoints/history")
            #expect(history.count == sealed)
            let latest = try #require(try store.latestCheckpoint())
            let checkpoint = try store.verify(checkpoint: latest, verifier: signer.verifier).checkpoint
            #expect(checkpoint.treeSize < 900 && checkpoint.treeSize > 0)
            try store.close()
        }
    }
    /// A writer signing on a timer (a standby's recovery point) must not add a file per
    /// checkpoint: inside the active segment each published checkpoint gives way to the next,
    /// while every sealed segment keeps its newest checkpoint at or before its end, and a
    /// cosigned or unpublished one stays.
    @Test func checkpointsInsideTheActiveSegmentGiveWayToTheNext() throws {
        try withStore { _, path in
            let signer = try NoteSigner.generate(name: "timer.test/log")
            let store = try Store(path: path)
            func historySizes() throws -> [UInt64] {
                try FileManager.default.contentsOfDirectory(atPath: path + "/checkpoints/history").compactMap { UInt64($0) }.sorted()
            }
            func size(_ note: String) throws -> UInt64 { try Checkpoint(parsing: SignedNote.split(note).text).treeSize }
            var signed: [String] = []
            for round in 0 ..< 5 {
                try store.append(contentsOf: (round * 10 ..< round * 10 + 10).map { testEntry($0) })
                signed.append(try store.checkpoint(signer: signer))
            }
            #expect(try historySizes() == [try size(signed[4])], "only the newest of the active segment")
            try store.seal()
            let sealedEnd = try size(signed[4])
            try store.append(contentsOf: (50 ..< 60).map { testEntry($0) })
            let afterSeal = try store.checkpoint(signer: signer)
            #expect(try historySizes() == [sealedEnd, try size(afterSeal)], "the sealed segment keeps its newest")

            // Cosigned: stays when the next one is published. Unpublished: stays.
            try store.append(contentsOf: (60 ..< 70).map { testEntry($0) })
            let witnessed = try store.signUnpublishedCheckpoint(signer: signer)
            let line = "\u{2014} witness.example/w1 " + Data(repeating: 7, count: 72).base64EncodedString() + "\n"
            try store.publishCheckpoint(witnessed, cosignatures: [line])
            #expect(try historySizes() == [sealedEnd, try size(witnessed)], "publishing retires the one before")
            try store.append(contentsOf: (70 ..< 80).map { testEntry($0) })
            let unpublished = try store.signUnpublishedCheckpoint(signer: signer)
            try store.append(contentsOf: (80 ..< 90).map { testEntry($0) })
            let last = try store.checkpoint(signer: signer)
            #expect(try historySizes() == [sealedEnd, try size(witnessed), try size(unpublished), try size(last)])
            try store.close()

            // What stays verifies, and fsck finds nothing wrong with the thinned history.
            let report = try Fsck.check(path: path)
            #expect(report.problems.isEmpty && report.exitCode == 0, "\(report.problems)")
            let reader = try Store(path: path, options: .init(readOnly: true))
            defer { try? reader.close() }
            for note in [signed[0], signed[2], afterSeal, last] {
                #expect(try reader.verify(checkpoint: note, verifier: signer.verifier).checkpoint.treeSize == size(note))
            }
        }
    }
}
