import SteleNative

/// What `stele fsck` found: one entry per problem, with where and what.
public struct FsckProblem: Sendable, Equatable, CustomStringConvertible {
    public enum Category: String, Sendable, CaseIterable {
        case checksum, chain, sequence, tree, tile, checkpoint, index, retention, config, loss, layout
    }

    public var category: Category
    public var file: String
    public var offset: Int?
    public var sequence: UInt64?
    public var expected: String
    public var found: String

    public var description: String {
        var place = file
        if let offset { place += ":\(offset)" }
        if let sequence { place += " seq=\(sequence)" }
        return "\(category.rawValue)\t\(place)\texpected \(expected), found \(found)"
    }
}

/// The outcome of a check, with e2fsck's exit codes.
public struct FsckReport: Sendable, Equatable {
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
    public var segments = 0
    public var records: UInt64 = 0
    public var bytes = 0
    /// Losses recorded in the log (`stele record-loss`): not problems, but history to know about.
    public var recordedLosses: [String] = []
    /// External checkpoints the store was checked against (signature and consistency).
    public var externalCheckpointsVerified = 0
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
