import SteleNative

/// A standby: a store that follows another store's log from its off-host copy, opened with
/// ``Options/standby`` (SteleMirror's `Standby` drives it).
///
/// Invariants:
/// - a standby holds only what was installed whole, each sealed segment checked against the
///   chain and its own tree before the log takes it in (see `SegmentLog+Install.swift`), so
///   its readers (get, history, scan, proofs) see nothing else;
/// - it holds the writer lock but is fenced (its `fenced` file names the writer it follows):
///   every append, seal, checkpoint, purge and shred is refused with
///   ``SteleError/fenced(epoch:holder:)`` until ``liftStandbyFence()``, which a promotion calls
///   only after it claimed the next writer epoch in the copy;
/// - installs and writes never mix: a segment is installed only while the store is fenced, and
///   a promoted store installs nothing more.
extension Store {
    /// Installs `bytes`, the next sealed segment of this store's log as its copy holds it.
    /// Durable on return (the file and its directory are synced), as after a seal.
    /// - Parameter name: where the bytes came from, for errors.
    /// - Returns: the records the store now holds.
    /// - Throws: ``SteleError/corruption(_:)`` if the segment does not check out or does not
    ///   continue the log (nothing is installed); ``SteleError/invalidArgument(_:)`` if the
    ///   store is not a fenced standby, or is encrypted; ``SteleError/closed``; ``SteleError/io(_:)``.
    @discardableResult
    package func installSealedSegment(_ bytes: [UInt8], name: String) throws -> UInt64 {
        // The sync cursor first (as every sync takes it): the active segment may be replaced.
        try syncCursor.withLock { _ in try state.withLock { state throws -> UInt64 in
            guard let log = state.log else { throw SteleError.closed }
            guard options.standby, state.fence != nil else {
                throw SteleError.invalidArgument("\(path) is not a fenced standby: it installs no segments from elsewhere")
            }
            guard !isEncrypted else { throw SteleError.invalidArgument("\(path) is encrypted: a standby of an encrypted store is not supported") }
            try log.installSealed(bytes, name: name)
            durableCount.raise(to: log.nextSequence)
            try followConfig(log)
            return log.nextSequence
        } }
    }

    /// The Merkle tree over every record the store holds (a standby extends it with what it reads).
    package func treeFrontier() throws -> Frontier {
        try state.withLock { state throws in
            guard let log = state.log else { throw SteleError.closed }
            return log.frontier
        }
    }

    /// Installs `bytes`, records that continue this store's log in segment `segment` (a chunk of
    /// the followed writer's active segment, as its copy holds it), into the active segment.
    /// Durable on return (synced). The sealed segment, when it comes, must begin with them.
    /// - Returns: the records the store now holds.
    /// - Throws: as ``installSealedSegment(_:name:)``.
    @discardableResult
    package func installActiveRecords(_ bytes: [UInt8], segment: UInt64, name: String) throws -> UInt64 {
        try syncCursor.withLock { cursor throws -> UInt64 in
            try state.withLock { state throws -> UInt64 in
                guard let log = state.log else { throw SteleError.closed }
                guard options.standby, state.fence != nil else {
                    throw SteleError.invalidArgument("\(path) is not a fenced standby: it installs no records from elsewhere")
                }
                if let failure = state.failure { throw SteleError.writesDisabled(cause: failure) }
                guard !isEncrypted else { throw SteleError.invalidArgument("\(path) is encrypted: a standby of an encrypted store is not supported") }
                do {
                    try log.installActiveFrames(bytes, segment: segment, name: name)
                } catch SteleError.io(let cause) {
                    // The records are in the log, their durability unknown (fsync-gate semantics):
                    // nothing more is installed or written until the store is reopened.
                    state.failure = state.failure ?? cause
                    throw SteleError.writesDisabled(cause: cause)
                }
                if let active = log.active { cursor = SyncCursor(segment: active.header.index, offset: active.writeOffset) }
                durableCount.raise(to: log.nextSequence)
                try followConfig(log)
                return log.nextSequence
            }
        }
    }

    /// A config record (a governance key change) installed: `stele.conf` follows the log, as
    /// after `changeGovernanceKey`, or the next open would find them disagreeing.
    private func followConfig(_ log: SegmentLog) throws {
        guard let fromLog = log.configFromLog, !config.differences(from: fromLog).isEmpty else { return }
        currentConfig.withLock { $0 = fromLog }
        try fs.writeAtomically(Array(fromLog.encoded.utf8), to: StoreLayout(root: path).config, permissions: 0o444, directory: path)
    }

    /// Keeps `note`, a checkpoint of this log signed by the writer it follows, as the store's own
    /// (`checkpoints/`), once its root is the store's at that size.
    /// - Throws: ``SteleError/checkpoint(_:)`` if the store's tree at that size has another root
    ///   or is smaller.
    package func keepStandbyCheckpoint(_ note: String, size: UInt64, root: Digest) throws {
        guard size <= recordCount else { throw SteleError.checkpoint(.storeBehindCheckpoint(checkpointSize: size, storeSize: recordCount)) }
        let actual = try rootHash(treeSize: size)
        guard actual == root else {
            throw SteleError.checkpoint(.inconsistentWithPrevious(previousSize: size, detail: "the standby's tree at that size has root \(actual.hex)"))
        }
        guard let sealedEnd = state.withLock({ $0.log?.sealedRecordCount }) else { throw SteleError.closed }
        try CheckpointStore(fs: fs, directory: StoreLayout(root: path).checkpoints, origin: config.origin).keep(note, size: size, sealedEnd: sealedEnd)
    }

    /// Ends a standby's fence once it holds the writer epoch: from now on it is the writer, and
    /// installs nothing more. The `fenced` file goes first, so a crash leaves it fenced or not,
    /// never refusing writes that a reopen would accept.
    package func liftStandbyFence() throws {
        try state.withLock { state throws in
            guard state.log != nil else { throw SteleError.closed }
            guard options.standby else { throw SteleError.invalidArgument("\(path) is not a standby") }
            try FenceMarker.remove(fs: fs, layout: StoreLayout(root: path))
            state.fence = nil
            state.fenceCheckedAt = 0
        }
    }

    /// The fence in force, if any (a standby not yet promoted, or a replaced writer): the writer
    /// epoch, and its holder, that this store is not.
    package var currentFence: (epoch: UInt64, holder: String)? { state.withLock { $0.fence } }

    /// The header and footer of the last sealed segment, if any (a standby continues from it).
    package func lastSeal() throws -> (header: SegmentHeader, footer: SegmentFooter)? {
        try state.withLock { state throws in
            guard let log = state.log else { throw SteleError.closed }
            return log.sealed.last.map { ($0.header, $0.footer) }
        }
    }
}
