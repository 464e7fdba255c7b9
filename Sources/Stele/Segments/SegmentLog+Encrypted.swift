import Dispatch
import SteleNative

/// The write path of an encrypted store: puts and tombstones as ``RecordCipher`` blobs under
/// their namespace's data key (docs/format.md, "Encrypted records").
///
/// Why here, under the store's writer lock: a blob's additional data carries the sequence number
/// and timestamp the record gets, which are known only once the lock is held. Every record of a
/// batch is sealed before the first is written, so that a refusal (a shredded namespace, a
/// keyring that cannot take a new key, libcrypto failing) leaves nothing of the batch in the log.
///
/// A batch is sealed into a second ``PackedBatch`` (namespaces, blobs and plaintext keys in one
/// buffer, each record's place computed before sealing, since a blob's length follows from its
/// plaintext's), a large one on two threads (the caller and the log's helper thread, each with a
/// sealing context of its own, each writing its own records' places). The sealed batch then
/// takes the plain write path: on both cores (``appendInParallel(_:timestamp:syncFollows:)``:
/// frames on one, leaf hashes and the tree on the other) when it fits in the active segment,
/// else record by record.
extension SegmentLog {
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

    /// Appends a batch of an encrypted store (see the type's comment): `packed`, then `entries`
    /// (entry i stored as `compressed[i]` where given), then `added` (the store's own records,
    /// in clear), with `timestamp`.
    func appendEncrypted<Entries: Collection<Entry>>(_ encryption: LogEncryption, packed: PackedBatch?, entries: Entries,
                                                     compressed: [[UInt8]?]?, added: [Entry], timestamp: Int64,
                                                     syncFollows: Bool) throws -> ClosedRange<UInt64> {
        var plain = packed ?? PackedBatch()
        if !entries.isEmpty { plain.append(entries, compressed: compressed) }
        let first = nextSequence
        var last = first
        if !plain.items.isEmpty {
            let sealed = try seal(plain, encryption: encryption, first: first, timestamp: timestamp)
            // Its storage serves the next batch, unless a huge batch made it too big to keep.
            defer { if sealed.capacity <= Self.sealingStorageKept { sealingStorage = sealed } }
            if let sequences = appendInParallel(sealed, timestamp: timestamp, syncFollows: syncFollows) {
                last = sequences.upperBound
            } else {
                try sealed.withFields { fields in
                    for (position, item) in fields.items.enumerated() {
                        prefetchKeys(of: fields.items, before: position)
                        let blob = fields[item.value]
                        last = try append(type: item.type, flags: item.flags, timestamp: timestamp, namespace: fields[item.namespace],
                                          key: fields[item.key], value: blob, stored: blob, keyHash: item.keyHash,
                                          plainKey: fields[item.plainKey])
                        // The additional data named this sequence number: a record must get exactly it.
                        guard last == first + UInt64(position) else {
                            throw SteleError.invalidArgument("an encrypted record was sealed for sequence \(first + UInt64(position)) but got \(last)")
                        }
                    }
                }
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

    /// At most this many bytes of a sealed batch's storage are kept for the next batch.
    static let sealingStorageKept = 16 << 20

    /// `plain` sealed for sequence numbers `first...` (see the type's comment): the ciphers
    /// first, on one thread (a new namespace's key is made and synced here), then every record's
    /// place, then the blobs, on two threads for a large batch.
    private func seal(_ plain: PackedBatch, encryption: LogEncryption, first: UInt64, timestamp: Int64) throws -> PackedBatch {
        var sealed = sealingStorage
        sealingStorage = PackedBatch()  // `sealed` alone holds the storage: written in place
        sealed.removeAll()
        try plain.withFields { fields in
            // One cipher per run of records of one namespace.
            var runs: [SealJob.Run] = []
            for (position, item) in fields.items.enumerated() {
                guard item.type == .put || item.type == .tombstone else {
                    throw SteleError.invalidArgument("only puts and tombstones are encrypted")
                }
                if let last = runs.last, fields[fields.items[position - 1].namespace].elementsEqual(fields[item.namespace]) {
                    runs[runs.count - 1].records = last.records.lowerBound ..< position + 1
                } else {
                    runs.append(SealJob.Run(records: position ..< position + 1,
                                            cipher: try encryption.cipherForWriting(Array(fields[item.namespace]))))
                }
            }
            // Each key's budget of records (random nonces): taken before anything is sealed, and
            // given back whole if one key has too few left (the batch is refused whole).
            for (number, run) in runs.enumerated() where !run.cipher.reserve(UInt64(run.records.count)) {
                for earlier in runs.prefix(number) { earlier.cipher.release(UInt64(earlier.records.count)) }
                throw SteleError.encryption(.keyExhausted(namespace: String(decoding: fields[fields.items[run.records.lowerBound].namespace], as: UTF8.self),
                                                          limit: run.cipher.recordLimit))
            }
            sealed.reserve(records: fields.items.count, bytes: 0)
            var size = 0
            func take(_ count: Int) -> Range<Int> {
                defer { size += count }
                return size ..< size + count
            }
            for item in fields.items {
                let blobs = RecordCipher.blobLengths(type: item.type, key: item.key.count, stored: item.stored.count)
                let namespace = take(item.namespace.count), keyBlob = take(blobs.key), valueBlob = take(blobs.value)
                sealed.appendSealed(PackedBatch.Item(type: item.type, flags: Frame.flagEncrypted | item.flags & Frame.flagLZ4,
                                                     namespace: namespace, key: keyBlob, value: valueBlob, stored: valueBlob,
                                                     keyHash: item.keyHash, plainKey: take(item.key.count)))
            }
            // Every record's nonce is 12 random bytes; drawn for the whole batch in one call (the
            // generator takes a lock per call).
            guard let nonces = SecureRandom.bytes(AESGCM.nonceLength * fields.items.count) else {
                throw SteleError.encryption(.libcryptoFailed("the random generator failed"))
            }
            try nonces.withUnsafeBytes { nonces in
                try sealed.withSealedBytes(count: size) { bytes, items in
                    let job = SealJob(plain: fields, sealed: bytes, items: items, runs: runs, nonces: nonces, first: first,
                                      timestamp: timestamp)
                    try runOnTwoLanes(job, count: items.count)
                }
            }
        }
        return sealed
    }

    /// Runs `job` over records `0 ..< count`: on this thread alone for a small batch, else the
    /// second half on the log's helper thread meanwhile; returns when both are done.
    private func runOnTwoLanes(_ job: SealJob, count: Int) throws {
        if count >= Self.parallelSealMinimum, hashingThread == nil { hashingThread = try? HelperThread(name: "stele hashing") }
        guard count >= Self.parallelSealMinimum, let helper = hashingThread else { return try job.run(0 ..< count, lane: 0) }
        let middle = count / 2
        let back = SealResult()
        helper.post { back.result = Result { try job.run(middle ..< count, lane: 1) } }
        let front = Result { try job.run(0 ..< middle, lane: 0) }
        helper.wait()
        try front.get()
        try (back.result ?? .failure(SteleError.encryption(.libcryptoFailed("a sealing thread did not finish")))).get()
    }
}

/// What both sealing threads read, and the sealed batch's buffer they write: each thread only
/// the places of its own records (disjoint ranges), all set up before either starts; whoever
/// makes one keeps its memory valid until both are done.
private struct SealJob: @unchecked Sendable {
    /// The batch's `records` (consecutive, of one namespace) are sealed with `cipher`.
    struct Run {
        var records: Range<Int>
        let cipher: RecordCipher
    }

    let plain: PackedBatch.RawFields
    let sealed: UnsafeMutableRawBufferPointer
    let items: UnsafeBufferPointer<PackedBatch.Item>
    let runs: [Run]
    let nonces: UnsafeRawBufferPointer
    let first: UInt64
    let timestamp: Int64

    /// Seals records `range` with each cipher's sealing context `lane`.
    func run(_ range: Range<Int>, lane: Int) throws {
        var aad: [UInt8] = []
        aad.reserveCapacity(128)
        var position = range.lowerBound
        for run in runs where run.records.upperBound > position {
            guard let sealer = run.cipher.sealer(lane: lane) else { throw SteleError.invalidArgument("no sealing lane \(lane)") }
            while position < min(run.records.upperBound, range.upperBound) {
                let source = plain.items[position], target = items[position]
                let namespace = plain[source.namespace], key = plain[source.key]
                guard sealed.copy(namespace, at: target.namespace.lowerBound), sealed.copy(key, at: target.plainKey.lowerBound) else {
                    throw SteleError.invalidArgument("a sealed record's place does not fit its batch")
                }
                let nonce = UnsafeRawBufferPointer(rebasing: nonces[position * AESGCM.nonceLength ..< (position + 1) * AESGCM.nonceLength])
                guard sealer.seal(type: source.type, sequence: first + UInt64(position), timestamp: timestamp, namespace: namespace,
                                  compressed: source.flags & Frame.flagLZ4 != 0, key: key, storedValue: plain.stored(source),
                                  valueLength: source.value.count, nonce: nonce,
                                  keyBlob: UnsafeMutableRawBufferPointer(rebasing: sealed[target.key]),
                                  valueBlob: UnsafeMutableRawBufferPointer(rebasing: sealed[target.value]), aad: &aad) else {
                    throw SteleError.encryption(.libcryptoFailed("AES-256-GCM could not encrypt a record"))
                }
                position += 1
            }
            if position >= range.upperBound { return }
        }
        guard position >= range.upperBound else { throw SteleError.invalidArgument("a record of the batch has no cipher") }
    }
}

/// The second sealing thread's outcome, read by the caller after ``HelperThread/wait()``.
private final class SealResult: @unchecked Sendable {
    var result: Result<Void, any Error>?
}

