import SteleNative

/// Rebuilding the key index from the records.
extension SegmentLog {
    /// Rebuilds the key index and the retention state: from the latest index snapshot plus the
    /// records after it when the snapshot checks out, else from every record. Checksums are
    /// verified on every frame read.
    func rebuildKeys() throws {
        var index = KeyIndex()
        var retention = emptyRetentionState
        var retentionRecords: [UInt64] = []
        var start: UInt64 = 0
        if let snapshot = loadSnapshot() {
            let fromSnapshot = snapshot.keys
            var retentionFromSnapshot = emptyRetentionState
            var listed: [UInt64] = []
            do {
                for sequence in snapshot.retentionRecords {
                    try withFrame(at: sequence) { frame, view in
                        guard frame.type.isPolicy else {
                            throw SteleError.corruption(Corruption(file: directory, sequence: sequence, detail: "snapshot lists a non-retention record"))
                        }
                        try Self.noteRetention(frame, view, path: directory, retention: &retentionFromSnapshot, retentionRecords: &listed)
                    }
                }
                // Who the store is must come from the log: a snapshot that leaves out the genesis
                // record (record 0) is not used.
                if listed.first != 0, nextSequence > 0, try withFrame(at: 0, { frame, _ in frame.type }) == .config {
                    throw SteleError.corruption(Corruption(file: directory, sequence: 0, detail: "snapshot omits the genesis record"))
                }
                index = fromSnapshot
                retention = retentionFromSnapshot
                retentionRecords = listed
                start = snapshot.treeSize
                snapshotSize = snapshot.treeSize
                report.indexReplayed = start ..< nextSequence
                // Nothing cheap proves the snapshot's list of retention records complete: purge
                // re-reads the log before deciding anything (see `verifyRetention`).
                retentionFromLog = false
            } catch {
                report.indexSnapshotRejected = "its list of retention records disagrees with the log"
            }
        }
        var segments: [(ByteView, Int, UInt64, String)] = []
        for segment in sealed where segment.footer.lastSequence >= start {
            segments.append((segment.region.wholeView, Int(segment.footer.framesEnd), segment.header.index, segment.path))
        }
        if let segment = active { segments.append((segment.region.wholeView, segment.writeOffset, segment.header.index, segment.path)) }
        // Keys out of order (several namespaces, random ids) are sorted once at the end rather
        // than filed one by one.
        index.deferOrdering()
        var queue = KeyRebuildQueue()
        for (view, end, number, path) in segments {
            try Self.forEachFrame(view, from: SegmentHeader.size, to: end, path: path) { frame, view in
                guard frame.sequence >= start else { return }
                try replay(frame, view, segment: number, path: path, into: &index, queue: &queue, retention: &retention,
                           retentionRecords: &retentionRecords)
            }
        }
        queue.drain(into: &index)
        index.finishOrdering()
        try Self.finishReplay(&retention, path: directory)
        keys = index
        self.retention = retention
        self.retentionRecords = retentionRecords
    }

    /// Files one record of segment `number` where it belongs: a put or tombstone in the key
    /// index (through `queue`), a shred in `shreds`, a policy record in the retention state.
    func replay(_ frame: FrameInfo, _ view: ByteView, segment number: UInt64, path: String, into index: inout KeyIndex,
                queue: inout KeyRebuildQueue, retention: inout RetentionState, retentionRecords: inout [UInt64]) throws {
        if frame.type == .shred {
            shreds[view.slice(frame.namespace.lowerBound, frame.namespace.count).array] = frame.timestamp
        } else if frame.isEncrypted {
            // Filed under its plaintext key, in sequence order behind the queued frames.
            queue.drain(into: &index)
            try noteEncrypted(frame, view, hint: KeyIndex.FrameHint(segment: number, offset: frame.offset), path: path, into: &index)
        } else if frame.type == .put || frame.type == .tombstone {
            queue.add(frame, view, hint: KeyIndex.FrameHint(segment: number, offset: frame.offset), into: &index)
        } else {
            try Self.noteRetention(frame, view, path: path, retention: &retention, retentionRecords: &retentionRecords)
        }
    }

    /// Files an encrypted put or tombstone under its key, opened from the key blob. Without the
    /// master key it is left out and the log says so (``hasUnreadableKeys``); a shredded
    /// namespace's records are left out for good (their keys are gone with the data key).
    /// - Throws: ``SteleError/corruption(_:)`` if the blob does not open under its namespace's key.
    private func noteEncrypted(_ frame: FrameInfo, _ view: ByteView, hint: KeyIndex.FrameHint, path: String,
                               into index: inout KeyIndex) throws {
        guard let encryption else {
            hasUnreadableKeys = true
            return
        }
        let namespace = view.slice(frame.namespace.lowerBound, frame.namespace.count).array
        let cipher: RecordCipher
        switch encryption.readingCipher(namespace) {
        case .success(let found): cipher = found
        case .failure(.encryption(.shredded)): return
        case .failure(let error): throw error
        }
        guard let key = cipher.openKey(view.slice(frame.key.lowerBound, frame.key.count).array, type: frame.type,
                                       sequence: frame.sequence, timestamp: frame.timestamp, namespace: namespace) else {
            throw SteleError.corruption(Corruption(file: path, offset: frame.offset, sequence: frame.sequence,
                                                   detail: "its key blob does not open under its namespace's data key"))
        }
        cipher.countSealed(1)
        namespace.withUnsafeBytes { namespace in
            key.withUnsafeBytes { index.record(namespace: namespace, key: $0, sequence: frame.sequence, deleted: frame.type == .tombstone, hint: hint) }
        }
    }

    /// Rebuilds the retention state from every record of the log (not from a snapshot), so that
    /// a purge never trusts derived data. Cost: one pass over the frames, once per open.
    func verifyRetention() throws {
        guard !retentionFromLog else { return }
        try rebuildPolicy(comparingWithSnapshot: true)
    }

    /// Builds the retention state (and the store's identity) from the policy records of the
    /// whole log, without the key index.
    func rebuildPolicy() throws {
        try rebuildPolicy(comparingWithSnapshot: false)
    }

    private func rebuildPolicy(comparingWithSnapshot: Bool) throws {
        var retention = emptyRetentionState
        var records: [UInt64] = []
        let segments: [(ByteView, Int, String)] = sealed.map { ($0.region.wholeView, Int($0.footer.framesEnd), $0.path) }
            + (active.map { [($0.region.wholeView, $0.writeOffset, $0.path)] } ?? [])
        for (view, end, path) in segments {
            try Self.forEachFrame(view, from: SegmentHeader.size, to: end, path: path) { frame, view in
                if frame.type == .shred { shreds[view.slice(frame.namespace.lowerBound, frame.namespace.count).array] = frame.timestamp }
                guard frame.type.isPolicy else { return }
                try Self.noteRetention(frame, view, path: path, retention: &retention, retentionRecords: &records)
            }
        }
        try Self.finishReplay(&retention, path: directory)
        guard !comparingWithSnapshot || records == retentionRecords else {
            throw SteleError.corruption(Corruption(file: indexDirectory + "/snapshot", detail: "the index snapshot's retention records differ from the log's; remove it and reopen"))
        }
        retentionRecords = records
        self.retention = retention
        retentionFromLog = true
    }

    /// Applies a retention, legal-hold, policy or config record to `retention` and lists it
    /// (other records are ignored: puts and tombstones go to the index through `KeyRebuildQueue`).
    /// - Throws: ``SteleError/corruption(_:)`` for a malformed record, or one whose authorization
    ///   does not verify against the governance key the log held then (a forged bypass).
    static func noteRetention(_ frame: FrameInfo, _ view: ByteView, path: String,
                                      retention: inout RetentionState, retentionRecords: inout [UInt64]) throws {
        guard frame.type.isPolicy else { return }
        let namespace = view.slice(frame.namespace.lowerBound, frame.namespace.count).array
        let key = view.slice(frame.key.lowerBound, frame.key.count).array
        guard let value = frame.value(in: view) else {
            throw SteleError.corruption(Corruption(file: path, offset: frame.offset, sequence: frame.sequence,
                                                   detail: "\(frame.type) record's value does not decode"))
        }
        do {
            try retention.apply(type: frame.type, sequence: frame.sequence, timestamp: frame.timestamp,
                                namespace: namespace, key: key, value: value)
        } catch {
            throw SteleError.corruption(Corruption(file: path, offset: frame.offset, sequence: frame.sequence, detail: error.reason))
        }
        retentionRecords.append(frame.sequence)
    }

    /// Ends a replay of the policy records (see ``RetentionState/finishReplay()``).
    static func finishReplay(_ retention: inout RetentionState, path: String) throws {
        do {
            try retention.finishReplay()
        } catch {
            throw SteleError.corruption(Corruption(file: path, detail: error.reason))
        }
    }

    /// A retention state before any record, knowing the legacy policy (`stele.conf`'s origin
    /// and governance key) that judges a log without config records.
    private var emptyRetentionState: RetentionState {
        var state = RetentionState()
        state.legacy = legacyPolicy
        return state
    }

    private var snapshotPath: String { indexDirectory + "/snapshot" }

    /// The snapshot, if it exists, decodes, and sits at a seal whose root it repeats.
    private func loadSnapshot() -> IndexSnapshot? {
        guard !indexDirectory.isEmpty, (try? fs.status(snapshotPath)) != nil else { return nil }
        // A snapshot is never larger than the log it summarises.
        let logBytes = sealed.reduce(0) { $0 + $1.fileSize } + (active?.capacity ?? 0)
        guard let bytes = try? fs.readWholeFile(snapshotPath, limit: max(1 << 20, logBytes)), let snapshot = IndexSnapshot.decode(bytes) else {
            report.indexSnapshotRejected = "unreadable or damaged"
            return nil
        }
        guard snapshot.treeSize <= nextSequence,
              let seal = sealed.first(where: { $0.footer.treeSize == snapshot.treeSize }), seal.footer.treeRoot == snapshot.root else {
            report.indexSnapshotRejected = "does not match a seal of this log"
            return nil
        }
        return snapshot
    }

    /// Writes a snapshot at a seal when enough records came since the last one. Derived data:
    /// a failure is ignored (the next open replays more).
    func writeIndexSnapshotIfDue() {
        // An encrypted store keeps no snapshot: it would hold the plaintext keys.
        guard writable, !indexDirectory.isEmpty, keysUnavailable == nil, encryption == nil, !hasUnreadableKeys,
              frontier.size >= snapshotSize + snapshotInterval else { return }
        let snapshot = IndexSnapshot(treeSize: frontier.size, root: frontier.root, keys: keys, retentionRecords: retentionRecords)
        do {
            try fs.writeAtomically(snapshot.encoded, to: snapshotPath, permissions: 0o644, directory: indexDirectory)
            snapshotSize = frontier.size
        } catch {
            try? fs.remove(snapshotPath + ".tmp")
        }
    }

    package static func forEachFrame(_ view: ByteView, from start: Int, to end: Int, path: String,
                             _ body: (FrameInfo, ByteView) throws -> Void) throws {
        var offset = start
        while offset < end {
            switch Frame.decode(view, at: offset, limit: end) {
            case .failure(let defect):
                throw SteleError.corruption(Corruption(file: path, offset: offset, detail: defect.description))
            case .success(let frame):
                try body(frame, view)
                offset = frame.end
            }
        }
    }
}

extension KeyIndex {
    /// The table hash (``hash(namespace:key:)``) of the key in `frame`.
    static func hash(of frame: FrameInfo, in view: ByteView) -> UInt64 {
        view.slice(frame.namespace.lowerBound, frame.namespace.count).withBuffer { ns in
            view.slice(frame.key.lowerBound, frame.key.count).withBuffer { KeyIndex.hash(namespace: ns, key: $0) }
        }
    }

    /// Records the put or tombstone in `frame` (other records are ignored); `hash` is its
    /// ``hash(of:in:)`` if the caller has it. Allocates nothing but a new key's room in the arena.
    mutating func noteFrame(_ frame: FrameInfo, _ view: ByteView, hint: FrameHint = .unknown, hash: UInt64? = nil) {
        guard frame.type == .put || frame.type == .tombstone else { return }
        view.slice(frame.namespace.lowerBound, frame.namespace.count).withBuffer { ns in
            view.slice(frame.key.lowerBound, frame.key.count).withBuffer { key in
                record(namespace: ns, key: key, sequence: frame.sequence, deleted: frame.type == .tombstone, hint: hint, hash: hash)
            }
        }
    }
}

/// Puts and tombstones on their way into the index during a rebuild, a few frames behind the
/// scan: each key's table slot is prefetched when its frame is read and filled when the frame
/// leaves the queue, so that the cache misses of consecutive keys overlap instead of coming one
/// after another (a slot miss per key was the largest cost of rebuilding a large index).
/// Frames leave in the order they came, so versions are recorded in sequence order.
struct KeyRebuildQueue {
    private static let depth = 16
    private var frames: [(frame: FrameInfo, view: ByteView, hint: KeyIndex.FrameHint, hash: UInt64)] = []
    private var head = 0

    init() { frames.reserveCapacity(Self.depth) }

    /// Queues a put or tombstone, recording the oldest queued one if the queue is full.
    mutating func add(_ frame: FrameInfo, _ view: ByteView, hint: KeyIndex.FrameHint, into index: inout KeyIndex) {
        let hash = KeyIndex.hash(of: frame, in: view)
        index.prefetch(hash: hash)
        if frames.count < Self.depth {
            frames.append((frame, view, hint, hash))
            return
        }
        let oldest = frames[head]
        index.noteFrame(oldest.frame, oldest.view, hint: oldest.hint, hash: oldest.hash)
        frames[head] = (frame, view, hint, hash)
        head = (head + 1) % Self.depth
    }

    /// Records every queued frame, oldest first.
    mutating func drain(into index: inout KeyIndex) {
        for position in 0 ..< frames.count {
            let queued = frames[(head + position) % frames.count]
            index.noteFrame(queued.frame, queued.view, hint: queued.hint, hash: queued.hash)
        }
        frames.removeAll(keepingCapacity: true)
        head = 0
    }
}

/// What the store asks of the log's key index and retention state, so that it asks through
/// methods and not through the fields.
extension SegmentLog {
    /// What protects version `sequence` of `composite` now (its locks, a legal hold, the store
    /// minimum), as the retention state records them. `timestamp`: the record's, if the caller
    /// read it already; otherwise it is read from the frame (checksum verified).
    package func protection(of sequence: UInt64, timestamp: Int64? = nil, namespace: [UInt8], composite: [UInt8]) throws -> Protection {
        try retention.protection(sequence: sequence, timestamp: timestamp ?? self.timestamp(of: sequence),
                                 namespace: namespace, composite: retentionComposite(namespace: namespace, composite: composite))
    }

    /// ``protection(of:timestamp:namespace:composite:)`` for a composite as retention files it
    /// (namespace ‖ 0 ‖ the key, or its id in an encrypted store), as a frame gives it.
    package func protection(of sequence: UInt64, timestamp: Int64, namespace: [UInt8], retentionComposite: [UInt8]) -> Protection {
        retention.protection(sequence: sequence, timestamp: timestamp, namespace: namespace, composite: retentionComposite)
    }

    /// The composite key retention files `composite` (namespace ‖ 0 ‖ key) under: itself, or in
    /// an encrypted store namespace ‖ 0 ‖ the key's id, which its lock and hold records name.
    /// A namespace with no data key yet has no records, so nothing its key id could name.
    package func retentionComposite(namespace: [UInt8], composite: [UInt8]) throws -> [UInt8] {
        guard let encryption else { return composite }
        guard let cipher = try encryption.existingCipher(namespace) else { return composite }
        return KeyIndex.compositeKey(namespace: namespace, key: cipher.keyID(Array(composite.dropFirst(namespace.count + 1))))
    }

    /// The key a lock or hold record being written names: the key, or in an encrypted store its
    /// key id (the namespace's data key made if this is its first record).
    package func retentionKey(namespace: [UInt8], key: [UInt8]) throws -> [UInt8] {
        guard let encryption else { return key }
        return try encryption.cipherForWriting(namespace).keyID(key)
    }

    /// Every version of a composite key, oldest first (empty if it was never written).
    package func versions(of composite: [UInt8]) -> [KeyIndex.VersionRef] {
        keys.versions(of: composite)
    }

    /// Why writes governed by retention rules must be refused, if they must: a key index or
    /// retention state that cannot be trusted, or a record altered after its tiles were written.
    package var writeRefusal: Corruption? { keysUnavailable ?? tampered }

    /// The store's config as the log's config records give it (identity and governance key);
    /// nil if the log has none (a store from before config records, or records not read).
    package var configFromLog: StoreConfig? {
        retention.identity.map { StoreConfig(identity: $0, governanceKey: retention.governanceKey) }
    }

    /// The key index, if it can be trusted (every put and tombstone of the log is in it).
    /// - Throws: ``SteleError/corruption(_:)`` naming the damage that kept it from being built.
    /// ``trustedKeys()`` for a lookup in `namespace`, refused if the namespace was shredded (its
    /// keys are gone with its data key: no answer, not even "absent", would be true).
    package func trustedKeys(in namespace: some Collection<UInt8>) throws -> KeyIndex {
        if !shreds.isEmpty, let at = shreds[Array(namespace)] {
            throw SteleError.encryption(.shredded(namespace: String(decoding: Array(namespace), as: UTF8.self), at: at))
        }
        return try trustedKeys()
    }

    package func trustedKeys() throws -> KeyIndex {
        if let damage = keysUnavailable { throw SteleError.corruption(damage) }
        // Encrypted keys could not be opened: an index without them would answer wrongly.
        if hasUnreadableKeys { throw SteleError.encryption(.keyRequired) }
        return keys
    }

    /// The governance key in force and the origin it signs for, as the log's records give them.
    package var governance: (key: NoteVerifier?, origin: String) { (retention.governanceKey, retention.origin ?? "") }

    /// The retention default of a namespace, if one was set.
    package func namespaceDefault(_ namespace: [UInt8]) -> (mode: RetentionMode, duration: UInt64)? {
        retention.namespaceDefault(namespace)
    }

    /// The store-wide minimum retention, in nanoseconds (0 for none).
    package var minimumRetention: UInt64 { retention.minimumRetention }

    /// The oldest tree size a governance key change may be authorized as of.
    package var keyChangeAsOfFloor: UInt64 { retention.keyChangeAsOfFloor }

    /// Whether the log records the store's identity (its genesis or adoption record).
    package var recordsIdentity: Bool { retention.identity != nil }
}
