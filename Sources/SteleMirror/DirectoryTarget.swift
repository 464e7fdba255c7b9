import Foundation
import Stele
import SteleNative

/// A mirror target in a directory (another disk, or a mounted remote file system).
///
/// Each object is a read-only file (0444) written through a temporary file, `fsync`, and a
/// `link` that fails if the name exists (so nothing is ever replaced, even by a racing mirror),
/// then a directory `fsync`. Its SHA-256 (and label, on a second line) is kept beside it in
/// `NAME.sha256`, so that a restore can tell an altered copy from the original. Only as safe as the directory's permissions:
/// mount it where the store's operator cannot write, or prefer an object store with Object Lock.
public struct DirectoryTarget: MirrorTarget {
    public let root: String
    public var description: String { root }

    public init(root: String) { self.root = root }

    private func path(_ name: String) -> String { root + "/" + name }

    @discardableResult
    public func put(_ name: String, _ bytes: [UInt8], retention: ObjectRetention?, label: String?) throws -> Bool {
        let digest = hexString(sha256(bytes))
        if let existing = try head(name) {
            // Verified from the file itself, not from the checksum beside it (which anyone who can
            // replace the file can replace too).
            guard existing.size == bytes.count, hexString(sha256(try get(name))) == digest else { throw SteleError.mirror(.conflict(name: name)) }
            guard existing.sha256 == digest else {
                throw SteleError.mirror(.tampered(["\(name).sha256 names \(existing.sha256 ?? "nothing"), the file holds \(digest)"]))
            }
            return false
        }
        let final = path(name)
        let directory = parentDirectory(of: final)
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try writeOnce(DirectoryTarget.sidecar(sha256: digest, label: label), to: final + ".sha256", directory: directory)
            return try writeOnce(bytes, to: final, directory: directory)
        } catch let error as SteleError {
            throw error
        } catch {
            throw SteleError.mirror(.target("\(final): \(error)"))
        }
    }

    /// temp file → fsync → link (never replaces a name) → remove temp → fsync directory.
    /// Returns false if the name was taken meanwhile, by the same bytes.
    @discardableResult
    private func writeOnce(_ bytes: [UInt8], to final: String, directory: String) throws -> Bool {
        let fs = PosixFileSystem()
        // Named for this call alone: two writers of one name, in one process or two, never
        // share a temporary file (the `link` below decides which of them creates the name).
        let temporary = final + ".tmp-\(ProcessInfo.processInfo.processIdentifier)-\(String(UInt64.random(in: 0 ... .max), radix: 16))"
        if try fs.status(temporary) != nil { try fs.remove(temporary) }
        let fd = try fs.open(temporary, .createNew(permissions: 0o444))
        defer { try? fs.remove(temporary) }
        do {
            try bytes.withUnsafeBytes { try fs.write(fd, $0, at: 0) }
            try fs.syncAll(fd)
            fs.close(fd)
        } catch {
            fs.close(fd)
            throw error
        }
        guard try fs.linkNew(temporary, to: final) else {
            try verifyExisting(final, bytes)
            return false
        }
        try fs.syncDirectory(directory)
        return true
    }

    private func verifyExisting(_ final: String, _ bytes: [UInt8]) throws {
        guard let existing = FileManager.default.contents(atPath: final), Array(existing) == bytes else {
            throw SteleError.mirror(.conflict(name: String(final.dropFirst(root.count + 1))))
        }
    }

    public func head(_ name: String) throws -> ObjectInfo? {
        let final = path(name)
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: final),
              let size = (attributes[.size] as? NSNumber)?.intValue else { return nil }
        let sidecar = FileManager.default.contents(atPath: final + ".sha256").map { DirectoryTarget.sidecar(Array($0)) }
        return ObjectInfo(name: name, size: size, sha256: sidecar?.sha256, label: sidecar?.label)
    }

    /// `NAME.sha256`: the object's SHA-256 in hex on the first line, its label (line breaks
    /// dropped) on the second if it has one.
    static func sidecar(sha256: String, label: String?) -> [UInt8] {
        Array((sha256 + "\n" + (label.map { $0.filter { !$0.isNewline } + "\n" } ?? "")).utf8)
    }

    /// The checksum and label a sidecar file records (lines end at each LF byte; empty lines
    /// skipped; nil where missing). Whatever the bytes, never a failure: a wrong checksum is
    /// found when it is compared.
    static func sidecar(_ bytes: [UInt8]) -> (sha256: String?, label: String?) {
        let lines = bytes.split(separator: 0x0a).map { String(decoding: $0, as: UTF8.self) }
        return (lines.first, lines.count > 1 ? lines[1] : nil)
    }

    public func list(prefix: String) throws -> [ObjectInfo] {
        var out: [ObjectInfo] = []
        for name in try names(under: prefix, topLevelOnly: false) where name.hasPrefix(prefix) && !name.hasSuffix(".sha256") && !name.contains(".tmp-") {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path(name), isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            if let info = try head(name) { out.append(info) }
        }
        return out.sorted { $0.name < $1.name }
    }

    /// Every object file, and, as a delete marker, every checksum file whose object is gone: in
    /// a directory, that is what a removed object leaves.
    public func versions(prefix: String) throws -> [ObjectVersion] {
        try versions(prefix: prefix, after: "")
    }

    /// As ``versions(prefix:)``, with a `stat` only for the names after `after` (the directory
    /// is still read whole: one `getdents` per few hundred names).
    public func versions(prefix: String, after: String) throws -> [ObjectVersion] {
        var out: [ObjectVersion] = []
        // A checksum file sorts after its object's name: compared by the object's name.
        for name in try names(under: prefix, topLevelOnly: true) where (name.hasSuffix(".sha256") ? name.dropLast(".sha256".count) : name[...]) > after[...] {
            guard name.hasPrefix(prefix), !name.contains(".tmp-") else { continue }
            // One `stat` an object (a follower lists every checkpoint at each pass).
            guard let status = try? Paths.status(path(name)), !status.isDirectory else { continue }
            if name.hasSuffix(".sha256") {
                let object = String(name.dropLast(".sha256".count))
                if (try? Paths.status(path(object))) == nil {
                    out.append(ObjectVersion(name: object, versionID: nil, size: 0, isDeleteMarker: true, isLatest: true, lastModified: ""))
                }
            } else {
                out.append(ObjectVersion(name: name, versionID: nil, size: status.size, isDeleteMarker: false, isLatest: true,
                                         lastModified: String(status.modifiedNanoseconds)))
            }
        }
        return out.sorted { $0.name < $1.name }
    }

    /// The names of the files in the directory `prefix` names, and below it: only that directory
    /// is walked (a follower lists one segment's chunks at every pass, not every tile and chunk
    /// of the copy). A prefix without a directory: the whole tree, or only the top-level names.
    private func names(under prefix: String, topLevelOnly: Bool) throws -> [String] {
        let base = prefix.contains("/") ? String(prefix[..<(prefix.lastIndex(of: "/") ?? prefix.endIndex)]) : ""
        if base.isEmpty && topLevelOnly { return try entries(root).map(\.name) }
        return try walk(base.isEmpty ? root : path(base), relative: base)
    }

    /// A directory's entries; none if it does not exist (nothing was stored under it yet). A
    /// directory that cannot be read is an error, never an empty listing, which a follower would
    /// take for objects removed from the copy.
    private func entries(_ directory: String) throws -> [(name: String, isDirectory: Bool?)] {
        do {
            return try Paths.directoryEntries(directory)
        } catch let error where error.errno == ENOENT || error.errno == ENOTDIR {
            return []
        } catch {
            throw SteleError.mirror(.target("cannot read \(directory): \(error)"))
        }
    }

    /// Every name below `directory` (directories too), relative to the root: `readdir` alone,
    /// a `stat` only where it does not say what an entry is (a copy's `segments/` holds two
    /// names a segment, for years).
    private func walk(_ directory: String, relative: String) throws -> [String] {
        var names: [String] = []
        for entry in try entries(directory) {
            let name = relative.isEmpty ? entry.name : relative + "/" + entry.name
            names.append(name)
            let full = directory + "/" + entry.name
            if entry.isDirectory ?? ((try? Paths.status(full, followingLinks: false)) ?? nil)?.isDirectory ?? false {
                names += try walk(full, relative: name)
            }
        }
        return names
    }

    public func get(_ name: String) throws -> [UInt8] {
        // One read into the array (Foundation's `Data` and a copy out of it cost a third of a
        // directory restore's fetch time).
        guard let bytes = try PosixFileSystem().readWholeFile(path(name), limit: .max) else { throw SteleError.mirror(.missing(name: name)) }
        return bytes
    }
}
