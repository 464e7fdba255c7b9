import SteleNative

/// Checking a store against a checkpoint held elsewhere, from the records themselves.
///
/// One pass over the records the checkpoint covers: every frame's XXH3, contiguous sequence
/// numbers and non-decreasing timestamps, every leaf hash recomputed from the record (a
/// redaction stub gives the hash it keeps), the tree rebuilt and its root compared with the
/// checkpoint's. Nothing derived is trusted: not the tiles, not the footers' roots. The next
/// segment's leaves are hashed on the second core while this one is added to the tree.
///
/// When the root differs, a second look names the place: the first record whose leaf hash
/// differs from the one its segment's tiles recorded when it was written (a record altered
/// afterwards, even with its checksum recomputed), or the segment whose records no longer
/// produce the root its seal recorded. When every seal and tile agrees with the altered
/// records, the history was rewritten and re-sealed: only the checkpoint shows it, and the
/// error says so.
extension Store {
    /// What a record-level verification covered.
    public struct CheckpointVerification: Sendable, Equatable {
        /// The checkpoint, verified.
        public var checkpoint: Checkpoint
        /// Leaf hashes recomputed from records (the checkpoint's tree size).
        public var recordsChecked: UInt64
        /// Records among them that are redaction stubs (payload purged; their stored leaf hash
        /// was used; `stele fsck` checks each against its redaction record).
        public var redactionStubs: UInt64
        /// Records after the checkpoint's size, which it does not cover.
        public var recordsAfter: UInt64
        /// Wall-clock time the verification took.
        public var seconds: Double
    }

    /// Checks this store against a checkpoint held elsewhere: the signature by `verifier`, the
    /// origin, then every record the checkpoint covers (see the type's documentation), and that
    /// the store's evidence shows no lost records.
    ///
    /// This is what catches an altered, re-forged, removed, reordered or inserted record, and a
    /// history rewritten with every hash, seal and tile recomputed: only a checkpoint signed
    /// before, and kept out of the writer's reach, can.
    /// - Returns: the verified checkpoint and what was checked.
    /// - Throws: ``SteleError/checkpoint(_:)`` (bad signature or origin;
    ///   ``CheckpointError/storeBehindCheckpoint(checkpointSize:storeSize:)``;
    ///   ``CheckpointError/rootMismatch(size:checkpointRoot:storeRoot:)`` when no single record
    ///   can be named), ``SteleError/corruption(_:)`` naming the file, offset and sequence number
    ///   of the first bad record, ``SteleError/recordsLost(_:)``.
    /// - Cost: reads and hashes every record up to the checkpoint's size (about 2-3 M records/s
    ///   for 100-byte records here, `docs/benchmarks.md`).
    @discardableResult
    public func verify(checkpoint note: String, verifier: NoteVerifier) throws -> CheckpointVerification {
        let start = ContinuousClock.now
        let checkpoint = try openCheckpoint(note, verifier: verifier)
        let held = treeSize
        guard checkpoint.treeSize <= held else {
            throw SteleError.checkpoint(.storeBehindCheckpoint(checkpointSize: checkpoint.treeSize, storeSize: held))
        }
        let stubs = try verifyRecords(size: checkpoint.treeSize, root: checkpoint.root)
        if let lost = recovery.lostRecords { throw SteleError.recordsLost(lost) }
        let elapsed = ContinuousClock.now - start
        return CheckpointVerification(checkpoint: checkpoint, recordsChecked: checkpoint.treeSize, redactionStubs: stubs,
                                      recordsAfter: held - checkpoint.treeSize,
                                      seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }

    /// The checkpoint's signature and origin.
    func openCheckpoint(_ note: String, verifier: NoteVerifier) throws -> Checkpoint {
        let checkpoint = try Checkpoint(parsing: SignedNote.open(note, verifier: verifier))
        guard checkpoint.origin == config.origin else {
            throw SteleError.checkpoint(.wrongOrigin(expected: config.origin, found: checkpoint.origin))
        }
        return checkpoint
    }

    /// A segment as the pass reads it: its bytes (held by its mapping), where frames end, the
    /// file, and the footer of a sealed one.
    private struct ScanTarget: @unchecked Sendable {
        var region: MappedRegion
        var limit: Int
        var path: String
        var first: UInt64
        var footer: SegmentFooter?
    }

    /// What the pass found in one segment: the frames and their leaf hashes up to the size
    /// checked, or the first defect.
    private struct SegmentLeaves: @unchecked Sendable {
        var offsets: [Int] = []
        var timestamps: [Int64] = []
        var leaves: [Digest] = []
        /// Redaction stubs among them: sequence and offset.
        var stubs: [(sequence: UInt64, offset: Int)] = []
        /// What the redaction records among them name.
        var redacted: [UInt64] = []
        var defect: Corruption?
    }

    /// Checks records `0 ..< size` against `root`; returns how many are redaction stubs.
    private func verifyRecords(size: UInt64, root: Digest) throws -> UInt64 {
        if size == 0 {
            guard root == TreeHash.emptyRoot else {
                throw SteleError.checkpoint(.rootMismatch(size: 0, checkpointRoot: root, storeRoot: TreeHash.emptyRoot))
            }
            return 0
        }
        let all = try state.withLock { state throws -> [ScanTarget] in
            guard let log = state.log else { throw SteleError.closed }
            var out = log.sealed.map {
                ScanTarget(region: $0.region, limit: Int($0.footer.framesEnd), path: $0.path, first: $0.header.firstSequence, footer: $0.footer)
            }
            if let active = log.active {
                out.append(ScanTarget(region: active.region, limit: active.writeOffset, path: active.path, first: active.header.firstSequence))
            }
            return out
        }
        let targets = all.filter { $0.first < size }
        var frontier = Frontier()
        var lastTimestamp = Int64.min
        var stubs: [(sequence: UInt64, offset: Int, path: String)] = []
        var redacted: Set<UInt64> = []
        var disagreeingSeal: ScanTarget?
        var ahead: BackgroundTask<SegmentLeaves>?
        defer { ahead?.join() }
        for (position, target) in targets.enumerated() {
            // The first segment on this thread; each next one on the second core, one ahead.
            let scan = try ahead?.value() ?? Store.leaves(of: target, upTo: size)
            ahead = nil
            if position + 1 < targets.count {
                let next = targets[position + 1]
                ahead = BackgroundTask { Store.leaves(of: next, upTo: size) }
            }
            if let defect = scan.defect { throw SteleError.corruption(defect) }
            var content = SHA256Hasher()
            for (i, leaf) in scan.leaves.enumerated() {
                if scan.timestamps[i] < lastTimestamp {
                    throw SteleError.corruption(Corruption(file: target.path, offset: scan.offsets[i], sequence: frontier.size,
                                                           detail: "timestamp \(scan.timestamps[i]) is before the previous record's \(lastTimestamp)"))
                }
                lastTimestamp = scan.timestamps[i]
                frontier.append(leaf)
                content.update(leaf)
            }
            stubs += scan.stubs.map { ($0.sequence, $0.offset, target.path) }
            redacted.formUnion(scan.redacted)
            if let footer = target.footer, footer.lastSequence < size, disagreeingSeal == nil,
               footer.treeSize != frontier.size || footer.treeRoot != frontier.root || footer.contentDigest != content.finalize() {
                disagreeingSeal = target
            }
        }
        guard frontier.size == size else {
            throw SteleError.checkpoint(.storeBehindCheckpoint(checkpointSize: size, storeSize: frontier.size))
        }
        guard frontier.root == root else {
            throw try locateDivergence(targets, size: size, checkpointRoot: root, storeRoot: frontier.root, disagreeingSeal: disagreeingSeal)
        }
        // A stub keeps its record's leaf hash, so the tree cannot tell it from the record: a
        // redaction record (written before the payload was removed, anywhere after the stub)
        // must name it, or the payload was removed by something other than a purge.
        if !stubs.isEmpty {
            for target in all where target.footer.map({ $0.lastSequence >= size }) ?? true {
                redacted.formUnion(Store.redactionTargets(in: target, from: size))
            }
            if let stub = stubs.first(where: { !redacted.contains($0.sequence) }) {
                throw SteleError.corruption(Corruption(file: stub.path, offset: stub.offset, sequence: stub.sequence,
                                                       detail: "a redaction stub that no redaction record names: its payload was removed without a purge"))
            }
        }
        return UInt64(stubs.count)
    }

    /// What the redaction records of one segment at or after sequence `from` name.
    private static func redactionTargets(in target: ScanTarget, from: UInt64) -> [UInt64] {
        var out: [UInt64] = []
        let view = target.region.wholeView
        var offset = SegmentHeader.size
        withExtendedLifetime(target.region) {
            while offset < target.limit, case .success(let frame) = Frame.decode(view, at: offset, limit: target.limit) {
                if frame.sequence >= from, frame.type == .redaction, let value = frame.value(in: view),
                   let record = RedactionRecord.decode(value) {
                    out += record.sequences
                }
                offset = frame.end
            }
        }
        return out
    }

    /// Decodes the frames of one segment up to sequence `size`, checking each frame's XXH3, its
    /// sequence number and its value, and hashes each record's leaf.
    private static func leaves(of target: ScanTarget, upTo size: UInt64) -> SegmentLeaves {
        var out = SegmentLeaves()
        let view = target.region.wholeView
        let count = Int(min(size, target.first + UInt64(max(0, target.limit - SegmentHeader.size) / Frame.overhead)) - min(size, target.first))
        out.leaves.reserveCapacity(count)
        out.offsets.reserveCapacity(count)
        out.timestamps.reserveCapacity(count)
        var offset = SegmentHeader.size
        var expected = target.first
        withExtendedLifetime(target.region) {
            while offset < target.limit && expected < size {
                switch Frame.decode(view, at: offset, limit: target.limit) {
                case .failure(let defect):
                    out.defect = Corruption(file: target.path, offset: offset, sequence: expected, detail: defect.description)
                    return
                case .success(let frame):
                    guard frame.sequence == expected else {
                        let what = frame.sequence < expected ? "a record repeated or moved back" : "records removed or moved"
                        out.defect = Corruption(file: target.path, offset: offset, sequence: expected,
                                                detail: "expected sequence \(expected), found \(frame.sequence) (\(what))")
                        return
                    }
                    guard let leaf = frame.leafHash(in: view) else {
                        out.defect = Corruption(file: target.path, offset: offset, sequence: expected, detail: "its LZ4 value does not decode")
                        return
                    }
                    if frame.isRedacted { out.stubs.append((expected, offset)) }
                    if frame.type == .redaction, let value = frame.value(in: view), let record = RedactionRecord.decode(value) {
                        out.redacted += record.sequences
                    }
                    out.leaves.append(leaf)
                    out.offsets.append(offset)
                    out.timestamps.append(frame.timestamp)
                    expected += 1
                    offset = frame.end
                }
            }
            if expected < size && target.footer != nil && expected <= target.footer.map({ $0.lastSequence }) ?? 0 {
                out.defect = Corruption(file: target.path, offset: offset, sequence: expected,
                                        detail: "frames end at sequence \(expected), the seal says \(target.footer?.lastSequence ?? 0): records removed")
            }
        }
        return out
    }

    /// Names where the records stop producing the checkpoint's root: the first record whose leaf
    /// differs from the tiles written with it, in the segment whose seal disagrees if one does.
    private func locateDivergence(_ targets: [ScanTarget], size: UInt64, checkpointRoot: Digest, storeRoot: Digest,
                                  disagreeingSeal: ScanTarget?) throws -> SteleError {
        // The tiles as they are on disk, written when the records were: not the ones an open may
        // have rebuilt in memory from the records as they are now.
        let directory = state.withLock { $0.log?.tiles.directory }
        let searched = disagreeingSeal.map { [$0] } ?? targets
        if let directory {
            let onDisk = TileStore(fs: fs, directory: directory, writable: false)
            var cached: (index: UInt64, hashes: [Digest]?)?
            for target in searched {
                let scan = Store.leaves(of: target, upTo: size)
                for (i, leaf) in scan.leaves.enumerated() {
                    let sequence = target.first + UInt64(i)
                    let tile = sequence / 256
                    if cached?.index != tile { cached = (tile, Store.recordedLeaves(onDisk, tile: tile)) }
                    guard let hashes = cached?.hashes, Int(sequence % 256) < hashes.count else { continue }
                    let recorded = hashes[Int(sequence % 256)]
                    if recorded != leaf {
                        return .corruption(Corruption(file: target.path, offset: scan.offsets[i], sequence: sequence,
                                                      detail: "its leaf hash \(leaf.hex) differs from the one its tiles recorded when it was written (\(recorded.hex)): the record was altered afterwards"))
                    }
                }
            }
        }
        if let seal = disagreeingSeal, let footer = seal.footer {
            return .corruption(Corruption(file: seal.path, offset: Int(footer.framesEnd), sequence: footer.firstSequence,
                                          detail: "records \(footer.firstSequence)...\(footer.lastSequence) no longer produce the root and content digest its seal recorded: one of them was altered"))
        }
        return .checkpoint(.rootMismatch(size: size, checkpointRoot: checkpointRoot, storeRoot: storeRoot))
    }

    /// The leaf hashes level-0 tile `tile` recorded when it was written: the full tile from its
    /// pack, else the widest partial tile on disk; nil if there is neither.
    private static func recordedLeaves(_ tiles: TileStore, tile: UInt64) -> [Digest]? {
        if let full = try? tiles.readLevel0(tile) { return Array(full.prefix(TileStore.width)) }
        let partials = tiles.directory + "/" + TileStore.path(level: 0, index: tile) + ".p"
        guard let widest = ((try? PosixFileSystem().listDirectory(partials)) ?? []).compactMap(Int.init).filter({ $0 < TileStore.width }).max()
        else { return nil }
        return (try? tiles.read(level: 0, index: tile, partialWidth: widest)) ?? nil
    }

    /// Checks the store against a checkpoint from its tiles alone: signature, origin, and a
    /// consistency proof from the checkpoint's size to the current tree, built from the tiles.
    /// Fast (O(log n)), but the records are not read: an altered record whose tiles were left
    /// alone passes. Use ``verify(checkpoint:verifier:)`` for the records.
    /// - Returns: the verified checkpoint.
    /// - Throws: ``SteleError/checkpoint(_:)``: a bad signature or origin,
    ///   ``CheckpointError/storeBehindCheckpoint(checkpointSize:storeSize:)``, or
    ///   ``CheckpointError/rootMismatch(size:checkpointRoot:storeRoot:)`` when the tiles do not
    ///   extend the checkpoint; ``SteleError/corruption(_:)`` for tiles that cannot be read.
    /// - Cost: O(log n) tile reads and hashes: milliseconds.
    @discardableResult
    public func verifyTiles(checkpoint note: String, verifier: NoteVerifier) throws -> Checkpoint {
        let checkpoint = try openCheckpoint(note, verifier: verifier)
        let size = treeSize
        guard checkpoint.treeSize <= size else {
            throw SteleError.checkpoint(.storeBehindCheckpoint(checkpointSize: checkpoint.treeSize, storeSize: size))
        }
        if checkpoint.treeSize == 0 {
            guard checkpoint.root == TreeHash.emptyRoot else {
                throw SteleError.checkpoint(.rootMismatch(size: 0, checkpointRoot: checkpoint.root, storeRoot: TreeHash.emptyRoot))
            }
            return checkpoint
        }
        let proof: ConsistencyProof
        do {
            proof = try consistencyProof(from: checkpoint.treeSize, to: size)
        } catch SteleError.corruption {
            throw SteleError.checkpoint(.rootMismatch(size: checkpoint.treeSize, checkpointRoot: checkpoint.root,
                                                      storeRoot: try rootHash(treeSize: checkpoint.treeSize)))
        }
        guard MerkleVerifier.verifyConsistency(oldSize: checkpoint.treeSize, newSize: size, oldRoot: checkpoint.root,
                                               newRoot: proof.newRoot, proof: proof.hashes) else {
            throw SteleError.checkpoint(.rootMismatch(size: checkpoint.treeSize, checkpointRoot: checkpoint.root, storeRoot: proof.oldRoot))
        }
        return checkpoint
    }
}
