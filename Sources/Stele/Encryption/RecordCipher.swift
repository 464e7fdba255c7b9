import SteleNative
import Synchronization

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
    /// Records sealed under this key, in the log and in batches being written (see ``reserve(_:)``).
    private let sealedRecords = Atomic<UInt64>(0)
    /// How many records one key may seal: 2^31 (two AES-GCM messages per record with random
    /// 96-bit nonces, and NIST SP 800-38D's 2^32 messages per key), lower only in tests.
    package let recordLimit: UInt64
    private let idMAC: HMACSHA256
    /// Seal, under the store's writer lock only: one per lane of a batch sealed on two threads.
    private let writers: [AESGCMContext]
    /// How many threads may seal with one cipher at once (each on its own lane).
    package static let lanes = 2
    /// Opens, for any number of concurrent readers.
    private let readers: AESGCMContextPool

    /// Nil unless `dataKey` is 32 bytes (and libcrypto sets a context up).
    package static let defaultRecordLimit: UInt64 = 1 << 31

    package init?(dataKey: [UInt8], generation: UInt32, recordLimit: UInt64 = RecordCipher.defaultRecordLimit) {
        self.recordLimit = recordLimit
        let writers = (0 ..< Self.lanes).compactMap { _ in AESGCMContext(key: dataKey) }
        guard dataKey.count == AESGCM.keyLength, writers.count == Self.lanes else { return nil }
        self.writers = writers
        readers = AESGCMContextPool(key: dataKey)
        self.generation = generation
        idMAC = HMACSHA256(key: hmacSHA256(key: dataKey, message: Array("stele-key-id 1".utf8)))
    }

    /// Counts `count` records found sealed under this key in the log (at open).
    package func countSealed(_ count: UInt64) {
        sealedRecords.add(count, ordering: .relaxed)
    }

    /// Takes `count` more records out of this key's budget before they are sealed; false, taking
    /// none, if they would pass ``recordLimit``. A batch that then fails keeps its reservation:
    /// the count only ever over-states what the key sealed, never under-states it.
    package func reserve(_ count: UInt64) -> Bool {
        var current = sealedRecords.load(ordering: .relaxed)
        while true {
            let (next, overflow) = current.addingReportingOverflow(count)
            guard !overflow, next <= recordLimit else { return false }
            let (exchanged, original) = sealedRecords.compareExchange(expected: current, desired: next, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
    }

    /// Gives back a reservation of a batch refused before any of it was sealed.
    package func release(_ count: UInt64) {
        sealedRecords.subtract(count, ordering: .relaxed)
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
        let lengths = Self.blobLengths(type: type, key: key.count, stored: storedValue.count)
        var keyBlob = [UInt8](repeating: 0, count: lengths.key), valueBlob = [UInt8](repeating: 0, count: lengths.value)
        var aad: [UInt8] = []
        let sealed = namespace.withUnsafeBytes { namespace in
            key.withUnsafeBytes { key in
                storedValue.withUnsafeBytes { stored in
                    nonce.withUnsafeBytes { nonce in
                        keyBlob.withUnsafeMutableBytes { keyOut in
                            valueBlob.withUnsafeMutableBytes { valueOut in
                                seal(type: type, sequence: sequence, timestamp: timestamp, namespace: namespace, compressed: compressed,
                                     key: key, storedValue: stored, valueLength: valueLength, nonce: nonce, keyBlob: keyOut,
                                     valueBlob: valueOut, aad: &aad, lane: lane)
                            }
                        }
                    }
                }
            }
        }
        return sealed ? (keyBlob, valueBlob) : nil
    }

    /// The lengths of a record's key blob and value blob (0 for a tombstone's).
    package static func blobLengths(type: RecordType, key: Int, stored: Int) -> (key: Int, value: Int) {
        (keyBlobOverhead + key, type == .tombstone ? 0 : valueBlobOverhead + stored)
    }

    /// Seals one record in place (see ``Sealer/seal(type:sequence:timestamp:namespace:compressed:key:storedValue:valueLength:nonce:keyBlob:valueBlob:aad:)``)
    /// with the sealing context `lane`.
    package func seal(type: RecordType, sequence: UInt64, timestamp: Int64, namespace: UnsafeRawBufferPointer, compressed: Bool,
                      key: UnsafeRawBufferPointer, storedValue: UnsafeRawBufferPointer, valueLength: Int, nonce: UnsafeRawBufferPointer,
                      keyBlob: UnsafeMutableRawBufferPointer, valueBlob: UnsafeMutableRawBufferPointer, aad: inout [UInt8],
                      lane: Int) -> Bool {
        sealer(lane: lane)?.seal(type: type, sequence: sequence, timestamp: timestamp, namespace: namespace, compressed: compressed,
                                 key: key, storedValue: storedValue, valueLength: valueLength, nonce: nonce, keyBlob: keyBlob,
                                 valueBlob: valueBlob, aad: &aad) ?? false
    }

    /// What one thread seals records with: the context of `lane` and copies of the key id's
    /// precomputed state; nil for a lane that is not one.
    package func sealer(lane: Int) -> Sealer? {
        guard (0 ..< Self.lanes).contains(lane) else { return nil }
        return Sealer(context: writers[lane], idMAC: idMAC, generation: generation)
    }

    /// Seals records on one thread (a lane of ``RecordCipher``), taken once for a run of records.
    /// Why a value of its own: two threads sealing at once would otherwise both count references
    /// to the one cipher (and to shared arrays) on every record, and an atomic count that two cores
    /// write in turn costs more than the sealing of a small record.
    package struct Sealer {
        let context: AESGCMContext
        let idMAC: HMACSHA256
        let generation: UInt32

        /// Seals one record in place: its key blob into `keyBlob` and its value blob into
        /// `valueBlob`, each exactly ``RecordCipher/blobLengths(type:key:stored:)`` long; false if
        /// they are not or libcrypto fails. `aad` is scratch space, reused from record to record.
        /// Under the store's writer lock only, on this sealer's thread.
        package func seal(type: RecordType, sequence: UInt64, timestamp: Int64, namespace: UnsafeRawBufferPointer, compressed: Bool,
                          key: UnsafeRawBufferPointer, storedValue: UnsafeRawBufferPointer, valueLength: Int, nonce: UnsafeRawBufferPointer,
                          keyBlob: UnsafeMutableRawBufferPointer, valueBlob: UnsafeMutableRawBufferPointer, aad: inout [UInt8]) -> Bool {
            let lengths = RecordCipher.blobLengths(type: type, key: key.count, stored: storedValue.count)
            guard keyBlob.count == lengths.key, valueBlob.count == lengths.value, nonce.count == AESGCM.nonceLength,
                  let valueLength = UInt32(exactly: valueLength) else { return false }
            let nonceStart = 4 + RecordCipher.keyIDLength, sealedStart = nonceStart + AESGCM.nonceLength
            guard withUnsafeBytes(of: generation.littleEndian, { keyBlob.copy($0) }), keyBlob.copy(nonce, at: nonceStart) else { return false }
            let id = UnsafeMutableRawBufferPointer(rebasing: keyBlob[4 ..< nonceStart])
            idMAC.mac(key, into: id)
            aad.removeAll(keepingCapacity: true)
            RecordCipher.appendKeyAAD(type, sequence, timestamp, namespace, UnsafeRawBufferPointer(id), to: &aad)
            let none = UnsafeRawBufferPointer(start: nil, count: 0)
            guard aad.withUnsafeBytes({ context.seal(prefix: none, body: key, nonce: nonce, aad: $0,
                                                     into: UnsafeMutableRawBufferPointer(rebasing: keyBlob[sealedStart...])) }) else { return false }
            guard type != .tombstone else { return true }
            aad.removeAll(keepingCapacity: true)
            RecordCipher.appendValueAAD(type, sequence, timestamp, namespace, compressed, to: &aad)
            var valueNonce: (UInt64, UInt32) = (0, 0)
            return withUnsafeMutableBytes(of: &valueNonce) { valueNonce in
                guard valueNonce.copy(nonce) else { return false }
                valueNonce[0] ^= 0x01
                return withUnsafeBytes(of: valueLength.littleEndian) { prefix in
                    aad.withUnsafeBytes { context.seal(prefix: prefix, body: storedValue, nonce: UnsafeRawBufferPointer(valueNonce), aad: $0, into: valueBlob) }
                }
            }
        }
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
        Array(blob).withUnsafeBytes { blob in
            Array(keyBlob).withUnsafeBytes { keyBlob in
                namespace.withUnsafeBytes { namespace in
                    openValue(blob, keyBlob: keyBlob, type: type, sequence: sequence, timestamp: timestamp, namespace: namespace,
                              compressed: compressed)
                }
            }
        }
    }

    /// ``openValue(_:keyBlob:type:sequence:timestamp:namespace:compressed:)`` from the bytes in
    /// place (a mapped frame's): the value is opened straight into the array returned.
    package func openValue(_ blob: UnsafeRawBufferPointer, keyBlob: UnsafeRawBufferPointer, type: RecordType, sequence: UInt64,
                           timestamp: Int64, namespace: UnsafeRawBufferPointer, compressed: Bool) -> (stored: [UInt8], valueLength: Int)? {
        guard keyBlob.count >= Self.keyBlobOverhead else { return nil }
        if type == .tombstone { return blob.isEmpty ? ([], 0) : nil }
        guard blob.count >= Self.valueBlobOverhead else { return nil }
        let nonceStart = 4 + Self.keyIDLength
        var nonce: (UInt64, UInt32) = (0, 0)
        withUnsafeMutableBytes(of: &nonce) { nonce in
            nonce.copy(UnsafeRawBufferPointer(rebasing: keyBlob[nonceStart ..< nonceStart + AESGCM.nonceLength]))
            nonce[0] ^= 0x01  // the value blob's nonce (see the type's comment)
        }
        var aad: [UInt8] = []
        Self.appendValueAAD(type, sequence, timestamp, namespace, compressed, to: &aad)
        var length: UInt32 = 0
        var opened = false
        let stored = [UInt8](unsafeUninitializedCapacity: blob.count - Self.valueBlobOverhead) { buffer, initialized in
            opened = readers.withContext { context in
                withUnsafeBytes(of: nonce) { nonce in
                    aad.withUnsafeBytes { aad in
                        withUnsafeMutableBytes(of: &length) { prefix in
                            context.open(blob, nonce: nonce, aad: aad, prefixInto: prefix, bodyInto: UnsafeMutableRawBufferPointer(buffer))
                        }
                    }
                }
            } ?? false
            initialized = opened ? buffer.count : 0
        }
        return opened ? (stored, Int(UInt32(littleEndian: length))) : nil
    }

    private static func keyAAD(_ type: RecordType, _ sequence: UInt64, _ timestamp: Int64, _ namespace: [UInt8], _ id: [UInt8]) -> [UInt8] {
        var aad: [UInt8] = []
        namespace.withUnsafeBytes { namespace in
            id.withUnsafeBytes { appendKeyAAD(type, sequence, timestamp, namespace, $0, to: &aad) }
        }
        return aad
    }

    fileprivate static func appendKeyAAD(_ type: RecordType, _ sequence: UInt64, _ timestamp: Int64, _ namespace: UnsafeRawBufferPointer,
                                     _ id: UnsafeRawBufferPointer, to aad: inout [UInt8]) {
        aad.reserveCapacity(aad.count + 20 + 20 + namespace.count + id.count)
        appendLabel("stele-record-key 1", to: &aad)
        aad.append(type.rawValue)
        appendFields(sequence, timestamp, namespace, to: &aad)
        aad.append(contentsOf: id)
    }

    fileprivate static func appendValueAAD(_ type: RecordType, _ sequence: UInt64, _ timestamp: Int64, _ namespace: UnsafeRawBufferPointer,
                                       _ compressed: Bool, to aad: inout [UInt8]) {
        aad.reserveCapacity(aad.count + 22 + 21 + namespace.count)
        appendLabel("stele-record-value 1", to: &aad)
        aad.append(type.rawValue)
        aad.append(compressed ? 1 : 0)
        appendFields(sequence, timestamp, namespace, to: &aad)
    }

    /// Sequence number, timestamp (little-endian) and the namespace with its u16 length.
    @inline(__always)
    private static func appendFields(_ sequence: UInt64, _ timestamp: Int64, _ namespace: UnsafeRawBufferPointer, to aad: inout [UInt8]) {
        withUnsafeBytes(of: sequence.littleEndian) { aad.append(contentsOf: $0) }
        withUnsafeBytes(of: timestamp.littleEndian) { aad.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt16(truncatingIfNeeded: namespace.count).littleEndian) { aad.append(contentsOf: $0) }
        aad.append(contentsOf: namespace)
    }

    /// A label and its terminating zero (a static string: no array shared between threads).
    @inline(__always)
    private static func appendLabel(_ label: StaticString, to aad: inout [UInt8]) {
        label.withUTF8Buffer { aad.append(contentsOf: $0) }
        aad.append(0)
    }
}
