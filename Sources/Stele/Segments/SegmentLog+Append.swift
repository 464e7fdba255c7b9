import Logging
import SteleNative

/// Appending: timestamps, records into the active segment, the Merkle tree and key index kept
/// in step, rotation when a segment is full, and the seal that makes a segment read-only.
extension SegmentLog {
    /// Takes a timestamp for a new batch: the clock's reading, but never earlier than the last
    /// record's, so timestamps never decrease along the log.
    package func nextTimestamp(clock: Int64) -> Int64 {
        lastTimestamp = max(lastTimestamp, clock)
        return lastTimestamp
    }

    /// Appends one record with the next sequence number, rotating segments as needed.
    /// `value` is the logical value (hashed); `stored` is what goes on disk (maybe LZ4).
    /// `keyHash`: the key's ``KeyIndex/hash(namespace:key:)``, if the caller computed it (to prefetch).
    /// An encrypted record (``Frame/flagEncrypted``) has its key blob as `key`, its value blob as
    /// `value` and `stored`, and its plaintext key, for the key index, as `plainKey`.
    @inline(__always)
    package func append(type: RecordType, flags: UInt8, timestamp: Int64, namespace: UnsafeRawBufferPointer,
                        key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, stored: UnsafeRawBufferPointer,
                        keyHash: UInt64? = nil, plainKey: UnsafeRawBufferPointer? = nil) throws -> UInt64 {
        let length = Frame.length(namespace: namespace.count, key: key.count, stored: stored.count)
        if active?.hasRoom(for: length) != true { try rotate() }
        if reachPending { try writeReach(open: true) }
        guard let segment = active, segment.hasRoom(for: length) else {
            throw SteleError.invalidArgument("record of \(length) bytes does not fit in a segment of \(segmentSize) bytes")
        }
        let sequence = nextSequence
        let leaf = flags & Frame.flagEncrypted != 0
            ? CanonicalEntry.encryptedLeafHash(type: type, flags: flags, sequence: sequence, timestamp: timestamp,
                                               namespace: namespace.view, keyBlob: key.view, valueBlob: value.view)
            : CanonicalEntry.leafHash(type: type, sequence: sequence, timestamp: timestamp,
                                      namespace: namespace.view, key: key.view, value: value.view)
        let hint = KeyIndex.FrameHint(segment: segment.header.index, offset: segment.writeOffset)
        segment.append(type: type, flags: flags, sequence: sequence, timestamp: timestamp, namespace: namespace,
                       key: key, stored: stored, valueLength: value.count, leafHash: leaf)
        addToTree(leaf)
        index(type: type, sequence: sequence, timestamp: timestamp, namespace: namespace, key: plainKey ?? key, value: value,
              hint: hint, keyHash: keyHash)
        nextSequence += 1
        return sequence
    }

    /// Appends one of the store's own records (key empty, value stored as it is).
    package func append(storeRecord type: RecordType, namespace: [UInt8], value: [UInt8], timestamp: Int64) throws -> UInt64 {
        try namespace.withUnsafeBytes { name in
            try [UInt8]().withUnsafeBytes { empty in
                try value.withUnsafeBytes { v in
                    try append(type: type, flags: 0, timestamp: timestamp, namespace: name, key: empty, value: v, stored: v)
                }
            }
        }
    }

    /// Adds a leaf to the Merkle tree and its tiles.
    @inline(__always)
    func addToTree(_ leaf: Digest) {
        if tilesUnavailable == nil {
            tileBuilder.append(leaf: leaf, frontier: &frontier, store: tiles)
        } else {
            frontier.append(leaf)
        }
    }

    /// Adds a whole aligned subtree of leaves (see ``TileBuilder/append(subtree:frontier:store:)``).
    func addToTree(_ subtree: TileBuilder.Subtree) {
        if tilesUnavailable == nil {
            tileBuilder.append(subtree: subtree, frontier: &frontier, store: tiles)
        } else {
            frontier.append(subtree: subtree.root, height: 6) { _, _ in }
        }
    }

    /// Files a record in the key index or the retention state. The store checked a policy
    /// record before appending it, so applying it cannot fail here.
    @inline(__always)
    func index(type: RecordType, sequence: UInt64, timestamp: Int64, namespace: UnsafeRawBufferPointer,
               key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, hint: KeyIndex.FrameHint, keyHash: UInt64? = nil) {
        if type == .put || type == .tombstone {
            keys.record(namespace: namespace, key: key, sequence: sequence, deleted: type == .tombstone, hint: hint, hash: keyHash)
        } else if type == .shred {
            shreds[Array(namespace)] = timestamp
        } else if type.isPolicy {
            try? retention.apply(type: type, sequence: sequence, timestamp: timestamp, namespace: Array(namespace), key: Array(key),
                                 value: Array(value))
            retentionRecords.append(sequence)
        }
    }

    /// Starts loading the key index's slot for a key of this hash ahead of its ``append``.
    @inline(__always)
    package func prefetchKey(hash: UInt64) {
        keys.prefetch(hash: hash)
    }

    /// Rotates first if `length` bytes of frames would not fit in the active segment but would
    /// fit in an empty one.
    package func makeRoom(for length: Int) throws {
        if reachPending { try writeReach(open: true) }
        guard let segment = active else {
            try rotate()
            return
        }
        if !segment.hasRoom(for: length) && segment.recordCount > 0
            && SegmentHeader.size + length + SegmentFooter.maxSize <= segmentSize {
            try rotate()
        }
    }

    /// Seals the active segment if it has records, and opens the next one.
    /// Returns the last sequence number made durable by the seal, if one happened.
    @discardableResult
    package func rotate(syncedThrough: Int = 0) throws -> UInt64? {
        guard writable else { throw SteleError.readOnly }
        var durable: UInt64?
        if let segment = active, segment.recordCount > 0 {
            do {
                durable = try sealActive(syncedThrough: syncedThrough)
            } catch SteleError.io(let cause) {
                throw SealFailed(cause: cause)
            }
        }
        if active == nil {
            let header = SegmentHeader(storeID: storeID, index: nextIndex, firstSequence: nextSequence,
                                       createdAt: lastTimestamp, previousSeal: lastSealHash)
            active = try ActiveSegment.create(fs: fs, directory: directory, header: header, capacity: segmentSize)
            // Named in `reach` before any record goes in, so that deleting it is never silent.
            reachPending = reachDirectory != nil
            try writeReach(open: true)
        }
        return durable
    }

    /// Records in `reach` how far the log reached: the last segment and the records in the log,
    /// all durable when this is called (at a writable open after recovery, after a rotation,
    /// at a clean close after the final sync). `open`: a writer may append beyond.
    package func writeReach(open: Bool) throws {
        guard let reachDirectory else { return }
        let last = active.map { ($0.header.index, $0.header.firstSequence) }
            ?? sealed.last.map { ($0.header.index, $0.header.firstSequence) } ?? (1, 0)
        try LogReach(storeID: storeID, open: open, segment: last.0, first: last.1, records: nextSequence)
            .write(fs: fs, directory: reachDirectory)
        reachPending = false
    }

    /// Index and first sequence number of every segment file, in order (for ``LossEvidence``).
    package var segmentStarts: [(index: UInt64, first: UInt64)] {
        sealed.map { ($0.header.index, $0.header.firstSequence) } + (active.map { [($0.header.index, $0.header.firstSequence)] } ?? [])
    }

    /// Seals the active segment; on return it is durable, truncated and read-only.
    package func sealActive(syncedThrough: Int) throws -> UInt64? {
        guard let segment = active, let last = segment.lastSequence else { return nil }
        // Frames still staged reach the file first: a seal never covers a buffer.
        segment.endStaging()
        let started = ContinuousClock.now
        defer {
            metrics?.sealDuration.recordNanoseconds((ContinuousClock.now - started).timerNanoseconds)
            metrics?.indexKeys.record(keys.keyCount)
        }
        // Records first, then the tiles for this size, then the footer: a seal never claims a
        // tree whose records or tiles could still be lost. The header's durable end is raised
        // only after the records are on disk (it reaches the disk with the seal's fsync): raised
        // before, the kernel may write the header page back ahead of the frames, and a power cut
        // then leaves a header vouching for frames that are not there (found by PowerLossTests).
        try syncGate.run { try fs.syncMapped(segment.region, 0 ..< segment.writeOffset) }
        segment.markDurable(through: segment.writeOffset)
        persistTiles()
        signSealCheckpoint()
        writeIndexSnapshotIfDue()
        var digest = segment.contentHasher
        var footer = SegmentFooter(
            recordCount: UInt64(segment.recordCount), firstSequence: segment.header.firstSequence, lastSequence: last,
            framesEnd: UInt64(segment.writeOffset), sealedAt: lastTimestamp, treeSize: frontier.size,
            treeRoot: frontier.root, contentDigest: digest.finalize(), frontier: frontier.hashes, sealHash: .zero)
        footer.sealHash = footer.computeSealHash(header: segment.header)
        var sealedSegment: SealedSegment?
        try syncGate.run { sealedSegment = try segment.seal(fs: fs, footer: footer, syncedThrough: syncedThrough) }
        guard let sealedSegment else { return nil }
        active = nil
        sealed.append(sealedSegment)
        logger.debug("segment sealed", metadata: [
            "stele.segment": "\(sealedSegment.header.index)", "stele.sequence": "\(last)", "stele.records": "\(sealedSegment.footer.recordCount)",
        ])
        return last
    }

    /// A seal's sync, truncate or fsync failed: the segment's durability is unknown, so the
    /// store must stop accepting writes (fsync-gate semantics).
    package struct SealFailed: Error {
        package let cause: IOError
    }

    /// Records in sealed segments: durable whatever the commit policy.
    package var sealedRecordCount: UInt64 { sealed.last.map { $0.footer.lastSequence + 1 } ?? 0 }
}
