import SteleNative

/// Installing a sealed segment that another store wrote: how a standby extends its log with the
/// segments of the log it follows, byte for byte, so that the promoted store holds the very
/// files the copy holds (its mirror then finds them already there).
///
/// Invariants, as for an append:
/// - nothing of the log changes until the segment checked out whole: its header and footer
///   (checksums, seal hash), every frame's XXH3, its place in the chain (index, first sequence,
///   the seal it links to, the store), every record's sequence number and timestamp in order,
///   no redaction stub (a copy holds what the writer sealed; a stub's leaf hash would vouch for
///   a type and key it does not hash), its records reproducing the footer's content digest,
///   Merkle root and frontier from the log's own tree, and its policy records applying;
/// - the file is written under a temporary name, synced, renamed and its directory synced before
///   the log takes it in, so a crash leaves the log as it was or one sealed segment longer;
/// - the tree, tiles, key index, retention state and `reach` then follow, as after a seal.
extension SegmentLog {
    /// Adds `bytes`, a sealed segment continuing this log, as its next segment.
    /// - Throws: ``SteleError/corruption(_:)`` if the bytes do not check out or do not continue
    ///   the chain (nothing changed); ``SteleError/invalidArgument(_:)`` if the log has records
    ///   in an active segment of its own; ``SteleError/io(_:)``.
    package func installSealed(_ bytes: [UInt8], name: String) throws {
        guard writable else { throw SteleError.readOnly }
        let (header, footer) = try SegmentBytes.sealedHeaderAndFooter(bytes, name: name)
        // Records installed from the copy's chunks of this segment (``installActiveFrames(_:segment:name:)``)
        // must be the sealed segment's first records, byte for byte: then only the rest is new.
        let prefix = active.map { ($0.header.firstSequence, $0.writeOffset, $0.contentHasher) } ?? (nextSequence, SegmentHeader.size, SHA256Hasher())
        guard header.storeID == storeID, header.index == nextIndex, header.firstSequence == prefix.0, header.previousSeal == lastSealHash,
              Int(footer.framesEnd) >= prefix.1 else {
            throw SteleError.corruption(Corruption(file: name, detail: "segment \(header.index) from record \(header.firstSequence) does not continue "
                + "this log (segment \(nextIndex) from record \(prefix.0), linked to the seal before, of this store)"))
        }
        if let segment = active, segment.recordCount > 0 {
            let same = ByteView.of(bytes) { view in
                view.slice(SegmentHeader.size, prefix.1 - SegmentHeader.size).withBuffer { sealedFrames in
                    segment.region.view(SegmentHeader.size ..< prefix.1).withBuffer { ours in sealedFrames.elementsEqual(ours) }
                }
            }
            guard same else {
                throw SteleError.corruption(Corruption(file: name, detail: "its first records differ from those its chunks gave (a fork)"))
            }
        }
        let checked = try checkCopiedFrames(bytes, from: prefix.1, to: Int(footer.framesEnd), name: name)
        var content = prefix.2
        for leaf in checked.leaves { content.update(leaf) }
        guard checked.next == footer.lastSequence + 1, content.finalize() == footer.contentDigest, checked.tree.size == footer.treeSize,
              checked.tree.root == footer.treeRoot, checked.tree.hashes == footer.frontier else {
            throw SteleError.corruption(Corruption(file: name, detail: "its records do not reproduce the content digest, Merkle root and frontier of its seal"))
        }

        // The file, durable under its name before the log takes it in; it replaces the active
        // segment of the same number (empty, or holding the records just compared) by the rename.
        // The rename replaces the file under the active segment's mapping, which stays valid: the
        // active segment is let go only once the sealed one is open, so a failure leaves the log
        // as it was.
        let path = directory + "/" + SegmentFiles.name(header.index)
        try fs.writeAtomically(bytes, to: path, permissions: 0o444, directory: directory)
        let segment = try SealedSegment.open(fs: fs, path: path, expectedIndex: header.index)
        if let replaced = active {
            replaced.close()
            active = nil
        }
        takeIn(bytes, from: prefix.1, to: Int(footer.framesEnd), segment: header.index, checked: checked)
        sealed.append(segment)
        lastTimestamp = max(lastTimestamp, footer.sealedAt)
        persistTiles()
        writeIndexSnapshotIfDue()
        try writeReach(open: true)
    }

    /// Appends `bytes`, whole frames of segment `segment` that continue this log (a chunk of the
    /// copied writer's active segment), to the active segment, creating it if there is none, and
    /// syncs them: durable on return. Checked as ``installSealed(_:name:)`` checks a segment's
    /// records; the caller proved them against a signed checkpoint.
    package func installActiveFrames(_ bytes: [UInt8], segment index: UInt64, name: String) throws {
        guard writable else { throw SteleError.readOnly }
        guard index == (active?.header.index ?? nextIndex) else {
            throw SteleError.corruption(Corruption(file: name, detail: "records of segment \(index), where this log's active segment is \(active?.header.index ?? nextIndex)"))
        }
        let checked = try checkCopiedFrames(bytes, from: 0, to: bytes.count, name: name)
        if active == nil { try rotate() }
        guard let segment = active, segment.hasRoom(for: bytes.count) else {
            throw SteleError.corruption(Corruption(file: name, detail: "\(bytes.count) bytes of records do not fit in segment \(index), where its writer put them"))
        }
        takeIn(bytes, from: 0, to: bytes.count, segment: index, checked: checked) { frame, view, leaf in
            view.slice(frame.namespace.lowerBound, frame.namespace.count).withBuffer { namespace in
                view.slice(frame.key.lowerBound, frame.key.count).withBuffer { key in
                    view.slice(frame.stored.lowerBound, frame.stored.count).withBuffer { stored in
                        segment.append(type: frame.type, flags: frame.flags, sequence: frame.sequence, timestamp: frame.timestamp,
                                       namespace: namespace, key: key, stored: stored, valueLength: frame.valueLength, leafHash: leaf)
                    }
                }
            }
        }
        segment.endStaging()
        try syncGate.run { try fs.syncMapped(segment.region, 0 ..< segment.writeOffset) }
        segment.markDurable(through: segment.writeOffset)
        try syncGate.run { try fs.syncMapped(segment.region, 0 ..< SegmentHeader.size) }
        // The records first, then their tiles (as at a seal): the standby keeps the checkpoint
        // that proved them, and serves proofs at that size.
        persistTiles()
    }

    /// What checking copied frames found: their leaves, the tree and retention state they lead
    /// to, and the sequence number after them.
    struct CheckedFrames {
        var leaves: [Digest] = []
        var tree: Frontier
        var retention: RetentionState
        var retentionRecords: [UInt64]
        var next: UInt64
        var newest: Int64
    }

    /// Checks the frames in `bytes[start ..< end]` as records that continue this log: each one's
    /// checksum, sequence number and timestamp in order, no redaction stub, nothing of an
    /// encrypted store, its policy records applying (to copies). Changes nothing.
    private func checkCopiedFrames(_ bytes: [UInt8], from start: Int, to end: Int, name: String) throws -> CheckedFrames {
        var checked = CheckedFrames(tree: frontier, retention: retention, retentionRecords: retentionRecords, next: nextSequence, newest: lastTimestamp)
        try ByteView.of(bytes) { view in
            try Self.forEachFrame(view, from: start, to: end, path: name) { frame, view in
                func refuse(_ detail: String) -> SteleError {
                    SteleError.corruption(Corruption(file: name, offset: frame.offset, sequence: frame.sequence, detail: detail))
                }
                guard frame.sequence == checked.next else { throw refuse("record \(frame.sequence) where record \(checked.next) belongs") }
                guard frame.timestamp >= checked.newest else { throw refuse("its timestamp goes back") }
                // A copy holds what the writer sealed; a purge's stub is a local rewrite, never in
                // a copy, and its leaf hash would vouch for a type and key it does not hash.
                guard !frame.isRedacted else { throw refuse("a redaction stub in a copied segment") }
                guard !frame.isEncrypted, frame.type != .shred else { throw refuse("an encrypted store's record in a store that is not") }
                guard let leaf = frame.leafHash(in: view) else { throw refuse("its value does not decode") }
                checked.tree.append(leaf)
                checked.leaves.append(leaf)
                if frame.type.isPolicy {
                    try Self.noteRetention(frame, view, path: name, retention: &checked.retention, retentionRecords: &checked.retentionRecords)
                }
                checked.next += 1
                checked.newest = frame.timestamp
            }
        }
        try Self.finishReplay(&checked.retention, path: name)
        return checked
    }

    /// Takes checked frames into the log: the tree and tiles, the key index, the retention state,
    /// the next sequence number; `write` puts each frame in the active segment first, if given.
    private func takeIn(_ bytes: [UInt8], from start: Int, to end: Int, segment index: UInt64, checked: CheckedFrames,
                        write: ((FrameInfo, ByteView, Digest) -> Void)? = nil) {
        ByteView.of(bytes) { view in
            var queue = KeyRebuildQueue()
            var offset = start
            var position = 0
            while offset < end, case .success(let frame) = Frame.decode(view, at: offset, limit: end) {
                let leaf = checked.leaves[position]
                let placed = write == nil ? frame.offset : (active?.writeOffset ?? frame.offset)
                write?(frame, view, leaf)
                addToTree(leaf)
                if frame.type == .put || frame.type == .tombstone {
                    queue.add(frame, view, hint: KeyIndex.FrameHint(segment: index, offset: placed), into: &keys)
                }
                offset = frame.end
                position += 1
            }
            queue.drain(into: &keys)
        }
        nextSequence = checked.next
        lastTimestamp = max(lastTimestamp, checked.newest)
        retention = checked.retention
        retentionRecords = checked.retentionRecords
    }
}
