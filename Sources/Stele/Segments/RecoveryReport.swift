import SteleNative

/// What opening a store found and did; nothing recovery does is silent.
public struct RecoveryReport: Sendable, Equatable {
    /// A torn write discarded from the end of the active segment.
    public struct TornTail: Sendable, Equatable {
        /// The segment file.
        public var file: String
        /// Offset of the first discarded byte.
        public var offset: Int
        /// Number of bytes discarded (up to the last non-zero byte).
        public var bytes: Int
        /// Why the bytes there are not a complete frame.
        public var reason: String
        /// Where a copy of the discarded bytes was saved (nil in read-only mode).
        public var savedTo: String?
    }

    /// Sealed segments opened (header, footer and chain link checked).
    public var sealedSegments = 0
    /// Records found in the active segment, every one checksummed and hashed.
    public var activeRecords = 0
    /// The torn tail discarded, if there was one.
    public var tornTail: TornTail?
    /// A segment whose seal was interrupted after its footer was durable, and that was finished.
    public var completedSeal: String?
    /// The active segment whose header was caught between a new durable end and its checksum
    /// (a process killed mid-update), read with the previous durable end and written whole again.
    public var completedHeaderUpdate: String?
    /// After an unclean shutdown, the bytes of the active segment that were written out again
    /// (they might have been only in the page cache of the process that crashed).
    public var rewroteAfterUncleanShutdown: Int?
    /// Leftover temporary files from an interrupted segment creation, removed.
    public var removedTemporaryFiles: [String] = []

    /// Leaves whose tiles were rebuilt from the records (tiles trail the log after a crash and
    /// are rebuilt in full if `tiles/` was removed or disagrees with the log).
    public var tilesRebuilt: Range<UInt64>?

    /// Why tiles could not be rebuilt (a damaged record); proofs are unavailable until repaired.
    public var tilesUnavailable: String?

    /// Records replayed after the index snapshot that was loaded (nil: no snapshot was used).
    public var indexReplayed: Range<UInt64>?
    /// Why an index snapshot on disk was not used (it is then rebuilt from the log).
    public var indexSnapshotRejected: String?
    /// Why the key index could not be rebuilt (a damaged record); key lookups are refused.
    public var keysUnavailable: String?

    /// Records the store's evidence shows were lost from its files (a read-only open reports
    /// them here; a writable open refuses with ``SteleError/recordsLost(_:)``).
    public var lostRecords: LostRecords?

    /// True when recovery had nothing to do.
    public var isClean: Bool { tornTail == nil && completedSeal == nil && removedTemporaryFiles.isEmpty && lostRecords == nil }
}
