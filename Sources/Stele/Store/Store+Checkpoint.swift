extension Store {
    private var checkpointStore: CheckpointStore {
        CheckpointStore(fs: fs, directory: StoreLayout(root: path).checkpoints, origin: config.origin)
    }

    /// Signs a C2SP checkpoint of the whole log with `signer` and stores it under `checkpoints/`.
    ///
    /// First makes every record durable and the tiles for the current size durable (records that
    /// other callers append meanwhile, not yet durable, are left to the next checkpoint), then checks
    /// that the new checkpoint extends the latest one the store signed (it never signs two
    /// inconsistent checkpoints), then signs and writes it.
    /// - Returns: the signed note (origin, tree size, base64 root, signature line).
    /// - Throws: ``SteleError/checkpoint(_:)`` (inconsistent with the previous checkpoint, or the
    ///   store is behind it), ``SteleError/readOnly``, ``SteleError/writesDisabled(cause:)``,
    ///   ``SteleError/io(_:)``.
    /// - Cost: one `msync`, one `syncfs`, one Ed25519 signature, a few small file writes.
    @discardableResult
    public func checkpoint(signer: NoteSigner) throws -> String {
        try sync()
        return try state.withLock { state throws -> String in
            guard let log = state.log else { throw SteleError.closed }
            if let failure = state.failure { throw SteleError.writesDisabled(cause: failure) }
            if let damage = log.tilesUnavailable { throw SteleError.corruption(damage) }
            try log.tiles.persist(size: log.frontier.size, root: log.frontier.root, partials: log.tileBuilder.pending)
            let reader = TileReader(store: log.tiles, cache: tileCache, size: log.frontier.size, builder: log.tileBuilder)
            // Other writers may have appended since the sync above: sign only what is durable,
            // so that no power cut can leave a signed checkpoint ahead of the log.
            let size = min(durableCount.load(ordering: .acquiring), log.frontier.size)
            let root = size == log.frontier.size ? log.frontier.root : try MerkleProofs.root(reader, size: size)
            return try checkpointStore.sign(size: size, root: root, signer: signer) { try MerkleProofs.root(reader, size: $0) }
        }
    }

    /// The latest checkpoint this store signed, as a signed note; nil if none.
    public func latestCheckpoint() throws -> String? {
        try checkpointStore.latest()
    }

    /// Checks this store against a checkpoint held elsewhere: the signature by `verifier`, the
    /// origin, and that the store's current tree is a consistent extension of the checkpoint's.
    ///
    /// This is what catches a rewritten history whose every hash, seal and tile was recomputed:
    /// only a checkpoint signed before the rewrite, kept out of the attacker's reach, can.
    /// - Returns: the verified checkpoint.
    /// - Throws: ``SteleError/checkpoint(_:)``: ``CheckpointError/noTrustedSignature(key:)``,
    ///   ``CheckpointError/badSignature(key:)``, ``CheckpointError/malformedNote(_:)``,
    ///   ``CheckpointError/malformedCheckpoint(_:)``, ``CheckpointError/wrongOrigin(expected:found:)``,
    ///   ``CheckpointError/storeBehindCheckpoint(checkpointSize:storeSize:)`` (data lost),
    ///   ``CheckpointError/rootMismatch(size:checkpointRoot:storeRoot:)`` (history rewritten).
    @discardableResult
    public func verify(checkpoint note: String, verifier: NoteVerifier) throws -> Checkpoint {
        let checkpoint: Checkpoint
        do {
            checkpoint = try Checkpoint(parsing: SignedNote.open(note, verifier: verifier))
        } catch let error as CheckpointError {
            throw SteleError.checkpoint(error)
        }
        guard checkpoint.origin == config.origin else {
            throw SteleError.checkpoint(.wrongOrigin(expected: config.origin, found: checkpoint.origin))
        }
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
