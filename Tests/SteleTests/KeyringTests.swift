import Foundation
import Testing
@testable import Stele
import SteleNative

/// The pieces of encryption at rest that exist so far (issue 20): AES-256-GCM, the master key
/// file and the keyring of wrapped per-namespace data keys.
@Suite struct KeyringTests {
    static func bytes(_ hex: String) -> [UInt8] {
        var out: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            out.append(UInt8(hex[index ..< next], radix: 16) ?? 0)
            index = next
        }
        return out
    }

    /// HMAC-SHA256 from precomputed key blocks (the key id's MAC) against RFC 4231's test cases
    /// 2 and 6 (a key longer than a block), and against libcrypto's one-shot HMAC for keys and
    /// messages of every length around the block size.
    @Test func hmacMatchesRFC4231AndLibcrypto() {
        #expect(hexString(HMACSHA256(key: Array("Jefe".utf8)).mac(Array("what do ya want for nothing?".utf8)))
            == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        #expect(hexString(HMACSHA256(key: [UInt8](repeating: 0xaa, count: 131)).mac(Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8)))
            == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
        for keyLength in [0, 1, 31, 32, 63, 64, 65, 200] {
            let key = (0 ..< keyLength).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
            let mac = HMACSHA256(key: key)
            for messageLength in [0, 1, 55, 56, 63, 64, 65, 1000] {
                let message = (0 ..< messageLength).map { UInt8(truncatingIfNeeded: $0 &* 13) }
                #expect(mac.mac(message) == hmacSHA256(key: key, message: message), "key \(keyLength) B, message \(messageLength) B")
            }
        }
    }

    /// A reused context seals and opens as a fresh one does (the spec vectors above), message
    /// after message, and refuses an altered one without breaking the next.
    @Test func aReusedContextMatchesAFreshOne() throws {
        let key = Self.bytes("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
        let context = try #require(AESGCMContext(key: key)), fresh = try #require(AESGCM(key: key))
        for n in 0 ..< 20 {
            let nonce = (0 ..< 12).map { UInt8(truncatingIfNeeded: $0 &+ n) }, aad = Array("aad \(n)".utf8)
            let plaintext = (0 ..< n * 9).map { UInt8(truncatingIfNeeded: $0 &* n) }
            var sealed: [UInt8] = [9, 9]
            #expect(context.seal(plaintext, nonce: nonce, aad: aad, appendingTo: &sealed))
            #expect(Array(sealed.dropFirst(2)) == fresh.seal(plaintext, nonce: nonce, aad: aad))
            #expect(context.open(sealed, 2 ..< sealed.count, nonce: nonce, aad: aad) == plaintext)
            sealed[sealed.count - 1] ^= 1
            #expect(context.open(sealed, 2 ..< sealed.count, nonce: nonce, aad: aad) == nil)
        }
    }

    /// AES-256 test cases 13-16 of McGrew and Viega, "The Galois/Counter Mode of Operation
    /// (GCM)" (2005), Appendix B, the vectors NIST SP 800-38D refers to.
    @Test(arguments: [
        ("0000000000000000000000000000000000000000000000000000000000000000", "000000000000000000000000", "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"),
        ("0000000000000000000000000000000000000000000000000000000000000000", "000000000000000000000000", "",
         "00000000000000000000000000000000", "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919"),
        ("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888", "",
         "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
         "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
         "b094dac5d93471bdec1a502270e3cc6c"),
        ("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888", "feedfacedeadbeeffeedfacedeadbeefabaddad2",
         "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
         "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
         "76fc6ece0f4e1768cddf8853bb2d551b"),
    ])
    func aesGCMMatchesTheSpecVectors(_ vector: (key: String, nonce: String, aad: String, plaintext: String, ciphertext: String, tag: String)) throws {
        let gcm = try #require(AESGCM(key: Self.bytes(vector.key)))
        let nonce = Self.bytes(vector.nonce), aad = Self.bytes(vector.aad)
        let sealed = try #require(gcm.seal(Self.bytes(vector.plaintext), nonce: nonce, aad: aad))
        #expect(hexString(sealed) == vector.ciphertext + vector.tag)
        #expect(gcm.open(sealed, nonce: nonce, aad: aad) == Self.bytes(vector.plaintext))
        // Any change is refused: a bit of the ciphertext or tag, the additional data, the key.
        for position in [0, sealed.count - 1] {
            var altered = sealed
            altered[position] ^= 0x01
            #expect(gcm.open(altered, nonce: nonce, aad: aad) == nil)
        }
        #expect(gcm.open(sealed, nonce: nonce, aad: aad + [0]) == nil)
        var otherKey = Self.bytes(vector.key)
        otherKey[0] ^= 0x80
        #expect(AESGCM(key: otherKey)?.open(sealed, nonce: nonce, aad: aad) == nil)
    }

    @Test func masterKeyFilesRoundTripAndBadOnesAreNamed() throws {
        let key = try EncryptionKey.generate()
        #expect(try EncryptionKey(parsing: key.encoded) == key)
        #expect(key.fingerprint.count == 16 && key.encoded.hasPrefix("stele-encryption-key 1 \(key.fingerprint) "))
        #expect(try EncryptionKey.generate() != key)
        // Printed, logged or dumped, a key shows its fingerprint only.
        var dumped = ""
        dump(key, to: &dumped)
        for text in ["\(key)", String(reflecting: key), dumped] {
            #expect(text.contains(key.fingerprint) && !text.contains(Base64.encode(key.bytes)) && !text.contains("\(key.bytes)"), "\(text)")
        }
        let fields = key.encoded.split(separator: " ")
        for bad in ["", "stele-encryption-key 2 \(fields[2]) \(fields[3])", "stele-encryption-key 1 0000000000000000 \(fields[3])",
                    "stele-encryption-key 1 \(fields[2]) AAAA", "PRIVATE+KEY+x+00000000+AAAA"] {
            #expect(throws: SteleError.self, "\(bad)") { try EncryptionKey(parsing: bad) }
        }
    }

    static func keyring(_ dir: TemporaryDirectory, storeID: [UInt8] = Array(repeating: 7, count: 16), master: EncryptionKey) throws -> Keyring {
        try Keyring(fs: PosixFileSystem(), path: dir.child("keyring"), storeID: storeID, master: master)
    }

    @Test func dataKeysAreWrappedAndFoundAgainAfterReopening() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let master = try EncryptionKey.generate(), storeID = [UInt8](repeating: 7, count: 16)
        try Keyring.create(fs: PosixFileSystem(), path: dir.child("keyring"), directory: dir.path, storeID: storeID, master: master)
        let ring = try Self.keyring(dir, master: master)
        #expect(ring.entry(for: "acme") == nil)
        let acme = try ring.addKey(for: "acme"), globex = try ring.addKey(for: "globex")
        let again = try ring.addKey(for: "acme")
        #expect(acme != globex && acme.count == 32 && again == acme)
        let reopened = try Self.keyring(dir, master: master)
        #expect(reopened.entry(for: "acme") == .live(generation: 1, key: acme))
        #expect(reopened.entry(for: "globex") == .live(generation: 1, key: globex))
        // The file holds neither data key in clear.
        let file = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir.child("keyring"))))
        #expect(file.count == Keyring.headerLength + 2 * Keyring.slotLength)
        #expect(!Self.contains(file, acme) && !Self.contains(file, globex))
        #expect(FileManager.default.isReadableFile(atPath: dir.child("keyring")))
        let mode = try FileManager.default.attributesOfItem(atPath: dir.child("keyring"))[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test func aWrongMasterKeyOrAnotherStoreIsRefusedAndChangesNothing() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let master = try EncryptionKey.generate()
        try Keyring.create(fs: PosixFileSystem(), path: dir.child("keyring"), directory: dir.path, storeID: Array(repeating: 7, count: 16), master: master)
        _ = try Self.keyring(dir, master: master).addKey(for: "acme")
        let before = try Data(contentsOf: URL(fileURLWithPath: dir.child("keyring")))
        let wrong = try EncryptionKey.generate()
        #expect(throws: SteleError.encryption(.wrongKey(expected: master.fingerprint, given: wrong.fingerprint))) {
            try Self.keyring(dir, master: wrong)
        }
        #expect { try Self.keyring(dir, storeID: Array(repeating: 8, count: 16), master: master) } throws: { error in
            if case SteleError.encryption(.keyringDamaged(_, let detail)) = error { return detail.contains("another store") }
            return false
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir.child("keyring"))) == before)
        #expect { try Self.keyring(TemporaryDirectory(), master: master) } throws: { error in
            if case SteleError.encryption(.keyringDamaged(_, let detail)) = error { return detail.contains("missing") }
            return false
        }
    }

    /// A shred overwrites the slot in place: the wrapped key's bytes are gone from the file, the
    /// namespace reads as shredded (with when) ever after, and never gets a key again.
    @Test func shreddingOverwritesTheWrappedKeyInPlace() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let master = try EncryptionKey.generate()
        try Keyring.create(fs: PosixFileSystem(), path: dir.child("keyring"), directory: dir.path, storeID: Array(repeating: 7, count: 16), master: master)
        let ring = try Self.keyring(dir, master: master)
        _ = try ring.addKey(for: "acme")
        let globex = try ring.addKey(for: "globex")
        let before = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir.child("keyring"))))
        let wrapped = Array(before[Keyring.headerLength + 40 ..< Keyring.headerLength + 100])  // acme's nonce and wrapped key
        try ring.shred("acme", at: 1_700_000_000_000_000_000)
        let after = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir.child("keyring"))))
        #expect(after.count == before.count, "in place, not a new file")
        #expect(!Self.contains(after, wrapped))
        let reopened = try Self.keyring(dir, master: master)
        #expect(reopened.entry(for: "acme") == .shredded(at: 1_700_000_000_000_000_000))
        #expect(reopened.entry(for: "globex") == .live(generation: 1, key: globex))
        #expect(throws: SteleError.encryption(.shredded(namespace: "acme", at: 1_700_000_000_000_000_000))) { try reopened.addKey(for: "acme") }
    }

    /// A root operator's edits: a flipped byte, and a wrapped key moved into another
    /// namespace's slot with the checksum recomputed. Both are named; neither opens.
    @Test func alteredOrMovedSlotsAreNamedDamaged() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let master = try EncryptionKey.generate()
        let path = dir.child("keyring")
        try Keyring.create(fs: PosixFileSystem(), path: path, directory: dir.path, storeID: Array(repeating: 7, count: 16), master: master)
        let ring = try Self.keyring(dir, master: master)
        _ = try ring.addKey(for: "acme")
        _ = try ring.addKey(for: "globex")
        _ = try ring.addKey(for: "initech")
        let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        func refused(_ file: [UInt8], _ phrase: String) throws {
            try Data(file).write(to: URL(fileURLWithPath: path))
            #expect { try Self.keyring(dir, master: master) } throws: { error in
                if case SteleError.encryption(.keyringDamaged(_, let detail)) = error { return detail.contains(phrase) }
                return false
            }
        }
        var flipped = original
        flipped[Keyring.headerLength + 60] ^= 0x01
        try refused(flipped, "slot 0's checksum")
        var moved = original
        let first = Keyring.headerLength, second = Keyring.headerLength + Keyring.slotLength
        moved.replaceSubrange(second + 40 ..< second + 100, with: original[first + 40 ..< first + 100])
        moved.replaceSubrange(second + 120 ..< second + 128, with: (0 ..< 8).map { UInt8(truncatingIfNeeded: xxh3(Array(moved[second ..< second + 120])) >> (8 * $0)) })
        try refused(moved, "slot 1's key does not open")
        // The last slot damaged is damage too (not taken for a torn append and written over).
        var lastFlipped = original
        lastFlipped[original.count - 20] ^= 0x01
        try refused(lastFlipped, "slot 2's checksum")
        // A shred faked by flipping the state byte over a live key, checksum recomputed.
        var faked = original
        faked[second] = 2
        faked.replaceSubrange(second + 120 ..< second + 128, with: (0 ..< 8).map { UInt8(truncatingIfNeeded: xxh3(Array(faked[second ..< second + 120])) >> (8 * $0)) })
        try refused(faked, "slot 1 is shredded but still holds key bytes")
        // Two slots for one namespace (a copy of a live slot kept beside it, to survive its shred).
        var twice = original
        twice.replaceSubrange(second ..< second + Keyring.slotLength, with: original[first ..< first + Keyring.slotLength])
        try refused(twice, "both belong to one namespace")
        // A torn last slot (a crash before its sync) is ignored: its key was never used.
        try Data(original.prefix(original.count - 50)).write(to: URL(fileURLWithPath: path))
        let torn = try Self.keyring(dir, master: master)
        #expect(torn.entry(for: "initech") == nil && torn.entry(for: "globex") != nil)
        // The next key is written over the partial slot.
        let initech = try torn.addKey(for: "initech")
        #expect(try Self.keyring(dir, master: master).entry(for: "initech") == .live(generation: 1, key: initech))
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)).count == original.count)
    }

    @Test func keygenWritesAnEncryptionKey() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let made = try CLITests.stele(["keygen", "--encryption", "--out", dir.child("master.key")])
        #expect(made.status == 0, "\(made.stderr)")
        let key = try EncryptionKey(parsing: String(decoding: try Data(contentsOf: URL(fileURLWithPath: dir.child("master.key"))), as: UTF8.self))
        #expect(made.stdout == key.fingerprint + "\n")
        let mode = try FileManager.default.attributesOfItem(atPath: dir.child("master.key"))[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(try CLITests.stele(["keygen", "--encryption", "--out", dir.child("master.key")]).status != 0, "never overwrites a key")
        #expect(try CLITests.stele(["keygen", "--encryption", "--name", "x", "--out", dir.child("other.key")]).status != 0)
        #expect(try CLITests.stele(["keygen", "--out", dir.child("nameless")]).status != 0)
    }

    static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard needle.count <= haystack.count else { return false }
        return (0 ... haystack.count - needle.count).contains { Array(haystack[$0 ..< $0 + needle.count]) == needle }
    }
}
