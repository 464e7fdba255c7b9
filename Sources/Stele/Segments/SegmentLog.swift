/// The chain of segments: open and recover it, append to it, seal it, find records in it.
///
/// Invariants after `open` and after every method returns:
/// - segments are numbered 1...n without gaps; all but the last are sealed, and the last is
///   sealed or active; each header's `previousSeal` is the seal hash of the segment before;
/// - sequence numbers run contiguously from 0 across segments; `nextSequence` follows the last;
/// - `frontier` is the Merkle tree over every record so far (leaf index = sequence).
/// Not thread-safe: ``Store`` serialises access with a mutex.
package final class SegmentLog {
    package let fs: any FileSystem
    package let directory: String
    package let storeID: [UInt8]
    package let segmentSize: Int
    package let writable: Bool
    /// Every sync of the active segment goes through it (see ``SyncGate``): the group commit's
    /// too, which runs outside the store's lock.
    package let syncGate = SyncGate()
    package internal(set) var sealed: [SealedSegment] = [] {
        didSet { sealedFirstSequences = sealed.map(\.header.firstSequence) }
    }
    /// The first sequence of each sealed segment, for the binary search of every read.
    private(set) var sealedFirstSequences: [UInt64] = []
    /// Nil only when creating the next segment failed (say, a full disk); retried on append.
    package private(set) var active: ActiveSegment?
    // The fields written per record opt out of dynamic exclusivity checks, as in `ActiveSegment`:
    // the store's lock covers every access, and a batch's two threads touch disjoint fields.
    @exclusivity(unchecked) package internal(set) var nextSequence: UInt64 = 0
    package private(set) var lastTimestamp: Int64 = 0
    @exclusivity(unchecked) package private(set) var frontier = Frontier()
    package internal(set) var report = RecoveryReport()
    package let tiles: TileStore
    @exclusivity(unchecked) package internal(set) var tileBuilder = TileBuilder()
    /// The last failure to persist tiles, if the latest attempt failed.
    package internal(set) var tileFailure: IOError?
    /// Every put and tombstone by key (see ``KeyIndex``); rebuilt from the records on open.
    @exclusivity(unchecked) package internal(set) var keys = KeyIndex()
    /// Locks, legal holds and retention policies (see ``RetentionState``); rebuilt with the keys.
    package internal(set) var retention = RetentionState()
    /// Sequence numbers of the retention, legal-hold, policy and config records (for index snapshots).
    package internal(set) var retentionRecords: [UInt64] = []
    /// For a store created before config records: the origin and governance key in
    /// `stele.conf`, which judge its records until it is migrated (see ``RetentionState/legacy``).
    package internal(set) var legacyPolicy: (origin: String, governanceKey: NoteVerifier?)?
    /// Whether `retention` was built from the log itself (false after a snapshot load, until
    /// ``verifyRetention()``).
    package internal(set) var retentionFromLog = true
    /// Where index snapshots go, and the tree size of the latest one.
    package var indexDirectory: String = ""
    package internal(set) var snapshotSize: UInt64 = 0
    /// Records after the latest snapshot that make the next seal write a new one.
    package var snapshotInterval: UInt64 = 1_000_000
    /// Set when the key index could not be rebuilt (a damaged record): key lookups are refused.
    package internal(set) var keysUnavailable: Corruption?
    /// Set when tiles could not be rebuilt (a damaged record): no tiles are written, no proofs served.
    package internal(set) var tilesUnavailable: Corruption?
    /// Set when the records contradict what was recorded about them after they were durable (the
    /// root in `tiles/state`): a record was altered. The writer refuses to append onto it.
    package internal(set) var tampered: Corruption?
    /// Where and with which key to sign a checkpoint at every seal (nil: no automatic checkpoints).
    package var sealCheckpoints: (store: CheckpointStore, signer: NoteSigner)?
    /// Why the latest automatic checkpoint was not signed, if it was not.
    package internal(set) var checkpointFailure: String?
    /// Where `reach` is kept (the store's root), for a writer; nil for readers and fsck.
    package var reachDirectory: String?
    /// Set when a new segment was created but `reach` not yet updated to name it (the write
    /// failed): no record goes into the segment before it is.
    private var reachPending = false
    /// The second core's thread for large batches (see ``appendInParallel(_:timestamp:)``),
    /// started by the first; ended at ``close()`` or when the log goes.
    var hashingThread: HelperThread?

    package var lastSealHash: Digest { sealed.last?.footer.sealHash ?? .zero }
    private var nextIndex: UInt64 { (sealed.last?.header.index ?? 0) + 1 }

    private init(fs: any FileSystem, directory: String, storeID: [UInt8], segmentSize: Int, writable: Bool, tiles: TileStore) {
        self.tiles = tiles
        self.fs = fs
        self.directory = directory
        self.storeID = storeID
        self.segmentSize = segmentSize
        self.writable = writable
    }

    /// Creates the first segment of a new store.
    package static func createFirstSegment(fs: any FileSystem, directory: String, storeID: [UInt8],
                                           segmentSize: Int, now: Int64) throws {
        let header = SegmentHeader(storeID: storeID, index: 1, firstSequence: 0, createdAt: now, previousSeal: .zero)
        let segment = try ActiveSegment.create(fs: fs, directory: directory, header: header, capacity: segmentSize)
        segment.close()
    }

    /// Opens the segments in `directory`, verifying the chain cheaply and recovering the active
    /// segment (see ``SegmentScan``). `lostAndFound` receives copies of discarded torn tails.
    package static func open(fs: any FileSystem, directory: String, storeID: [UInt8], segmentSize: Int,
                             writable: Bool, lostAndFound: String, tilesDirectory: String, indexDirectory: String = "",
                             unclean: Bool, legacyPolicy: (origin: String, governanceKey: NoteVerifier?)? = nil,
                             keyIndex: Bool = true) throws -> SegmentLog {
        let log = SegmentLog(fs: fs, directory: directory, storeID: storeID, segmentSize: segmentSize, writable: writable,
                             tiles: TileStore(fs: fs, directory: tilesDirectory, writable: writable))
        log.legacyPolicy = legacyPolicy
        var indices: [UInt64] = []
        for name in try fs.listDirectory(directory) {
            if let index = SegmentFiles.index(of: name) {
                indices.append(index)
            } else if name.hasSuffix(SegmentFiles.temporarySuffix) && writable {
                try fs.remove(directory + "/" + name)
                log.report.removedTemporaryFiles.append(name)
            }
        }
        indices.sort()
        guard !indices.isEmpty else {
            throw SteleError.corruption(Corruption(file: directory, detail: "no segment files: the log has been removed"))
        }
        for (position, index) in indices.enumerated() where index != UInt64(position + 1) {
            throw SteleError.corruption(Corruption(file: directory + "/" + SegmentFiles.name(UInt64(position + 1)),
                                                   detail: "segment \(position + 1) is missing (found \(index) in its place)"))
        }
        for index in indices.dropLast() {
            let segment = try SealedSegment.open(fs: fs, path: directory + "/" + SegmentFiles.name(index), expectedIndex: index)
            try log.link(segment)
        }
        try log.openLast(index: indices.count, lostAndFound: lostAndFound, unclean: unclean)
        log.indexDirectory = indexDirectory
        // The key index and the tiles are rebuilt from the same records on both cores at once:
        // they share nothing but the read-only segments (each sealed segment builds its offset
        // table under its own lock) and write disjoint fields; the tiles' half reports back
        // rather than touching `report`.
        let tiles = BackgroundTask { try log.restoreTiles() }
        var failure: (any Error)?
        do {
            if keyIndex {
                try log.rebuildKeys()
            } else {
                // Opened to read records by sequence only (verification): the policy records, no keys.
                try log.rebuildPolicy()
                log.keysUnavailable = Corruption(file: indexDirectory, detail: "the key index was not built: the store was opened to verify it")
            }
        } catch SteleError.notFound(let sequence, _) {
            log.keysUnavailable = Corruption(file: indexDirectory, sequence: sequence, detail: "index snapshot names a record the log lacks")
            log.report.keysUnavailable = "index snapshot names record \(sequence), which the log lacks"
        } catch SteleError.corruption(let damage) {
            log.keysUnavailable = damage
            log.report.keysUnavailable = damage.description
        } catch {
            failure = error
        }
        do {
            if let rebuilt = try tiles.value() { log.report.tilesRebuilt = rebuilt }
        } catch SteleError.corruption(let damage) {
            // Tiles are derived data: a damaged record must not keep the log closed. Proofs stay
            // unavailable until `stele fsck` has been run and the damage dealt with.
            log.tilesUnavailable = damage
            log.report.tilesUnavailable = damage.description
        } catch {
            failure = failure ?? error
        }
        if let failure {
            log.close()
            throw failure
        }
        return log
    }

    /// Checks that `segment` continues the chain, then adds it.
    private func link(_ segment: SealedSegment) throws {
        try checkHeader(segment.header, path: segment.path)
        let footer = segment.footer
        guard let restored = Frontier(size: footer.treeSize, hashes: footer.frontier), restored.root == footer.treeRoot else {
            throw SteleError.corruption(Corruption(file: segment.path, offset: Int(footer.framesEnd),
                                                   detail: "footer frontier does not produce the footer's tree root"))
        }
        sealed.append(segment)
        frontier = restored
        nextSequence = footer.lastSequence + 1
        lastTimestamp = max(lastTimestamp, footer.sealedAt)
        report.sealedSegments += 1
    }

    private func checkHeader(_ header: SegmentHeader, path: String) throws {
        guard header.storeID == storeID else {
            throw SteleError.corruption(Corruption(file: path, offset: 16, detail: "segment belongs to another store (store UUID differs)"))
        }
        guard header.firstSequence == nextSequence else {
            throw SteleError.corruption(Corruption(file: path, offset: 40, detail: "first sequence \(header.firstSequence), expected \(nextSequence)"))
        }
        guard header.previousSeal == lastSealHash else {
            throw SteleError.corruption(Corruption(file: path, offset: 56, detail: "chain broken: previous seal hash \(header.previousSeal) differs from the seal of the segment before (\(lastSealHash))"))
        }
    }

    /// Opens the last segment: sealed (its successor is created on the next append) or active.
    private func openLast(index: Int, lostAndFound: String, unclean: Bool) throws {
        let path = directory + "/" + SegmentFiles.name(UInt64(index))
        guard let status = try fs.status(path), status.isRegularFile else {
            throw SteleError.corruption(Corruption(file: path, detail: "segment file vanished"))
        }
        // An active segment always has exactly the configured size (it is preallocated and only
        // truncated by a seal); a file of any other size must be a sealed one.
        var sealedOnDisk = status.size != segmentSize
        if !sealedOnDisk {
            let probe = try fs.open(path, .readOnly)
            defer { fs.close(probe) }
            // A reader copies the file: a live writer may seal (and truncate) it meanwhile.
            let probeRegion = writable ? try fs.map(probe, length: status.size, writable: false)
                                       : try fs.snapshot(probe, length: status.size)
            if case .success = SegmentFooter.decodeAtEnd(probeRegion.wholeView) { sealedOnDisk = true }
        }
        if sealedOnDisk {
            try link(SealedSegment.open(fs: fs, path: path, expectedIndex: UInt64(index)))
            if writable && status.permissions & 0o222 != 0 {
                // A crash between the truncation and the mode change: finish the seal.
                let fd = try fs.open(path, .readWrite)
                defer { fs.close(fd) }
                try fs.setPermissions(fd, 0o444)
                try fs.syncAll(fd)
                report.completedSeal = path
            }
            return
        }
        let fd = try fs.open(path, writable ? .readWrite : .readOnly)
        let region: MappedRegion
        do {
            // Read-only beside a live writer: a copy, not a mapping (see `FileSystem.snapshot`).
            region = writable ? try fs.map(fd, length: try fs.size(fd), writable: true)
                              : try fs.snapshot(fd, length: try fs.size(fd))
        } catch {
            fs.close(fd)
            throw error
        }
        if !writable { fs.close(fd) }
        // From here the segment owns the descriptor (when writable) and closes it on every path.
        let view = region.wholeView
        let header: SegmentHeader
        var headerRecovered = false
        do {
            var decoded = SegmentHeader.decode(view)
            if case .failure(.checksum) = decoded,
               let recovered = SegmentHeader.recoverInterruptedUpdate(view, candidates: SegmentScan.frameEnds(view)) {
                decoded = .success(recovered)
                headerRecovered = true
            }
            header = try SealedSegment.check(decoded, path: path, offset: 0)
        } catch {
            if writable { fs.close(fd) }
            throw error
        }
        let scan = SegmentScan.scan(view, firstSequence: nextSequence, minimumTimestamp: lastTimestamp, frontier: frontier,
                                    durableEnd: Int(min(header.durableEnd, UInt64(view.count))))
        let segment = ActiveSegment(fs: fs, path: path, header: header, region: region, fd: writable ? fd : nil, scan: scan)
        do {
            guard header.index == UInt64(index) else {
                throw SteleError.corruption(Corruption(file: path, offset: 32, detail: "header says segment \(header.index)"))
            }
            try checkHeader(header, path: path)
            switch scan.tail {
            case .clean:
                break
            case .corrupt(let offset, let sequence, let detail):
                throw SteleError.corruption(Corruption(file: path, offset: offset, sequence: sequence, detail: detail))
            case .torn(let offset, let length, let reason):
                var saved: String?
                if writable {
                    saved = try saveTornBytes(view.slice(offset, length), segment: index, offset: offset, to: lostAndFound)
                    try segment.discardTail(fs: fs, offset: offset, length: length)
                }
                report.tornTail = .init(file: path, offset: offset, bytes: length, reason: reason, savedTo: saved)
            case .sealFooter(let footer):
                if writable {
                    // The footer is there; the truncation and the mode change were lost, and so
                    // may the header's raised durable end be (its page and the footer's reach the
                    // disk in either order, found by the power-cut model): every frame up to the
                    // footer was just verified against it, so the header vouches for them again.
                    segment.markDurable(through: Int(footer.framesEnd))
                    _ = try segment.seal(fs: fs, footer: footer, syncedThrough: scan.end)
                    report.completedSeal = path
                    try link(SealedSegment.open(fs: fs, path: path, expectedIndex: UInt64(index)))
                    return
                }
            }
            if writable && headerRecovered {
                // Write the header whole again, with the durable end it vouched for.
                try segment.rewriteHeader()
                report.completedHeaderUpdate = path
            }
            if writable && unclean {
                // After a crash, what recovery just read may exist only in the page cache (a
                // failed writeback leaves pages cached but clean): write it all out again.
                try segment.rewriteThroughCache()
                report.rewroteAfterUncleanShutdown = segment.writeOffset
            }
        } catch {
            segment.close()
            throw error
        }
        active = segment
        frontier = scan.frontier
        nextSequence = scan.nextSequence
        lastTimestamp = scan.lastTimestamp
        report.activeRecords = segment.recordCount
    }

    private func saveTornBytes(_ bytes: ByteView, segment: Int, offset: Int, to directory: String) throws -> String {
        if try fs.status(directory) == nil { try fs.makeDirectory(directory) }
        let stem = directory + "/" + SegmentFiles.name(UInt64(segment)) + "-\(offset)"
        var path = stem + ".torn"
        var attempt = 1
        while try fs.status(path) != nil {
            path = stem + "-\(attempt).torn"
            attempt += 1
        }
        let fd = try fs.open(path, .createNew(permissions: 0o444))
        defer { fs.close(fd) }
        try bytes.withBuffer { try fs.write(fd, $0, at: 0) }
        try fs.syncAll(fd)
        try fs.syncDirectory(directory)
        return path
    }

    // MARK: Appending

    /// Takes a timestamp for a new batch: the clock's reading, but never earlier than the last
    /// record's, so timestamps never decrease along the log.
    package func nextTimestamp(clock: Int64) -> Int64 {
        lastTimestamp = max(lastTimestamp, clock)
        return lastTimestamp
    }

    /// Appends one record with the next sequence number, rotating segments as needed.
    /// `value` is the logical value (hashed); `stored` is what goes on disk (maybe LZ4).
    /// `keyHash`: the key's ``KeyIndex/hash(namespace:key:)``, if the caller computed it (to prefetch).
    @inline(__always)
    package func append(type: RecordType, flags: UInt8, timestamp: Int64, namespace: UnsafeRawBufferPointer,
                        key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, stored: UnsafeRawBufferPointer,
                        keyHash: UInt64? = nil) throws -> UInt64 {
        let length = Frame.length(namespace: namespace.count, key: key.count, stored: stored.count)
        if active?.hasRoom(for: length) != true { try rotate() }
        if reachPending { try writeReach(open: true) }
        guard let segment = active, segment.hasRoom(for: length) else {
            throw SteleError.invalidArgument("record of \(length) bytes does not fit in a segment of \(segmentSize) bytes")
        }
        let sequence = nextSequence
        let leaf = CanonicalEntry.leafHash(type: type, sequence: sequence, timestamp: timestamp,
                                           namespace: namespace.view, key: key.view, value: value.view)
        let hint = KeyIndex.FrameHint(segment: segment.header.index, offset: segment.writeOffset)
        segment.append(type: type, flags: flags, sequence: sequence, timestamp: timestamp, namespace: namespace,
                       key: key, stored: stored, valueLength: value.count, leafHash: leaf)
        addToTree(leaf)
        index(type: type, sequence: sequence, timestamp: timestamp, namespace: namespace, key: key, value: value, hint: hint,
              keyHash: keyHash)
        nextSequence += 1
        return sequence
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
        return last
    }

    /// A seal's sync, truncate or fsync failed: the segment's durability is unknown, so the
    /// store must stop accepting writes (fsync-gate semantics).
    package struct SealFailed: Error {
        package let cause: IOError
    }

    /// Records in sealed segments: durable whatever the commit policy.
    package var sealedRecordCount: UInt64 { sealed.last.map { $0.footer.lastSequence + 1 } ?? 0 }

    // MARK: Reading

    /// Where the frame of `sequence` lives.
    package enum Location: Sendable {
        /// In a sealed segment: at `hint` if given (checked, see ``KeyIndex/FrameHint``), else
        /// where the segment's offset table says.
        case sealed(SealedSegment, hint: Int?)
        case active(MappedRegion, offset: Int, limit: Int, path: String)

        /// The segment file, for error messages.
        var path: String {
            switch self {
            case .sealed(let segment, _): segment.path
            case .active(_, _, _, let path): path
            }
        }

        /// Decodes the frame of record `sequence` here, checks its XXH3 and that it is that
        /// record, and hands it to `body` while the mapping is held. Safe outside the store's
        /// lock: mappings stay valid while referenced, and a sealed segment's offset table is
        /// built once, under its own lock.
        /// - Throws: ``SteleError/corruption(_:)`` naming the file and offset; what `body` throws.
        @inline(__always)
        func withFrame<R>(_ sequence: UInt64, _ body: (FrameInfo, ByteView) throws -> R) throws -> R {
            let region: MappedRegion, offset: Int, limit: Int
            switch self {
            case .sealed(let segment, let hint?):
                // A purge may have moved the frame since the hint was taken: then the frame
                // found there is another record's, or none, and the offset table decides.
                let view = segment.region.wholeView
                if case .success(let frame) = Frame.decode(view, at: hint, limit: Int(segment.footer.framesEnd)), frame.sequence == sequence {
                    return try withExtendedLifetime(segment.region) { try body(frame, view) }
                }
                return try Location.sealed(segment, hint: nil).withFrame(sequence, body)
            case .sealed(let segment, nil):
                (region, offset, limit) = (segment.region, try segment.offset(of: sequence), Int(segment.footer.framesEnd))
            case .active(let r, let o, let l, _):
                (region, offset, limit) = (r, o, l)
            }
            return try withExtendedLifetime(region) {
                let view = region.wholeView
                switch Frame.decode(view, at: offset, limit: limit) {
                case .failure(let defect):
                    throw SteleError.corruption(Corruption(file: path, offset: offset, sequence: sequence, detail: defect.description))
                case .success(let frame):
                    guard frame.sequence == sequence else {
                        throw SteleError.corruption(Corruption(file: path, offset: offset, sequence: sequence,
                                                               detail: "frame holds sequence \(frame.sequence)"))
                    }
                    return try body(frame, view)
                }
            }
        }
    }

    package func locate(_ sequence: UInt64) throws -> Location {
        guard sequence < nextSequence else { throw SteleError.notFound(sequence: sequence, count: nextSequence) }
        if let segment = active, sequence >= segment.header.firstSequence {
            let offset = Int(segment.offsets[Int(sequence - segment.header.firstSequence)])
            return .active(segment.region, offset: offset, limit: segment.writeOffset, path: segment.path)
        }
        return .sealed(sealed[sealedPosition(containing: sequence)], hint: nil)
    }

    /// ``locate(_:)``, taking the frame's place from `hint` when it names a sealed segment
    /// (checked when the frame is read) instead of the segment's offset table.
    package func locate(_ sequence: UInt64, hint: KeyIndex.FrameHint) throws -> Location {
        if let number = hint.segment, number <= UInt64(sealed.count), number >= 1 {
            let segment = sealed[Int(number) - 1]
            if segment.header.index == number, segment.header.firstSequence <= sequence, sequence <= segment.footer.lastSequence {
                return .sealed(segment, hint: hint.offset)
            }
        }
        return try locate(sequence)
    }

    /// Decodes the frame of record `sequence` (checksum verified) and hands it to `body` while
    /// its mapping is held.
    func withFrame<R>(at sequence: UInt64, _ body: (FrameInfo, ByteView) throws -> R) throws -> R {
        try locate(sequence).withFrame(sequence, body)
    }

    /// The position in `sealed` of the segment whose range holds `sequence` (which must be sealed).
    func sealedPosition(containing sequence: UInt64) -> Int {
        var low = 0, high = sealedFirstSequences.count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if sealedFirstSequences[mid] <= sequence { low = mid } else { high = mid - 1 }
        }
        return low
    }

    /// Makes the active segment durable and records that in its header (at a clean close).
    package func syncForClose() throws {
        guard writable, let segment = active else { return }
        try syncGate.run {
            try fs.syncMapped(segment.region, 0 ..< segment.writeOffset)
            segment.markDurable(through: segment.writeOffset)
            try fs.syncMapped(segment.region, 0 ..< SegmentHeader.size)
        }
    }

    /// Releases files and mappings, and ends the hashing thread.
    package func close() {
        active?.close()
        hashingThread?.stop()
        hashingThread = nil
    }

    deinit { hashingThread?.stop() }
}

extension UnsafeRawBufferPointer {
    /// A ``ByteView`` of the same bytes (a dangling-safe base for empty buffers).
    @inline(__always) package var view: ByteView {
        ByteView(base: baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, count: count)
    }
}
