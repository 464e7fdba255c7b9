import Foundation
import Stele

/// Where off-host copies go: a place that can store an object once, list, and read back.
///
/// The protocol has no delete and no overwrite, on purpose: a mirror that cannot express
/// destruction cannot be tricked into it. Targets enforce "write once" themselves as well
/// (a directory target writes read-only files and refuses to replace one; an S3 target sets
/// Object Lock retention on every object).
public protocol MirrorTarget: Sendable {
    /// A description for messages (`/mnt/copy`, `s3://bucket/prefix`).
    var description: String { get }
    /// Stores `bytes` as `name` with a short `label` kept beside it (the mirror records a
    /// segment's seal hash there), unless an object of that name exists.
    /// - Returns: true if stored now, false if the same content was already there (checked by
    ///   the SHA-256 recorded with it).
    /// - Throws: ``MirrorError/conflict(name:)`` if `name` exists with other content,
    ///   ``MirrorError/target(_:)``/``MirrorError/transport(_:)`` on failure.
    @discardableResult
    func put(_ name: String, _ bytes: [UInt8], retention: ObjectRetention?, label: String?) throws -> Bool
    /// What is stored under `name` (size, and the SHA-256 and label recorded when it was
    /// stored), or nil.
    func head(_ name: String) throws -> ObjectInfo?
    /// Every object whose name starts with `prefix`, in name order.
    func list(prefix: String) throws -> [ObjectInfo]
    /// The bytes of `name`. - Throws: ``MirrorError/missing(name:)``.
    func get(_ name: String) throws -> [UInt8]
}

/// An object as listed: name, size, and (where the target keeps one) the SHA-256 of its content
/// as computed by the mirror before upload.
public struct ObjectInfo: Sendable, Equatable {
    public var name: String
    public var size: Int
    public var sha256: String?
    /// The label stored with it (see ``MirrorTarget/put(_:_:retention:label:)``).
    public var label: String?
}

/// The retention an object gets in an object store with Object Lock.
public struct ObjectRetention: Sendable, Equatable {
    public enum Mode: String, Sendable { case compliance = "COMPLIANCE", governance = "GOVERNANCE" }
    public var mode: Mode
    /// Nanoseconds since the Unix epoch.
    public var retainUntil: Int64
    /// An object legal hold as well (no expiry until released in the object store).
    public var legalHold: Bool

    public init(mode: Mode, retainUntil: Int64, legalHold: Bool = false) {
        self.mode = mode
        self.retainUntil = retainUntil
        self.legalHold = legalHold
    }

    /// `2027-01-31T00:00:00Z` form, as S3 wants it.
    var iso8601: String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        // Rounded up: the copy must not be unlocked a moment before the record is.
        let seconds = retainUntil / 1_000_000_000 + (retainUntil % 1_000_000_000 > 0 ? 1 : 0)
        return formatter.string(from: Date(timeIntervalSince1970: Double(seconds)))
    }
}

/// What mirroring and restoring report when they cannot go on.
public enum MirrorError: Error, Equatable, CustomStringConvertible {
    /// No HTTP answer (connection refused, timeout).
    case transport(String)
    /// The target answered with an error.
    case target(String)
    /// An object the copy needs is not there.
    case missing(name: String)
    /// An object exists with other content than what would be stored under its name.
    case conflict(name: String)
    /// An object's content does not match its recorded checksum, or does not verify.
    case altered(name: String, detail: String)
    /// The restored log does not match the trusted checkpoint.
    case checkpointMismatch(String)
    /// Bad arguments or credentials.
    case invalid(String)

    public var description: String {
        switch self {
        case .transport(let detail): "mirror target unreachable: \(detail)"
        case .target(let detail): "mirror target refused: \(detail)"
        case .missing(let name): "object missing from the copy: \(name)"
        case .conflict(let name): "object \(name) already exists with different content; nothing was overwritten"
        case .altered(let name, let detail): "object \(name) was altered: \(detail)"
        case .checkpointMismatch(let detail): "restored log does not match the trusted checkpoint: \(detail)"
        case .invalid(let detail): detail
        }
    }
}
