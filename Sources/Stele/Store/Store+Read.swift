import SteleNative

extension Store {
    /// The record with sequence number `sequence`, checksum-verified and decompressed.
    ///
    /// - Throws: ``SteleError/notFound(sequence:count:)``; ``SteleError/corruption(_:)`` if the
    ///   frame's XXH3 does not match or it is not the record expected there (a damaged record is
    ///   never returned as data); ``SteleError/closed``.
    /// - Cost: a binary search over segments, an XXH3 over the frame, one copy of key and value.
    public func record(at sequence: UInt64) throws -> Record {
        let location = try state.withLock { state throws -> SegmentLog.Location in
            guard let log = state.log else { throw SteleError.closed }
            return try log.locate(sequence)
        }
        return try readRecord(sequence, at: location)
    }

    /// The timestamp of record `sequence`, from its frame (checksum verified): readable without
    /// an encrypted store's key.
    /// - Throws: as ``record(at:)``.
    public func timestamp(at sequence: UInt64) throws -> Int64 {
        let location = try state.withLock { state throws -> SegmentLog.Location in
            guard let log = state.log else { throw SteleError.closed }
            return try log.locate(sequence)
        }
        return try location.withFrame(sequence) { frame, _ in frame.timestamp }
    }

    /// Decodes and verifies the record at a location found under the lock.
    func readRecord(_ sequence: UInt64, at location: SegmentLog.Location) throws -> Record {
        try location.withFrame(sequence) { frame, view in try plainRecord(frame, view, at: location) }
    }

    /// The error for a frame whose checksum holds but whose LZ4 value does not decode.
    static func undecodableValue(_ sequence: UInt64, _ location: SegmentLog.Location) -> SteleError {
        SteleError.corruption(Corruption(file: location.path, sequence: sequence, detail: "its LZ4 value does not decode"))
    }

    /// Up to `count` records starting at `sequence` (fewer at the end of the log).
    /// - Throws: as ``record(at:)``; ``SteleError/notFound(sequence:count:)`` if `sequence` is past the end.
    public func records(from sequence: UInt64, count: Int) throws -> [Record] {
        var out: [Record] = []
        try forEachRecord(from: sequence, count: count) { out.append($0) }
        return out
    }

    /// Calls `body` with each record from `sequence` on, at most `count` of them, in order.
    /// Records appended concurrently after the call started may or may not be included.
    /// - Throws: ``SteleError/notFound(sequence:count:)`` if `sequence` is past the end (and
    ///   `count` is not 0); as ``record(at:)`` for each record; what `body` throws, which stops
    ///   the iteration.
    /// - Cost: one ``record(at:)`` per record, each a copy of its key and value.
    public func forEachRecord(from sequence: UInt64, count: Int, _ body: (Record) throws -> Void) throws {
        let total = recordCount
        guard sequence < total || count == 0 else { throw SteleError.notFound(sequence: sequence, count: total) }
        let end = min(total, sequence &+ UInt64(max(0, count)))
        var next = sequence
        while next < end {
            try body(try record(at: next))
            next += 1
        }
    }

    /// Number of records in the log (the next sequence number); 0 once closed.
    public var recordCount: UInt64 {
        state.withLock { $0.log?.nextSequence ?? 0 }
    }

    /// Number of records known durable (sequence numbers `0 ..< n`).
    public var durableRecordCount: UInt64 { durableCount.load(ordering: .acquiring) }

    /// Counters and identities of the log; cheap (no I/O).
    /// - Throws: ``SteleError/closed``.
    public func stats() throws -> StoreStats {
        try state.withLock { state throws -> StoreStats in
            guard let log = state.log else { throw SteleError.closed }
            let sealedBytes = log.sealed.reduce(0) { $0 + $1.fileSize }
            return StoreStats(
                records: log.nextSequence,
                durableRecords: durableCount.load(ordering: .acquiring),
                sealedSegments: log.sealed.count,
                activeSegment: log.active.map { Int($0.header.index) },
                activeBytesUsed: log.active?.writeOffset ?? 0,
                activeCapacity: log.active?.capacity ?? 0,
                bytesOnDisk: sealedBytes + (log.active?.capacity ?? 0),
                lastTimestamp: log.lastTimestamp,
                treeSize: log.frontier.size,
                treeRoot: log.frontier.root,
                lastSealHash: log.lastSealHash,
                writesDisabled: state.failure,
                tilesNotDurable: log.tileFailure,
                sealCheckpointFailure: log.checkpointFailure,
                checkpointWitnessingFailure: sealWitnessing?.failure)
        }
    }
}

/// A snapshot of a store's counters (``Store/stats()``).
public struct StoreStats: Sendable, Equatable {
    /// Records in the log.
    public var records: UInt64
    /// Records known durable.
    public var durableRecords: UInt64
    /// Sealed (read-only) segment files.
    public var sealedSegments: Int
    /// Index of the active segment, nil if none is open (a failed segment creation).
    public var activeSegment: Int?
    /// Bytes used in the active segment (header and frames).
    public var activeBytesUsed: Int
    /// Preallocated size of the active segment.
    public var activeCapacity: Int
    /// Size of all segment files (the active one at its preallocated size).
    public var bytesOnDisk: Int
    /// Timestamp of the latest record or seal, ns since epoch.
    public var lastTimestamp: Int64
    /// Merkle tree size: equal to `records`.
    public var treeSize: UInt64
    /// RFC 6962 root over all records.
    public var treeRoot: Digest
    /// Seal hash of the last sealed segment (zeros if none is sealed).
    public var lastSealHash: Digest
    /// The failed sync that disabled writes, if any.
    public var writesDisabled: IOError?
    /// Why the Merkle tiles (derived from the records) are not all durable, if the latest seal,
    /// checkpoint or open could not make them so. The seal itself stands and the records are
    /// durable; the next seal or open writes the tiles again from the records, and no checkpoint
    /// is signed over tiles that may be lost. Nil once a persist succeeds.
    public var tilesNotDurable: IOError?
    /// Why the checkpoint that a seal signs (``Store/Options/checkpointSigner``) was not signed at
    /// the latest seal, if it was not; the seal itself stands. Nil after a signed one.
    public var sealCheckpointFailure: String?
    /// Why the latest checkpoint a seal signed is not published, when the store has
    /// ``Store/Options/checkpointWitnesses`` and fewer than their quorum cosigned it (or it
    /// could not be published); the seal and the checkpoint in `checkpoints/history` stand. Nil
    /// once one is published.
    public var checkpointWitnessingFailure: String?
}
