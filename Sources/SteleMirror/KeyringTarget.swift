import Foundation
import Stele
import SteleNative

/// Where the off-host copy of an encrypted store's keyring goes: unlike a ``MirrorTarget``, a
/// place that replaces its one object and keeps no older version of it, so that shredding a
/// namespace (which destroys its data key in the local keyring) reaches the copy too.
///
/// It must be another target than the segments' (another prefix or bucket, with its own
/// credentials) and must not have Object Lock: a locked copy would keep a destroyed key for
/// as long as the lock, defeating the shred. The segments, encrypted, stay under Object Lock.
public protocol KeyringTarget: Sendable {
    /// A description for messages (`/mnt/keys`, `s3://keys-bucket/store-1/`).
    var description: String { get }
    /// Replaces the keyring copy with `bytes` and then removes every older version of it.
    /// - Throws: ``SteleError/mirror(_:)`` (``MirrorError/target(_:)``) if the replacement or a
    ///   removal is refused (an Object-Locked bucket, say): the copy may then still hold a key
    ///   that was destroyed, and the mirror fails loudly rather than report it current.
    func replaceKeyring(_ bytes: [UInt8]) throws
    /// The keyring copy, or nil if there is none.
    func fetchKeyring() throws -> [UInt8]?
}

/// A keyring copy in a directory (`DIR/keyring`, mode 0600), overwritten in place and synced:
/// replacing it by a rename would leave the old file's blocks, and so a destroyed key, on disk.
public struct DirectoryKeyringTarget: KeyringTarget {
    public let root: String
    private let fs = PosixFileSystem()

    public var description: String { root }

    public init(root: String) { self.root = root }

    private var path: String { root + "/keyring" }

    public func replaceKeyring(_ bytes: [UInt8]) throws {
        do {
            if try fs.status(root) == nil { try fs.makeDirectory(root) }
            let created = try fs.status(path) == nil
            let file = try fs.open(path, created ? .createNew(permissions: 0o600) : .readWrite)
            defer { fs.close(file) }
            try bytes.withUnsafeBytes { try fs.write(file, $0, at: 0) }
            try fs.truncate(file, to: bytes.count)
            try fs.syncAll(file)
            if created { try fs.syncDirectory(root) }
        } catch let error as SteleError {
            throw SteleError.mirror(.target("keyring copy \(path): \(error)"))
        }
    }

    public func fetchKeyring() throws -> [UInt8]? {
        try fs.readWholeFile(path, limit: Keyring.headerLength + Keyring.slotLength * Keyring.maxSlots)
    }
}

/// A keyring copy as the object `PREFIX/keyring` of an S3 bucket without Object Lock. After each
/// upload every older version of the object is deleted (in a versioned bucket an overwrite only
/// pushes the old one down), so that a destroyed key is kept by no version.
extension S3Target: KeyringTarget {
    public func replaceKeyring(_ bytes: [UInt8]) throws {
        let key = prefix + "keyring"
        let put = try client.sendRetrying(.init(method: "PUT", key: key, headers: ["x-amz-meta-sha256": hexString(sha256(bytes))], body: bytes))
        guard (200 ..< 300).contains(put.status) else { throw SteleError.mirror(.target("keyring copy \(key): \(S3Client.errorText(put))")) }
        // Every version but the latest (the one just written) goes: none may keep a destroyed key.
        for version in try versions(prefix: "keyring") where version.name == "keyring" && !version.isLatest {
            let delete = try client.sendRetrying(.init(method: "DELETE", key: key, query: [("versionId", version.versionID ?? "null")]))
            guard (200 ..< 300).contains(delete.status) else {
                throw SteleError.mirror(.target("keyring copy \(key): an older version (\(version.versionID ?? "null")) cannot be deleted, so a destroyed key may survive in it: \(S3Client.errorText(delete)); the keyring target must not have Object Lock"))
            }
        }
    }

    public func fetchKeyring() throws -> [UInt8]? {
        guard try head("keyring") != nil else { return nil }
        return try get("keyring")
    }
}
