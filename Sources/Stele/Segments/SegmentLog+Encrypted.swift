import SteleNative

/// The write path of an encrypted store: puts and tombstones as ``RecordCipher`` blobs under
/// their namespace's data key (docs/format.md, "Encrypted records").
///
/// Why here, under the store's writer lock: a blob's additional data carries the sequence number
/// and timestamp the record gets, which are known only once the lock is held. Every record of a
/// batch is sealed before the first is written, so that a refusal (a shredded namespace, a
/// keyring that cannot take a new key, libcrypto failing) leaves nothing of the batch in the log.
/// The batch goes through one thread (no ``appendInParallel(_:timestamp:syncFollows:)``).
extension SegmentLog {
    /// One record ready to be written: its blobs and, for the key index, its plaintext key.
    private struct SealedRecord {
        let type: RecordType
        let flags: UInt8
        let namespace: [UInt8]
        let keyBlob: [UInt8]
        let valueBlob: [UInt8]
        let key: [UInt8]
    }

    /// Bytes a frame of an encrypted put or tombstone takes beyond the plain frame of the same
    /// record (the key blob's generation, nonce and tag; a value blob's length and tag).
    static func encryptionOverhead(_ type: RecordType) -> Int {
        switch type {
        case .put: RecordCipher.keyBlobOverhead + RecordCipher.valueBlobOverhead
        case .tombstone: RecordCipher.keyBlobOverhead
        default: 0
        }
    }

    /// The extra bytes of frames that encrypting a batch's puts and tombstones adds.
    func encryptionOverhead<Entries: Collection<Entry>>(packed: PackedBatch?, entries: Entries) -> Int {
        guard encryption != nil else { return 0 }
        var total = entries.reduce(0) { $0 + Self.encryptionOverhead($1.type) }
        packed?.withFields { fields in
            for item in fields.items { total += Self.encryptionOverhead(item.type) }
        }
        return total
    }

    /// Appends a batch of an encrypted store (see the type's comment): `packed`, then `entries`,
    /// then `added` (the store's own records, in clear), with `timestamp`.
    func appendEncrypted<Entries: Collection<Entry>>(_ encryption: LogEncryption, packed: PackedBatch?, entries: Entries,
                                                     compressed: [[UInt8]?]?, added: [Entry], timestamp: Int64) throws -> ClosedRange<UInt64> {
        var plain: [(type: RecordType, namespace: [UInt8], key: [UInt8], stored: [UInt8], compressed: Bool, valueLength: Int)] = []
        packed?.withFields { fields in
            for item in fields.items {
                plain.append((item.type, Array(fields[item.namespace]), Array(fields[item.key]), Array(fields.stored(item)),
                              item.flags & Frame.flagLZ4 != 0, item.value.count))
            }
        }
        for (position, entry) in entries.enumerated() {
            let stored = compressed?[position]
            plain.append((entry.type, entry.namespace, entry.key, stored ?? entry.value, stored != nil, entry.value.count))
        }
        let first = nextSequence
        var records: [SealedRecord] = []
        records.reserveCapacity(plain.count)
        // Every record's nonce is 12 random bytes; drawn for the whole batch in one call (the
        // generator takes a lock per call).
        guard let nonces = SecureRandom.bytes(AESGCM.nonceLength * plain.count) else {
            throw SteleError.encryption(.libcryptoFailed("the random generator failed"))
        }
        var cipher: (namespace: [UInt8], cipher: RecordCipher)?
        for (position, record) in plain.enumerated() {
            guard record.type == .put || record.type == .tombstone else {
                throw SteleError.invalidArgument("only puts and tombstones are encrypted")
            }
            if cipher?.namespace != record.namespace { cipher = (record.namespace, try encryption.cipherForWriting(record.namespace)) }
            let nonce = Array(nonces[position * AESGCM.nonceLength ..< (position + 1) * AESGCM.nonceLength])
            guard let blobs = cipher?.cipher.seal(type: record.type, sequence: first + UInt64(position), timestamp: timestamp,
                                                  namespace: record.namespace, compressed: record.compressed, key: record.key,
                                                  storedValue: record.stored, valueLength: record.valueLength, nonce: nonce) else {
                throw SteleError.encryption(.libcryptoFailed("AES-256-GCM could not encrypt a record"))
            }
            records.append(SealedRecord(type: record.type, flags: Frame.flagEncrypted | (record.compressed ? Frame.flagLZ4 : 0),
                                        namespace: record.namespace, keyBlob: blobs.key, valueBlob: blobs.value, key: record.key))
        }
        var last = first
        for (position, record) in records.enumerated() {
            last = try append(record, timestamp: timestamp)
            // The additional data named this sequence number: a record must get exactly it.
            guard last == first + UInt64(position) else {
                throw SteleError.invalidArgument("an encrypted record was sealed for sequence \(first + UInt64(position)) but got \(last)")
            }
        }
        for entry in added {
            last = try entry.namespace.withUnsafeBytes { namespace in
                try entry.key.withUnsafeBytes { key in
                    try entry.value.withUnsafeBytes { value in
                        try append(type: entry.type, flags: 0, timestamp: timestamp, namespace: namespace, key: key, value: value, stored: value)
                    }
                }
            }
        }
        return first ... last
    }

    /// Appends one sealed record with the next sequence number, rotating segments as needed:
    /// the frame holds the blobs, the leaf covers them (canonical entry version 2), the key index
    /// files the plaintext key.
    private func append(_ record: SealedRecord, timestamp: Int64) throws -> UInt64 {
        let length = Frame.length(namespace: record.namespace.count, key: record.keyBlob.count, stored: record.valueBlob.count)
        if active?.hasRoom(for: length) != true { try rotate() }
        if reachPending { try writeReach(open: true) }
        guard let segment = active, segment.hasRoom(for: length) else {
            throw SteleError.invalidArgument("record of \(length) bytes (encrypted) does not fit in a segment of \(segmentSize) bytes")
        }
        let sequence = nextSequence
        let leaf = ByteView.of(record.namespace) { namespace in
            ByteView.of(record.keyBlob) { keyBlob in
                ByteView.of(record.valueBlob) { valueBlob in
                    CanonicalEntry.encryptedLeafHash(type: record.type, flags: record.flags, sequence: sequence, timestamp: timestamp,
                                                     namespace: namespace, keyBlob: keyBlob, valueBlob: valueBlob)
                }
            }
        }
        let hint = KeyIndex.FrameHint(segment: segment.header.index, offset: segment.writeOffset)
        record.namespace.withUnsafeBytes { namespace in
            record.keyBlob.withUnsafeBytes { keyBlob in
                record.valueBlob.withUnsafeBytes { valueBlob in
                    segment.append(type: record.type, flags: record.flags, sequence: sequence, timestamp: timestamp, namespace: namespace,
                                   key: keyBlob, stored: valueBlob, valueLength: valueBlob.count, leafHash: leaf)
                }
            }
            record.key.withUnsafeBytes { key in
                [UInt8]().withUnsafeBytes { none in
                    index(type: record.type, sequence: sequence, timestamp: timestamp, namespace: namespace, key: key, value: none, hint: hint)
                }
            }
        }
        addToTree(leaf)
        nextSequence += 1
        return sequence
    }
}
