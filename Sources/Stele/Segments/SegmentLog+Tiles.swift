import Logging
import SteleNative

/// Keeping the tiles in step with the log: restoring them on open, persisting them at seals.
extension SegmentLog {
    /// Restores the tile builder for the whole log. Tiles are trusted up to the size recorded in
    /// `tiles/state` only if the root recomputed from them matches; everything after is rebuilt
    /// from the records (written again, or kept in memory when read-only), and the result must
    /// reproduce the log's own Merkle root, or everything is rebuilt from leaf 0.
    /// Returns the range of tree sizes whose tiles were rebuilt, if any (for the recovery
    /// report, which the caller fills in: this may run beside ``rebuildKeys()``).
    func restoreTiles(afterLostSync: Bool = false) throws -> Range<UInt64>? {
        let size = nextSequence
        var start: UInt64 = 0
        var builder = TileBuilder()
        var rebuilt = Frontier()
        let state = try? tiles.readState()
        if let state, state.size <= size, state.size > 0,
           let restored = try? TileBuilder(size: state.size, store: tiles) {
            let reader = TileReader(store: tiles, cache: TileCache(capacity: 8), size: state.size, builder: restored)
            if let root = try? MerkleProofs.root(reader, size: state.size), root == state.root,
               let restoredFrontier = try? SegmentLog.frontier(reader, size: state.size) {
                builder = restored
                rebuilt = restoredFrontier
                start = state.size
            }
        }
        try replayLeaves(from: start, into: &builder, frontier: &rebuilt)
        if rebuilt.root != frontier.root {
            guard start > 0 else {
                throw SteleError.corruption(Corruption(file: directory, detail: "records do not reproduce the Merkle root in the segment footers"))
            }
            // Tiles before the recorded size disagree with the log. The tiles agree with the root
            // `tiles/state` recorded, which was written only after the records it covers were on
            // disk: if the records no longer give that root, a record was altered after its tiles
            // were written (a frame re-forged with its checksum). That is evidence, and is kept:
            // nothing is rebuilt over it, and the writer refuses to build on the altered log.
            if let state {
                var records = Frontier()
                while records.size < state.size { records.append(try leafHash(at: records.size)) }
                if records.root != state.root {
                    let damage = Corruption(file: tiles.directory + "/state", sequence: state.size,
                                            detail: "the records no longer give the root \(state.root.hex) that tiles/state recorded at size \(state.size) (they give \(records.root.hex)): a record before it was altered after its tiles were written; `stele verify` against a checkpoint names it")
                    tampered = damage
                    throw SteleError.corruption(damage)
                }
            }
            // The tiles themselves were damaged: rebuild all of them.
            start = 0
            builder = TileBuilder()
            rebuilt = Frontier()
            try replayLeaves(from: 0, into: &builder, frontier: &rebuilt)
            guard rebuilt.root == frontier.root else {
                throw SteleError.corruption(Corruption(file: directory, detail: "records do not reproduce the Merkle root in the segment footers"))
            }
        }
        tileBuilder = builder
        if writable {
            // Derived data: a failure here is reported like a failed persist, and open goes on.
            do { try reconcileUndurablePartials(durableSize: start, rewriteMatching: afterLostSync) } catch { tileFailure = tileFailure(from: error) }
        }
        guard start < size else { return nil }
        // Tiles past the recorded size may have been cut mid-write (a crash between writing
        // them and `syncfs`): write them again now so that what is on disk matches the log.
        if writable && !afterLostSync { persistTiles() }
        return start ..< size
    }

    /// Partial tiles of sizes past `durableSize` (the size `tiles/state` vouches for) may have been
    /// cut by a crash or a failed `syncfs` between writing them and recording their size: each
    /// one that disagrees with the records is written again, or removed when the records do not
    /// reach it (found by the power-cut test). Full tiles past that size are rewritten by the
    /// replay itself.
    private func reconcileUndurablePartials(durableSize: UInt64, rewriteMatching: Bool) throws {
        var changed = 0
        for level in tileBuilder.pending.indices {
            let shift = 8 * UInt64(level + 1)
            let nodes = durableSize >> (8 * UInt64(level))  // level-L nodes the durable size covers
            for index in (durableSize >> shift) ... tileBuilder.fullTiles[level] {
                let hashes = index < tileBuilder.fullTiles[level] ? (try tiles.read(level: level, index: index) ?? [])
                                                                  : tileBuilder.pending[level]
                let durableWidth = nodes >= (index + 1) * 256 ? 256 : Int(nodes - min(nodes, index * 256))
                changed += try tiles.reconcilePartials(level: level, index: index, durableWidth: durableWidth, hashes: hashes,
                                                        rewriteMatching: rewriteMatching)
            }
        }
        if changed > 0 { try fs.syncFileSystem(tiles.directory) }
    }

    private func replayLeaves(from start: UInt64, into builder: inout TileBuilder, frontier: inout Frontier) throws {
        var sequence = start
        while sequence < nextSequence {
            builder.append(leaf: try leafHash(at: sequence), frontier: &frontier, store: tiles)
            sequence += 1
        }
    }

    /// The frontier of a tree of `size` leaves, read from a node source.
    static func frontier(_ source: some MerkleNodeSource, size: UInt64) throws -> Frontier? {
        var hashes: [Digest] = []
        var position: UInt64 = 0
        for bit in stride(from: 63, through: 0, by: -1) where size & (1 << UInt64(bit)) != 0 {
            hashes.append(try source.node(level: bit, index: position >> UInt64(bit)))
            position += 1 << UInt64(bit)
        }
        return Frontier(size: size, hashes: hashes)
    }

    /// The leaf hash of record `sequence`, recomputed from its frame (checksum verified).
    package func leafHash(at sequence: UInt64) throws -> Digest {
        try withFrame(at: sequence) { frame, view in
            guard let leaf = frame.leafHash(in: view) else {
                throw SteleError.corruption(Corruption(file: directory, sequence: sequence, detail: "LZ4 value does not decode"))
            }
            return leaf
        }
    }

    /// Makes the tiles for the current tree durable (at a seal). Tiles are derived data, so a
    /// failure here does not fail the seal: it is reported, and the next open rebuilds them.
    func persistTiles() {
        do {
            try makeTilesDurable()
            tileFailure = nil
        } catch {
            let failure = tileFailure(from: error)
            tileFailure = failure
            logger.error("tiles not durable; the next seal or open writes them again from the records", metadata: [
                "stele.operation": .string(failure.operation), "stele.path": .string(failure.path), "stele.errno": "\(failure.errno)",
                "stele.tree_size": "\(frontier.size)",
            ])
        }
    }

    /// Any error from derived data (tiles) as the I/O failure that the stats report: such a
    /// failure never fails the open or seal that met it, whatever its kind.
    private func tileFailure(from error: any Error) -> IOError {
        if case let SteleError.io(ioError) = error { return ioError }
        return IOError(operation: "persist tiles: \(error)", path: tiles.directory, errno: 0)
    }

    /// Makes the tiles for the current tree durable and records its size in `tiles/state`; a
    /// checkpoint may be signed over that size once this returns.
    /// - Throws: ``SteleError/corruption(_:)`` (tiles unavailable), ``SteleError/io(_:)``.
    func makeTilesDurable() throws {
        if let damage = tilesUnavailable { throw SteleError.corruption(damage) }
        if tiles.tilesMayBeLost {
            // Tiles written since the last good persist may be gone from the disk although the
            // page cache still shows them (found by the power-cut test): write again every tile
            // past the size `tiles/state` vouches for, from the records, as an open would.
            _ = try restoreTiles(afterLostSync: true)
        }
        try tiles.persist(size: frontier.size, root: frontier.root, partials: tileBuilder.pending)
    }

    /// Signs a checkpoint of the current tree at a seal, when a signer is configured and the
    /// tiles are durable. Failures are kept in `checkpointFailure`, not thrown: the seal stands.
    func signSealCheckpoint() {
        guard let (store, signer) = sealCheckpoints else { return }
        guard tileFailure == nil else {
            checkpointFailure = "tiles are not durable"
            logger.error("seal checkpoint not signed: tiles are not durable", metadata: ["stele.tree_size": "\(frontier.size)"])
            return
        }
        do {
            let reader = TileReader(store: tiles, cache: TileCache(capacity: 8), size: frontier.size, builder: tileBuilder)
            let handOver = unpublishedSealCheckpoint
            let note = try store.sign(size: frontier.size, root: frontier.root, signer: signer, publish: handOver == nil,
                                      sealedEnd: sealedRecordCount) {
                try MerkleProofs.root(reader, size: $0)
            }
            checkpointFailure = nil
            handOver?(note)
        } catch {
            checkpointFailure = "\(error)"
            logger.error("seal checkpoint not signed", metadata: ["stele.tree_size": "\(frontier.size)", "stele.error": "\(error)"])
        }
    }

    /// The tiles of the current tree, as of now (for roots and proofs outside the writer lock).
    package var treeSnapshot: TreeSnapshot {
        TreeSnapshot(size: frontier.size, builder: tileBuilder)
    }
}

/// What a proof request needs from the writer's state: the tree size and its partial tiles.
package struct TreeSnapshot: Sendable {
    package let size: UInt64
    package let pending: [[Digest]]
    package let fullTiles: [UInt64]

    init(size: UInt64, builder: TileBuilder) {
        self.size = size
        self.pending = builder.pending
        self.fullTiles = builder.fullTiles
    }
}
