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
        guard header.storeID == storeID, header.index == nextIndex, header.firstSequence == nextSequence,
              header.previousSeal == lastSealHash else {
            throw SteleError.corruption(Corruption(file: name, detail: "segment \(header.index) from record \(header.firstSequence) does not continue "
                + "this log (segment \(nextIndex) from record \(nextSequence), linked to the seal before, of this store)"))
        }
        // Everything the log takes from the segment is checked first, into copies: a segment that
        // fails a check changes nothing.
        var tree = frontier
        var content = SHA256Hasher()
        var retentionAfter = retention
        var retentionRecordsAfter = retentionRecords
        var expected = nextSequence
        var newest = lastTimestamp
        try ByteView.of(bytes) { view in
            try Self.forEachFrame(view, from: SegmentHeader.size, to: Int(footer.framesEnd), path: name) { frame, view in
                func refuse(_ detail: String) -> SteleError {
                    SteleError.corruption(Corruption(file: name, offset: frame.offset, sequence: frame.sequence, detail: detail))
                }
                guard frame.sequence == expected else { throw refuse("record \(frame.sequence) where record \(expected) belongs") }
                guard frame.timestamp >= newest else { throw refuse("its timestamp goes back") }
                // A copy holds what the writer sealed; a purge's stub is a local rewrite, never in
                // a copy, and its leaf hash would vouch for a type and key it does not hash.
                guard !frame.isRedacted else { throw refuse("a redaction stub in a copied segment") }
                guard !frame.isEncrypted, frame.type != .shred else { throw refuse("an encrypted store's record in a store that is not") }
                guard let leaf = frame.leafHash(in: view) else { throw refuse("its value does not decode") }
                tree.append(leaf)
                content.update(leaf)
                if frame.type.isPolicy {
                    try Self.noteRetention(frame, view, path: name, retention: &retentionAfter, retentionRecords: &retentionRecordsAfter)
                }
                expected += 1
                newest = frame.timestamp
            }
        }
        try Self.finishReplay(&retentionAfter, path: name)
        guard expected == footer.lastSequence + 1, content.finalize() == footer.contentDigest, tree.size == footer.treeSize,
              tree.root == footer.treeRoot, tree.hashes == footer.frontier else {
            throw SteleError.corruption(Corruption(file: name, detail: "its records do not reproduce the content digest, Merkle root and frontier of its seal"))
        }

        // The file, durable under its name before the log takes it in. An empty active segment
        // (a writable open or a rotation made one) is replaced by the rename: `reach` may name it.
        if let segment = active {
            guard segment.recordCount == 0 else {
                throw SteleError.invalidArgument("\(segment.path) holds records of this store's own: a sealed segment from elsewhere cannot follow them")
            }
            segment.close()
            active = nil
        }
        let path = directory + "/" + SegmentFiles.name(header.index)
        try fs.writeAtomically(bytes, to: path, permissions: 0o444, directory: directory)
        let segment = try SealedSegment.open(fs: fs, path: path, expectedIndex: header.index)

        // Then the log, as after a seal: the tree and tiles, the key index, the retention state.
        ByteView.of(bytes) { view in
            var queue = KeyRebuildQueue()
            var offset = SegmentHeader.size
            while offset < Int(footer.framesEnd), case .success(let frame) = Frame.decode(view, at: offset, limit: Int(footer.framesEnd)) {
                if let leaf = frame.leafHash(in: view) { addToTree(leaf) }
                if frame.type == .put || frame.type == .tombstone {
                    queue.add(frame, view, hint: KeyIndex.FrameHint(segment: header.index, offset: frame.offset), into: &keys)
                }
                offset = frame.end
            }
            queue.drain(into: &keys)
        }
        sealed.append(segment)
        nextSequence = footer.lastSequence + 1
        lastTimestamp = max(lastTimestamp, footer.sealedAt)
        retention = retentionAfter
        retentionRecords = retentionRecordsAfter
        persistTiles()
        writeIndexSnapshotIfDue()
        try writeReach(open: true)
    }
}
