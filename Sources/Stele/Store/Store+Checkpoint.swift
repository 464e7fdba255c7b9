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
}
