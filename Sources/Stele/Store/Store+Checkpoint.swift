import Logging
import SteleNative

extension Store {
    private var checkpointStore: CheckpointStore {
        CheckpointStore(fs: fs, directory: StoreLayout(root: path).checkpoints, origin: config.origin)
    }

    /// Signs a C2SP checkpoint of the whole log with `signer` and stores it under `checkpoints/`.
    ///
    /// First makes every record and the tiles for the current size durable, with appends held
    /// off meanwhile (so neither the tiles nor the checkpoint ever cover a record that a power cut
    /// could still take: tiles of such records would be evidence of records lost that were never
    /// durable), then checks that the new checkpoint extends the latest one the store signed (it
    /// never signs two inconsistent checkpoints), then signs and writes it.
    /// - Returns: the signed note (origin, tree size, base64 root, signature line).
    /// - Throws: ``SteleError/checkpoint(_:)`` (inconsistent with the previous checkpoint, or the
    ///   store is behind it), ``SteleError/readOnly``, ``SteleError/writesDisabled(cause:)``,
    ///   ``SteleError/io(_:)``.
    /// - Cost: one `msync`, one `syncfs`, one Ed25519 signature, a few small file writes; appends
    ///   wait for them.
    @discardableResult
    public func checkpoint(signer: NoteSigner) throws -> String {
        try signCheckpoint(signer: signer, publish: true)
    }

    /// Signs a checkpoint as ``checkpoint(signer:)`` does, but keeps it out of
    /// `checkpoints/checkpoint` (what `stele serve` and `latestCheckpoint()` show) until
    /// ``publishCheckpoint(_:cosignatures:)``: so that witnesses can cosign it first, and nobody
    /// sees it without its cosignatures. It is in `checkpoints/history` at once.
    /// - Returns: the signed note.
    /// - Throws: as ``checkpoint(signer:)``.
    public func signUnpublishedCheckpoint(signer: NoteSigner) throws -> String {
        try signCheckpoint(signer: signer, publish: false)
    }

    private func signCheckpoint(signer: NoteSigner, publish: Bool) throws -> String {
        // Most of the sync happens here, with appends running; the one under the locks below
        // covers only what they added meanwhile.
        try sync()
        // Lock order: the sync cursor before the state (as `makeDurable`).
        return try syncCursor.withLock { cursor throws -> String in
            try state.withLock { state throws -> String in
                guard let log = state.log else { throw SteleError.closed }
                if let refusal = state.writeRefusal { throw refusal }
                if let damage = log.tilesUnavailable { throw SteleError.corruption(damage) }
                if durableCount.load(ordering: .acquiring) < log.nextSequence, let pending = log.durableSync(after: cursor) {
                    do {
                        try pending.run()
                    } catch SteleError.io(let cause) {
                        state.failure = state.failure ?? cause
                        logWritesDisabled(cause, during: "a checkpoint's sync")
                        throw SteleError.writesDisabled(cause: cause)
                    }
                    cursor = pending.reached
                    durableCount.raise(to: pending.records)
                }
                try log.makeTilesDurable()
                let reader = TileReader(store: log.tiles, cache: tileCache, size: log.frontier.size, builder: log.tileBuilder)
                return try checkpointStore.sign(size: log.frontier.size, root: log.frontier.root, signer: signer, publish: publish,
                                                sealedEnd: log.sealedRecordCount) {
                    try MerkleProofs.root(reader, size: $0)
                }
            }
        }
    }

    /// The latest checkpoint this store signed, as a signed note; nil if none.
    /// - Throws: ``SteleError/io(_:)`` if `checkpoints/checkpoint` cannot be read.
    /// - Cost: reads one small file.
    public func latestCheckpoint() throws -> String? {
        try checkpointStore.latest()
    }

    /// Publishes a checkpoint from ``signUnpublishedCheckpoint(signer:)`` with witnesses'
    /// cosignature lines added (none if too few witnesses cosigned), as `stele checkpoint
    /// --witness` does.
    /// - Returns: the note as published.
    /// - Throws: ``SteleError/checkpoint(_:)`` if the store did not sign `note`, a line is not a
    ///   signature line, or a larger checkpoint is published already; ``SteleError/readOnly``;
    ///   ``SteleError/io(_:)``.
    @discardableResult
    public func publishCheckpoint(_ note: String, cosignatures: [String]) throws -> String {
        guard !options.readOnly else { throw SteleError.readOnly }
        // Under the sync cursor, which close holds while it takes the log out: a store that is
        // closed (its writer lock released, perhaps another process's now) publishes nothing.
        return try syncCursor.withLock { _ throws -> String in
            guard let sealedEnd = state.withLock({ $0.log?.sealedRecordCount }) else { throw SteleError.closed }
            return try checkpointStore.publish(note, cosignatures: cosignatures, sealedEnd: sealedEnd)
        }
    }
}

/// How many of `keys` cosigned a checkpoint note (c2sp.org/tlog-cosignature): a witness quorum.
public enum CosignatureQuorum {
    /// The number of distinct public keys among `keys` with a valid cosignature on `note`. Keys
    /// are told apart by their public key, not their name: a cosignature/v1 message does not
    /// commit to the witness's name, so one key under two names would otherwise count twice.
    /// - Throws: ``SteleError/checkpoint(_:)`` for a malformed note, or a cosignature by one of
    ///   `keys` that does not verify (the note was altered).
    public static func count(in note: String, keys: [CosignatureVerifier]) throws -> Int {
        var seen: Set<[UInt8]> = []
        for key in keys where !seen.contains(key.publicKey) {
            if try key.cosignatureTime(in: note) != nil { seen.insert(key.publicKey) }
        }
        return seen.count
    }
}
