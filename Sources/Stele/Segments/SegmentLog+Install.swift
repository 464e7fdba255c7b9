import SteleNative

/// Installing a sealed segment that another store wrote: how a standby extends its log with the
/// segments of the log it follows, byte for byte, so that the promoted store holds the very
/// files the copy holds (its mirror then finds them already there).
///
/// Invariants, as for an append:
/// - nothing of the log changes until the segment checked out whole: its header and footer
///   (checksums, seal hash), every frame's XXH3, its place in the chain (index, first sequence,
///   the seal it links to, the store), and its records reproducing the footer's content digest
///   and Merkle root from the log's own tree;
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
        let (_, leaves) = try SegmentBytes.leafHashes(bytes, name: name)
        guard header.storeID == storeID, header.index == nextIndex, header.firstSequence == nextSequence,
              header.previousSeal == lastSealHash else {
            throw SteleError.corruption(Corruption(file: name, detail: "segment \(header.index) from record \(header.firstSequence) does not continue "
                + "this log (segment \(nextIndex) from record \(nextSequence), linked to the seal before, of this store)"))
        }
        var tree = frontier
        var content = SHA256Hasher()
        for leaf in leaves {
            tree.append(leaf)
            content.update(leaf)
        }
        guard content.finalize() == footer.contentDigest, tree.size == footer.treeSize, tree.root == footer.treeRoot else {
            throw SteleError.corruption(Corruption(file: name, detail: "its records do not reproduce the content digest and Merkle root of its seal"))
        }
        if let segment = active {
            guard segment.recordCount == 0 else {
                throw SteleError.invalidArgument("\(segment.path) holds records of this store's own: a sealed segment from elsewhere cannot follow them")
            }
            // An empty segment a writable open or a rotation made: the installed one takes its number.
            segment.close()
            active = nil
            try fs.remove(segment.path)
        }
        let path = directory + "/" + SegmentFiles.name(header.index)
        try fs.writeAtomically(bytes, to: path, permissions: 0o444, directory: directory)
        let segment = try SealedSegment.open(fs: fs, path: path, expectedIndex: header.index)
        for leaf in leaves { addToTree(leaf) }
        sealed.append(segment)
        nextSequence = footer.lastSequence + 1
        lastTimestamp = max(lastTimestamp, footer.sealedAt)
        var queue = KeyRebuildQueue()
        try Self.forEachFrame(segment.region.wholeView, from: SegmentHeader.size, to: Int(footer.framesEnd), path: path) { frame, view in
            try replay(frame, view, segment: header.index, path: path, into: &keys, queue: &queue, retention: &retention,
                       retentionRecords: &retentionRecords)
        }
        queue.drain(into: &keys)
        try Self.finishReplay(&retention, path: directory)
        persistTiles()
        writeIndexSnapshotIfDue()
        try writeReach(open: true)
    }
}
