import SteleNative

/// The write path, in one place: a validated batch into the active segment (one record at a
/// time or on both cores, prefetching key-index slots, rotating where a segment fills, starting
/// writeback of what earlier batches wrote), and the durable sync that a commit waits for.
///
/// ``Store`` validates, takes its locks, applies the commit policy and delegates here; nothing
/// else in the engine touches the active segment's mapping to write or sync it.
///
/// Invariant: a batch that fits in one segment goes into one segment (the room is made before
/// its first record), so that a put and the lock on it are never split by a rotation that could
/// fail in between.
extension SegmentLog {
    /// Appends a batch under the store's writer lock: `packed` (an ``EntryBatch`` or entries
    /// enough for two threads), or `entries` with `compressed[i]` stored for entry i where
    /// present, then the store's own records in `added` (a lock on a version just put, a clock
    /// step). All were validated by the caller.
    /// - Parameter syncFollows: a durable sync follows at once (`.everyBatch`): a batch on both
    ///   cores starts its frames' writeback while its hashing finishes.
    /// - Returns: the sequence numbers given.
    /// - Throws: ``SealFailed`` if a full segment's seal failed (the caller stops writes),
    ///   ``SteleError/io(_:)`` if a new segment cannot be made; records before it stay.
    package func appendBatch<Entries: Collection<Entry>>(packed: PackedBatch?, entries: Entries, compressed: [[UInt8]?]?,
                                                         added: [Entry], now: Int64, syncFollows: Bool) throws -> ClosedRange<UInt64> {
        let total = (packed?.frameLength ?? Self.frameLength(entries)) + Self.frameLength(added)
            + encryptionOverhead(packed: packed, entries: entries)
        let sequences = try appendBatch(packed: packed, entries: entries, compressed: compressed, added: added, now: now,
                                        syncFollows: syncFollows, total: total)
        metrics?.recordsAppended.increment(by: Int64(sequences.count))
        metrics?.bytesAppended.increment(by: Int64(total))
        return sequences
    }

    private func appendBatch<Entries: Collection<Entry>>(packed: PackedBatch?, entries: Entries, compressed: [[UInt8]?]?,
                                                         added: [Entry], now: Int64, syncFollows: Bool, total: Int) throws -> ClosedRange<UInt64> {
        try makeRoom(for: total)
        let timestamp = nextTimestamp(clock: now)
        // The disk starts on what earlier batches wrote while this one is appended.
        defer {
            active?.startWritebackIfDue()
            tiles.startWritebackIfDue()
        }
        if let encryption {
            return try appendEncrypted(encryption, packed: packed, entries: entries, compressed: compressed, added: added, timestamp: timestamp,
                                       syncFollows: syncFollows)
        }
        if added.isEmpty, let packed, let sequences = appendInParallel(packed, timestamp: timestamp, syncFollows: syncFollows) {
            return sequences
        }
        var first: UInt64?
        var last: UInt64 = 0
        if let packed {
            try packed.withFields { fields in
                for (position, item) in fields.items.enumerated() {
                    prefetchKeys(of: fields.items, before: position)
                    last = try append(type: item.type, flags: item.flags, timestamp: timestamp,
                                      namespace: fields[item.namespace], key: fields[item.key],
                                      value: fields[item.value], stored: fields.stored(item), keyHash: item.keyHash)
                    if first == nil { first = last }
                }
            }
        }
        for (position, entry) in entries.enumerated() {
            last = try append(entry, timestamp: timestamp, stored: compressed?[position])
            if first == nil { first = last }
        }
        for entry in added {
            last = try append(entry, timestamp: timestamp, stored: nil)
            if first == nil { first = last }
        }
        return (first ?? last) ... last
    }

    /// Appends one entry, its value stored as `stored` (LZ4) where given, else as it is.
    private func append(_ entry: Entry, timestamp: Int64, stored: [UInt8]?) throws -> UInt64 {
        try entry.namespace.withUnsafeBytes { namespace in
            try entry.key.withUnsafeBytes { key in
                try entry.value.withUnsafeBytes { value in
                    guard let stored else {
                        return try append(type: entry.type, flags: 0, timestamp: timestamp,
                                          namespace: namespace, key: key, value: value, stored: value)
                    }
                    return try stored.withUnsafeBytes {
                        try append(type: entry.type, flags: Frame.flagLZ4, timestamp: timestamp,
                                   namespace: namespace, key: key, value: value, stored: $0)
                    }
                }
            }
        }
    }

    /// The bytes of frames that `entries` take, values stored as they are.
    static func frameLength(_ entries: some Collection<Entry>) -> Int {
        entries.reduce(0) { $0 + Frame.length(namespace: $1.namespace.count, key: $1.key.count, stored: $1.value.count) }
    }

    /// What a durable sync must write now, taken under the store's lock: the active segment's
    /// pages from its start (the header page carries the durable end; clean pages cost nothing)
    /// to its end, covering every record so far. The header's durable end is first raised to
    /// what the previous sync (`cursor`) covered: it reaches the disk with this sync, so it trails
    /// by one sync and never vouches for frames not yet on disk. Nil if the active segment holds
    /// no record (sealed records are durable already).
    package func durableSync(after cursor: SyncCursor) -> DurableSync? {
        guard let segment = active, segment.recordCount > 0 else { return nil }
        if cursor.segment == segment.header.index { segment.markDurable(through: cursor.offset) }
        return DurableSync(fs: fs, gate: syncGate, region: segment.region,
                           reached: SyncCursor(segment: segment.header.index, offset: segment.writeOffset), records: nextSequence)
    }

    /// Syncs the active segment's records now (a purge, before it rewrites sealed segments).
    func syncActive() throws {
        guard let segment = active else { return }
        try syncGate.run { try fs.syncMapped(segment.region, 0 ..< segment.writeOffset) }
    }
}

/// How far the syncs of the active segment have reached: its number and byte offset.
package struct SyncCursor: Sendable {
    package var segment: UInt64 = 0
    package var offset = 0

    package init(segment: UInt64 = 0, offset: Int = 0) {
        self.segment = segment
        self.offset = offset
    }
}

/// A durable sync of the active segment, taken under the store's lock (``SegmentLog/durableSync(after:)``)
/// and run outside it, so that writers go on appending while it waits for the disk. Safe: the
/// mapping stays valid while referenced, and the ``SyncGate`` runs syncs one at a time and fails
/// every one after a failure (Linux reports a writeback error once).
package struct DurableSync: @unchecked Sendable {
    let fs: any FileSystem
    let gate: SyncGate
    let region: MappedRegion
    /// Where the segment ends now: the next sync's cursor once this one succeeds.
    package let reached: SyncCursor
    /// Records durable once this returns (sequence numbers `0 ..< records`).
    package let records: UInt64

    /// `msync(MS_SYNC)` of the segment's pages up to ``reached``.
    /// - Throws: ``SteleError/io(_:)``: nothing since the previous sync can be promised durable.
    package func run() throws {
        try gate.run { try fs.syncMapped(region, 0 ..< reached.offset) }
    }
}
