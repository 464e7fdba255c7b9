import SteleNative

/// Encrypts a record's key and value under its namespace's data key (AES-256-GCM), for a frame
/// with the `ENCRYPTED` flag (docs/format.md, "Encrypted records").
///
/// ```
/// key blob   = u32 generation | key id (16) | nonce (12) | GCM(key) | tag (16)   (the frame's key field)
/// value blob = GCM(u32 logical value length | stored form) | tag (16)     (the frame's stored value)
/// ```
/// The stored form is the value raw or as its LZ4 block (the frame's `LZ4` flag says which):
/// compression happens before encryption, since ciphertext does not compress. A tombstone has no
/// value blob; a put always has one, an empty value too (its tag then proves it empty).
///
/// Nonces, and why they never repeat under one key: the key blob's nonce is 12 bytes from
/// libcrypto's CSPRNG, fresh for every record; the value blob's nonce is the same with its
/// first byte's lowest bit flipped. A nonce is therefore random per encryption, never derived
/// from the sequence number: a sequence number can be handed out twice (an append that failed
/// after its bytes reached the mapping is retried at the same number, a torn tail is written
/// over after a crash), and GCM under a repeated nonce gives away the XOR of two plaintexts and
/// its authentication key. With random 96-bit nonces, NIST SP 800-38D bounds one key to 2^32
/// encryptions (two per record: 2^31 records per namespace's key); the key generation (the u32)
/// is there to move a namespace to a new key before that (one generation per namespace so far).
///
/// The key id names the key without revealing it: the first 16 bytes of HMAC-SHA256 under a key
/// derived from the data key (`HMAC(data key, "stele-key-id 1")`) over the key. Versions of one
/// key share it, so retention (locks and holds name it in place of the key), `fsck` and purge
/// decisions work without the master key; without the data key nobody can tell which key it
/// names, and once the data key is shredded nobody ever can.
///
/// The additional data binds each blob to its record: type, sequence number, timestamp and
/// namespace (and for the value, whether it is LZ4): a blob copied into another record, even of
/// the same namespace, does not open.
package final class RecordCipher: Sendable {
    package static let keyIDLength = 16
    package static let keyBlobOverhead = 4 + keyIDLength + AESGCM.nonceLength + AESGCM.tagLength
    package static let valueBlobOverhead = 4 + AESGCM.tagLength

    package let generation: UInt32
    private let idMAC: HMACSHA256
    /// Seal, under the store's writer lock only: one per lane of a batch sealed on two threads.
    private let writers: [AESGCMContext]
    /// How many threads may seal with one cipher at once (each on its own lane).
    package static let lanes = 2
    /// Opens, for any number of concurrent readers.
    private let readers: AESGCMContextPool

    /// Nil unless `dataKey` is 32 bytes (and libcrypto sets a context up).
    package init?(dataKey: [UInt8], generation: UInt32) {
        let writers = (0 ..< Self.lanes).compactMap { _ in AESGCMContext(key: dataKey) }
        guard dataKey.count == AESGCM.keyLength, writers.count == Self.lanes else { return nil }
        self.writers = writers
        readers = AESGCMContextPool(key: dataKey)
        self.generation = generation
        idMAC = HMACSHA256(key: hmacSHA256(key: dataKey, message: Array("stele-key-id 1".utf8)))
    }

    /// The key id of `key` under this data key (see the type's comment).
    package func keyID(_ key: [UInt8]) -> [UInt8] {
        Array(idMAC.mac(key).prefix(Self.keyIDLength))
    }

    /// The key id a key blob carries; nil for a blob too short.
    package static func keyID(ofKeyBlob blob: some Collection<UInt8>) -> [UInt8]? {
        guard blob.count >= keyBlobOverhead else { return nil }
        return Array(blob.dropFirst(4).prefix(keyIDLength))
    }

    /// The generation of the data key a key blob was made with; nil for a blob too short.
    package static func generation(ofKeyBlob blob: some Collection<UInt8>) -> UInt32? {
        guard blob.count >= keyBlobOverhead else { return nil }
        return blob.prefix(4).reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
    }

    /// ``seal(type:sequence:timestamp:namespace:compressed:key:storedValue:valueLength:nonce:)``
    /// with a nonce of its own from libcrypto's generator.
    package func seal(type: RecordType, sequence: UInt64, timestamp: Int64, namespace: [UInt8], compressed: Bool,
                      key: [UInt8], storedValue: [UInt8], valueLength: Int) -> (key: [UInt8], value: [UInt8])? {
        guard let nonce = SecureRandom.bytes(AESGCM.nonceLength) else { return nil }
        return seal(type: type, sequence: sequence, timestamp: timestamp, namespace: namespace, compressed: compressed,
                    key: key, storedValue: storedValue, valueLength: valueLength, nonce: nonce)
    }

    /// The key and value blobs of one record; nil only if libcrypto fails. Under the store's
    /// writer lock only (the sealing context is not shared).
    /// - Parameters:
    ///   - storedValue: the value as the frame would store it unencrypted (raw or LZ4).
    ///   - nonce: 12 bytes from a cryptographic random generator, never used before.
    ///   - lane: which sealing context (0 ..< ``lanes``): threads sealing at once use different lanes.
    package func seal(type: RecordType, sequence: UInt64, timestamp: Int64, namespace: [UInt8], compressed: Bool,
                      key: [UInt8], storedValue: [UInt8], valueLength: Int, nonce: [UInt8], lane: Int = 0) -> (key: [UInt8], value: [UInt8])? {
        let writer = writers[lane]
        let id = keyID(key)
        var keyBlob: [UInt8] = []
        keyBlob.reserveCapacity(Self.keyBlobOverhead + key.count)
        Self.appendLittleEndian(generation, to: &keyBlob)
        keyBlob += id
        keyBlob += nonce
        guard writer.seal(key, nonce: nonce, aad: Self.keyAAD(type, sequence, timestamp, namespace, id), appendingTo: &keyBlob) else { return nil }
        guard type != .tombstone else { return (keyBlob, []) }
        var plaintext: [UInt8] = []
        plaintext.reserveCapacity(4 + storedValue.count)
        Self.appendLittleEndian(UInt32(valueLength), to: &plaintext)
        plaintext += storedValue
        var valueBlob: [UInt8] = []
        valueBlob.reserveCapacity(plaintext.count + AESGCM.tagLength)
        guard writer.seal(plaintext, nonce: Self.valueNonce(nonce), aad: Self.valueAAD(type, sequence, timestamp, namespace, compressed),
                          appendingTo: &valueBlob) else { return nil }
        return (keyBlob, valueBlob)
    }

    /// The plaintext key of a key blob; nil if it does not open (another key, or altered).
    package func openKey(_ blob: some Collection<UInt8>, type: RecordType, sequence: UInt64, timestamp: Int64, namespace: [UInt8]) -> [UInt8]? {
        let blob = Array(blob)
        guard blob.count >= Self.keyBlobOverhead, Self.generation(ofKeyBlob: blob) == generation else { return nil }
        let id = Array(blob[4 ..< 4 + Self.keyIDLength])
        let nonceStart = 4 + Self.keyIDLength
        let nonce = Array(blob[nonceStart ..< nonceStart + AESGCM.nonceLength])
        // The id is in the additional data, and must be this key's: a blob whose id was
        // swapped for another key's (to move a lock or hold) does not open.
        guard let key = readers.withContext({ $0.open(blob, (nonceStart + AESGCM.nonceLength) ..< blob.count, nonce: nonce,
                                                      aad: Self.keyAAD(type, sequence, timestamp, namespace, id)) }),
              keyID(key) == id else { return nil }
        return key
    }

    /// The stored form of the value (raw or LZ4) and its logical length, from the record's key
    /// blob (for the nonce) and value blob; nil if it does not open. A tombstone's empty blob is
    /// an empty value; a put's must open.
    package func openValue(_ blob: some Collection<UInt8>, keyBlob: some Collection<UInt8>, type: RecordType, sequence: UInt64,
                           timestamp: Int64, namespace: [UInt8], compressed: Bool) -> (stored: [UInt8], valueLength: Int)? {
        let keyBlob = Array(keyBlob)
        guard keyBlob.count >= Self.keyBlobOverhead else { return nil }
        if type == .tombstone { return blob.isEmpty ? ([], 0) : nil }
        let nonceStart = 4 + Self.keyIDLength
        let nonce = Array(keyBlob[nonceStart ..< nonceStart + AESGCM.nonceLength])
        let sealed = Array(blob)
        guard let plaintext = readers.withContext({ $0.open(sealed, 0 ..< sealed.count, nonce: Self.valueNonce(nonce),
                                                            aad: Self.valueAAD(type, sequence, timestamp, namespace, compressed)) }),
              plaintext.count >= 4 else { return nil }
        let length = plaintext.prefix(4).reversed().reduce(0) { $0 << 8 | Int($1) }
        return (Array(plaintext[4...]), length)
    }

    private static func valueNonce(_ nonce: [UInt8]) -> [UInt8] {
        var nonce = nonce
        nonce[0] ^= 0x01
        return nonce
    }

    private static func keyAAD(_ type: RecordType, _ sequence: UInt64, _ timestamp: Int64, _ namespace: [UInt8], _ id: [UInt8]) -> [UInt8] {
        var aad: [UInt8] = []
        aad.reserveCapacity(keyAADLabel.count + 20 + namespace.count + id.count)
        aad += keyAADLabel
        aad.append(type.rawValue)
        appendLittleEndian(sequence, to: &aad)
        appendLittleEndian(timestamp, to: &aad)
        appendLittleEndian(UInt16(namespace.count), to: &aad)
        aad += namespace
        aad += id
        return aad
    }

    private static func valueAAD(_ type: RecordType, _ sequence: UInt64, _ timestamp: Int64, _ namespace: [UInt8], _ compressed: Bool) -> [UInt8] {
        var aad: [UInt8] = []
        aad.reserveCapacity(valueAADLabel.count + 21 + namespace.count)
        aad += valueAADLabel
        aad.append(type.rawValue)
        aad.append(compressed ? 1 : 0)
        appendLittleEndian(sequence, to: &aad)
        appendLittleEndian(timestamp, to: &aad)
        appendLittleEndian(UInt16(namespace.count), to: &aad)
        aad += namespace
        return aad
    }

    private static let keyAADLabel = Array("stele-record-key 1".utf8) + [0]
    private static let valueAADLabel = Array("stele-record-value 1".utf8) + [0]

    private static func appendLittleEndian<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        for shift in stride(from: 0, to: T.bitWidth, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> shift)) }
    }
}
