import SteleNative

/// The checks of fsck that run after the pass over the log: redaction stubs and records, tiles,
/// checkpoints, the index snapshot; and the safe repairs.
extension FsckRun {
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
                let composite = KeyIndex.compositeKey(namespace: ns, key: frame.retentionKey(in: view))
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
                                                      key: frame.retentionKey(in: view))
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
            // Judged by the locks and holds as they stood when the redaction record was written.
            let protection = redaction.retention.protection(sequence: item.sequence, timestamp: item.timestamp,
                                                            namespace: item.namespace, composite: item.composite)
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
                    expected: "a redaction record for every stub", found: Self.unallowedStub)
        }
    }

    /// What ``checkStubs()`` reports for a stub that no redaction record the pass read allows.
    static let unallowedStub = "a stub no redaction record allows (a payload removed)"

    /// The sequence numbers that redaction records past the end of the pass allow to purge.
    ///
    /// Beside a live writer, a purge appends (and syncs) its redaction record before it rewrites
    /// a sealed segment; a segment rewritten after the pass listed the directory can show stubs
    /// whose redaction record is in a segment the pass did not reach, or past the active
    /// segment's end that it read. Each such record is read from its frame (checksum verified);
    /// the stubs it allows are reported apart, as in flight, never dropped: a later fsck checks
    /// the record with the rest of the log.
    func redactionsPastThePass() -> Set<UInt64> {
        var allowed = Set<UInt64>()
        guard let names = try? fs.listDirectory(layout.segments) else { return allowed }
        let reached = mapped.count
        for index in names.compactMap(SegmentFiles.index(of:)) where index >= UInt64(max(1, reached)) {
            let scan = FsckRun.prescan(fs: fs, path: layout.segments + "/" + SegmentFiles.name(index), snapshot: nil)
            guard let region = scan.region else { continue }
            let view = region.wholeView
            for frame in scan.frames where frame.type == .redaction && frame.sequence >= nextSequence {
                if let value = frame.value(in: view), let record = RedactionRecord.decode(value) { allowed.formUnion(record.sequences) }
            }
        }
        return allowed
    }

    /// A loss record and its placeholders: well formed, and nothing else inside the range.
    mutating func noteLoss(_ frame: FrameInfo, _ view: ByteView, path: String) {
        if frame.valueLength == 0 && !frame.isRedacted {
            guard let end = lossPlaceholdersEnd, frame.sequence < end else {
                return problem(.loss, path, offset: frame.offset, sequence: frame.sequence, expected: "placeholders only after a loss record",
                               found: "a placeholder outside any recorded loss")
            }
            if frame.sequence + 1 == end { lossPlaceholdersEnd = nil }
            return
        }
        guard let value = frame.value(in: view), let record = LossRecord.decode(value), record.end > frame.sequence else {
            return problem(.loss, path, offset: frame.offset, sequence: frame.sequence, expected: "a valid loss record", found: "malformed")
        }
        lossPlaceholdersEnd = record.end > frame.sequence + 1 ? record.end : nil
        report.recordedLosses.append("records \(frame.sequence)..<\(record.end) recorded lost at \(frame.timestamp) ns: \(record.reason)"
            + " (evidence: \(record.evidence))")
    }

    /// What the store's evidence says about how far the log reached, against what it holds.
    mutating func checkLoss() {
        if let end = lossPlaceholdersEnd {
            problem(.loss, layout.segments, sequence: nextSequence, expected: "the placeholders of the recorded loss up to \(end)",
                    found: "the log ends at \(nextSequence)")
        }
        guard let lost = LossEvidence.check(evidence, layout: layout, storeID: storeID, segmentSize: segmentSize,
                                            held: nextSequence, segments: segmentStarts, expectReach: retention.identity != nil,
                                            openLoss: nil) else { return }
        for finding in lost.findings {
            problem(.loss, layout.segments, sequence: nextSequence, expected: "the log to hold what its evidence says (at least \(lost.atLeast) records)",
                    found: finding + ": RECORDS WERE LOST (restore from a copy, or `stele record-loss`)")
        }
    }

    /// `stele.conf` against the log's config records, the authority it caches.
    mutating func checkConfig() {
        guard let identity = retention.identity else {
            // A store created before config records: only its file says who may bypass governance.
            problem(.config, layout.config, sequence: 0, expected: "the store's identity and governance key as config records in the log",
                    found: "none: the store predates them and stele.conf is their only record (run `stele migrate`)")
            return
        }
        let fromLog = StoreConfig(identity: identity, governanceKey: retention.governanceKey)
        for difference in config.differences(from: fromLog) {
            problem(.config, layout.config, sequence: retention.identityRecord?.sequence,
                    expected: "stele.conf as the log's config records say", found: difference, repairable: true)
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
            // A full tile past the last persisted size may be missing or torn by a crash: open rebuilds it.
            if !mismatch.partial && end > required { continue }
            problem(.tile, layout.tiles + "/" + (mismatch.partial ? TileStore.path(level: mismatch.level, index: mismatch.index) + ".p"
                                                   : mismatch.level == 0 ? TileStore.packPath(mismatch.index / TileStore.tilesPerPack)
                                                   : TileStore.path(level: mismatch.level, index: mismatch.index)),
                    expected: "tile \(mismatch.level)/\(mismatch.index) as recomputed from the records",
                    found: mismatch.missing ? "missing or damaged" : "different hashes", repairable: true)
        }
        guard let state = tileState else { return }
        if state.size > nextSequence { return }  // lost records: reported by `checkLoss`
        if roots[state.size] != state.root {
            // Tiles that agree with the root tiles/state recorded, against records that do not:
            // the records changed after their tiles were written. That is not damage to repair
            // away (rebuilding the tiles would erase what shows the change).
            let fromTiles = try? TileBuilder(size: state.size, store: tileStore).flatMap { builder in
                try MerkleProofs.root(TileReader(store: tileStore, cache: TileCache(capacity: 8), size: state.size, builder: builder), size: state.size)
            }
            let altered = fromTiles == state.root
            problem(altered ? .tree : .tile, layout.tiles + "/state", sequence: state.size,
                    expected: "root \(state.root.hex) at size \(state.size), as tiles/state recorded" + (altered ? " and the tiles still give" : ""),
                    found: (roots[state.size]?.hex ?? "?") + (altered ? " from the records: A RECORD WAS ALTERED after its tiles were written (`stele verify` names it)" : ""),
                    repairable: !altered)
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
            // One over more records than the log holds is reported by `checkLoss`.
            if body.treeSize <= nextSequence { checkAgainstLog(body, file: path) }
            // Signatures can be checked only with keys given from outside: then every stored
            // checkpoint must carry a valid signature by one of them.
            let verifiers = Set(external.map(\.0.verifier.encoded)).compactMap { try? NoteVerifier(parsing: $0) }
            if !verifiers.isEmpty {
                var valid = false
                for verifier in verifiers {
                    do {
                        _ = try SignedNote.open(note, verifier: verifier)
                        valid = true
                    } catch SteleError.checkpoint(.noTrustedSignature) {
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
            return problem(.index, file, expected: "at most \(nextSequence) records",
                           found: "a snapshot of \(snapshot.treeSize) (records lost? see any loss findings)", repairable: true)
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
        if repairable.contains(where: { $0.category == .config }), try Store.rewriteConfigFromLog(at: layout.root) {
            done.append("rewrote stele.conf from the log's config records")
        }
        let store = try Store(path: layout.root)
        if let torn = store.recovery.tornTail {
            done.append("discarded a torn tail of \(torn.bytes) bytes at \(torn.file):\(torn.offset) (saved to \(torn.savedTo ?? "-"))")
        }
        if let path = store.recovery.completedHeaderUpdate { done.append("completed the header update of \(path) that a crash cut short") }
        if let rebuilt = store.recovery.tilesRebuilt { done.append("rebuilt tiles for leaves \(rebuilt)") }
        try store.close()
        return done
    }

    // MARK: Files

    func checkpointFiles() -> [String] {
        var files: [String] = []
        if (try? fs.status(layout.checkpoints + "/checkpoint")) != nil { files.append(layout.checkpoints + "/checkpoint") }
        for name in (try? fs.listDirectory(layout.checkpoints + "/history")) ?? [] where !name.hasSuffix(".tmp") {
            files.append(layout.checkpoints + "/history/" + name)
        }
        return files
    }

    func readBytes(_ path: String) -> [UInt8]? {
        // Checkpoints and the index snapshot; none is larger than the log it describes.
        let logBytes = ((try? fs.listDirectory(layout.segments)) ?? []).reduce(0) {
            $0 + (((try? fs.status(layout.segments + "/" + $1)) ?? nil)?.size ?? 0)
        }
        return (try? fs.readWholeFile(path, limit: max(SignedNote.maxSize, logBytes))) ?? nil
    }

    func readText(_ path: String) -> String? {
        readBytes(path).map { String(decoding: $0, as: UTF8.self) }
    }
}
