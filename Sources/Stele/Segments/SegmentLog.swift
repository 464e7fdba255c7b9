import Logging
import SteleNative

/// The chain of segments: open and recover it, append to it, seal it, find records in it.
///
/// Invariants after `open` and after every method returns:
/// - segments are numbered 1...n without gaps; all but the last are sealed, and the last is
///   sealed or active; each header's `previousSeal` is the seal hash of the segment before;
/// - sequence numbers run contiguously from 0 across segments; `nextSequence` follows the last;
/// - `frontier` is the Merkle tree over every record so far (leaf index = sequence).
/// Not thread-safe: ``Store`` serialises access with a mutex.
package final class SegmentLog {
    package let fs: any FileSystem
    package let directory: String
    package let storeID: [UInt8]
    package let segmentSize: Int
    package let writable: Bool
    /// Every sync of the active segment goes through it (see ``SyncGate``): the group commit's
    /// too, which runs outside the store's lock.
    package let syncGate = SyncGate()
    package internal(set) var sealed: [SealedSegment] = [] {
        didSet {
            // Sealed segments are appended, or replaced by a rewrite of the same records (a
            // purge): only the new ones' first sequences are added. Rebuilt whole, every seal
            // (and every segment an open links) would cost the whole log's length.
            let kept = sealedFirstSequences.count
            if kept <= sealed.count, kept == 0 || sealedFirstSequences[kept - 1] == sealed[kept - 1].header.firstSequence {
                sealedFirstSequences += sealed[kept...].map(\.header.firstSequence)
            } else {
                sealedFirstSequences = sealed.map(\.header.firstSequence)
            }
        }
    }
    /// The first sequence of each sealed segment, for the binary search of every read.
    var sealedFirstSequences: [UInt64] = []
    /// Nil only when creating the next segment failed (say, a full disk); retried on append.
    package internal(set) var active: ActiveSegment?
    // The fields written per record opt out of dynamic exclusivity checks, as in `ActiveSegment`:
    // the store's lock covers every access, and a batch's two threads touch disjoint fields.
    @exclusivity(unchecked) package internal(set) var nextSequence: UInt64 = 0
    package internal(set) var lastTimestamp: Int64 = 0
    @exclusivity(unchecked) package internal(set) var frontier = Frontier()
    package internal(set) var report = RecoveryReport()
    package let tiles: TileStore
    @exclusivity(unchecked) package internal(set) var tileBuilder = TileBuilder()
    /// The last failure to persist tiles, if the latest attempt failed.
    package internal(set) var tileFailure: IOError?
    /// Every put and tombstone by key (see ``KeyIndex``); rebuilt from the records on open.
    @exclusivity(unchecked) package internal(set) var keys = KeyIndex()
    /// Locks, legal holds and retention policies (see ``RetentionState``); rebuilt with the keys.
    package internal(set) var retention = RetentionState()
    /// Sequence numbers of the retention, legal-hold, policy and config records (for index snapshots).
    package internal(set) var retentionRecords: [UInt64] = []
    /// For a store created before config records: the origin and governance key in
    /// `stele.conf`, which judge its records until it is migrated (see ``RetentionState/legacy``).
    package internal(set) var legacyPolicy: (origin: String, governanceKey: NoteVerifier?)?
    /// Whether `retention` was built from the log itself (false after a snapshot load, until
    /// ``verifyRetention()``).
    package internal(set) var retentionFromLog = true
    /// Where index snapshots go, and the tree size of the latest one.
    package var indexDirectory: String = ""
    package internal(set) var snapshotSize: UInt64 = 0
    /// Records after the latest snapshot that make the next seal write a new one.
    package var snapshotInterval: UInt64 = 1_000_000
    /// Set when the key index could not be rebuilt (a damaged record): key lookups are refused.
    package internal(set) var keysUnavailable: Corruption?
    /// The data keys, for an encrypted store opened with its master key: appends encrypt puts
    /// and tombstones, and the key index is built from their opened key blobs.
    package internal(set) var encryption: LogEncryption?
    /// Encrypted records were met without the master key: the key index lacks them, so the
    /// store refuses key lookups (``EncryptionError/keyRequired``) rather than answer wrongly.
    package internal(set) var hasUnreadableKeys = false
    /// Namespaces an encrypted store shredded (their shred records), and when.
    package internal(set) var shreds: [[UInt8]: Int64] = [:]
    /// Set when tiles could not be rebuilt (a damaged record): no tiles are written, no proofs served.
    package internal(set) var tilesUnavailable: Corruption?
    /// Set when the records contradict what was recorded about them after they were durable (the
    /// root in `tiles/state`): a record was altered. The writer refuses to append onto it.
    package internal(set) var tampered: Corruption?
    /// Where and with which key to sign a checkpoint at every seal (nil: no automatic checkpoints).
    package var sealCheckpoints: (store: CheckpointStore, signer: NoteSigner)?
    /// When set, a seal's checkpoint is signed unpublished and handed here (for its witnesses:
    /// ``Store/Options/checkpointWitnesses``); called under the writer lock, so it must not block.
    package var unpublishedSealCheckpoint: (@Sendable (String) -> Void)?
    /// Why the latest automatic checkpoint was not signed, if it was not.
    package internal(set) var checkpointFailure: String?
    /// Where `reach` is kept (the store's root), for a writer; nil for readers and fsck.
    package var reachDirectory: String?
    /// Set when a new segment was created but `reach` not yet updated to name it (the write
    /// failed): no record goes into the segment before it is.
    var reachPending = false
    /// The second core's thread for large batches (see ``appendInParallel(_:timestamp:)``),
    /// started by the first; ended at ``close()`` or when the log goes.
    var hashingThread: HelperThread?
    /// The storage of the last sealed batch of an encrypted store, kept for the next: a batch's
    /// blobs in fresh memory cost a page fault per 4 KiB (see `SegmentLog+Encrypted.swift`).
    var sealingStorage = PackedBatch()
    /// The store's logger (``Store/Options/logger``, the store's path in its metadata).
    package var logger = Logger(label: "stele", factory: { _ in SwiftLogNoOpLogHandler() })
    /// The store's metrics (nil for readers that no store owns: fsck, restore).
    var metrics: StoreMetrics?

    package var lastSealHash: Digest { sealed.last?.footer.sealHash ?? .zero }
    var nextIndex: UInt64 { (sealed.last?.header.index ?? 0) + 1 }

    init(fs: any FileSystem, directory: String, storeID: [UInt8], segmentSize: Int, writable: Bool, tiles: TileStore) {
        self.tiles = tiles
        self.fs = fs
        self.directory = directory
        self.storeID = storeID
        self.segmentSize = segmentSize
        self.writable = writable
    }

    /// Creates the first segment of a new store.
    package static func createFirstSegment(fs: any FileSystem, directory: String, storeID: [UInt8],
                                           segmentSize: Int, now: Int64) throws {
        let header = SegmentHeader(storeID: storeID, index: 1, firstSequence: 0, createdAt: now, previousSeal: .zero)
        let segment = try ActiveSegment.create(fs: fs, directory: directory, header: header, capacity: segmentSize)
        segment.close()
    }

    /// Makes the active segment durable and records that in its header (at a clean close).
    package func syncForClose() throws {
        guard writable, let segment = active else { return }
        try syncGate.run {
            try fs.syncMapped(segment.region, 0 ..< segment.writeOffset)
            segment.markDurable(through: segment.writeOffset)
            try fs.syncMapped(segment.region, 0 ..< SegmentHeader.size)
        }
    }

    /// Releases files and mappings, and ends the hashing thread.
    package func close() {
        active?.close()
        hashingThread?.stop()
        hashingThread = nil
    }

    deinit { hashingThread?.stop() }
}
