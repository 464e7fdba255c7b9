import Logging
import Synchronization
import SteleNative

extension Store {
    /// Appends one put record. See ``append(contentsOf:)-3q6im``.
    /// - Throws: as ``append(contentsOf:)-3q6im``.
    /// - Cost: as ``append(contentsOf:)-3q6im`` for one record; no array is built for it.
    @discardableResult
    public func append(_ entry: Entry) throws -> Receipt {
        try appendEntries(CollectionOfOne(entry))
    }

    /// Appends `entries` as consecutive records and returns their sequence numbers.
    ///
    /// Durability follows the store's ``CommitPolicy`` and is stated in the receipt: under
    /// ``CommitPolicy/everyBatch`` every record is synced before this returns. A batch is not
    /// atomic across a crash: if the call does not return, any prefix of it may survive.
    ///
    /// - Throws: ``SteleError/invalidArgument(_:)`` (empty batch; namespace not 1-255 bytes or
    ///   containing NUL; key not 1-4096 bytes; value too large for a segment) before anything is
    ///   written; ``SteleError/io(_:)`` (for example a full disk when a new segment is needed:
    ///   records before it stay, and appends work again once space is freed);
    ///   ``SteleError/writesDisabled(cause:)`` after a failed sync; ``SteleError/closed``;
    ///   ``SteleError/readOnly``.
    /// - Cost: one copy of each record into the mapped segment, an XXH3 and a SHA-256 over it,
    ///   LZ4 for values over ``Options/compressionThreshold``; plus one `msync` per call under
    ///   `.everyBatch` (shared with concurrent callers), and a seal when a segment fills.
    @discardableResult
    public func append(contentsOf entries: [Entry]) throws -> Receipt {
        try appendEntries(entries)
    }

    /// The append path, generic so that a single entry needs no array (no heap allocation
    /// per call for values under the compression threshold, beyond the key index's entry).
    ///
    /// `extra` runs under the writer lock just before anything is written, with the log, the
    /// sequence number the first entry will get and the batch timestamp: it may check the
    /// store's state (retention rules) and throw, or return small records to append after the
    /// entries (a lock on the version just put). Check and append are atomic.
    ///
    /// The blocking write path: validated and compressed here, appended and committed as the
    /// policy says (``commit(_:)-(LockedAppend)``).
    func appendEntries<Entries: Collection<Entry> & Sendable>(
        _ entries: Entries,
        extra: ((SegmentLog, _ firstSequence: UInt64, _ now: Int64) throws -> [Entry])? = nil
    ) throws -> Receipt {
        try commit(prepareEntries(entries, extra: extra))
    }

    /// The blocking write path for a packed batch; see ``appendEntries(_:extra:)``.
    func appendPacked(_ batch: PackedBatch) throws -> Receipt {
        try commit(preparePacked(batch))
    }

    /// Validates and compresses `entries` before the writer lock, and returns the append to make
    /// under it.
    func prepareEntries<Entries: Collection<Entry> & Sendable>(
        _ entries: Entries,
        extra: ((SegmentLog, _ firstSequence: UInt64, _ now: Int64) throws -> [Entry])? = nil
    ) throws -> GroupCommit.LockedAppend {
        guard !entries.isEmpty || extra != nil else { throw SteleError.invalidArgument("empty batch") }
        // A batch for two threads is packed into one buffer before the lock (see PackedBatch),
        // and validated from there.
        let frameLength = entries.count >= SegmentLog.parallelBatchMinimum ? Int.max : entries.reduce(0) {
            $0 + Frame.length(namespace: $1.namespace.count, key: $1.key.count, stored: $1.value.count)
        }
        if SegmentLog.gainsFromParallel(count: entries.count, frameLength: frameLength) {
            return try preparePacked(PackedBatch(entries), extra: extra)
        }
        let maxValue = maxValueLength
        for i in entries.indices { try Store.validate(entries[i], maxValueLength: maxValue) }
        let threshold = options.compressionThreshold
        // Compression runs before taking the writer lock; nil where a value is stored as is.
        let compressed: [[UInt8]?]? = entries.contains { $0.value.count >= threshold }
            ? entries.map { entry in
                entry.value.count >= threshold ? entry.value.withUnsafeBytes { LZ4.compressIfWorthIt($0) } : nil
            }
            : nil
        return { state in try self.appendLocked(&state, packed: nil, entries: entries, compressed: compressed, extra: extra) }
    }

    /// Validates a packed batch (an ``EntryBatch``, or entries enough for two threads) from its
    /// bytes and compresses it, before the writer lock; returns the append to make under it.
    func preparePacked(_ batch: PackedBatch,
                       extra: ((SegmentLog, _ firstSequence: UInt64, _ now: Int64) throws -> [Entry])? = nil
    ) throws -> GroupCommit.LockedAppend {
        guard !batch.items.isEmpty else { throw SteleError.invalidArgument("empty batch") }
        let maxValue = maxValueLength
        try batch.withFields { fields in
            for item in fields.items {
                try Store.validate(type: item.type, namespace: fields[item.namespace], key: fields[item.key],
                                   valueLength: item.value.count, maxValueLength: maxValue)
            }
        }
        var prepared = batch
        prepared.compress(threshold: options.compressionThreshold)
        return { [prepared] state in
            try self.appendLocked(&state, packed: prepared, entries: EmptyCollection<Entry>(), compressed: nil, extra: extra)
        }
    }

    /// Makes `append` under the writer lock and commits as the policy says: a durable append
    /// goes through the group commit, which appends it (with the others waiting) and syncs.
    func commit(_ append: @escaping GroupCommit.LockedAppend) throws -> Receipt {
        switch options.commitPolicy {
        case .everyBatch:
            guard let groupCommit else { return Receipt(sequences: try state.withLock(append), durability: .durable) }
            return Receipt(sequences: try groupCommit.appendDurably(append, in: self), durability: .durable)
        case .interval(let interval):
            return Receipt(sequences: try state.withLock(append), durability: .withinInterval(interval))
        case .none:
            return Receipt(sequences: try state.withLock(append), durability: .afterSync)
        }
    }

    /// With the writer lock held: checks the store may be written, adds the records `extra`
    /// asks for and a clock step if the clock went back, and hands the batch to the log's write
    /// path (``SegmentLog/appendBatch(packed:entries:compressed:added:now:syncFollows:)``).
    func appendLocked<Entries: Collection<Entry> & Sendable>(
        _ state: inout State, packed: PackedBatch?, entries: Entries, compressed: [[UInt8]?]?,
        extra: ((SegmentLog, _ firstSequence: UInt64, _ now: Int64) throws -> [Entry])?
    ) throws -> ClosedRange<UInt64> {
        guard let log = state.log else { throw SteleError.closed }
        guard log.writable else { throw SteleError.readOnly }
        if let refusal = state.writeRefusal { throw refusal }
        // Without a trustworthy index and retention state, retention rules cannot be
        // enforced: refuse every write until the damage is dealt with (`stele fsck`).
        if let damage = log.writeRefusal { throw SteleError.corruption(damage) }
        let now = clock.nanosecondsSinceEpoch()
        try checkForFence(&state, now: now)
        var added = try extra?(log, log.nextSequence, max(now, log.lastTimestamp)) ?? []
        let (behind, overflow) = log.lastTimestamp.subtractingReportingOverflow(now)
        if overflow || behind > Store.clockStepLogged {
            // The clock went back: timestamps are clamped, and the step is logged.
            logger.warning("the clock went back: timestamps held at the last record's", metadata: [
                "stele.behind_ns": "\(overflow ? Int64.max : behind)", "stele.sequence": "\(log.nextSequence)",
            ])
            added.append(Entry(type: .policy, namespace: [], key: [], value: PolicyRecord(
                kind: .clockBehind, mode: .compliance, duration: overflow ? .max : UInt64(behind)).encoded))
        }
        // In an encrypted store a lock or hold names its key by the key's id: never in clear.
        if log.encryption != nil {
            for i in added.indices where added[i].type == .retention || added[i].type == .legalHold {
                added[i].key = try log.retentionKey(namespace: added[i].namespace, key: added[i].key)
            }
        }
        for entry in added { try Store.validate(entry, maxValueLength: maxValueLength) }
        guard !entries.isEmpty || packed?.items.isEmpty == false || !added.isEmpty else {
            throw SteleError.invalidArgument("empty batch")
        }
        defer { durableCount.raise(to: log.sealedRecordCount) }
        do {
            return try log.appendBatch(packed: packed, entries: entries, compressed: compressed, added: added, now: now,
                                       syncFollows: options.commitPolicy == .everyBatch)
        } catch let failed as SegmentLog.SealFailed {
            state.failure = failed.cause
            logWritesDisabled(failed.cause, during: "a seal")
            throw SteleError.writesDisabled(cause: failed.cause)
        }
    }

    /// A backwards clock step larger than this is recorded in the log (smaller ones are jitter).
    static let clockStepLogged: Int64 = 100_000_000

    static func validate(_ entry: Entry, maxValueLength: Int) throws {
        try entry.namespace.withUnsafeBytes { namespace in
            try entry.key.withUnsafeBytes { key in
                try validate(type: entry.type, namespace: namespace, key: key, valueLength: entry.value.count,
                             maxValueLength: maxValueLength)
            }
        }
    }

    static func validate(type: RecordType, namespace: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer, valueLength: Int,
                         maxValueLength: Int) throws {
        if type != .put && type != .tombstone {
            // Records the store writes itself (locks, holds, policies): a policy may name no
            // key, and the store minimum no namespace.
            guard namespace.count <= Limits.maxNamespaceLength, !namespace.contains(0),
                  key.count <= Limits.maxKeyLength, valueLength <= maxValueLength else {
                throw SteleError.invalidArgument("internal record out of bounds")
            }
            return
        }
        guard (1 ... Limits.maxNamespaceLength).contains(namespace.count), !namespace.contains(0) else {
            throw SteleError.invalidArgument("namespace must be 1-\(Limits.maxNamespaceLength) bytes without NUL (got \(namespace.count) bytes)")
        }
        guard (1 ... Limits.maxKeyLength).contains(key.count) else {
            throw SteleError.invalidArgument("key must be 1-\(Limits.maxKeyLength) bytes (got \(key.count))")
        }
        guard valueLength <= maxValueLength else {
            throw SteleError.invalidArgument("value of \(valueLength) bytes exceeds the limit of \(maxValueLength) for this store's segment size")
        }
    }

    /// Makes every record appended so far durable, whatever the commit policy.
    ///
    /// - Returns: the number of durable records (sequence numbers `0 ..< n`).
    /// - Throws: ``SteleError/writesDisabled(cause:)`` if this or an earlier sync failed;
    ///   ``SteleError/closed``; ``SteleError/readOnly``.
    /// - Cost: one `msync` of the pages written since the last sync.
    @discardableResult
    public func sync() throws -> UInt64 {
        try makeDurable(count: recordsToSync())
        return durableCount.load(ordering: .acquiring)
    }

    /// The records a sync must cover: every one appended so far.
    /// - Throws: ``SteleError/closed``, ``SteleError/readOnly``.
    func recordsToSync() throws -> UInt64 {
        try state.withLock { state throws -> UInt64 in
            guard let log = state.log else { throw SteleError.closed }
            guard log.writable else { throw SteleError.readOnly }
            return log.nextSequence
        }
    }

    /// Seals the active segment now (if it holds any record) and starts the next one.
    ///
    /// A sealed segment is durable, read-only, and closed by a footer that records the Merkle
    /// root and the hash chain. Sealing an empty segment does nothing.
    /// - Throws: as ``sync()-7ufge``, plus ``SteleError/io(_:)`` if the next segment cannot be created.
    public func seal() throws {
        try state.withLock { state throws in
            guard let log = state.log else { throw SteleError.closed }
            guard log.writable else { throw SteleError.readOnly }
            if let refusal = state.writeRefusal { throw refusal }
            if let damage = log.tampered { throw SteleError.corruption(damage) }  // never seal an altered record in
            defer { durableCount.raise(to: log.sealedRecordCount) }
            do {
                try log.rotate()
            } catch let failed as SegmentLog.SealFailed {
                state.failure = failed.cause
                logWritesDisabled(failed.cause, during: "a seal")
                throw SteleError.writesDisabled(cause: failed.cause)
            }
        }
    }

    /// Blocks until the first `count` records are durable: the group commit's next sync covers
    /// them (see ``GroupCommit``).
    func makeDurable(count: UInt64) throws {
        if durableCount.load(ordering: .acquiring) >= count { return }
        guard let groupCommit else { throw SteleError.readOnly }
        try groupCommit.waitUntilDurable(count, in: self)
    }

    /// One sync of every record appended so far, for the group commit: the pages written since
    /// the previous sync (`msync`), then the durable count raised to cover them. Nothing to do if
    /// every record is durable already (a seal made them so).
    /// - Throws: ``SteleError/writesDisabled(cause:)`` (this sync or an earlier one failed: writes
    ///   stop), ``SteleError/closed``.
    func syncAppended() throws {
        try syncCursor.withLock { cursor throws in
            let pending = try state.withLock { state throws -> DurableSync? in
                guard let log = state.log else { throw SteleError.closed }
                if let refusal = state.writeRefusal { throw refusal }
                guard durableCount.load(ordering: .acquiring) < log.nextSequence else { return nil }
                return log.durableSync(after: cursor)
            }
            guard let pending else { return }
            let started = ContinuousClock.now
            do {
                try pending.run()
                metrics.commitDuration.recordNanoseconds((ContinuousClock.now - started).timerNanoseconds)
                metrics.commitGroupRecords.record(Int64(pending.records) - Int64(durableCount.load(ordering: .acquiring)))
            } catch SteleError.io(let cause) {
                state.withLock { $0.failure = $0.failure ?? cause }
                logWritesDisabled(cause, during: "a commit's sync")
                throw SteleError.writesDisabled(cause: cause)
            }
            cursor = pending.reached
            durableCount.raise(to: pending.records)
        }
    }

    /// Why records not durable never will be: the sync failure that disabled writes, or a close.
    func commitFailure() -> SteleError {
        if let failure = state.withLock({ $0.failure }) { return .writesDisabled(cause: failure) }
        return .closed
    }

    func intervalTick() {
        _ = try? sync()
    }
}

extension Atomic where Value == UInt64 {
    /// Raises the value to `target` if it is lower (a monotonic maximum).
    func raise(to target: UInt64) {
        var current = load(ordering: .relaxed)
        while current < target {
            let (exchanged, original) = compareExchange(expected: current, desired: target, ordering: .acquiringAndReleasing)
            if exchanged { return }
            current = original
        }
    }
}

