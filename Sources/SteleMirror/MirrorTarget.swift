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
    /// - Throws: ``SteleError/mirror(_:)`` (``MirrorError/conflict(name:)``) if `name` exists with other content,
    ///   ``MirrorError/target(_:)``/``MirrorError/transport(_:)`` on failure.
    @discardableResult
    func put(_ name: String, _ bytes: [UInt8], retention: ObjectRetention?, label: String?) throws -> Bool
    /// What is stored under `name` (size, and the SHA-256 and label recorded when it was
    /// stored), or nil.
    func head(_ name: String) throws -> ObjectInfo?
    /// Every object whose name starts with `prefix`, in name order.
    func list(prefix: String) throws -> [ObjectInfo]
    /// The bytes of `name`. - Throws: ``SteleError/mirror(_:)`` (``MirrorError/missing(name:)``).
    func get(_ name: String) throws -> [UInt8]
    /// Every stored version of every object whose name starts with `prefix`, delete markers
    /// included: what a restore or a tamper check must see (a plain listing hides older versions
    /// and everything a delete marker covers). By name, then oldest first.
    func versions(prefix: String) throws -> [ObjectVersion]
    /// The versions ``versions(prefix:)`` gives of the objects whose names sort after `after`:
    /// what a follower lists between its full checks of the copy, so that a pass costs what is
    /// new and not the size of the copy (objects are named in the order they are written).
    func versions(prefix: String, after: String) throws -> [ObjectVersion]
    /// The bytes of one version of `name` (nil: the latest).
    func get(_ name: String, version: String?) throws -> [UInt8]
    /// What is stored under one version of `name` (nil: the latest), or nil.
    func head(_ name: String, version: String?) throws -> ObjectInfo?
}

extension MirrorTarget {
    /// A target that keeps one version per name: its listing, each object the latest.
    public func versions(prefix: String) throws -> [ObjectVersion] {
        try list(prefix: prefix).map {
            ObjectVersion(name: $0.name, versionID: nil, size: $0.size, isDeleteMarker: false, isLatest: true, lastModified: "")
        }
    }

    /// Any target: its whole listing, filtered (correct, and no cheaper).
    public func versions(prefix: String, after: String) throws -> [ObjectVersion] {
        try versions(prefix: prefix).filter { $0.name > after }
    }

    public func get(_ name: String, version: String?) throws -> [UInt8] {
        guard version == nil else { throw SteleError.mirror(.invalid("\(description) keeps no object versions")) }
        return try get(name)
    }

    public func head(_ name: String, version: String?) throws -> ObjectInfo? {
        guard version == nil else { throw SteleError.mirror(.invalid("\(description) keeps no object versions")) }
        return try head(name)
    }
}

/// One stored version of an object, or a delete marker hiding the versions before it.
public struct ObjectVersion: Sendable, Equatable {
    public var name: String
    /// The target's version id; nil where a target keeps one version per name (a directory).
    public var versionID: String?
    public var size: Int
    /// A delete marker (S3), or, in a directory, an object whose file is gone but whose
    /// checksum file remains: either way, an object that was there and was removed.
    public var isDeleteMarker: Bool
    public var isLatest: Bool
    /// When it was stored, as the target reports it (ISO 8601; empty if unknown).
    public var lastModified: String
    /// The ETag the server computed when it stored this version (S3), if any.
    public var etag: String?

    public init(name: String, versionID: String?, size: Int, isDeleteMarker: Bool, isLatest: Bool, lastModified: String,
                etag: String? = nil) {
        self.name = name
        self.versionID = versionID
        self.size = size
        self.isDeleteMarker = isDeleteMarker
        self.isLatest = isLatest
        self.lastModified = lastModified
        self.etag = etag
    }

    /// `name` with its version, for messages.
    public var label: String { versionID.map { "\(name) (version \($0))" } ?? name }
}

/// An object as listed: name, size, and (where the target keeps one) the SHA-256 of its content
/// as computed by the mirror before upload.
public struct ObjectInfo: Sendable, Equatable {
    public var name: String
    public var size: Int
    public var sha256: String?
    /// The label stored with it (see ``MirrorTarget/put(_:_:retention:label:)``).
    public var label: String?
    /// The ETag the server computed from the content (S3), if any.
    public var etag: String? = nil
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

