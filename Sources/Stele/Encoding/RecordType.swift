import SteleNative

/// What a record means. The numeric values are part of the on-disk format (`docs/format.md`);
/// a reader rejects any other value as corruption rather than guessing.
public enum RecordType: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// A new version of a key.
    case put = 1
    /// A logical delete: the key has no live version after it, and history keeps every byte.
    case tombstone = 2
    /// A retention lock on versions of a key (mode and retain-until date in the value).
    case retention = 3
    /// A legal hold set or released on a key.
    case legalHold = 4
    /// A retention policy change (namespace default, store minimum).
    case policy = 5
    /// Marks that a checkpoint was signed at this point of the log.
    case checkpointMarker = 6
    /// Lists payloads that were purged after their locks expired, and why.
    case redaction = 7
    /// The store's identity and governance authority: the first record of every store (its
    /// genesis), an adoption by a store created before config records, or a governance key change.
    case config = 8
    /// Records lost from the files, acknowledged by an operator: the first marks the range and
    /// says why, the others fill the lost sequence numbers so that none is ever handed out again.
    case loss = 9
    /// An encrypted store's namespace whose data key was destroyed (crypto-shredded): when, why,
    /// and which key (by fingerprint). Its records stay, unreadable for ever.
    case shred = 10

    /// Records that decide what is kept and who may decide it (``RetentionState`` applies them).
    package var isPolicy: Bool {
        self == .retention || self == .legalHold || self == .policy || self == .config
    }

    /// The type's name as the CLI prints it (`put`, `tombstone`, `legal-hold`, ...).
    public var description: String {
        switch self {
        case .put: "put"
        case .tombstone: "tombstone"
        case .retention: "retention"
        case .legalHold: "legal-hold"
        case .policy: "policy"
        case .checkpointMarker: "checkpoint"
        case .redaction: "redaction"
        case .config: "config"
        case .loss: "loss"
        case .shred: "shred"
        }
    }
}
