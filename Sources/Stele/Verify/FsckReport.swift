import SteleNative

/// What `stele fsck` found: one entry per problem, with where and what.
public struct FsckProblem: Sendable, Equatable, CustomStringConvertible {
    /// What kind of check failed; the raw value is the first column of `stele fsck`'s output.
    ///
    /// - `checksum`: a damaged frame (its XXH3), segment header or LZ4 value, or bytes that are not
    ///   zero after the last frame of the active segment.
    /// - `chain`: the chain of segments: a missing, foreign or reordered segment, a broken seal link.
    /// - `sequence`: sequence numbers not contiguous, or timestamps going backwards.
    /// - `tree`: a leaf hash, content digest, Merkle root or seal that the records no longer produce.
    /// - `tile`: a Merkle tile that disagrees with the recomputed tree (derived data: repairable).
    /// - `checkpoint`: a stored or external checkpoint that the log does not match.
    /// - `index`: the index snapshot disagrees with the records (derived data: repairable).
    /// - `retention`: a redaction stub or governance bypass that the log's records and locks do
    ///   not allow.
    /// - `config`: `stele.conf` disagrees with the log's config records (repairable from the log).
    /// - `loss`: the store's evidence shows records lost from its files.
    /// - `layout`: the files themselves: a stray file, a missing directory or `LOCK` file, a
    ///   sealed segment left writable.
    public enum Category: String, Sendable, CaseIterable {
        /// One category of problem; ``FsckProblem/Category`` lists what each one covers.
        case checksum, chain, sequence, tree, tile, checkpoint, index, retention, config, loss, layout
    }

    /// What kind of problem this is.
    public var category: Category
    /// The file concerned (a directory for problems about a whole part of the store).
    public var file: String
    /// Byte offset in the file, where known.
    public var offset: Int?
    /// Sequence number of the record concerned, where known.
    public var sequence: UInt64?
    /// What the check expected.
    public var expected: String
    /// What it found instead.
    public var found: String

    /// One tab-separated line, as `stele fsck` prints it: category, place, expected and found.
    public var description: String {
        var place = file
        if let offset { place += ":\(offset)" }
        if let sequence { place += " seq=\(sequence)" }
        return "\(category.rawValue)\t\(place)\texpected \(expected), found \(found)"
    }
}

/// The outcome of a check, with e2fsck's exit codes.
public struct FsckReport: Sendable, Equatable {
    /// Every problem found (after repairs, those left), in the order the pass met them.
    public var problems: [FsckProblem] = []
    /// Layout and tile findings made while a writer had the store open: files in flight (a
    /// seal between its truncation and its mode change, a temporary file before its rename,
    /// tiles written past `tiles/state`) look the same. Not counted as problems; run fsck again
    /// once the writer has closed the store to tell them apart. Record, chain, tree, checkpoint,
    /// retention, config and loss findings are always problems.
    public var inFlight: [FsckProblem] = []
    /// Whether a writer had the store open during the check.
    public var writerActive = false
    /// Repairs made (with `repair`), each described.
    public var repairs: [String] = []
    /// Segment files checked.
    public var segments = 0
    /// Records checked.
    public var records: UInt64 = 0
    /// Bytes of segment files read.
    public var bytes = 0
    /// Losses recorded in the log (`stele record-loss`): not problems, but history to know about.
    public var recordedLosses: [String] = []
    /// External checkpoints the store was checked against (signature and consistency).
    public var externalCheckpointsVerified = 0
    /// Wall-clock time the check took, repairs and the second check included.
    public var seconds = 0.0

    /// 0 clean, 1 errors corrected, 4 errors left uncorrected (8, operational error, is thrown).
    public var exitCode: Int32 { problems.isEmpty ? (repairs.isEmpty ? 0 : 1) : 4 }

    /// The caveat an operator must read when no external checkpoint was given.
    public var caveat: String? {
        externalCheckpointsVerified == 0
            ? "no external checkpoint given: a rewrite of the whole history with every hash, seal and tile recomputed cannot be ruled out (pass --checkpoint FILE --verifier-key KEY)"
            : nil
    }
}
