import SteleNative

/// `stele fsck`: checks everything a store holds against everything else, reading the files
/// directly (never through `Store`, which refuses damaged stores), and changes nothing unless
/// asked to repair.
///
/// One pass over the log in order, checking each frame's XXH3, contiguous sequence numbers and
/// non-decreasing timestamps, recomputing every leaf hash, the content digest, the Merkle tree
/// and the seal of every segment, the chain from segment to segment, every tile against the
/// recomputed tree, every stored checkpoint's root, the index snapshot against the records, and
/// every redaction stub against the redaction records and the locks in force when it was made.
/// External checkpoints (held elsewhere) are checked for signature and consistency: only they
/// can catch a history rewritten with every hash recomputed.
public enum Fsck {
    /// A checkpoint held outside the store, with the key that signed it.
    public struct ExternalCheckpoint: Sendable {
        /// The signed checkpoint note, as the store (or `stele checkpoint`) wrote it.
        public var note: String
        /// The key that must have signed it.
        public var verifier: NoteVerifier
        /// A checkpoint to check the store against; ``Fsck/check(path:externalCheckpoints:repair:progress:)``
        /// checks its signature.
        public init(note: String, verifier: NoteVerifier) {
            self.note = note
            self.verifier = verifier
        }
    }

    /// Checks the store at `path`. With `repair`, afterwards fixes what is provably safe (a torn
    /// tail of the active segment, tiles and the index snapshot, all rebuilt from the verified
    /// log) and checks again.
    ///
    /// Reads the files directly, so it runs on a store that ``Store`` refuses to open, and beside
    /// a live writer (whose files in flight are reported apart, in ``FsckReport/inFlight``).
    /// - Parameters:
    ///   - path: the store directory.
    ///   - externalCheckpoints: checkpoints held outside the store, each with its verifier key;
    ///     only they can catch a history rewritten with every hash recomputed.
    ///   - repair: fix what is provably safe when every problem found is of that kind, then check
    ///     again; refused (``SteleError/locked(path:)``) while a writer has the store open.
    ///   - progress: called after each segment with (segments done, segments in all).
    /// - Returns: every problem found, with what was checked; ``FsckReport/exitCode`` is
    ///   e2fsck's.
    /// - Throws: ``SteleError`` when the store cannot be read at all (the CLI's exit code 8).
    /// - Cost: reads every byte of the log, the tiles and the index snapshot: about 2 M
    ///   records/s for 100-byte records (`docs/benchmarks.md`).
    public static func check(path: String, externalCheckpoints: [ExternalCheckpoint] = [], repair: Bool = false,
                             progress: ((Int, Int) -> Void)? = nil) throws -> FsckReport {
        let start = ContinuousClock.now
        let layout = StoreLayout(root: path)
        let writerActive = LockFile.isHeld(fs: PosixFileSystem(), path: layout.lock)
        // Repairs rewrite files a writer relies on: only with the store closed.
        if repair && writerActive { throw SteleError.locked(path: path) }
        var run = try FsckRun(path: path, external: externalCheckpoints)
        run.progress = progress
        try run.check()
        var report = run.report
        if writerActive {
            report.writerActive = true
            let purgedMeanwhile = report.problems.contains { $0.found == FsckRun.unallowedStub } ? run.redactionsPastThePass() : []
            func inFlight(_ problem: FsckProblem) -> Bool {
                problem.category == .layout || problem.category == .tile
                    || (problem.found == FsckRun.unallowedStub && problem.sequence.map(purgedMeanwhile.contains) == true)
            }
            report.inFlight = report.problems.filter(inFlight)
            report.problems.removeAll(where: inFlight)
        }
        if repair && !report.problems.isEmpty && report.problems.allSatisfy({ run.repairable.contains($0) }) {
            let repairs = try run.repairAll()
            var again = try FsckRun(path: path, external: externalCheckpoints)
            try again.check()
            report = again.report
            report.repairs = repairs
        }
        let elapsed = ContinuousClock.now - start
        report.seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return report
    }
}

struct FsckRun {
    let fs = PosixFileSystem()
    let layout: StoreLayout
    let config: StoreConfig
    let external: [(Fsck.ExternalCheckpoint, Checkpoint?)]
    var report = FsckReport()
    var repairable: [FsckProblem] = []
    var progress: ((Int, Int) -> Void)?

    // Streaming state over the log.
    var frontier = Frontier()
    var nextSequence: UInt64 = 0
    var lastTimestamp = Int64.min
    var previousSeal = Digest.zero
    /// The snapshot's index, decoded: every put and tombstone before its size must be in it.
    var snapshotKeys: KeyIndex?
    var snapshotVersionsSeen = 0
    var snapshotMissing: (sequence: UInt64, file: String, offset: Int)?
    var retention = RetentionState()
    var retentionRecords: [UInt64] = []
    var tileBuilder = TileBuilder()
    let tileStore: TileStore
    /// Set once a leaf could not be recomputed: tiles after it are not checked (the pass goes
    /// on from the next footer's frontier, which the seal chain vouches for).
    var tilesUncheckedFrom: UInt64?
    var wantedRoots: Set<UInt64> = []
    var roots: [UInt64: Digest] = [0: TreeHash.emptyRoot]
    var tileState: TileState?
    var tilePartialsAtState: [[Digest]]?
    var snapshot: IndexSnapshot?
    /// Redaction records: (record sequence, its time, the sequences it purges).
    var redactions: [(record: UInt64, time: Int64, purged: [UInt64], path: String, retention: RetentionState)] = []
    /// Redaction stubs seen: sequence → where.
    var stubs: [UInt64: (file: String, offset: Int)] = [:]
    /// Sequences a redaction record allowed to purge.
    var authorized: Set<UInt64> = []
    /// Index and first sequence number of every segment checked (for the loss evidence).
    var segmentStarts: [(index: UInt64, first: UInt64)] = []
    /// Inside a recorded loss: the sequence number its placeholders run up to.
    var lossPlaceholdersEnd: UInt64?
    /// Mapped segments and frame offsets, to re-read a record when a redaction record names it.
    var mapped: [(region: MappedRegion, first: UInt64, offsets: [UInt32], path: String)] = []

    /// The evidence of how far the log reached, read before the log is listed (a live writer
    /// may write newer evidence meanwhile).
    var evidence: LossEvidence.Gathered

    /// The store's UUID: the first segment's (`stele.conf` is checked against it, not trusted).
    let storeID: [UInt8]
    /// The segment size: the log's genesis record's, else `stele.conf`'s.
    var segmentSize: Int { retention.identity?.segmentSize ?? config.segmentSize }

    init(path: String, external: [Fsck.ExternalCheckpoint]) throws {
        layout = StoreLayout(root: path)
        evidence = LossEvidence.gather(fs: fs, layout: layout)
        config = try Store.readConfig(fs: fs, layout: layout)
        storeID = Store.firstSegmentIdentity(fs: fs, layout: layout)?.storeID ?? config.storeID
        retention.legacy = (config.origin, config.governanceKey)
        tileStore = TileStore(fs: fs, directory: layout.tiles, writable: false, verifying: true)
        self.external = external.map { ($0, try? Checkpoint(parsing: SignedNote.open($0.note, verifier: $0.verifier))) }
    }

    mutating func problem(_ category: FsckProblem.Category, _ file: String, offset: Int? = nil, sequence: UInt64? = nil,
                          expected: String, found: String, repairable: Bool = false) {
        let p = FsckProblem(category: category, file: file, offset: offset, sequence: sequence, expected: expected, found: found)
        report.problems.append(p)
        if repairable { self.repairable.append(p) }
    }

    // MARK: The pass

    mutating func check() throws {
        checkLayout()
        collectWantedRoots()
        let names = try fs.listDirectory(layout.segments)
        var indices: [UInt64] = []
        for name in names {
            if let index = SegmentFiles.index(of: name) { indices.append(index) } else if !name.hasSuffix(SegmentFiles.temporarySuffix) {
                problem(.layout, layout.segments + "/" + name, expected: "only segment files", found: "a stray file")
            }
        }
        indices.sort()
        func path(_ index: UInt64) -> String { layout.segments + "/" + SegmentFiles.name(index) }
        // The next segment is prescanned on the second core while this one is checked; the
        // prescan only reads its file and the snapshot index, which nothing writes meanwhile.
        var lookahead: BackgroundTask<Prescan>?
        defer { lookahead?.join() }
        if indices.isEmpty { problem(.chain, layout.segments, expected: "at least one segment", found: "none: the log was removed") }
        for (position, index) in indices.enumerated() {
            if index != UInt64(position + 1) {
                problem(.chain, layout.segments + "/" + SegmentFiles.name(UInt64(position + 1)),
                        expected: "segment \(position + 1)", found: "segment \(index) in its place (segments missing)")
            }
            // Snapshot lookups are split between the two cores: the prescan does them for even
            // segments, the in-order check for odd ones (measured: balances the two threads).
            let snapshotIndex = snapshotKeys.flatMap { keys in snapshot.map { (keys, $0.treeSize) } }
            let scan = try lookahead?.value() ?? FsckRun.prescan(fs: fs, path: path(index), snapshot: index % 2 == 0 ? snapshotIndex : nil)
            lookahead = nil
            if position + 1 < indices.count {
                let next = indices[position + 1], nextPath = path(next), fs = fs
                lookahead = BackgroundTask { FsckRun.prescan(fs: fs, path: nextPath, snapshot: next % 2 == 0 ? snapshotIndex : nil) }
            }
            try checkSegment(index: index, isLast: position == indices.count - 1, scan)
            lookahead?.join()
            report.segments += 1
            progress?(position + 1, indices.count)
        }
        report.records = nextSequence
        do {
            try retention.finishReplay()
        } catch {
            problem(.retention, layout.segments, expected: "every governance bypass authorized", found: error.reason)
        }
        finishTiles()
        finishCheckpoints()
        finishSnapshot()
        checkRedactions()
        checkStubs()
        checkConfig()
        checkLoss()
    }

    mutating func checkLayout() {
        var known: Set<String> = [StoreConfig.fileName, "LOCK", LogReach.fileName, "segments", "tiles", "checkpoints", "index", "lost+found",
                                  StoreLayout.epochFileName, FenceMarker.fileName, "promote-request", "promote-answer"]
        // An encrypted store's keyring (what the log and stele.conf say of encryption is
        // checked with the config records).
        if config.encryptionKey != nil { known.insert("keyring") }
        for name in (try? fs.listDirectory(layout.root)) ?? [] where !known.contains(name) {
            problem(.layout, layout.root + "/" + name, expected: "only Stele's files", found: "a stray entry")
        }
        for directory in layout.directories where (try? fs.status(directory))??.isDirectory != true {
            problem(.layout, directory, expected: "a directory", found: "nothing")
        }
        if (try? fs.status(layout.lock))??.isRegularFile != true {
            problem(.layout, layout.lock, expected: "the writer lock file", found: "nothing (a writer's open recreates it)", repairable: true)
        }
    }

    mutating func collectWantedRoots() {
        for (_, checkpoint) in external { if let checkpoint { wantedRoots.insert(checkpoint.treeSize) } }
        for path in checkpointFiles() {
            if let note = readText(path), let body = try? CheckpointStore.body(of: note, path: path) { wantedRoots.insert(body.treeSize) }
        }
        do {
            if let state = try tileStore.readState() {
                tileState = state
                wantedRoots.insert(state.size)
            }
        } catch {
            problem(.tile, layout.tiles + "/state", expected: "a valid tile state", found: "\(error)", repairable: true)
        }
        let snapshotPath = layout.index + "/snapshot"
        if let bytes = readBytes(snapshotPath) {
            if let decoded = IndexSnapshot.decode(bytes) {
                snapshot = decoded
                snapshotKeys = decoded.keys
                wantedRoots.insert(decoded.treeSize)
            } else {
                problem(.index, snapshotPath, expected: "a valid index snapshot", found: "damaged bytes", repairable: true)
            }
        }
    }

    mutating func checkSegment(index: UInt64, isLast: Bool, _ scan: Prescan) throws {
        let path = scan.path
        if let failure = scan.failure { throw failure }
        guard let region = scan.region else {
            return problem(.layout, path, expected: "a segment", found: "\(scan.size) bytes")
        }
        let size = scan.size
        report.bytes += size
        let view = region.wholeView
        guard let header = scan.header else {
            return problem(.checksum, path, offset: 0, expected: "a valid segment header", found: "damage")
        }
        if let durableEnd = scan.interruptedHeaderUpdate {
            // A crash between the two stores of a durable-end update; not damage (see
            // SegmentHeader.recoverInterruptedUpdate). Opening the store writes the header whole.
            problem(.layout, path, offset: 88, expected: "a header whose checksum matches",
                    found: "a durable-end update cut short by a crash (read with durable end \(durableEnd))", repairable: isLast)
        }
        segmentStarts.append((header.index, header.firstSequence))
        if header.storeID != storeID { problem(.chain, path, offset: 16, expected: "store \(hexString(storeID))", found: "store \(hexString(header.storeID))") }
        if header.index != index { problem(.chain, path, offset: 32, expected: "segment \(index)", found: "segment \(header.index)") }
        if header.firstSequence != nextSequence {
            problem(.sequence, path, offset: 40, expected: "first sequence \(nextSequence)", found: "\(header.firstSequence)")
        }
        if header.previousSeal != previousSeal {
            problem(.chain, path, offset: 56, expected: "previous seal \(previousSeal.hex)", found: header.previousSeal.hex)
        }
        let footer = scan.footer
        if footer == nil && !isLast {
            problem(.chain, path, offset: size, expected: "a sealed segment (footer)", found: "no valid footer")
        }
        snapshotVersionsSeen += scan.snapshotVersionsSeen
        if snapshotMissing == nil, let missing = scan.snapshotMissing { snapshotMissing = (missing.sequence, path, missing.offset) }
        if index % 2 == 1, let keys = snapshotKeys, let size = snapshot?.treeSize {
            for frame in scan.frames where frame.sequence < size && (frame.type == .put || frame.type == .tombstone) {
                snapshotVersionsSeen += 1
                if snapshotMissing == nil && !FsckRun.snapshotHolds(keys, frame, view) { snapshotMissing = (frame.sequence, path, frame.offset) }
            }
        }
        var content = SHA256Hasher()
        mapped.append((region, header.firstSequence, [], path))
        mapped[mapped.count - 1].offsets.reserveCapacity(scan.frames.count)
        var count: UInt64 = 0
        for (frame, leaf) in zip(scan.frames, scan.leaves) {
            if frame.sequence != nextSequence {
                problem(.sequence, path, offset: frame.offset, sequence: frame.sequence, expected: "sequence \(nextSequence)", found: "\(frame.sequence)")
            }
            if frame.timestamp < lastTimestamp {
                problem(.sequence, path, offset: frame.offset, sequence: frame.sequence, expected: "timestamp ≥ \(lastTimestamp)", found: "\(frame.timestamp)")
            }
            mapped[mapped.count - 1].offsets.append(UInt32(frame.offset))
            content.update(leaf)
            noteRecord(frame, view, leaf: leaf, path: path)
            nextSequence = frame.sequence &+ 1
            lastTimestamp = max(lastTimestamp, frame.timestamp)
            count += 1
        }
        var damaged = false
        switch scan.stop {
        case nil:
            break
        case .tail(let offset, let bytes):
            problem(.checksum, path, offset: offset, sequence: nextSequence, expected: "zeros after the last frame",
                    found: "\(bytes) bytes of data (a torn tail)", repairable: UInt64(offset) >= header.durableEnd)
        case .damaged(let offset, let reason):
            let torn = footer == nil && UInt64(offset) >= header.durableEnd
            problem(.checksum, path, offset: offset, sequence: nextSequence, expected: "a valid frame",
                    found: reason + (torn ? " (a torn tail after the durable end)" : ""), repairable: torn)
            damaged = true
        case .badValue(let offset, let sequence):
            problem(.checksum, path, offset: offset, sequence: sequence, expected: "a decodable LZ4 value", found: "garbage")
            damaged = true
        }
        if footer == nil {
            // The active segment: synced frames may not be missing, and its size is fixed.
            if UInt64(scan.end) < header.durableEnd, scan.stop == nil {
                problem(.checksum, path, offset: scan.end, sequence: nextSequence, expected: "frames up to the durable end \(header.durableEnd)",
                        found: "frames end at \(scan.end): synced records are missing")
            }
            if size != segmentSize {
                problem(.layout, path, expected: "an active segment of \(segmentSize) bytes", found: "\(size) bytes (truncated?)")
            }
        }
        guard let footer else { return }
        defer {
            resync(to: footer, damaged: damaged)
            previousSeal = footer.sealHash
        }
        if damaged { return }  // the footer cannot be compared with a partial walk
        let expectedFooter = (count: count, first: header.firstSequence, size: frontier.size, root: frontier.root, digest: content.finalize())
        if footer.recordCount != expectedFooter.count || footer.firstSequence != expectedFooter.first {
            problem(.sequence, path, offset: Int(footer.framesEnd), expected: "\(expectedFooter.count) records from \(expectedFooter.first)",
                    found: "footer says \(footer.recordCount) from \(footer.firstSequence)")
        }
        if footer.contentDigest != expectedFooter.digest {
            problem(.tree, path, offset: Int(footer.framesEnd) + 96, expected: "content digest \(expectedFooter.digest.hex)", found: footer.contentDigest.hex)
        }
        if footer.treeSize != expectedFooter.size || footer.treeRoot != expectedFooter.root || footer.frontier != frontier.hashes {
            problem(.tree, path, offset: Int(footer.framesEnd) + 56, expected: "tree size \(expectedFooter.size) root \(expectedFooter.root.hex)",
                    found: "size \(footer.treeSize) root \(footer.treeRoot.hex)")
        }
        if footer.computeSealHash(header: header) != footer.sealHash {
            problem(.chain, path, offset: Int(footer.framesEnd) + 128 + 32 * footer.frontier.count, expected: "the seal hash of its fields",
                    found: footer.sealHash.hex)
        }
        if header.durableEnd != footer.framesEnd {
            problem(.layout, path, offset: 88, expected: "durable end \(footer.framesEnd)", found: "\(header.durableEnd)")
        }
        if let mode = try fs.status(path)?.permissions, mode & 0o222 != 0 {
            // The last segment may be left writable by a crash between truncate and chmod.
            problem(.layout, path, expected: "a read-only sealed segment (0444)", found: String(mode, radix: 8), repairable: isLast)
        }
    }

    /// After a damaged or disagreeing segment, go on from its footer (checksummed, and vouched
    /// for by the seal chain), so that later segments and checkpoints are judged on their own.
    mutating func resync(to footer: SegmentFooter, damaged: Bool) {
        guard damaged || footer.treeRoot != frontier.root || footer.treeSize != frontier.size,
              let restored = Frontier(size: footer.treeSize, hashes: footer.frontier) else { return }
        if tilesUncheckedFrom == nil { tilesUncheckedFrom = nextSequence }
        frontier = restored
        nextSequence = footer.lastSequence &+ 1
        lastTimestamp = max(lastTimestamp, footer.sealedAt)
        if wantedRoots.contains(frontier.size) { roots[frontier.size] = frontier.root }
    }

    /// Feeds one verified record into the tree, the tiles, the index and the retention state.
    mutating func noteRecord(_ frame: FrameInfo, _ view: ByteView, leaf: Digest, path: String) {
        if tilesUncheckedFrom == nil {
            tileBuilder.append(leaf: leaf, frontier: &frontier, store: tileStore)
        } else {
            frontier.append(leaf)
        }
        if frame.isRedacted { stubs[frame.sequence] = (path, frame.offset) }
        if let end = lossPlaceholdersEnd, frame.sequence < end, frame.type != .loss {
            problem(.loss, path, offset: frame.offset, sequence: frame.sequence, expected: "a loss placeholder (the recorded loss runs to \(end))",
                    found: "a \(frame.type) record")
            lossPlaceholdersEnd = nil
        }
        switch frame.type {
        case .put, .tombstone:
            break
        case .retention, .legalHold, .policy, .config:
            let ns = view.slice(frame.namespace.lowerBound, frame.namespace.count).array
            let key = view.slice(frame.key.lowerBound, frame.key.count).array
            guard let value = frame.value(in: view) else {
                return problem(.retention, path, offset: frame.offset, sequence: frame.sequence, expected: "a valid \(frame.type) record", found: "malformed")
            }
            do {
                try retention.apply(type: frame.type, sequence: frame.sequence, timestamp: frame.timestamp, namespace: ns, key: key, value: value)
                retentionRecords.append(frame.sequence)
            } catch {
                problem(.retention, path, offset: frame.offset, sequence: frame.sequence, expected: "a valid \(frame.type) record",
                        found: error.reason)
            }
        case .redaction:
            guard let value = frame.value(in: view), let record = RedactionRecord.decode(value) else {
                return problem(.retention, path, offset: frame.offset, sequence: frame.sequence, expected: "a valid redaction record", found: "malformed")
            }
            for purged in record.sequences { authorized.insert(purged) }
            redactions.append((frame.sequence, frame.timestamp, record.sequences, path, retention))
        case .loss:
            noteLoss(frame, view, path: path)
        case .shred:
            // Only an encrypted store shreds, a namespace it names, with a well-formed record.
            guard config.encryptionKey != nil, !frame.namespace.isEmpty, frame.key.isEmpty,
                  let value = frame.value(in: view), ShredRecord.decode(value) != nil else {
                return problem(.retention, path, offset: frame.offset, sequence: frame.sequence,
                               expected: "a valid shred record of an encrypted store", found: "malformed or out of place")
            }
        case .checkpointMarker:
            break
        }
        let size = frontier.size
        if wantedRoots.contains(size) { roots[size] = frontier.root }
        if tileState?.size == size { tilePartialsAtState = tileBuilder.pending }

    }

}

