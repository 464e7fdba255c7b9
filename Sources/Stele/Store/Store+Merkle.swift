import SteleNative

extension Store {
    /// The number of leaves in the Merkle tree: every record is a leaf, and its sequence number
    /// is its leaf index.
    public var treeSize: UInt64 { recordCount }

    /// A reader over the tree as it is now, and the current root from the log's own frontier;
    /// proofs run outside the writer lock.
    private func treeReader() throws -> (TileReader, Digest) {
        let (snapshot, tiles, root) = try state.withLock { state throws -> (TreeSnapshot, TileStore, Digest) in
            guard let log = state.log else { throw SteleError.closed }
            if let damage = log.tilesUnavailable { throw SteleError.corruption(damage) }
            return (log.treeSnapshot, log.tiles, log.frontier.root)
        }
        let reader = TileReader(store: tiles, cache: tileCache, size: snapshot.size, pending: snapshot.pending,
                                fullTiles: snapshot.fullTiles)
        return (reader, root)
    }

    /// A root at `size`: the frontier's for the current size, else from tiles.
    private func root(_ reader: TileReader, size: UInt64, current: Digest) throws -> Digest {
        size == reader.size ? current : try MerkleProofs.root(reader, size: size)
    }

    private func tilesDisagree(_ what: String) -> SteleError {
        .corruption(Corruption(file: path + "/tiles", detail: "tiles disagree with the log: \(what)"))
    }

    private func checkSize(_ size: UInt64, current: UInt64, allowZero: Bool) throws {
        guard size <= current, allowZero || size > 0 else {
            throw SteleError.proof(.invalidTreeSize(size, available: current))
        }
    }

    /// The RFC 6962 root of the tree of the first `treeSize` records (default: all of them).
    /// - Throws: ``SteleError/proof(_:)`` if `treeSize` exceeds the log; ``SteleError/corruption(_:)``
    ///   if a tile is missing or damaged.
    /// - Cost: O(log n) tile lookups, at most a few hundred hashes when a tile is not cached.
    public func rootHash(treeSize: UInt64? = nil) throws -> Digest {
        let (reader, current) = try treeReader()
        let size = treeSize ?? reader.size
        try checkSize(size, current: reader.size, allowZero: true)
        return try root(reader, size: size, current: current)
    }

    /// The inclusion proof of record `index` in the tree of `treeSize` records (default: all).
    /// Check it with ``MerkleVerifier/verifyInclusion(leafHash:index:treeSize:proof:root:)``.
    /// - Throws: ``SteleError/proof(_:)`` for an index not below the size or a size of 0 or past
    ///   the log; ``SteleError/corruption(_:)`` for a damaged tile.
    /// - Cost: O(log n) node lookups from tiles (see `docs/benchmarks.md`).
    public func inclusionProof(index: UInt64, treeSize: UInt64? = nil) throws -> InclusionProof {
        let (reader, current) = try treeReader()
        let size = treeSize ?? reader.size
        try checkSize(size, current: reader.size, allowZero: false)
        guard index < size else { throw SteleError.proof(.indexOutOfRange(index: index, treeSize: size)) }
        let hashes = try MerkleProofs.inclusionProof(reader, index: index, size: size)
        let proof = InclusionProof(index: index, treeSize: size, root: try root(reader, size: size, current: current), hashes: hashes)
        // Tiles are derived data: check the proof against the record itself before handing it out.
        guard MerkleVerifier.verifyInclusion(leafHash: try leafHash(at: index), index: index, treeSize: size,
                                             proof: hashes, root: proof.root) else {
            throw tilesDisagree("inclusion proof of leaf \(index) in tree size \(size) does not verify")
        }
        return proof
    }

    /// The consistency proof from the tree of `from` records to the tree of `to` (default: all).
    /// Check it with ``MerkleVerifier/verifyConsistency(oldSize:newSize:oldRoot:newRoot:proof:)``.
    /// - Throws: ``SteleError/proof(_:)`` unless `0 < from ≤ to ≤` the log's size.
    public func consistencyProof(from: UInt64, to: UInt64? = nil) throws -> ConsistencyProof {
        let (reader, current) = try treeReader()
        let newSize = to ?? reader.size
        try checkSize(newSize, current: reader.size, allowZero: false)
        guard from > 0, from <= newSize else { throw SteleError.proof(.invalidRange(from: from, to: newSize)) }
        let proof = ConsistencyProof(from: from, to: newSize,
                                     oldRoot: try root(reader, size: from, current: current),
                                     newRoot: try root(reader, size: newSize, current: current),
                                     hashes: try MerkleProofs.consistencyProof(reader, from: from, to: newSize))
        guard MerkleVerifier.verifyConsistency(oldSize: from, newSize: newSize, oldRoot: proof.oldRoot,
                                               newRoot: proof.newRoot, proof: proof.hashes) else {
            throw tilesDisagree("consistency proof from \(from) to \(newSize) does not verify")
        }
        return proof
    }

    /// Hashes `256·index ..< 256·index + width` of C2SP tlog-tiles tile `index` at `level`: the
    /// Merkle tree hashes of consecutive subtrees of 256^level leaves (level 0: leaf hashes).
    /// A tile's hashes never change once the tree holds them, so any width the tree holds is
    /// the same bytes at every later size (c2sp.org/tlog-tiles; a tile server serves them).
    /// - Throws: ``SteleError/invalidArgument(_:)`` for a level over 63 or a width not 1-256;
    ///   ``SteleError/proof(_:)`` if the tree does not hold them yet; ``SteleError/corruption(_:)``
    ///   for a damaged tile.
    /// - Cost: one tile read (cached) and at most 256 × 7 hashes for a level-0 tile.
    public func tileHashes(level: Int, index: UInt64, width: Int) throws -> [Digest] {
        guard (0 ... 63).contains(level), (1 ... TileStore.width).contains(width) else {
            throw SteleError.invalidArgument("a tile has a level of 0-63 and a width of 1-256")
        }
        let (reader, _) = try treeReader()
        let (first, overflow) = index.multipliedReportingOverflow(by: UInt64(TileStore.width))
        guard !overflow, level < 8 else {
            throw SteleError.proof(.invalidTreeSize(.max, available: reader.size))
        }
        return try (0 ..< UInt64(width)).map { try reader.node(level: 8 * level, index: first + $0) }
    }

    /// The leaf hash of record `sequence`, recomputed from its frame (an encrypted record's
    /// from its blobs: no key needed).
    /// - Throws: ``SteleError/notFound(sequence:count:)``, ``SteleError/corruption(_:)``.
    public func leafHash(at sequence: UInt64) throws -> Digest {
        let location = try state.withLock { state throws -> SegmentLog.Location in
            guard let log = state.log else { throw SteleError.closed }
            return try log.locate(sequence)
        }
        return try location.withFrame(sequence) { frame, view in
            guard let leaf = frame.leafHash(in: view) else { throw Self.undecodableValue(sequence, location) }
            return leaf
        }
    }

    /// The canonical entry bytes of record `sequence`, read from its frame: what its leaf hash
    /// covers (`docs/format.md`), as an entry bundle serves it. For a record of an encrypted store
    /// that is version 2, over its blobs: no key is needed, and none is revealed.
    /// - Returns: nil for a purged record (its stub keeps only the leaf hash).
    /// - Throws: ``SteleError/notFound(sequence:count:)``, ``SteleError/corruption(_:)``, ``SteleError/closed``.
    public func canonicalEntry(at sequence: UInt64) throws -> [UInt8]? {
        let location = try state.withLock { state throws -> SegmentLog.Location in
            guard let log = state.log else { throw SteleError.closed }
            return try log.locate(sequence)
        }
        return try location.withFrame(sequence) { frame, view -> [UInt8]? in
            if frame.isRedacted { return nil }
            let namespace = view.slice(frame.namespace.lowerBound, frame.namespace.count).array
            let key = view.slice(frame.key.lowerBound, frame.key.count).array
            if frame.isEncrypted {
                return CanonicalEntry.encryptedBytes(type: frame.type, flags: frame.flags, sequence: frame.sequence, timestamp: frame.timestamp,
                                                     namespace: namespace, keyBlob: key,
                                                     valueBlob: view.slice(frame.stored.lowerBound, frame.stored.count).array)
            }
            guard let value = frame.value(in: view) else { throw Self.undecodableValue(sequence, location) }
            return CanonicalEntry.bytes(type: frame.type, sequence: frame.sequence, timestamp: frame.timestamp,
                                        namespace: namespace, key: key, value: value)
        }
    }

    /// The canonical entry bytes of a record (`docs/format.md`): what its leaf hash covers. For
    /// a record of an encrypted store the leaf covers the blobs instead (canonical entry version
    /// 2), which ``leafHash(at:)`` reads from the frame.
    public static func canonicalEntry(_ record: Record) -> [UInt8] {
        CanonicalEntry.bytes(type: record.type, sequence: record.sequence, timestamp: record.timestamp,
                             namespace: record.namespace, key: record.key, value: record.value)
    }
}

/// An RFC 9162 inclusion proof with the tree it refers to.
public struct InclusionProof: Sendable, Equatable {
    /// The leaf index (the record's sequence number).
    public var index: UInt64
    /// The size of the tree the proof is for.
    public var treeSize: UInt64
    /// The root of that tree, as the store computed it; check against a root you trust.
    public var root: Digest
    /// Sibling hashes from the leaf up.
    public var hashes: [Digest]
}

/// An RFC 9162 consistency proof between two tree sizes.
public struct ConsistencyProof: Sendable, Equatable {
    /// The older, smaller tree size.
    public var from: UInt64
    /// The newer tree size.
    public var to: UInt64
    /// The root of the tree of `from` records, as the store computed it.
    public var oldRoot: Digest
    /// The root of the tree of `to` records, as the store computed it.
    public var newRoot: Digest
    /// The RFC 9162 proof nodes, in the order
    /// ``MerkleVerifier/verifyConsistency(oldSize:newSize:oldRoot:newRoot:proof:)`` takes them.
    public var hashes: [Digest]
}
