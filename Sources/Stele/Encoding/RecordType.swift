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

    public var description: String {
        switch self {
        case .put: "put"
        case .tombstone: "tombstone"
        case .retention: "retention"
        case .legalHold: "legal-hold"
        case .policy: "policy"
        case .checkpointMarker: "checkpoint"
        case .redaction: "redaction"
        }
    }
}
