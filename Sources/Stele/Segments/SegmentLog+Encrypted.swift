import Dispatch
import SteleNative

/// The write path of an encrypted store: puts and tombstones as ``RecordCipher`` blobs under
/// their namespace's data key (docs/format.md, "Encrypted records").
///
/// Why here, under the store's writer lock: a blob's additional data carries the sequence number
/// and timestamp the record gets, which are known only once the lock is held. Every record of a
/// batch is sealed before the first is written, so that a refusal (a shredded namespace, a
/// keyring that cannot take a new key, libcrypto failing) leaves nothing of the batch in the log.
/// A large batch is sealed on two threads (the caller and the log's helper thread, each with a
/// sealing context of its own), then written on one, its key-index slots prefetched.
extension SegmentLog {
    /// One record ready to be written: its blobs and, for the key index, its plaintext key.
    struct SealedRecord {
        let type: RecordType
        let flags: UInt8
        let namespace: [UInt8]
        let keyBlob: [UInt8]
        let valueBlob: [UInt8]
        let key: [UInt8]
        let keyHash: UInt64
    }

    /// A put or tombstone of the batch, before sealing.
    struct PlainRecord {
        let type: RecordType
        let namespace: [UInt8]
        let key: [UInt8]
        let stored: [UInt8]
        let compressed: Bool
        let valueLength: Int
    }

    /// Below this many records a batch is sealed on one thread (a hand-off costs a wake-up).
    static let parallelSealMinimum = 32

    /// Bytes a frame of an encrypted put or tombstone takes beyond the plain frame of the same
    /// record (the key blob's generation, key id, nonce and tag; a value blob's length and tag).
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
        var plain: [PlainRecord] = []
        plain.reserveCapacity((packed?.items.count ?? 0) + entries.count)
        packed?.withFields { fields in
            for item in fields.items {
                plain.append(PlainRecord(type: item.type, namespace: Array(fields[item.namespace]), key: Array(fields[item.key]),
                                         stored: Array(fields.stored(item)), compressed: item.flags & Frame.flagLZ4 != 0,
                                         valueLength: item.value.count))
            }
        }
        for (position, entry) in entries.enumerated() {
            let stored = compressed?[position]
            plain.append(PlainRecord(type: entry.type, namespace: entry.namespace, key: entry.key, stored: stored ?? entry.value,
                                     compressed: stored != nil, valueLength: entry.value.count))
        }
        let records = try seal(plain, encryption: encryption, first: nextSequence, timestamp: timestamp)
        let first = nextSequence
        var last = first
        // A batch that fits stages its frames and reaches the file by `pwrite`, as a plain batch
        // on two threads does, instead of faulting the mapping's pages in one by one.
        let length = records.reduce(0) { $0 + Frame.length(namespace: $1.namespace.count, key: $1.keyBlob.count, stored: $1.valueBlob.count) }
        let staging = records.count >= Self.parallelSealMinimum && active?.hasRoom(for: length) == true ? active : nil
        staging?.beginStaging()
        do {
            for (position, record) in records.enumerated() {
                if position + SegmentLog.prefetchDistance < records.count { prefetchKey(hash: records[position + SegmentLog.prefetchDistance].keyHash) }
                last = try append(record, timestamp: timestamp)
                // The additional data named this sequence number: a record must get exactly it.
                guard last == first + UInt64(position) else {
                    throw SteleError.invalidArgument("an encrypted record was sealed for sequence \(first + UInt64(position)) but got \(last)")
                }
            }
        } catch {
            staging?.endStaging()
            throw error
        }
        // Staged frames reach the file before the store's own records, which may fill the
        // segment and seal it.
        staging?.endStaging()
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

    /// Seals `plain` for sequence numbers `first...` : the ciphers first, one thread (a new
    /// namespace's key is made and synced here), then the blobs, on two threads for a large batch.
    private func seal(_ plain: [PlainRecord], encryption: LogEncryption, first: UInt64, timestamp: Int64) throws -> [SealedRecord] {
        var ciphers: [RecordCipher] = []
        ciphers.reserveCapacity(plain.count)
        var current: (namespace: [UInt8], cipher: RecordCipher)?
        for record in plain {
            guard record.type == .put || record.type == .tombstone else {
                throw SteleError.invalidArgument("only puts and tombstones are encrypted")
            }
            if current?.namespace != record.namespace { current = (record.namespace, try encryption.cipherForWriting(record.namespace)) }
            if let current { ciphers.append(current.cipher) }
        }
        // Every record's nonce is 12 random bytes; drawn for the whole batch in one call (the
        // generator takes a lock per call).
        guard let nonces = SecureRandom.bytes(AESGCM.nonceLength * plain.count) else {
            throw SteleError.encryption(.libcryptoFailed("the random generator failed"))
        }
        let job = SealJob(plain: plain, ciphers: ciphers, nonces: nonces, first: first, timestamp: timestamp)
        guard plain.count >= Self.parallelSealMinimum else { return try job.run(0 ..< plain.count, lane: 0) }
        if hashingThread == nil { hashingThread = try? HelperThread(name: "stele hashing") }
        guard let helper = hashingThread else { return try job.run(0 ..< plain.count, lane: 0) }
        let middle = plain.count / 2
        let back = SealResult()
        helper.post { back.result = Result { try job.run(middle ..< plain.count, lane: 1) } }
        let front = Result { try job.run(0 ..< middle, lane: 0) }
        helper.wait()
        return try front.get() + (back.result ?? .failure(SteleError.encryption(.libcryptoFailed("a sealing thread did not finish")))).get()
    }
}

/// What both sealing threads read: written before either starts, never after.
private struct SealJob: @unchecked Sendable {
    let plain: [SegmentLog.PlainRecord]
    let ciphers: [RecordCipher]
    let nonces: [UInt8]
    let first: UInt64
    let timestamp: Int64

    /// Seals records `range` with each cipher's sealing context `lane`.
    func run(_ range: Range<Int>, lane: Int) throws -> [SegmentLog.SealedRecord] {
        var out: [SegmentLog.SealedRecord] = []
        out.reserveCapacity(range.count)
        for position in range {
            let record = plain[position]
            let nonce = Array(nonces[position * AESGCM.nonceLength ..< (position + 1) * AESGCM.nonceLength])
            guard let blobs = ciphers[position].seal(type: record.type, sequence: first + UInt64(position), timestamp: timestamp,
                                                     namespace: record.namespace, compressed: record.compressed, key: record.key,
                                                     storedValue: record.stored, valueLength: record.valueLength, nonce: nonce, lane: lane) else {
                throw SteleError.encryption(.libcryptoFailed("AES-256-GCM could not encrypt a record"))
            }
            let keyHash = record.namespace.withUnsafeBytes { namespace in
                record.key.withUnsafeBytes { KeyIndex.hash(namespace: namespace, key: $0) }
            }
            out.append(SegmentLog.SealedRecord(type: record.type, flags: Frame.flagEncrypted | (record.compressed ? Frame.flagLZ4 : 0),
                                               namespace: record.namespace, keyBlob: blobs.key, valueBlob: blobs.value, key: record.key,
                                               keyHash: keyHash))
        }
        return out
    }
}

/// The second sealing thread's result, read by the caller after ``HelperThread/wait()``.
private final class SealResult: @unchecked Sendable {
    var result: Result<[SegmentLog.SealedRecord], any Error>?
}

extension SegmentLog {
    /// Appends one sealed record with the next sequence number, rotating segments as needed:
    /// the frame holds the blobs, the leaf covers them (canonical entry version 2), the key index
    /// files the plaintext key.
    fileprivate func append(_ record: SealedRecord, timestamp: Int64) throws -> UInt64 {
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
                    index(type: record.type, sequence: sequence, timestamp: timestamp, namespace: namespace, key: key, value: none, hint: hint,
                          keyHash: record.keyHash)
                }
            }
        }
        addToTree(leaf)
        nextSequence += 1
        return sequence
    }
}
