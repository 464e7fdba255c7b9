import Foundation
import Testing
@testable import Stele
import SteleNative

/// Encrypted records (issue 20): key and value blobs under a namespace's data key, the frame's
/// `ENCRYPTED` flag, and leaves over what is stored.
@Suite struct EncryptedFrameTests {
    static let namespace = Array("acme/orders".utf8)
    static let key = Array("order-1001".utf8)
    static let value = Array(#"{"total":4200,"card":"4111 1111 1111 1111"}"#.utf8)

    static func cipher(_ fill: UInt8 = 3, generation: UInt32 = 1) throws -> RecordCipher {
        try #require(RecordCipher(dataKey: [UInt8](repeating: fill, count: 32), generation: generation))
    }

    @Test func blobsOpenOnlyForTheirOwnRecordAndKey() throws {
        let cipher = try Self.cipher()
        let sealed = try #require(cipher.seal(type: .put, sequence: 7, timestamp: 1_000, namespace: Self.namespace, compressed: false,
                                              key: Self.key, storedValue: Self.value, valueLength: Self.value.count))
        #expect(sealed.key.count == Self.key.count + RecordCipher.keyBlobOverhead)
        #expect(sealed.value.count == Self.value.count + RecordCipher.valueBlobOverhead)
        #expect(RecordCipher.generation(ofKeyBlob: sealed.key) == 1)
        #expect(cipher.openKey(sealed.key, type: .put, sequence: 7, timestamp: 1_000, namespace: Self.namespace) == Self.key)
        let opened = cipher.openValue(sealed.value, keyBlob: sealed.key, type: .put, sequence: 7, timestamp: 1_000,
                                      namespace: Self.namespace, compressed: false)
        #expect(opened?.stored == Self.value && opened?.valueLength == Self.value.count)

        // Bound to the record: another sequence, time, namespace, type, compression flag.
        #expect(cipher.openKey(sealed.key, type: .put, sequence: 8, timestamp: 1_000, namespace: Self.namespace) == nil)
        #expect(cipher.openKey(sealed.key, type: .put, sequence: 7, timestamp: 1_001, namespace: Self.namespace) == nil)
        #expect(cipher.openKey(sealed.key, type: .put, sequence: 7, timestamp: 1_000, namespace: Array("acme/other".utf8)) == nil)
        #expect(cipher.openKey(sealed.key, type: .tombstone, sequence: 7, timestamp: 1_000, namespace: Self.namespace) == nil)
        #expect(cipher.openValue(sealed.value, keyBlob: sealed.key, type: .put, sequence: 7, timestamp: 1_000,
                                 namespace: Self.namespace, compressed: true) == nil)
        // Another record's value blob, or another data key (or generation), does not open.
        let other = try #require(cipher.seal(type: .put, sequence: 7, timestamp: 1_000, namespace: Self.namespace, compressed: false,
                                             key: Self.key, storedValue: Self.value, valueLength: Self.value.count))
        #expect(other.key != sealed.key && other.value != sealed.value, "a fresh nonce for every encryption")
        #expect(cipher.openValue(other.value, keyBlob: sealed.key, type: .put, sequence: 7, timestamp: 1_000,
                                 namespace: Self.namespace, compressed: false) == nil)
        #expect(try Self.cipher(4).openKey(sealed.key, type: .put, sequence: 7, timestamp: 1_000, namespace: Self.namespace) == nil)
        #expect(try Self.cipher(generation: 2).openKey(sealed.key, type: .put, sequence: 7, timestamp: 1_000, namespace: Self.namespace) == nil)
        // A put of an empty value still has a value blob (its tag proves it empty); a tombstone has none.
        let empty = try #require(cipher.seal(type: .put, sequence: 8, timestamp: 2_000, namespace: Self.namespace, compressed: false,
                                             key: Self.key, storedValue: [], valueLength: 0))
        #expect(empty.value.count == RecordCipher.valueBlobOverhead)
        #expect(cipher.openValue([], keyBlob: empty.key, type: .put, sequence: 8, timestamp: 2_000, namespace: Self.namespace, compressed: false) == nil)
        let tombstone = try #require(cipher.seal(type: .tombstone, sequence: 9, timestamp: 2_000, namespace: Self.namespace, compressed: false,
                                                 key: Self.key, storedValue: [], valueLength: 0))
        #expect(tombstone.value.isEmpty)
        #expect(cipher.openValue(tombstone.value, keyBlob: tombstone.key, type: .tombstone, sequence: 9, timestamp: 2_000,
                                 namespace: Self.namespace, compressed: false)?.stored == [])
    }

    @Test func compressedValuesAreEncryptedAfterCompression() throws {
        let cipher = try Self.cipher()
        let long = [UInt8](repeating: 0x61, count: 10_000)
        let block = try #require(long.withUnsafeBytes { LZ4.compressIfWorthIt($0) })
        let sealed = try #require(cipher.seal(type: .put, sequence: 1, timestamp: 1, namespace: Self.namespace, compressed: true,
                                              key: Self.key, storedValue: block, valueLength: long.count))
        #expect(sealed.value.count == block.count + RecordCipher.valueBlobOverhead)
        let opened = try #require(cipher.openValue(sealed.value, keyBlob: sealed.key, type: .put, sequence: 1, timestamp: 1,
                                                   namespace: Self.namespace, compressed: true))
        #expect(opened.valueLength == long.count)
        #expect(ByteView.of(opened.stored) { LZ4.decompress($0, originalLength: opened.valueLength) } == long)
    }

    /// The frame holds no plaintext key or value; its leaf is the canonical hash of the blobs
    /// as stored, computed without any key; redaction keeps the flag.
    @Test func encryptedFramesDecodeAndHashWhatIsStored() throws {
        let cipher = try Self.cipher()
        let sealed = try #require(cipher.seal(type: .put, sequence: 42, timestamp: 5, namespace: Self.namespace, compressed: false,
                                              key: Self.key, storedValue: Self.value, valueLength: Self.value.count))
        let bytes = EncodingTests.encodeFrame(flags: Frame.flagEncrypted, sequence: 42, timestamp: 5, namespace: Self.namespace,
                                              key: sealed.key, stored: sealed.value, valueLength: sealed.value.count)
        #expect(!KeyringTests.contains(bytes, Self.key) && !KeyringTests.contains(bytes, Array(Self.value.prefix(12))))
        // Version 2 canonical bytes, built here from format.md: version, type, the flags, then as version 1.
        var canonical: [UInt8] = [2, RecordType.put.rawValue, Frame.flagEncrypted]
        canonical += [42, 0, 0, 0, 0, 0, 0, 0] + [5, 0, 0, 0, 0, 0, 0, 0] + [UInt8(Self.namespace.count), 0] + Self.namespace
        canonical += [UInt8(sealed.key.count), 0] + sealed.key
        canonical += [UInt8(sealed.value.count), 0, 0, 0] + sealed.value
        #expect(canonical == CanonicalEntry.encryptedBytes(type: .put, flags: Frame.flagEncrypted, sequence: 42, timestamp: 5,
                                                           namespace: Self.namespace, keyBlob: sealed.key, valueBlob: sealed.value))
        let expectedLeaf = Digest(bytes: sha256([0] + canonical))
        try ByteView.of(bytes) { view in
            let frame = try Frame.decode(view, at: 0, limit: view.count).get()
            #expect(frame.isEncrypted && !frame.isCompressed)
            #expect(frame.leafHash(in: view) == expectedLeaf)
            #expect(frame.value(in: view) == sealed.value, "the blob as stored; RecordCipher opens it")
        }
        // The flag is in the leaf: the same bytes without it (a root operator clearing bit 2 and
        // fixing the checksum, to have the blob served as a plaintext value) hash to another leaf.
        let cleared = EncodingTests.encodeFrame(sequence: 42, timestamp: 5, namespace: Self.namespace,
                                                key: sealed.key, stored: sealed.value, valueLength: sealed.value.count)
        try ByteView.of(cleared) { view in
            let frame = try Frame.decode(view, at: 0, limit: view.count).get()
            #expect(frame.leafHash(in: view) != expectedLeaf)
        }
        // A redaction stub of an encrypted record keeps the flag and the key blob.
        let stub = EncodingTests.encodeFrame(flags: Frame.flagEncrypted | Frame.flagRedacted, sequence: 42, timestamp: 5, namespace: Self.namespace,
                                             key: sealed.key, stored: expectedLeaf?.bytes ?? [], valueLength: sealed.value.count)
        try ByteView.of(stub) { view in
            let frame = try Frame.decode(view, at: 0, limit: view.count).get()
            #expect(frame.isEncrypted && frame.isRedacted && frame.leafHash(in: view) == expectedLeaf)
        }
    }

    @Test func malformedEncryptedFramesAreRejected() throws {
        let blob = [UInt8](repeating: 9, count: RecordCipher.keyBlobOverhead + 3)
        let valueBlob = [UInt8](repeating: 5, count: RecordCipher.valueBlobOverhead)
        func defect(type: RecordType = .put, flags: UInt8 = Frame.flagEncrypted, key: [UInt8] = blob, stored: [UInt8] = valueBlob,
                    valueLength: Int? = nil) -> FrameDefect? {
            let bytes = EncodingTests.encodeFrame(type: type, flags: flags, sequence: 1, timestamp: 1, namespace: Self.namespace,
                                                  key: key, stored: stored, valueLength: valueLength ?? stored.count)
            return ByteView.of(bytes) { view in
                if case .failure(let defect) = Frame.decode(view, at: 0, limit: view.count) { return defect }
                return nil
            }
        }
        #expect(defect() == nil)
        #expect(defect(flags: Frame.flagEncrypted | Frame.flagLZ4) == nil)
        #expect(defect(type: .tombstone, stored: []) == nil)
        #expect(defect(type: .retention) == .unknownFlags(Frame.flagEncrypted), "only puts and tombstones are encrypted")
        #expect(defect(key: Array(blob.prefix(RecordCipher.keyBlobOverhead - 1))) == .lengthsDisagree)
        #expect(defect(valueLength: valueBlob.count + 1) == .lengthsDisagree, "the stored blob is opaque: V = S")
        #expect(defect(stored: Array(valueBlob.dropLast())) == .lengthsDisagree, "a put's value blob is never stripped below its length and tag")
        #expect(defect(type: .tombstone) == .lengthsDisagree, "a tombstone has no value blob")
        #expect(defect(flags: Frame.flagEncrypted | Frame.flagRedacted) == .lengthsDisagree, "a stub holds 32 bytes")
        #expect(defect(flags: Frame.flagEncrypted | Frame.flagRedacted, stored: [UInt8](repeating: 0, count: 32), valueLength: 100) == nil)
        #expect(defect(flags: Frame.flagEncrypted | Frame.flagRedacted | Frame.flagLZ4, stored: [UInt8](repeating: 0, count: 32)) == .unknownFlags(7))
        #expect(defect(flags: 1 << 3) == .unknownFlags(8))
    }
}
