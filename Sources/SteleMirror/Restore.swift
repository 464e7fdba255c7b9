import Foundation
import Stele

/// Rebuilds a store from a mirror and proves it against a trusted checkpoint.
///
/// Steps: fetch the config and every segment in order (a gap is a missing object); check each
/// object's SHA-256 against the one recorded at upload and that each segment is a sealed one;
/// assemble them in `DIR.restoring`; open the store there (recovery checks the hash chain and
/// the Merkle roots in every footer and rebuilds tiles and index); run fsck with the trusted
/// checkpoint, which must be covered by the restored log and match its tree at that size; only
/// then rename `DIR.restoring` to `DIR`. Nothing unverified is ever left under `DIR`.
public enum Restore {
    /// What a restore brought back (also written as JSON by `stele restore`).
    public struct Report: Sendable, Codable, Equatable {
        public var restoredTo: String
        public var source: String
        public var segments: Int
        public var bytes: Int
        /// Records restored (the tree size of the restored log).
        public var treeSize: UInt64
        /// Hex RFC 6962 root of the restored log.
        public var rootHash: String
        /// Tree size of the trusted checkpoint it was checked against.
        public var checkpointSize: UInt64
        /// Records vouched for by a checkpoint signed with the trusted key: the trusted one, or a
        /// later one found in the copy (checked for consistency with it by fsck).
        public var vouchedSize: UInt64
        /// Sealed segments in the copy that lie wholly beyond every such checkpoint, left out
        /// (nothing signed vouches for them; `includeUnvouched` restores them too).
        public var segmentsLeftOut: Int
        public var seconds: Double
    }

    /// Restores from `target` into `directory`, which must not exist.
    /// - Parameters:
    ///   - checkpoint: a signed checkpoint note held outside the store (trusted).
    ///   - verifier: the key that must have signed it.
    ///   - includeUnvouched: also restore sealed segments beyond the newest checkpoint signed with
    ///     that key (checked by the hash chain alone, which anyone able to write objects to the
    ///     copy could extend).
    /// - Throws: ``MirrorError`` naming the object that is missing or altered, or describing how
    ///   the log and the checkpoint disagree; ``SteleError`` for local I/O.
    public static func run(from target: any MirrorTarget, to directory: String, checkpoint: String,
                           verifier: NoteVerifier, includeUnvouched: Bool = false) throws -> Report {
        let start = ContinuousClock.now
        let fs = PosixFileSystem()
        guard try fs.status(directory) == nil else { throw MirrorError.invalid("\(directory) already exists; restore into a new directory") }
        let trusted: Checkpoint
        do {
            trusted = try Checkpoint(parsing: try SignedNote.open(checkpoint, verifier: verifier))
        } catch {
            throw MirrorError.invalid("the trusted checkpoint does not verify with that key: \(error)")
        }
        let work = directory + ".restoring"
        removeTree(work)
        do {
            return try assemble(from: target, in: work, to: directory, checkpoint: checkpoint, trusted: trusted,
                                verifier: verifier, includeUnvouched: includeUnvouched, start: start)
        } catch {
            removeTree(work)
            // Damage found by the store's own checks names a file of the copy: name the object.
            if case SteleError.corruption(let damage) = error, damage.file.hasPrefix(work + "/") {
                throw MirrorError.altered(name: String(damage.file.dropFirst(work.count + 1)), detail: damage.detail)
            }
            throw error
        }
    }

    private static func assemble(from target: any MirrorTarget, in work: String, to directory: String, checkpoint: String,
                                 trusted: Checkpoint, verifier: NoteVerifier, includeUnvouched: Bool,
                                 start: ContinuousClock.Instant) throws -> Report {
        let fs = PosixFileSystem()
        let layout = StoreLayout(root: work)
        try fs.makeDirectory(work)
        for path in layout.directories { try fs.makeDirectory(path) }
        fs.close(try fs.open(layout.lock, .createNew(permissions: 0o644)))

        let config = try fetch(target, StoreConfig.fileName)
        _ = try StoreConfig.decode(String(decoding: config, as: UTF8.self), path: StoreConfig.fileName)
        try write(fs, config, to: layout.config)

        // Checkpoints in the copy signed with the trusted key vouch for more than the trusted
        // one may; fsck checks them all against the restored log (and so against each other).
        var vouching = [Fsck.ExternalCheckpoint(note: checkpoint, verifier: verifier)]
        var vouchedSize = trusted.treeSize
        for info in try target.list(prefix: "checkpoints/") {
            guard let note = try? String(decoding: fetch(target, info.name), as: UTF8.self),
                  let body = try? Checkpoint(parsing: try SignedNote.open(note, verifier: verifier)),
                  body.origin == trusted.origin else { continue }
            vouching.append(Fsck.ExternalCheckpoint(note: note, verifier: verifier))
            vouchedSize = max(vouchedSize, body.treeSize)
        }

        let names = try target.list(prefix: "segments/").map(\.name).filter { $0.hasSuffix(SegmentFiles.suffix) }
        var bytes = config.count
        var restoredSegments = 0
        // The next two objects are fetched and checked (SHA-256) on other threads while this one
        // is written: checking takes longer than writing, so one thread ahead left a core idle.
        func prefetch(_ name: String) -> BackgroundTask<[UInt8]> { BackgroundTask(qos: .default) { try fetch(target, name) } }
        var ahead = names.prefix(Restore.fetchAhead).map(prefetch)
        defer { for fetch in ahead { fetch.join() } }  // no thread outlives the restore
        for (position, name) in names.enumerated() {
            let expected = "segments/" + SegmentFiles.name(UInt64(position + 1))
            guard name == expected else { throw MirrorError.missing(name: expected) }
            let content = try ahead.isEmpty ? fetch(target, name) : ahead.removeFirst().value()
            if position + Restore.fetchAhead < names.count { ahead.append(prefetch(names[position + Restore.fetchAhead])) }
            let path = work + "/" + name
            try write(fs, content, to: path)
            let segment: SealedSegment
            do {
                segment = try SealedSegment.open(fs: fs, path: path, expectedIndex: UInt64(position + 1))
            } catch {
                throw MirrorError.altered(name: name, detail: "\(error)")
            }
            if segment.footer.firstSequence >= vouchedSize && !includeUnvouched {
                try fs.remove(path)
                break
            }
            bytes += content.count
            restoredSegments += 1
        }
        guard restoredSegments > 0 else { throw MirrorError.missing(name: "segments/" + SegmentFiles.name(1)) }
        for fetch in ahead { fetch.join() }  // objects beyond the vouched ones, left out
        ahead.removeAll()

        // How far the restored log reaches, so that a later loss of its files is never silent.
        let last = try SealedSegment.open(fs: fs, path: work + "/segments/" + SegmentFiles.name(UInt64(restoredSegments)),
                                          expectedIndex: UInt64(restoredSegments))
        try LogReach(storeID: last.header.storeID, open: false, segment: last.header.index, first: last.header.firstSequence,
                     records: last.footer.lastSequence + 1).write(fs: fs, directory: work)
        // One sync for every file written (rather than one each): nothing is presented as
        // restored before the rename below anyway.
        try fs.syncFileSystem(work)
        // Recovery: hash chain, footers, Merkle roots; tiles and index rebuilt from the records.
        let store = try Store(path: work)
        let size = store.recordCount
        let root = try store.rootHash()
        try store.close()
        guard size >= vouchedSize else {
            throw MirrorError.missing(name: "segments/" + SegmentFiles.name(UInt64(restoredSegments + 1))
                + " (the copy holds \(size) records; a checkpoint signed with the trusted key covers \(vouchedSize))")
        }
        let report = try Fsck.check(path: work, externalCheckpoints: vouching)
        guard report.problems.isEmpty else {
            throw MirrorError.checkpointMismatch(report.problems.map { "\($0)" }.joined(separator: "; "))
        }
        guard report.externalCheckpointsVerified == vouching.count else {
            throw MirrorError.checkpointMismatch("fsck verified \(report.externalCheckpointsVerified) of \(vouching.count) checkpoints")
        }
        try fs.syncFileSystem(work)
        try fs.rename(work, to: directory)
        try fs.syncDirectory((directory as NSString).deletingLastPathComponent.isEmpty ? "."
                             : (directory as NSString).deletingLastPathComponent)
        let elapsed = ContinuousClock.now - start
        return Report(restoredTo: directory, source: target.description, segments: restoredSegments, bytes: bytes, treeSize: size,
                      rootHash: root.hex, checkpointSize: trusted.treeSize, vouchedSize: vouchedSize,
                      segmentsLeftOut: names.count - restoredSegments,
                      seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }

    /// Objects fetched and checked ahead of the one being written (each holds a whole segment
    /// in memory until written).
    static let fetchAhead = 2

    /// An object, checked against the SHA-256 recorded when it was stored.
    static func fetch(_ target: any MirrorTarget, _ name: String) throws -> [UInt8] {
        guard let info = try target.head(name) else { throw MirrorError.missing(name: name) }
        let content = try target.get(name)
        guard let recorded = info.sha256 else { throw MirrorError.altered(name: name, detail: "no checksum recorded with it") }
        guard hexString(sha256(content)) == recorded else {
            throw MirrorError.altered(name: name, detail: "SHA-256 \(hexString(sha256(content))), recorded \(recorded)")
        }
        return content
    }

    /// Writes a restored file (synced later, all at once, by `syncFileSystem`), and starts its
    /// writeback so that the disk works while the next objects are fetched and checked.
    private static func write(_ fs: PosixFileSystem, _ bytes: [UInt8], to path: String) throws {
        let fd = try fs.open(path, .createNew(permissions: 0o444))
        defer { fs.close(fd) }
        try bytes.withUnsafeBytes { try fs.write(fd, $0, at: 0) }
        fs.startWriteback(fd)
    }

    static func removeTree(_ path: String) {
        for name in (try? FileManager.default.subpathsOfDirectory(atPath: path)) ?? [] { chmod(path + "/" + name, 0o755) }
        try? FileManager.default.removeItem(atPath: path)
    }
}
