import Foundation
import Stele
import SteleNative

/// Rebuilds a store from a mirror and proves it against a trusted checkpoint.
///
/// The copy is read by object versions (S3's ListObjectVersions; a directory's files), so that
/// neither a delete marker nor an overwrite hides anything. For each segment number in turn the
/// oldest version that checks out is used: its recorded SHA-256, a sealed segment of this store
/// with a valid seal, starting where the previous one ended and linking to its seal (and, when
/// versions compete, its records reproducing its seal's digest and root). Segments are taken up
/// to the largest checkpoint in the copy signed with the trusted key; those assembled in
/// `DIR.restoring`, the store is opened there (recovery checks every footer's Merkle root and
/// rebuilds tiles and index), `stele.conf` is written from the log's own config records (the
/// copy's file is only compared), and fsck checks the log against the trusted checkpoint and
/// every other signed checkpoint consistent with it. Segments wholly beyond what a consistent
/// checkpoint vouches for are left out. Only then is `DIR.restoring` renamed to `DIR`; nothing
/// unverified is ever left under `DIR`. Every object not used, and every one found altered, is
/// named in the report, whatever else the copy holds: extra or forged objects, newer versions,
/// objects past the checkpoint.
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
        /// Records vouched for by a checkpoint signed with the trusted key and consistent with
        /// the trusted one: the trusted one, or a later one found in the copy.
        public var vouchedSize: UInt64
        /// Sealed segments in the copy left out: wholly beyond every such checkpoint (nothing
        /// signed vouches for them; `includeUnvouched` restores them too).
        public var segmentsLeftOut: Int
        /// Records in those segments.
        public var recordsLeftOut: UInt64
        /// Objects of the copy not used, each with why.
        public var ignored: [String]
        /// Objects of the copy that failed a check, each with what failed.
        public var altered: [String]
        /// Where the store's identity and governance key came from: its log, or (for a store
        /// created before config records) the copy's `stele.conf`.
        public var policyFrom: String
        /// The largest tree size of a checkpoint signed with the trusted key that covers more
        /// records than came back: records the copy lost. The restored store keeps that
        /// checkpoint, so its writer refuses to append (and hand their numbers out again) until
        /// the loss is recorded (`stele record-loss`).
        public var checkpointBeyond: UInt64?
        public var seconds: Double
        /// For an encrypted store, where its keyring came from (its own copy).
        public var keyringFrom: String? = nil
        /// Namespaces the restored log records as shredded: their keys and values are gone.
        public var shreddedNamespaces: [String] = []
    }

    /// Restores from `target` into `directory`, which must not exist.
    /// - Parameters:
    ///   - checkpoint: a signed checkpoint note held outside the store (trusted).
    ///   - verifier: the key that must have signed it.
    ///   - includeUnvouched: also restore sealed segments beyond the newest consistent checkpoint
    ///     signed with that key (checked by the hash chain alone, which anyone able to write
    ///     objects to the copy could extend).
    /// - Throws: ``SteleError/mirror(_:)`` (``MirrorError``) naming the object that is missing or altered, or describing how
    ///   the log and the checkpoint disagree; ``SteleError`` for local I/O.
    ///   - keyring: for an encrypted store, its keyring copy (``Mirror/Options/keyringTarget``).
    ///   - encryptionKey: for an encrypted store, its master key: the keyring copy must open with it.
    public static func run(from target: any MirrorTarget, to directory: String, checkpoint: String,
                           verifier: NoteVerifier, includeUnvouched: Bool = false,
                           keyring: (any KeyringTarget)? = nil, encryptionKey: EncryptionKey? = nil) throws -> Report {
        try run(from: target, to: directory, checkpoint: checkpoint, verifier: verifier, includeUnvouched: includeUnvouched,
                keyring: keyring, encryptionKey: encryptionKey, fileSystem: PosixFileSystem())
    }

    /// ``run(from:to:checkpoint:verifier:includeUnvouched:)`` with every change to the disk made
    /// through `fs`, the store it opens included, so that a test can cut the power at each of them
    /// (`PowerLossRestoreTests`). Reads of the copy and the checks that only read (the log's
    /// config records, fsck) use the real file system: they change nothing a power cut could lose.
    package static func run(from target: any MirrorTarget, to directory: String, checkpoint: String,
                            verifier: NoteVerifier, includeUnvouched: Bool = false, keyring: (any KeyringTarget)? = nil,
                            encryptionKey: EncryptionKey? = nil, fileSystem fs: any FileSystem) throws -> Report {
        let start = ContinuousClock.now
        guard try fs.status(directory) == nil else { throw SteleError.mirror(.invalid("\(directory) already exists; restore into a new directory")) }
        let trusted: Checkpoint
        do {
            trusted = try Checkpoint(parsing: try SignedNote.open(checkpoint, verifier: verifier))
        } catch {
            throw SteleError.mirror(.invalid("the trusted checkpoint does not verify with that key: \(error)"))
        }
        let work = directory + ".restoring"
        // What a restore killed or cut short left: it never reached `directory`, so it goes.
        try removeTree(fs, work)
        do {
            return try assemble(fs, from: target, in: work, to: directory, checkpoint: checkpoint, trusted: trusted,
                                verifier: verifier, includeUnvouched: includeUnvouched, keyring: (keyring, encryptionKey), start: start)
        } catch {
            // Best effort: the error is the one to report, and the next restore removes what is left.
            try? removeTree(fs, work)
            // Damage found by the store's own checks names a file of the copy: name the object.
            if case SteleError.corruption(let damage) = error, damage.file.hasPrefix(work + "/") {
                throw SteleError.mirror(.altered(name: String(damage.file.dropFirst(work.count + 1)), detail: damage.detail))
            }
            throw error
        }
    }

    private static func assemble(_ fs: any FileSystem, from target: any MirrorTarget, in work: String, to directory: String,
                                 checkpoint: String, trusted: Checkpoint, verifier: NoteVerifier, includeUnvouched: Bool,
                                 keyring: (target: (any KeyringTarget)?, key: EncryptionKey?), start: ContinuousClock.Instant) throws -> Report {
        let layout = StoreLayout(root: work)
        try fs.makeDirectory(work)
        for path in layout.directories { try fs.makeDirectory(path) }
        fs.close(try fs.open(layout.lock, .createNew(permissions: 0o644)))
        var inventory = try RestoreInventory(target)

        // Checkpoints in the copy signed with the trusted key may vouch for more than the trusted
        // one: segments are taken up to the largest, and kept only as far as one consistent with
        // the trusted checkpoint reaches (checked once the log is assembled).
        let signed = try inventory.signedCheckpoints(target, verifier: verifier, origin: trusted.origin)
        let claimed = signed.map(\.checkpoint.treeSize).reduce(trusted.treeSize, max)

        var chosen: [ChosenSegment] = []  // their bytes dropped once written
        var bytesRestored: [UInt64: Int] = [:]
        var frontier = Frontier()
        var index: UInt64 = 1
        var leftOut: [UInt64] = []
        var brokeOff = false  // no version of segment `index` continued the chain
        // The next segments' oldest versions are fetched and checked (SHA-256) on other threads
        // while this one is checked and written: checking takes longer than writing.
        func prefetch(_ index: UInt64) -> BackgroundTask<[UInt8]>? {
            guard let first = inventory.segments[index]?.first else { return nil }
            return BackgroundTask(qos: .default) { try RestoreInventory.fetch(target, first) }
        }
        var ahead: [UInt64: BackgroundTask<[UInt8]>] = [:]
        defer { for task in ahead.values { task.join() } }  // no thread outlives the restore
        while inventory.segments[index] != nil {
            for next in index ..< index + UInt64(Restore.fetchAhead) + 1 where ahead[next] == nil {
                if let task = prefetch(next) { ahead[next] = task }
            }
            let prefetched = try? ahead.removeValue(forKey: index)?.value()
            guard var segment = inventory.choose(index: index, after: chosen.last, frontier: frontier,
                                                 storeID: chosen.first?.header.storeID, target, prefetched: prefetched) else {
                brokeOff = true
                break
            }
            if segment.header.firstSequence >= claimed && !includeUnvouched { break }
            try write(fs, segment.bytes, to: work + "/segments/" + SegmentFiles.name(index))
            bytesRestored[index] = segment.bytes.count
            segment.bytes = []
            frontier = Frontier(size: segment.footer.treeSize, hashes: segment.footer.frontier) ?? frontier
            chosen.append(segment)
            index += 1
        }
        let held = chosen.last.map { $0.footer.lastSequence + 1 } ?? 0
        guard held >= trusted.treeSize, let last = chosen.last else {
            let name = "segments/" + SegmentFiles.name(UInt64(chosen.count + 1))
            if let failed = inventory.altered.last(where: { $0.hasPrefix(name) }) {
                throw SteleError.mirror(.altered(name: name, detail: failed + " (no version of it continues the chain)"))
            }
            throw SteleError.mirror(.missing(name: name))
        }
        // Segments after the chain's end: beyond every signed checkpoint, or after a break that
        // the chain cannot cross (the broken one is noted as altered).
        for other in inventory.segments.keys where other > index || (other == index && !brokeOff) {
            leftOut.append(other)
        }

        // Removes the assembled segments from the end while `drop` says so, and writes how far
        // the log then reaches.
        var restored = chosen
        func trim(while drop: (ChosenSegment) -> Bool) throws {
            while let tail = restored.last, restored.count > 1, drop(tail) {
                try fs.remove(work + "/segments/" + SegmentFiles.name(tail.header.index))
                leftOut.append(tail.header.index)
                restored.removeLast()
            }
            guard let end = restored.last else { return }
            try LogReach(storeID: end.header.storeID, open: false, segment: end.header.index, first: end.header.firstSequence,
                         records: end.footer.lastSequence + 1).write(fs: fs, directory: work)
        }

        // How far the restored log reaches, and who it is: from the log itself. A policy record
        // that does not check out in a segment no checkpoint vouches for yet takes that segment out.
        try trim { _ in false }
        var policyFrom: String
        do {
            policyFrom = try writeConfig(fs, target, &inventory, layout: layout, storeID: last.header.storeID)
        } catch SteleError.corruption(let damage) where restored.contains(where: { $0.footer.firstSequence >= trusted.treeSize }) {
            inventory.altered.append("\(damage.file): \(damage.detail) (in a segment beyond the trusted checkpoint: left out)")
            try trim { $0.footer.firstSequence >= trusted.treeSize }
            policyFrom = try writeConfig(fs, target, &inventory, layout: layout, storeID: last.header.storeID)
        }
        // An encrypted store's keyring, before the store is opened (a writer needs it; one that
        // finds a shred the copy's keyring missed destroys the key then).
        let keyringFrom = try restoreKeyring(fs, keyring, layout: layout)
        try fs.syncFileSystem(work)

        // Recovery: hash chain, footers, Merkle roots; tiles and index rebuilt from the records.
        var options = Store.Options()
        options.migrating = policyFrom != "log"
        options.fileSystem = fs
        if keyringFrom != nil { options.encryptionKey = keyring.key }
        let store = try Store(path: work, options: options)
        var vouching = [Fsck.ExternalCheckpoint(note: checkpoint, verifier: verifier)]
        var vouched = trusted.treeSize
        for (candidate, note, label) in signed {
            let root = candidate.treeSize <= held ? try? store.rootHash(treeSize: candidate.treeSize) : nil
            if root == candidate.root {
                vouching.append(Fsck.ExternalCheckpoint(note: note, verifier: verifier))
                vouched = max(vouched, candidate.treeSize)
            } else if candidate.treeSize <= held {
                inventory.ignored.append("\(label): signed with the trusted key but inconsistent with the restored log at size \(candidate.treeSize) (a fork)")
            } else {
                inventory.ignored.append("\(label): a checkpoint of \(candidate.treeSize) records, beyond what the copy holds")
            }
        }
        try store.close()

        // Segments that no consistent checkpoint vouches for come out again, from the end; the
        // config is then the trimmed log's (a key change in a segment taken out does not count).
        let assembled = restored.count
        if !includeUnvouched { try trim { $0.footer.firstSequence >= vouched } }
        if restored.count < assembled {
            if policyFrom == "log" { policyFrom = try writeConfig(fs, target, &inventory, layout: layout, storeID: last.header.storeID) }
            for path in [layout.tiles, layout.index] { try removeTree(fs, path); try fs.makeDirectory(path) }
            try fs.syncFileSystem(work)
            try Store(path: work, options: options).close()
        }
        let size = restored.last.map { $0.footer.lastSequence + 1 } ?? 0
        var recordsLeftOut: UInt64 = 0
        let chainEnd = restored.last.map { $0.header.index } ?? 0
        for number in Set(leftOut).sorted() {
            guard let version = inventory.segments[number]?.first else { continue }
            inventory.ignored.append("\(version.label): left out: no checkpoint signed with the trusted key covers it (the restored chain ends "
                + "with segment \(chainEnd))" + (includeUnvouched ? "" : "; --include-unvouched restores segments that continue the chain"))
            if let segment = chosen.first(where: { $0.header.index == number }) {
                recordsLeftOut += segment.footer.recordCount
            } else if let bytes = try? RestoreInventory.fetch(target, version),
                      let footer = try? SegmentBytes.verifiedFooter(bytes, name: version.label) {
                recordsLeftOut += footer.recordCount
            }
        }

        let report = try Fsck.check(path: work, externalCheckpoints: vouching)
        // A store created before config records is one fsck reports as such: the report says so.
        let problems = report.problems.filter { !(policyFrom != "log" && $0.category == .config) }
        guard problems.isEmpty else {
            throw SteleError.mirror(.checkpointMismatch(problems.map { "\($0)" }.joined(separator: "; ")))
        }
        guard report.externalCheckpointsVerified == vouching.count else {
            throw SteleError.mirror(.checkpointMismatch("fsck verified \(report.externalCheckpointsVerified) of \(vouching.count) checkpoints"))
        }
        // The checkpoints signed with the trusted key come along: the ones the restored log is
        // consistent with, and those over more records than it holds, which are the evidence that
        // records were lost (the writer refuses to reuse their numbers until the loss is recorded).
        var kept: [(UInt64, String)] = vouching.map { external in
            ((try? Checkpoint(parsing: SignedNote.open(external.note, verifier: verifier)))?.treeSize ?? 0, external.note)
        }
        var beyond = signed.filter { $0.checkpoint.treeSize > held }
        // The copy keeps only a seal's checkpoints; the writer's later ones travel in the chunks
        // of the next segment, whose records a restore does not read: the newest is evidence too.
        if let newest = newestChunkCheckpoint(target, segment: UInt64(chosen.count) + 1, verifier: verifier, origin: trusted.origin, &inventory),
           newest.checkpoint.treeSize > held {
            beyond.append(newest)
        }
        kept += beyond.map { ($0.checkpoint.treeSize, $0.note) }
        let history = CheckpointStore(fs: fs, directory: layout.checkpoints, origin: trusted.origin)
        try fs.makeDirectory(layout.checkpoints + "/history")
        for (treeSize, note) in Dictionary(kept, uniquingKeysWith: { a, _ in a }).sorted(by: { $0.key < $1.key }) {
            try fs.writeAtomically(Array(note.utf8), to: history.historyPath(treeSize), permissions: 0o644, directory: layout.checkpoints + "/history")
        }
        if let latest = kept.max(by: { $0.0 < $1.0 }) {
            try fs.writeAtomically(Array(latest.1.utf8), to: history.latestPath, permissions: 0o644, directory: layout.checkpoints)
        }
        var readOnly = Store.Options(readOnly: true)
        readOnly.fileSystem = fs
        readOnly.encryptionKey = keyring.key.flatMap { keyringFrom == nil ? nil : $0 }
        let reopened = try Store(path: work, options: readOnly)
        let root = try reopened.rootHash()
        let shredded = try reopened.shreddedNamespaces().keys.sorted()
        try reopened.close()
        try fs.syncFileSystem(work)
        try fs.rename(work, to: directory)
        try fs.syncDirectory(parentDirectory(of: directory))
        let elapsed = ContinuousClock.now - start
        return Report(restoredTo: directory, source: target.description, segments: restored.count,
                      bytes: restored.reduce(0) { $0 + (bytesRestored[$1.header.index] ?? 0) }, treeSize: size, rootHash: root.hex,
                      checkpointSize: trusted.treeSize, vouchedSize: vouched, segmentsLeftOut: Set(leftOut).count, recordsLeftOut: recordsLeftOut,
                      ignored: unique(inventory.ignored), altered: unique(inventory.altered), policyFrom: policyFrom,
                      checkpointBeyond: beyond.map(\.checkpoint.treeSize).max(),
                      seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18,
                      keyringFrom: keyringFrom, shreddedNamespaces: shredded)
    }

    /// The checkpoint that the newest chunk of `segment` carries, if it is signed with the trusted
    /// key for this log (else noted as ignored): the largest tree the writer signed that the copy
    /// holds records of.
    private static func newestChunkCheckpoint(_ target: any MirrorTarget, segment: UInt64, verifier: NoteVerifier, origin: String,
                                              _ inventory: inout RestoreInventory) -> (checkpoint: Checkpoint, note: String, label: String)? {
        guard let listed = try? target.list(prefix: ActiveChunk.prefix(of: segment)),
              let newest = listed.compactMap({ ActiveChunk(objectName: $0.name) }).max(by: { $0.next < $1.next }) else { return nil }
        guard let bytes = try? target.get(newest.objectName), let (note, _) = ActiveChunk.decode(bytes),
              let checkpoint = try? Checkpoint(parsing: SignedNote.open(note, verifier: verifier)),
              checkpoint.origin == origin, checkpoint.treeSize == newest.next else {
            inventory.ignored.append("\(newest.objectName): a chunk whose checkpoint is not one of \(newest.next) records signed with the trusted key")
            return nil
        }
        return (checkpoint, note, newest.objectName)
    }

    /// An encrypted store's keyring, from its own copy into the restored directory, checked to
    /// open with the master key (wrong key, altered or another store's keyring: refused).
    /// - Returns: where it came from; nil for a store that is not encrypted.
    private static func restoreKeyring(_ fs: any FileSystem, _ keyring: (target: (any KeyringTarget)?, key: EncryptionKey?),
                                       layout: StoreLayout) throws -> String? {
        let config = try Store.readConfig(fs: fs, layout: layout)
        guard config.encryptionKey != nil else { return nil }
        guard let target = keyring.target, let key = keyring.key else {
            throw SteleError.mirror(.invalid("the store is encrypted: a restore needs its keyring copy (--keyring-from) and its master key (--encryption-key)"))
        }
        guard let bytes = try target.fetchKeyring() else { throw SteleError.mirror(.missing(name: target.description + " keyring")) }
        try fs.writeAtomically(bytes, to: layout.keyring, permissions: 0o600, directory: layout.root)
        _ = try Keyring(fs: fs, path: layout.keyring, storeID: config.storeID, master: key)
        return target.description
    }

    /// `notes` without repeats, in order.
    private static func unique(_ notes: [String]) -> [String] {
        var seen: Set<String> = []
        return notes.filter { seen.insert($0).inserted }
    }

    /// Writes `stele.conf` from the log's config records; for a store created before them, from
    /// the copy's file (whose UUID must be the segments'). A copy's file that disagrees with the
    /// log is noted as altered and not used. Returns where the policy came from.
    private static func writeConfig(_ fs: any FileSystem, _ target: any MirrorTarget, _ inventory: inout RestoreInventory,
                                    layout: StoreLayout, storeID: [UInt8]) throws -> String {
        // The oldest version that checks out, as for segments: the mirror writes it once, and a
        // later version is an overwrite.
        var copied: (StoreConfig, ObjectVersion)?
        for version in inventory.configs {
            guard let bytes = try? RestoreInventory.fetch(target, version),
                  let config = try? StoreConfig.decode(String(decoding: bytes, as: UTF8.self), path: version.label) else {
                inventory.altered.append("\(version.label): not a valid stele.conf with its recorded checksum")
                continue
            }
            if copied == nil {
                copied = (config, version)
            } else {
                inventory.ignored.append("\(version.label): a later version than the one read (objects are written once: an overwrite)")
            }
        }
        if let fromLog = try Store.configFromLog(at: layout.root, storeID: storeID) {
            if let (config, version) = copied {
                let differences = config.differences(from: fromLog)
                if !differences.isEmpty {
                    inventory.altered.append("\(version.label): disagrees with the log's config records (\(differences.joined(separator: "; "))); not used")
                }
            }
            try fs.writeAtomically(Array(fromLog.encoded.utf8), to: layout.config, permissions: 0o444, directory: layout.root)
            return "log"
        }
        guard let (config, version) = copied else { throw SteleError.mirror(.missing(name: StoreConfig.fileName)) }
        guard config.storeID == storeID else {
            throw SteleError.mirror(.altered(name: version.label, detail: "names store \(config.storeIDHex), the segments are store \(hexString(storeID))"))
        }
        try fs.writeAtomically(Array(config.encoded.utf8), to: layout.config, permissions: 0o444, directory: layout.root)
        return "the copy's stele.conf (the store predates config records in its log: run `stele migrate` after restoring)"
    }

    /// Objects fetched and checked ahead of the one being written (each holds a whole segment
    /// in memory until written).
    static let fetchAhead = 2

    /// Writes a restored file (synced later, all at once, by `syncFileSystem`), and starts its
    /// writeback so that the disk works while the next objects are fetched and checked.
    private static func write(_ fs: any FileSystem, _ bytes: [UInt8], to path: String) throws {
        let fd = try fs.open(path, .createNew(permissions: 0o444))
        defer { fs.close(fd) }
        try bytes.withUnsafeBytes { try fs.write(fd, $0, at: 0) }
        fs.startWriteback(fd, offset: 0, length: 0)
    }

    /// Removes `path` and everything under it through `fs`, so that each removal is a change the
    /// power-cut model sees; nothing at `path` is no error. Each path is first removed as it is
    /// (a symbolic link goes, never what it points to); only a directory that is not empty is
    /// listed, emptied and removed again. The read-only files (segments, `stele.conf`) need no
    /// `chmod`: unlinking asks for the directory's permissions, and restore makes those 0o755.
    static func removeTree(_ fs: any FileSystem, _ path: String) throws {
        do {
            try fs.remove(path)
        } catch SteleError.io(let error) where error.errno == ENOENT {
            return
        } catch SteleError.io(let error) where error.errno == ENOTEMPTY || error.errno == EEXIST {
            for name in try fs.listDirectory(path) { try removeTree(fs, path + "/" + name) }
            try fs.remove(path)
        }
    }
}
