#if canImport(Glibc)
import Glibc
#endif

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
        public var note: String
        public var verifier: NoteVerifier
        public init(note: String, verifier: NoteVerifier) {
            self.note = note
            self.verifier = verifier
        }
    }

    /// Checks the store at `path`. With `repair`, afterwards fixes what is provably safe (a torn
    /// tail of the active segment, tiles and the index snapshot, all rebuilt from the verified
    /// log) and checks again.
    /// - Throws: ``SteleError`` when the store cannot be read at all (exit code 8).
    /// - Parameter progress: called after each segment with (segments done, segments in all).
    public static func check(path: String, externalCheckpoints: [ExternalCheckpoint] = [], repair: Bool = false,
                             progress: ((Int, Int) -> Void)? = nil) throws -> FsckReport {
        let start = ContinuousClock.now
        var run = try FsckRun(path: path, external: externalCheckpoints)
        run.progress = progress
        try run.check()
        var report = run.report
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

private struct FsckRun {
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
    var redactions: [(record: UInt64, time: Int64, purged: [UInt64], path: String)] = []
    /// Redaction stubs seen: sequence → where.
    var stubs: [UInt64: (file: String, offset: Int)] = [:]
    /// Sequences a redaction record allowed to purge.
    var authorized: Set<UInt64> = []
    /// Mapped segments and frame offsets, to re-read a record when a redaction record names it.
    var mapped: [(region: MappedRegion, first: UInt64, offsets: [UInt32], path: String)] = []

    init(path: String, external: [Fsck.ExternalCheckpoint]) throws {
        layout = StoreLayout(root: path)
        config = try Store.readConfig(fs: fs, layout: layout)
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
            if let index = SegmentFiles.index(of: name) { indices.append(index) } else {
                problem(.layout, layout.segments + "/" + name, expected: "only segment files", found: "a stray file")
            }
        }
        indices.sort()
        func path(_ index: UInt64) -> String { layout.segments + "/" + SegmentFiles.name(index) }
        let lookahead = Lookahead()
        if indices.isEmpty { problem(.chain, layout.segments, expected: "at least one segment", found: "none: the log was removed") }
        for (position, index) in indices.enumerated() {
            if index != UInt64(position + 1) {
                problem(.chain, layout.segments + "/" + SegmentFiles.name(UInt64(position + 1)),
                        expected: "segment \(position + 1)", found: "segment \(index) in its place (segments missing)")
            }
            // Snapshot lookups are split between the two cores: the prescan does them for even
            // segments, the in-order check for odd ones (measured: balances the two threads).
            let snapshotIndex = snapshotKeys.flatMap { keys in snapshot.map { (keys, $0.treeSize) } }
            let scan = lookahead.take() ?? FsckRun.prescan(fs: fs, path: path(index), snapshot: index % 2 == 0 ? snapshotIndex : nil)
            if position + 1 < indices.count {
                let next = indices[position + 1]
                lookahead.start(path: path(next), fs: fs, snapshot: next % 2 == 0 ? snapshotIndex : nil)
            }
            try checkSegment(index: index, isLast: position == indices.count - 1, scan)
            lookahead.finish()
            report.segments += 1
            progress?(position + 1, indices.count)
        }
        report.records = nextSequence
        finishTiles()
        finishCheckpoints()
        finishSnapshot()
        checkRedactions()
        checkStubs()
    }

    mutating func checkLayout() {
        let known: Set<String> = [StoreConfig.fileName, "LOCK", "segments", "tiles", "checkpoints", "index", "lost+found"]
        for name in (try? fs.listDirectory(layout.root)) ?? [] where !known.contains(name) {
            problem(.layout, layout.root + "/" + name, expected: "only Stele's files", found: "a stray entry")
        }
        for directory in layout.directories where (try? fs.status(directory))??.isDirectory != true {
            problem(.layout, directory, expected: "a directory", found: "nothing")
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

    /// The part of a segment's check that needs nothing from the segments before it: map it,
    /// decode header and footer, decode and checksum every frame, hash every leaf. It runs on the
    /// second core for the next segment while this one is checked in order.
    struct Prescan: @unchecked Sendable {
        enum Stop {
            case tail(offset: Int, bytes: Int)
            case damaged(offset: Int, reason: String)
            case badValue(offset: Int, sequence: UInt64)
        }
        var path: String
        var size = 0
        var region: MappedRegion?
        var header: SegmentHeader?
        var footer: SegmentFooter?
        var frames: [FrameInfo] = []
        var leaves: [Digest] = []
        var stop: Stop?
        var failure: (any Error)?
        /// Puts and tombstones before the snapshot's size, and the first one missing from it.
        var snapshotVersionsSeen = 0
        var snapshotMissing: (sequence: UInt64, offset: Int)?
    }

    /// Whether the snapshot index holds this put or tombstone.
    static func snapshotHolds(_ keys: KeyIndex, _ frame: FrameInfo, _ view: ByteView) -> Bool {
        view.slice(frame.namespace.lowerBound, frame.namespace.count).withBuffer { ns in
            view.slice(frame.key.lowerBound, frame.key.count).withBuffer { key in
                withUnsafeTemporaryAllocation(byteCount: ns.count + 1 + key.count, alignment: 1) { buffer in
                    guard let base = buffer.baseAddress else { return false }
                    if let n = ns.baseAddress { base.copyMemory(from: n, byteCount: ns.count) }
                    buffer[ns.count] = 0
                    if let k = key.baseAddress { (base + ns.count + 1).copyMemory(from: k, byteCount: key.count) }
                    return keys.contains(UnsafeRawBufferPointer(buffer),
                                         version: KeyIndex.VersionRef(sequence: frame.sequence, deleted: frame.type == .tombstone))
                }
            }
        }
    }

    static func prescan(fs: PosixFileSystem, path: String, snapshot: (keys: KeyIndex, size: UInt64)?) -> Prescan {
        var scan = Prescan(path: path)
        do {
            let fd = try fs.open(path, .readOnly)
            defer { fs.close(fd) }
            scan.size = try fs.size(fd)
            guard scan.size >= SegmentHeader.size else { return scan }
            scan.region = try fs.map(fd, length: scan.size, writable: false)
        } catch {
            scan.failure = error
            return scan
        }
        guard let region = scan.region else { return scan }
        let view = region.wholeView
        guard case .success(let header) = SegmentHeader.decode(view) else { return scan }
        scan.header = header
        if case .success(let f) = SegmentFooter.decodeAtEnd(view) { scan.footer = f }
        let limit = scan.footer.map { Int($0.framesEnd) } ?? scan.size
        var offset = SegmentHeader.size
        scan.frames.reserveCapacity(min(1 << 20, (limit - offset) / Frame.overhead))
        while offset < limit {
            switch Frame.decode(view, at: offset, limit: limit) {
            case .success(let frame):
                guard let leaf = frame.leafHash(in: view) else {
                    scan.stop = .badValue(offset: offset, sequence: frame.sequence)
                    return scan
                }
                scan.frames.append(frame)
                scan.leaves.append(leaf)
                if let snapshot, frame.sequence < snapshot.size, frame.type == .put || frame.type == .tombstone {
                    scan.snapshotVersionsSeen += 1
                    if scan.snapshotMissing == nil && !snapshotHolds(snapshot.keys, frame, view) {
                        scan.snapshotMissing = (frame.sequence, frame.offset)
                    }
                }
                offset = frame.end
            case .failure(.zeroLength) where scan.footer == nil:
                if let nonZero = view.slice(offset, limit - offset).lastNonZero { scan.stop = .tail(offset: offset, bytes: nonZero + 1) }
                return scan
            case .failure(let defect):
                scan.stop = .damaged(offset: offset, reason: defect.description)
                return scan
            }
        }
        return scan
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
        if header.storeID != config.storeID { problem(.chain, path, offset: 16, expected: "store \(config.storeIDHex)", found: "store \(hexString(header.storeID))") }
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
            problem(.layout, path, expected: "a read-only sealed segment (0444)", found: String(mode, radix: 8))
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
        switch frame.type {
        case .put, .tombstone:
            break
        case .retention, .legalHold, .policy:
            let ns = view.slice(frame.namespace.lowerBound, frame.namespace.count).array
            let key = view.slice(frame.key.lowerBound, frame.key.count).array
            if let value = frame.value(in: view), retention.apply(type: frame.type, sequence: frame.sequence, namespace: ns, key: key, value: value) {
                retentionRecords.append(frame.sequence)
            } else {
                problem(.retention, path, offset: frame.offset, sequence: frame.sequence, expected: "a valid \(frame.type) record", found: "malformed")
            }
        case .redaction:
            guard let value = frame.value(in: view), let record = RedactionRecord.decode(value) else {
                return problem(.retention, path, offset: frame.offset, sequence: frame.sequence, expected: "a valid redaction record", found: "malformed")
            }
            for purged in record.sequences { authorized.insert(purged) }
            redactions.append((frame.sequence, frame.timestamp, record.sequences, path))
        case .checkpointMarker:
            break
        }
        let size = frontier.size
        if wantedRoots.contains(size) { roots[size] = frontier.root }
        if tileState?.size == size { tilePartialsAtState = tileBuilder.pending }

    }

    /// A redaction record may only name puts that were superseded or deleted, and unprotected,
    /// when it was written. Checked after the pass, with a second pass over the log that
    /// collects the versions of just the keys concerned (only when redactions exist).
    mutating func checkRedactions() {
        guard !redactions.isEmpty else { return }
        var named: [(redaction: Int, sequence: UInt64, composite: [UInt8], namespace: [UInt8], timestamp: Int64, offset: Int, path: String)] = []
        for (i, redaction) in redactions.enumerated() {
            for sequence in redaction.purged {
                guard let segment = mapped.last(where: { $0.first <= sequence }), sequence - segment.first < UInt64(segment.offsets.count),
                      case .success(let frame) = Frame.decode(segment.region.wholeView, at: Int(segment.offsets[Int(sequence - segment.first)]),
                                                              limit: segment.region.count), frame.type == .put, sequence < redaction.record else {
                    problem(.retention, redaction.path, sequence: redaction.record, expected: "redaction of an earlier put", found: "sequence \(sequence)")
                    continue
                }
                let view = segment.region.wholeView
                let ns = view.slice(frame.namespace.lowerBound, frame.namespace.count).array
                let composite = KeyIndex.compositeKey(namespace: ns, key: view.slice(frame.key.lowerBound, frame.key.count).array)
                named.append((i, sequence, composite, ns, frame.timestamp, frame.offset, segment.path))
            }
        }
        // Versions of the keys concerned, in log order.
        var versions: [[UInt8]: [UInt64]] = [:]
        for item in named { versions[item.composite] = [] }
        for segment in mapped {
            let view = segment.region.wholeView
            for offset in segment.offsets {
                guard case .success(let frame) = Frame.decode(view, at: Int(offset), limit: view.count),
                      frame.type == .put || frame.type == .tombstone else { continue }
                let composite = KeyIndex.compositeKey(namespace: view.slice(frame.namespace.lowerBound, frame.namespace.count).array,
                                                      key: view.slice(frame.key.lowerBound, frame.key.count).array)
                versions[composite]?.append(frame.sequence)
            }
        }
        for item in named {
            let redaction = redactions[item.redaction]
            if !(versions[item.composite] ?? []).contains(where: { $0 > item.sequence && $0 < redaction.record }) {
                problem(.retention, item.path, offset: item.offset, sequence: item.sequence, expected: "only superseded or deleted versions purged",
                        found: "redaction record \(redaction.record) purged the live version")
            }
            // The retention state at the end includes records after the purge; locks only
            // grow (bar governance bypasses, which only shorten), so a lock in force at the
            // purge time is still listed now.
            let protection = retention.protection(sequence: item.sequence, timestamp: item.timestamp, namespace: item.namespace, composite: item.composite)
            let inForce = protection.locks.filter { $0.retainUntil > redaction.time && $0.setBy < redaction.record }
            if !inForce.isEmpty || protection.legalHold.map({ $0.setBy < redaction.record }) == true {
                let lock = inForce.max { ($0.mode.rawValue, $0.retainUntil) < ($1.mode.rawValue, $1.retainUntil) }
                    .map { "\($0.mode) lock until \($0.retainUntil)" } ?? "legal hold"
                problem(.retention, item.path, offset: item.offset, sequence: item.sequence, expected: "purged only after every lock expired",
                        found: "redaction record \(redaction.record) purged it under a \(lock)")
            }
        }
    }

    mutating func checkStubs() {
        for (sequence, place) in stubs.sorted(by: { $0.key < $1.key }) where !authorized.contains(sequence) {
            problem(.retention, place.file, offset: place.offset, sequence: sequence,
                    expected: "a redaction record for every stub", found: "a stub no redaction record allows (a payload removed)")
        }
    }

    // MARK: Derived data and checkpoints

    mutating func finishTiles() {
        if let from = tilesUncheckedFrom {
            // Tiles up to the damage were checked as they completed; the rest cannot be.
            problem(.tile, layout.tiles, expected: "tiles checked against every leaf", found: "not checked from leaf \(from) on (a leaf there could not be recomputed)")
            return
        }
        // Partial tiles of the rightmost (incomplete) tiles: compare with what the log gives.
        for (level, hashes) in tileBuilder.pending.enumerated() {
            tileStore.verifyPartials(level: level, index: tileBuilder.fullTiles[level], hashes: hashes)
        }
        let required = tileState?.size ?? 0
        for mismatch in tileStore.mismatches.withLock({ $0 }) {
            let end = (mismatch.index + 1) << (8 * UInt64(mismatch.level + 1))
            if mismatch.missing && end > required { continue }  // full tile not yet persisted: rebuilt on open
            problem(.tile, layout.tiles + "/" + (mismatch.level == 0 ? TileStore.packPath(mismatch.index / TileStore.tilesPerPack)
                                                   : TileStore.path(level: mismatch.level, index: mismatch.index)),
                    expected: "tile \(mismatch.level)/\(mismatch.index) as recomputed from the records",
                    found: mismatch.missing ? "missing or damaged" : "different hashes", repairable: true)
        }
        guard let state = tileState else { return }
        if state.size > nextSequence {
            return problem(.tile, layout.tiles + "/state", expected: "at most \(nextSequence) leaves", found: "\(state.size)", repairable: true)
        }
        if roots[state.size] != state.root {
            problem(.tile, layout.tiles + "/state", expected: "root \(roots[state.size]?.hex ?? "?")", found: state.root.hex, repairable: true)
        }
        for (level, hashes) in (tilePartialsAtState ?? []).enumerated() where !hashes.isEmpty {
            let index = state.size >> (8 * UInt64(level + 1))
            if (try? tileStore.read(level: level, index: index, partialWidth: hashes.count)) != hashes {
                problem(.tile, layout.tiles + "/" + TileStore.path(level: level, index: index, partialWidth: hashes.count),
                        expected: "the partial tile at size \(state.size)", found: "missing or different", repairable: true)
            }
        }
    }

    mutating func finishCheckpoints() {
        for path in checkpointFiles() {
            guard let note = readText(path), let body = try? CheckpointStore.body(of: note, path: path) else {
                problem(.checkpoint, path, expected: "a signed checkpoint", found: "unreadable")
                continue
            }
            checkAgainstLog(body, file: path)
            // Signatures can be checked only with keys given from outside: then every stored
            // checkpoint must carry a valid signature by one of them.
            let verifiers = Set(external.map(\.0.verifier.encoded)).compactMap { try? NoteVerifier(parsing: $0) }
            if !verifiers.isEmpty {
                var valid = false
                for verifier in verifiers {
                    do {
                        _ = try SignedNote.open(note, verifier: verifier)
                        valid = true
                    } catch CheckpointError.noTrustedSignature {
                        continue
                    } catch {
                        problem(.checkpoint, path, expected: "a valid signature by \(verifier.name)", found: "\(error)")
                        valid = true  // reported already
                    }
                }
                if !valid { problem(.checkpoint, path, expected: "a signature by one of the given keys", found: "none") }
            }
        }
        for (checkpoint, body) in external {
            guard let body else {
                problem(.checkpoint, "external checkpoint", expected: "a note signed by \(checkpoint.verifier.name) for this log",
                        found: (try? SignedNote.open(checkpoint.note, verifier: checkpoint.verifier)).map { _ in "a malformed body" } ?? "a bad or missing signature")
                continue
            }
            if checkAgainstLog(body, file: "external checkpoint") { report.externalCheckpointsVerified += 1 }
        }
    }

    @discardableResult
    mutating func checkAgainstLog(_ body: Checkpoint, file: String) -> Bool {
        guard body.origin == config.origin else {
            problem(.checkpoint, file, expected: "origin \(config.origin)", found: body.origin)
            return false
        }
        guard body.treeSize <= nextSequence else {
            problem(.checkpoint, file, expected: "a tree the log contains", found: "size \(body.treeSize) > \(nextSequence) records: THE STORE LOST DATA")
            return false
        }
        guard roots[body.treeSize] == body.root else {
            problem(.checkpoint, file, expected: "root \(body.root.hex) at size \(body.treeSize)",
                    found: "\(roots[body.treeSize]?.hex ?? "?"): HISTORY WAS REWRITTEN")
            return false
        }
        return true
    }

    mutating func finishSnapshot() {
        guard let snapshot else { return }
        let file = layout.index + "/snapshot"
        if snapshot.treeSize > nextSequence {
            return problem(.index, file, expected: "at most \(nextSequence) records", found: "a snapshot of \(snapshot.treeSize)", repairable: true)
        }
        if roots[snapshot.treeSize] != snapshot.root {
            return problem(.index, file, expected: "root \(roots[snapshot.treeSize]?.hex ?? "?") at size \(snapshot.treeSize)", found: snapshot.root.hex, repairable: true)
        }
        if let missing = snapshotMissing {
            return problem(.index, file, expected: "record \(missing.sequence) (\(missing.file):\(missing.offset)) indexed", found: "not in the snapshot", repairable: true)
        }
        if snapshot.keys.versionCount != snapshotVersionsSeen {
            return problem(.index, file, expected: "\(snapshotVersionsSeen) versions", found: "\(snapshot.keys.versionCount)", repairable: true)
        }
        if snapshot.retentionRecords != retentionRecords.filter({ $0 < snapshot.treeSize }) {
            problem(.index, file, expected: "the retention records before \(snapshot.treeSize)", found: "a different list", repairable: true)
        }
    }

    // MARK: Repair

    /// Only what is provably safe: discard a torn tail (a writable open does it, saving the bytes
    /// to lost+found), and drop derived data so it is rebuilt from the verified log.
    func repairAll() throws -> [String] {
        var done: [String] = []
        if repairable.contains(where: { $0.category == .tile }) {
            try? fs.remove(layout.tiles + "/state")
            done.append("removed tiles/state: tiles are rebuilt from the records")
        }
        if repairable.contains(where: { $0.category == .index }) {
            try? fs.remove(layout.index + "/snapshot")
            done.append("removed index/snapshot: the index is rebuilt from the records")
        }
        let store = try Store(path: layout.root)
        if let torn = store.recovery.tornTail {
            done.append("discarded a torn tail of \(torn.bytes) bytes at \(torn.file):\(torn.offset) (saved to \(torn.savedTo ?? "-"))")
        }
        if let rebuilt = store.recovery.tilesRebuilt { done.append("rebuilt tiles for leaves \(rebuilt)") }
        try store.seal()
        try store.close()
        return done
    }

    // MARK: Files

    func checkpointFiles() -> [String] {
        var files: [String] = []
        if (try? fs.status(layout.checkpoints + "/checkpoint")) != nil { files.append(layout.checkpoints + "/checkpoint") }
        for name in (try? fs.listDirectory(layout.checkpoints + "/history")) ?? [] { files.append(layout.checkpoints + "/history/" + name) }
        return files
    }

    func readBytes(_ path: String) -> [UInt8]? {
        guard let status = try? fs.status(path), status.isRegularFile, let fd = try? fs.open(path, .readOnly) else { return nil }
        defer { fs.close(fd) }
        var bytes = [UInt8](repeating: 0, count: status.size)
        guard (try? bytes.withUnsafeMutableBytes { try fs.read(fd, into: $0, at: 0) }) == status.size else { return nil }
        return bytes
    }

    func readText(_ path: String) -> String? {
        readBytes(path).map { String(decoding: $0, as: UTF8.self) }
    }
}

/// Runs the prescan of the next segment on another thread while the current one is checked.
private final class Lookahead: @unchecked Sendable {
    private let group = DispatchGroup()
    private let queue = DispatchQueue(label: "stele.fsck.prescan")
    private var result: FsckRun.Prescan?

    func start(path: String, fs: PosixFileSystem, snapshot: (keys: KeyIndex, size: UInt64)?) {
        let box = SnapshotBox(snapshot)
        group.enter()
        queue.async {
            self.result = FsckRun.prescan(fs: fs, path: path, snapshot: box.value)
            self.group.leave()
        }
    }

    func finish() { group.wait() }

    func take() -> FsckRun.Prescan? {
        group.wait()
        defer { result = nil }
        return result
    }
}

import Dispatch

/// Hands the (immutable while shared) snapshot index to the prescan thread.
private struct SnapshotBox: @unchecked Sendable {
    let value: (keys: KeyIndex, size: UInt64)?
    init(_ value: (keys: KeyIndex, size: UInt64)?) { self.value = value }
}
