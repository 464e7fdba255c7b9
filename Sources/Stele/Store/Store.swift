import CoreMetrics
import Logging
import Synchronization
import SteleNative

/// An open Stele store: an append-only, checksummed, hash-chained log of records.
///
/// `Store` is `Sendable`; any number of tasks or threads may append and read at once. Appends
/// are serialised by one writer lock (records are copied straight into a memory-mapped segment),
/// syncs run outside it on the store's committer thread so that concurrent appenders share them
/// (group commit), and reads only take the lock long enough to find a record. Every write has a
/// blocking form for threads and an `async` form of the same name that suspends instead of
/// blocking while it waits for its sync (<doc:Concurrency>).
///
/// One writer per store: ``init(path:options:)`` takes an exclusive lock on the store's `LOCK`
/// file, so a second process or a second `Store` in the same process gets ``SteleError/locked(path:)``.
public final class Store: Sendable {
    /// How to open a store.
    public struct Options: Sendable {
        /// When appends become durable; see ``CommitPolicy``.
        public var commitPolicy: CommitPolicy
        /// Open without the writer lock and without repairing anything: appends throw
        /// ``SteleError/readOnly``, and a torn tail is reported but left in place.
        public var readOnly: Bool
        /// Values at least this long are LZ4-compressed when that saves an eighth or more.
        public var compressionThreshold: Int
        /// When set, a checkpoint is signed with this key at every seal (see ``Store/checkpoint(signer:)``).
        public var checkpointSigner: NoteSigner?
        /// When set (with ``checkpointSigner``), the checkpoint a seal signs is published only
        /// after at least `quorum` of these witnesses cosigned it, with their cosignatures
        /// (`SteleMirror`'s `WitnessQuorum`). The witnesses are asked on a thread of the store's
        /// own after the seal, so a slow or unreachable witness never holds up a write; until a
        /// quorum answers, the previous published checkpoint stays the latest
        /// (``StoreStats/checkpointWitnessingFailure`` says why). ``Store/close()`` waits for
        /// the witnesses of a checkpoint already asked.
        public var checkpointWitnesses: (any CheckpointWitnesses)?
        package var fileSystem: any FileSystem = PosixFileSystem()
        /// Records after the latest index snapshot that make the next seal write a new one.
        package var indexSnapshotInterval: UInt64 = 1_000_000
        package var clock: any WallClock = SystemClock()
        /// Open a store created before config records for writing, to migrate it.
        package var migrating = false
        /// Open for writing although records were lost, to record the loss.
        package var acceptingLoss = false
        /// Build the key index (false: records are read by sequence only, as `stele verify`
        /// does; key lookups are refused). Read-only opens only.
        package var keyIndex = true
        /// When set, a background timer seals the active segment every `sealInterval` if it holds
        /// any record, so that records wait at most about that long before an off-host mirror
        /// (which copies sealed segments only) can take them. Each seal is a segment file.
        public var sealInterval: Duration?
        /// Where the store reports what an operator should know: a recovery that had work to
        /// do (notice), a clock that went back (warning), a failed sync that stopped writes, and
        /// tiles or a seal's checkpoint that could not be made durable (error); seals and the
        /// open itself at debug. Metadata: `stele.store` (the path), and `stele.segment`,
        /// `stele.sequence`, `stele.errno` where they apply. Default: logs nothing.
        public var logger = Logger(label: "stele", factory: { _ in SwiftLogNoOpLogHandler() })
        /// Where the store's metrics go (<doc:GettingStarted> lists them: `stele_records_appended_total`,
        /// `stele_commit_duration`, ...); nil: the process's bootstrapped backend (`MetricsSystem`),
        /// which records nothing until the server bootstraps one.
        public var metricsFactory: (any MetricsFactory)?
        /// The master key of an encrypted store (see ``Store/create(at:segmentSize:origin:minimumRetention:governanceKey:encryptionKey:)``):
        /// needed to write and to read keys and values; without it an encrypted store opens
        /// read-only only, for what works on ciphertext (verification, proofs, copies), and key
        /// reads throw ``EncryptionError/keyRequired``. Refused for a store that is not encrypted.
        public var encryptionKey: EncryptionKey?
        /// Open a standby (SteleMirror's `Standby`): writable to install the segments it follows
        /// (``Store/installSealedSegment(_:name:)``), fenced by its `fenced` file until promoted.
        package var standby = false
        /// Records one data key may seal (``EncryptionError/keyExhausted(namespace:limit:)``):
        /// 2^31; lower only in tests.
        package var recordsPerDataKey = RecordCipher.defaultRecordLimit

        /// Options for ``Store/init(path:options:)``; ``sealInterval`` is set on the value afterwards.
        /// - Parameters:
        ///   - commitPolicy: when appends become durable (default ``CommitPolicy/everyBatch``).
        ///   - readOnly: open without the writer lock, to read beside a writer or a damaged store.
        ///   - compressionThreshold: value length from which LZ4 is tried (default 1024 bytes).
        ///   - checkpointSigner: a key to sign a checkpoint with at every seal (default none).
        public init(commitPolicy: CommitPolicy = .everyBatch, readOnly: Bool = false, compressionThreshold: Int = 1024,
                    checkpointSigner: NoteSigner? = nil) {
            self.commitPolicy = commitPolicy
            self.readOnly = readOnly
            self.compressionThreshold = compressionThreshold
            self.checkpointSigner = checkpointSigner
        }
    }

    /// The store directory.
    public let path: String
    /// The store's identity, parameters and governance key, as its log records them.
    public var config: StoreConfig { currentConfig.withLock { $0 } }
    /// Changes only when the governance key does (``changeGovernanceKey(to:authorization:)``);
    /// never taken together with `state`.
    let currentConfig: Mutex<StoreConfig>
    /// The options it was opened with.
    public let options: Options
    /// The largest value a record may hold (fixed by the segment size), read by every append
    /// without taking `currentConfig`'s lock.
    let maxValueLength: Int
    /// What opening the store found and repaired.
    public let recovery: RecoveryReport

    struct State {
        var log: SegmentLog?
        var failure: IOError?
        /// Set by ``Store/fence(epoch:holder:)``: every write is refused from then on.
        var fence: (epoch: UInt64, holder: String)?
        /// When the writer last looked for a `fenced` file (``Store/fenceCheckInterval``).
        var fenceCheckedAt: Int64 = 0

        /// Why writes are refused now, if they are: a fence, or an earlier failed sync.
        var writeRefusal: SteleError? {
            if let fence { return .fenced(epoch: fence.epoch, holder: fence.holder) }
            return failure.map { .writesDisabled(cause: $0) }
        }
    }

    let fs: any FileSystem
    /// ``Options/logger`` with the store's path in its metadata.
    let logger: Logger
    let metrics: StoreMetrics
    let clock: any WallClock
    /// The writer lock (and the readers' brief one): see ``ParkingLock`` for why not `Mutex`.
    let state: ParkingLock<State>
    /// Serialises syncs; held outside `state`, always taken before it.
    let syncCursor = Mutex(SyncCursor())
    /// Number of records (from sequence 0) known to be durable.
    let durableCount: Atomic<UInt64>
    /// Makes appends durable for every waiting caller (nil when read-only).
    let groupCommit: GroupCommit?
    /// Takes seal checkpoints to ``Options/checkpointWitnesses``; nil when there are none.
    let sealWitnessing: SealWitnessing?
    private let lockFile: FileDescriptor?
    private let timer = Mutex<IntervalTimer?>(nil)
    private let sealTimer = Mutex<IntervalTimer?>(nil)
    /// Expanded full tiles shared by proof requests.
    let tileCache = TileCache()
    /// An encrypted store's data keys, when opened with its master key (read outside `state`).
    let encryption: LogEncryption?
    /// Whether the store is encrypted (its genesis names a master key), with the key or not.
    let isEncrypted: Bool

    // MARK: Creating and opening

    /// Creates a new store at `path` (a missing or empty directory) whose log holds one record:
    /// its genesis, which records the store's identity, its governance key and its minimum
    /// retention in the Merkle log (so every seal, checkpoint and proof covers them; `stele.conf`
    /// only caches them).
    ///
    /// - Parameters:
    ///   - path: the new store's directory; it must be missing or empty.
    ///   - segmentSize: bytes per segment file, a multiple of 4096 between
    ///     ``Limits/minSegmentSize`` and ``Limits/maxSegmentSize``.
    ///   - origin: the log identity for signed checkpoints; default `stele.local/<store uuid>`.
    ///   - minimumRetention: a store-wide minimum retention, in force for every version written
    ///     after the genesis; it can later be raised (``raiseMinimumRetention(to:)``), never lowered.
    ///   - governanceKey: the verifier key of the governance authority (held off the host), whose
    ///     signed authorizations alone can shorten governance locks or change this key. Nil: no
    ///     governance lock can ever be shortened.
    ///   - encryptionKey: makes an encrypted store: record keys and values are encrypted with a
    ///     data key per namespace, kept in `keyring` wrapped by this master key, which the genesis
    ///     record names by fingerprint. Keep the key off the host; every open that writes or
    ///     reads values needs it (``Options/encryptionKey``).
    /// - Returns: the new store's config.
    /// - Throws: ``SteleError/alreadyExists(path:)``, ``SteleError/invalidArgument(_:)`` (segment
    ///   size, origin), ``SteleError/retention(_:)`` (a minimum retention over
    ///   ``Limits/maxRetention``), ``SteleError/io(_:)`` (a full disk, say); after a failure nothing
    ///   this call made is left, so it can be tried again.
    /// - Cost: creates and syncs a few files and one preallocated segment.
    @discardableResult
    public static func create(at path: String, segmentSize: Int = Limits.defaultSegmentSize,
                              origin: String? = nil, minimumRetention: Duration? = nil,
                              governanceKey: NoteVerifier? = nil, encryptionKey: EncryptionKey? = nil) throws -> StoreConfig {
        try create(at: path, segmentSize: segmentSize, origin: origin, governanceKey: governanceKey,
                   minimumRetention: minimumRetention?.nanoseconds ?? 0, encryptionKey: encryptionKey,
                   fileSystem: PosixFileSystem(), clock: SystemClock())
    }

    /// - Parameter legacy: create a store as versions before config records did (no genesis
    ///   record, no `reach`), to test migrating one.
    @discardableResult
    package static func create(at path: String, segmentSize: Int, origin: String?, governanceKey: NoteVerifier? = nil,
                               minimumRetention: UInt64 = 0, encryptionKey: EncryptionKey? = nil, fileSystem fs: any FileSystem,
                               clock: any WallClock, legacy: Bool = false) throws -> StoreConfig {
        guard segmentSize >= Limits.minSegmentSize, segmentSize <= Limits.maxSegmentSize, segmentSize % 4096 == 0 else {
            throw SteleError.invalidArgument("segment size \(segmentSize) must be a multiple of 4096 between \(Limits.minSegmentSize) and \(Limits.maxSegmentSize)")
        }
        let existed = try fs.status(path) != nil
        if existed {
            guard try fs.status(path)?.isDirectory == true, try fs.listDirectory(path).isEmpty else { throw SteleError.alreadyExists(path: path) }
        } else {
            try fs.makeDirectory(path)
        }
        do {
            return try populate(at: path, segmentSize: segmentSize, origin: origin, governanceKey: governanceKey,
                                minimumRetention: minimumRetention, encryptionKey: encryptionKey, fs: fs, clock: clock, legacy: legacy)
        } catch {
            // A directory without stele.conf is not a store, yet it would refuse the next `init`:
            // take back what this call made (the directory was empty or absent, so all of it).
            removeContents(of: path, fs: fs)
            if !existed { try? fs.remove(path) }
            throw error
        }
    }

    private static func removeContents(of directory: String, fs: any FileSystem) {
        for name in (try? fs.listDirectory(directory)) ?? [] {
            let path = directory + "/" + name
            if (try? fs.status(path))??.isDirectory == true { removeContents(of: path, fs: fs) }
            try? fs.remove(path)
        }
    }

    private static func populate(at path: String, segmentSize: Int, origin: String?, governanceKey: NoteVerifier?,
                                 minimumRetention: UInt64, encryptionKey: EncryptionKey?, fs: any FileSystem, clock: any WallClock,
                                 legacy: Bool) throws -> StoreConfig {
        let storeID = StoreConfig.randomStoreID()
        let origin = origin ?? "stele.local/" + hexString(storeID)
        guard StoreConfig.isValidOrigin(origin) else {
            throw SteleError.invalidArgument("origin must be 1-255 printable ASCII characters without spaces")
        }
        guard minimumRetention <= Limits.maxRetention.nanoseconds else {
            throw SteleError.retention(.dateTooFar(Int64(clamping: minimumRetention)))
        }
        let now = clock.nanosecondsSinceEpoch()
        let config = StoreConfig(storeID: storeID, createdAt: now, segmentSize: segmentSize, origin: origin, governanceKey: governanceKey,
                                 encryptionKey: encryptionKey?.fingerprint)
        let layout = StoreLayout(root: path)
        for directory in layout.directories { try fs.makeDirectory(directory) }
        if let encryptionKey {
            guard !legacy else { throw SteleError.invalidArgument("a store without config records cannot be encrypted") }
            try Keyring.create(fs: fs, path: layout.keyring, directory: path, storeID: storeID, master: encryptionKey)
        }
        fs.close(try fs.open(layout.lock, .createNew(permissions: 0o644)))
        try SegmentLog.createFirstSegment(fs: fs, directory: layout.segments, storeID: storeID, segmentSize: segmentSize, now: now)
        if !legacy {
            let genesis = ConfigRecord.genesis(config.identity, minimumRetention: minimumRetention, governanceKey: governanceKey)
            try appendDirectly(genesis, fs: fs, layout: layout, config: config, timestamp: now)
            try LogReach(storeID: storeID, open: false, segment: 1, first: 0, records: 1).write(fs: fs, directory: path)
        }
        // The config goes in last, atomically: a directory without it is not a store.
        try fs.writeAtomically(Array(config.encoded.utf8), to: layout.config, permissions: 0o444, directory: path)
        return config
    }

    /// Appends one config record to a store that no `Store` has open (creation, migration) and
    /// makes it durable.
    private static func appendDirectly(_ record: ConfigRecord, fs: any FileSystem, layout: StoreLayout, config: StoreConfig,
                                       timestamp: Int64, legacyPolicy: (origin: String, governanceKey: NoteVerifier?)? = nil) throws {
        let log = try SegmentLog.open(fs: fs, directory: layout.segments, storeID: config.storeID, segmentSize: config.segmentSize,
                                      writable: true, lostAndFound: layout.lostAndFound, tilesDirectory: layout.tiles,
                                      indexDirectory: layout.index, unclean: false, legacyPolicy: legacyPolicy)
        defer { log.close() }
        let value = record.encoded
        _ = try value.withUnsafeBytes { value in
            try [UInt8]().withUnsafeBytes { empty in
                try log.append(type: .config, flags: 0, timestamp: log.nextTimestamp(clock: timestamp), namespace: empty, key: empty,
                               value: value, stored: value)
            }
        }
        try log.syncForClose()
    }

    /// Opens the store at `path`, recovering from a crash if needed (see ``recovery``).
    ///
    /// - Throws: ``SteleError/notAStore(path:)``, ``SteleError/locked(path:)``,
    ///   ``SteleError/unsupportedVersion(file:found:supported:)``, ``SteleError/corruption(_:)``
    ///   (damage that recovery must not hide: run `stele fsck`), ``SteleError/io(_:)``.
    /// - Cost: reads the header and footer of every sealed segment and every frame of the
    ///   active one (checksums and leaf hashes), then syncs the active segment once.
    public convenience init(path: String, options: Options = Options()) throws {
        try self.init(path: path, options: options, internal: ())
    }

    private init(path: String, options: Options, internal: Void) throws {
        if let witnesses = options.checkpointWitnesses, !options.readOnly, options.checkpointSigner == nil || witnesses.quorum < 1 {
            throw SteleError.invalidArgument("checkpoint witnesses need a checkpointSigner and a quorum of at least 1")
        }
        let fs = options.fileSystem
        let layout = StoreLayout(root: path)
        let config = try Store.readConfig(fs: fs, layout: layout)
        // The file's UUID and segment size open the log: checked first against what the log's
        // first segment records, so that an edited file is named as such, not as a broken chain.
        if let first = Store.firstSegmentIdentity(fs: fs, layout: layout) {
            var differences: [String] = []
            if first.storeID != config.storeID { differences.append("uuid \(config.storeIDHex), the log says \(hexString(first.storeID))") }
            if let genesis = first.genesis, genesis.segmentSize != config.segmentSize {
                differences.append("segment-size \(config.segmentSize), the log says \(genesis.segmentSize)")
            }
            if !differences.isEmpty {
                throw SteleError.corruption(Corruption(file: layout.config, detail: "stele.conf disagrees with the log's config records ("
                    + differences.joined(separator: "; ") + "); the log is the authority: run `stele fsck --repair` to rewrite the file from it"))
            }
        }
        // Before the writer lock and recovery: a wrong or missing key changes nothing.
        let masterKey = try Store.checkEncryptionKey(config: config, options: options, layout: layout)
        var lockFile: FileDescriptor?
        var clean = true
        var standbyFence: (epoch: UInt64, holder: String)?
        if !options.readOnly {
            (lockFile, clean) = try LockFile.acquire(fs: fs, path: layout.lock, storePath: path)
            // Under the lock: a marker written while another writer held it is seen here.
            do {
                standbyFence = try Store.checkFenceAtOpen(fs: fs, layout: layout, standby: options.standby)
            } catch {
                if let lockFile { fs.close(lockFile) }
                throw error
            }
        }
        // The keyring after the lock: a writer that held it before may have added a slot.
        let encryption: LogEncryption?
        do {
            encryption = try masterKey.map { try LogEncryption(fs: fs, path: layout.keyring, storeID: config.storeID, master: $0,
                                                                recordLimit: options.recordsPerDataKey) }
        } catch {
            if let lockFile { fs.close(lockFile) }
            throw error
        }
        // Before the log is listed: a live writer may write newer evidence meanwhile.
        let evidence = LossEvidence.gather(fs: fs, layout: layout)
        let log: SegmentLog
        do {
            log = try SegmentLog.open(fs: fs, directory: layout.segments, storeID: config.storeID,
                                      segmentSize: config.segmentSize, writable: !options.readOnly,
                                      lostAndFound: layout.lostAndFound, tilesDirectory: layout.tiles,
                                      indexDirectory: layout.index, unclean: !clean,
                                      legacyPolicy: (config.origin, config.governanceKey),
                                      keyIndex: options.keyIndex || !options.readOnly, encryption: encryption)
            do {
                try Store.checkConfig(config, against: log, path: layout.config, writable: !options.readOnly,
                                      migrating: options.migrating)
                // Lost records are never silent, and a writer never hands their numbers out again.
                let lost = LossEvidence.check(evidence, layout: layout, storeID: config.storeID, segmentSize: config.segmentSize,
                                              held: log.nextSequence, segments: log.segmentStarts,
                                              expectReach: log.recordsIdentity, openLoss: log.openLossEnd())
                log.report.lostRecords = lost
                if !options.readOnly {
                    if let lost, !options.acceptingLoss { throw SteleError.recordsLost(lost) }
                    log.reachDirectory = path
                    // Recording a loss keeps `reach` as it is until the loss is in the log.
                    if !options.acceptingLoss { try log.writeReach(open: true) }
                }
            } catch {
                log.close()
                throw error
            }
            log.snapshotInterval = options.indexSnapshotInterval
            if let signer = options.checkpointSigner, !options.readOnly {
                log.sealCheckpoints = (CheckpointStore(fs: fs, directory: layout.checkpoints, origin: config.origin), signer)
            }
        } catch {
            if let lockFile { fs.close(lockFile) }
            throw error
        }
        self.path = path
        self.encryption = encryption
        self.isEncrypted = config.encryptionKey != nil
        self.currentConfig = Mutex(config)
        self.maxValueLength = Limits.maxValueLength(segmentSize: config.segmentSize)
        self.options = options
        self.fs = fs
        self.clock = options.clock
        self.recovery = log.report
        var logger = options.logger
        logger[metadataKey: "stele.store"] = .string(path)
        self.logger = logger
        log.logger = logger
        self.metrics = StoreMetrics(store: path, factory: options.metricsFactory ?? MetricsSystem.factory)
        log.metrics = metrics
        Store.logOpen(logger, log.report, records: log.nextSequence, readOnly: options.readOnly)
        self.durableCount = Atomic(log.nextSequence)
        self.lockFile = lockFile
        self.state = ParkingLock(State(log: log, failure: nil, fence: standbyFence))
        groupCommit = options.readOnly ? nil : GroupCommit()
        if let witnesses = options.checkpointWitnesses, !options.readOnly {
            sealWitnessing = SealWitnessing(witnesses: witnesses, logger: logger)
        } else {
            sealWitnessing = nil
        }
        try groupCommit?.start(name: "stele-commit", for: self)
        if sealWitnessing != nil {
            // A seal signs the checkpoint unpublished and hands it over; the witnesses are asked
            // after the seal, outside every lock.
            state.withLock { $0.log?.unpublishedSealCheckpoint = { [weak self] note in
                guard let self else { return }
                self.sealWitnessing?.submit(note, of: self)
            } }
            // A checkpoint signed for the witnesses and not published before (below the quorum,
            // or a crash or close came first) is asked for again.
            let checkpoints = CheckpointStore(fs: fs, directory: StoreLayout(root: path).checkpoints, origin: config.origin)
            if let note = try? checkpoints.newestUnpublished() { sealWitnessing?.submit(note, of: self) }
        }
        if case .interval(let interval) = options.commitPolicy, !options.readOnly {
            let timer = IntervalTimer(interval: interval) { [weak self] in self?.intervalTick() }
            self.timer.withLock { $0 = timer }
        }
        if let interval = options.sealInterval, !options.readOnly {
            let timer = IntervalTimer(interval: interval) { [weak self] in
                do { try self?.seal() } catch { self?.logger.error("timed seal failed", metadata: ["stele.error": "\(error)"]) }
            }
            sealTimer.withLock { $0 = timer }
        }
    }

    /// The master key to open an encrypted store's keyring with (``Options/encryptionKey``,
    /// checked against the fingerprint the store names): nil for a store that is not encrypted,
    /// or for a read-only open without the key.
    /// - Throws: ``SteleError/encryption(_:)``: ``EncryptionError/keyRequired`` (a writable open
    ///   without the key), ``EncryptionError/wrongKey(expected:given:)``;
    ///   ``SteleError/invalidArgument(_:)`` for a key given to a store that is not encrypted.
    private static func checkEncryptionKey(config: StoreConfig, options: Options, layout: StoreLayout) throws -> EncryptionKey? {
        guard let fingerprint = config.encryptionKey else {
            if options.encryptionKey != nil {
                throw SteleError.invalidArgument("the store at \(layout.root) is not encrypted: it takes no encryption key")
            }
            return nil
        }
        guard let key = options.encryptionKey else {
            if !options.readOnly { throw SteleError.encryption(.keyRequired) }
            return nil
        }
        guard key.fingerprint == fingerprint else {
            throw SteleError.encryption(.wrongKey(expected: fingerprint, given: key.fingerprint))
        }
        return key
    }

    package static func readConfig(fs: any FileSystem, layout: StoreLayout) throws -> StoreConfig {
        guard let status = try fs.status(layout.config), status.isRegularFile else {
            throw SteleError.notAStore(path: layout.root)
        }
        let bytes = try fs.readWholeFile(layout.config, limit: 64 * 1024) ?? []
        return try StoreConfig.decode(String(decoding: bytes, as: UTF8.self), path: layout.config)
    }

    deinit {
        try? close()
    }

    /// Syncs (unless read-only or already failed), releases mappings and the writer lock.
    /// Later calls on this store throw ``SteleError/closed``. Closing twice is harmless.
    ///
    /// - Throws: the sync's error, if the final sync failed (resources are released anyway).
    public func close() throws {
        timer.withLock { $0?.cancel(); $0 = nil }
        sealTimer.withLock { $0?.cancel(); $0 = nil }
        // A checkpoint already with its witnesses is published (or not) before the log goes:
        // they may still ask for a consistency proof.
        sealWitnessing?.finish()
        // Take the log out and make every record durable in one step (the sync cursor held, so
        // the committer's syncs are before or after): from here no append can slip in behind the
        // final sync, and a waiter the final sync covered is told so, not that the store closed.
        defer { groupCommit?.stop() }
        let (log, failure, finalSync) = syncCursor.withLock { _ -> (SegmentLog?, IOError?, Result<Void, any Error>) in
            let (log, failure) = state.withLock { state -> (SegmentLog?, IOError?) in
                defer { state.log = nil }
                return (state.log, state.failure)
            }
            guard let log, log.writable, lockFile != nil, failure == nil else { return (log, failure, .success(())) }
            let finalSync = Result { try log.syncForClose() }
            if case .success = finalSync { durableCount.raise(to: log.nextSequence) }
            return (log, failure, finalSync)
        }
        guard let log else { return }
        defer {
            log.close()
            if let lockFile { fs.close(lockFile) }
        }
        guard log.writable, let lockFile else { return }
        if let failure { throw SteleError.writesDisabled(cause: failure) }
        try finalSync.get()
        // The tree over every record, now all durable, goes to disk with `tiles/state`: the next
        // open then finds any record of this session altered since (its leaf no longer matches),
        // as it would a sealed one. Tiles are derived data: a failure is kept, not thrown.
        log.persistTiles()
        try log.writeReach(open: false)
        try LockFile.mark(fs: fs, lockFile, clean: true)
    }
}

/// A repeating background timer on its own dispatch queue (for ``CommitPolicy/interval(_:)``
/// and ``Options/sealInterval``).
private final class IntervalTimer: @unchecked Sendable {
    private let source: any DispatchSourceTimer

    init(interval: Duration, tick: @escaping @Sendable () -> Void) {
        let (seconds, attoseconds) = interval.components
        let nanoseconds = max(1_000_000, Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000))
        source = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "stele.group-commit"))
        source.schedule(deadline: .now() + .nanoseconds(nanoseconds), repeating: .nanoseconds(nanoseconds))
        source.setEventHandler(handler: tick)
        source.resume()
    }

    func cancel() { source.cancel() }
}

import Dispatch
