import Foundation
import Logging
import Stele
import SteleNative

/// A warm standby: a store in another failure domain that follows a primary's off-host copy,
/// serves reads of what the copy proved, and becomes the writer of the same log when promoted
/// (docs/operations.md, "Standby and failover").
///
/// ``create(from:to:checkpoint:verifier:)`` builds it with a verified ``Restore``; each
/// ``catchUp()`` then installs the sealed segments the copy gained, in order, each one checked
/// before the store takes it in:
/// - the object's recorded SHA-256, a valid seal of this store, the next index and first
///   sequence, the link to the seal before (``RestoreInventory``'s checks);
/// - its records reproducing its seal's content digest and Merkle root from the standby's own
///   tree (the store checks that again as it installs);
/// - and a checkpoint in the copy, signed with the trusted key, whose root the standby's tree
///   reproduces at its size, covering the whole segment: a segment the chain alone vouches for
///   waits (anyone able to write to the copy could extend a chain, nobody without the key can
///   sign). So the store never holds, and its readers never see, a record the copy did not prove.
///
/// What stops the follow, as tampering (``MirrorError/tampered(_:)``, exit 3), never silently:
/// a segment that fails a check, a gap (a later segment without the next one), a segment already
/// installed that was removed or overwritten in the copy, a checkpoint signed with the trusted
/// key whose root the standby's log does not reproduce (a fork), and claims removed or forged.
/// A target that cannot be reached throws ``MirrorError/transport(_:)``: the next pass retries.
///
/// The standby holds its store's writer lock and is fenced (``SteleError/fenced(epoch:holder:)``
/// for every write) until ``promote(retention:)`` claims the next writer epoch in the copy:
/// its store then accepts writes at once, with no reopen, because it is already current.
///
/// Not thread-safe: one pass at a time (the CLI's `stele standby --follow` runs them in a loop).
/// An encrypted store cannot have a standby yet.
public final class Standby {
    /// What one pass did, and how far the standby trails the copy.
    public struct Report: Sendable, Codable, Equatable {
        /// Sealed segments installed in this pass, and their records.
        public var segmentsInstalled = 0
        public var recordsInstalled: UInt64 = 0
        /// Records the standby holds (all proven).
        public var records: UInt64 = 0
        /// Records in the copy's verified chain: the standby's, and those waiting for a checkpoint.
        public var recordsInCopy: UInt64 = 0
        /// The largest checkpoint signed with the trusted key that the standby's log reproduces.
        public var checkpointSize: UInt64 = 0
        /// Age in seconds of the newest record the standby holds (nil when it holds none):
        /// with a primary writing steadily, how far behind it the standby is.
        public var newestRecordAge: Double?
        /// The newest writer epoch in the copy and who holds it.
        public var epoch: UInt64?
        public var epochHolder: String?
        /// Records installed without a checkpoint that proves them (only by a promotion that
        /// accepts them: ``Standby/promote(retention:acceptingUnproven:)``).
        public var recordsUnproven: UInt64 = 0
        /// Objects passed over, each with why (checkpoints not signed with the trusted key).
        public var ignored: [String] = []
        /// This pass listed the whole copy (``Standby/fullCheckInterval``), not only what is new.
        public var checkedWholeCopy = false
        /// Object versions of segments and checkpoints the pass listed.
        public var versionsListed = 0
        /// Records in the copy the standby does not serve yet (no checkpoint proves them yet).
        public var recordsWaiting: UInt64 { recordsInCopy - min(recordsInCopy, records) }
    }

    /// The standby's store: read it freely; every write is refused until ``promote(retention:)``.
    public let store: Store
    public let directory: String
    public let target: any MirrorTarget
    private let verifier: NoteVerifier
    private let logger: Logger
    /// Checkpoint objects (name and version) already checked and kept, or found beyond the chain.
    private var checkedCheckpoints: Set<String> = []
    /// Signed checkpoints over records the copy does not hold yet, checked again each pass.
    private var aheadOfCopy: [String: (checkpoint: Checkpoint, note: String)] = [:]
    /// What the copy's listing said of each segment installed (its version id, or its ETag, or
    /// its size and time where a target keeps one version), so a later removal or overwrite is found.
    private var installedVersions: [String: String] = [:]
    /// How often a pass lists every version of every segment and checkpoint in the copy, to find
    /// an installed segment removed or overwritten since; the passes between list only the
    /// segments after the last one installed and the checkpoints after the newest listed, so that
    /// a pass costs what is new and not the size of a copy kept for years. Nil: every pass lists
    /// the whole copy. A pass that throws, and a promotion's last pass, check the whole copy.
    public var fullCheckInterval: Duration?
    /// When the last full check that found nothing began, and the newest checkpoint name listed.
    private var checkedWholeCopyAt: ContinuousClock.Instant?
    private var newestCheckpointListed = ""

    /// Builds a standby in `directory` (which must not exist) from the copy: a verified restore
    /// against `checkpoint` (see ``Restore``), then the `fenced` file that names the copy's
    /// newest writer epoch, so the standby refuses writes until promoted.
    /// - Returns: the restore's report.
    @discardableResult
    public static func create(from target: any MirrorTarget, to directory: String, checkpoint: String,
                              verifier: NoteVerifier) throws -> Restore.Report {
        let report = try Restore.run(from: target, to: directory, checkpoint: checkpoint, verifier: verifier)
        let config = try Store(path: directory, options: .init(readOnly: true))
        let storeID = config.config.storeID
        try config.close()
        let newest = try WriterEpoch.claims(in: target, storeID: storeID).last
        try Store.markFenced(at: directory, epoch: newest?.epoch ?? 0, holder: newest?.holder ?? "the writer of \(target.description)")
        return report
    }

    /// Opens the standby in `directory` (made by ``create(from:to:checkpoint:verifier:)``), to
    /// follow `target`, trusting checkpoints signed with `verifier`'s key. `checkpointSigner`: the
    /// key the store signs a checkpoint with at every seal once promoted (``Store/Options/checkpointSigner``),
    /// so that a standby of the promoted store can follow it in turn.
    /// - Throws: ``SteleError/invalidArgument(_:)`` for a store that is not a standby (no
    ///   `fenced` file) or is encrypted; ``SteleError/locked(path:)`` if another process has it.
    public init(directory: String, target: any MirrorTarget, verifier: NoteVerifier, checkpointSigner: NoteSigner? = nil,
                logger: Logger = Logger(label: "stele.standby", factory: { _ in SwiftLogNoOpLogHandler() })) throws {
        var options = Store.Options()
        options.standby = true
        options.checkpointSigner = checkpointSigner
        options.logger = logger
        let store = try Store(path: directory, options: options)
        guard store.config.encryptionKey == nil else {
            try? store.close()
            throw SteleError.invalidArgument("\(directory) is an encrypted store: a standby of an encrypted store is not supported yet")
        }
        self.store = store
        self.directory = directory
        self.target = target
        self.verifier = verifier
        var logger = logger
        logger[metadataKey: "stele.store"] = .string(directory)
        self.logger = logger
    }

    /// Closes the store (a standby not promoted stays fenced on disk).
    public func close() throws { try store.close() }

    /// One pass: installs every sealed segment of the copy that continues the standby's log and
    /// that a signed checkpoint proves, and keeps those checkpoints.
    /// - Throws: ``SteleError/mirror(_:)``: ``MirrorError/tampered(_:)`` for what the class
    ///   documentation lists (nothing unproven is installed); ``MirrorError/transport(_:)`` and
    ///   ``MirrorError/target(_:)`` when the copy cannot be read; ``SteleError`` for local I/O.
    public func catchUp() throws -> Report {
        try catchUp(acceptingUnproven: false)
    }

    /// A pass; `acceptingUnproven` (a promotion's last pass, when the operator says so) also
    /// installs the segments that continue the chain but that no checkpoint proves yet.
    private func catchUp(acceptingUnproven: Bool, wholeCopy: Bool = false) throws -> Report {
        guard store.currentFence != nil else {
            throw SteleError.invalidArgument("\(directory) was promoted: it is the writer now, and follows no copy")
        }
        let started = ContinuousClock.now
        let previous = checkedWholeCopyAt
        let full = wholeCopy || previous.map { last in fullCheckInterval.map { started - last >= $0 } ?? true } ?? true
        checkedWholeCopyAt = nil  // a pass that throws leaves the next one a full check
        var report = try pass(acceptingUnproven: acceptingUnproven, full: full)
        report.checkedWholeCopy = full
        checkedWholeCopyAt = full ? started : previous
        return report
    }

    private func pass(acceptingUnproven: Bool, full: Bool) throws -> Report {
        var report = Report()
        let storeID = store.config.storeID
        let claims = try WriterEpoch.claims(in: target, storeID: storeID)
        report.epoch = claims.last?.epoch
        report.epochHolder = claims.last?.holder
        let last = try store.lastSeal()
        var inventory: RestoreInventory
        if full {
            inventory = try RestoreInventory(target)
            try checkInstalled(inventory)
            newestCheckpointListed = ""
        } else {
            // From the last segment installed on (those listed before and still waiting for a
            // checkpoint are listed again), and the checkpoints not listed yet.
            inventory = try RestoreInventory(target, segmentsAfter: last.map { "segments/" + SegmentFiles.name($0.header.index) } ?? "",
                                             checkpointsAfter: newestCheckpointListed)
        }
        report.versionsListed = inventory.versionsListed
        // Only well-formed checkpoint names are in `inventory.checkpoints`: a forged name that
        // sorts after them all cannot move the cursor past the checkpoints still to come.
        let newestListed = inventory.checkpoints.map(\.name).max() ?? ""

        // The chain in the copy past the standby's last seal.
        var previous = last.map { ChosenSegment(bytes: [], header: $0.header, footer: $0.footer, label: directory) }
        let local = last.map { Frontier(size: $0.footer.treeSize, hashes: $0.footer.frontier) } ?? nil
        var frontier = local ?? Frontier()
        var pending: [(segment: ChosenSegment, version: ObjectVersion, leaves: [Digest])] = []
        var index = (last?.header.index ?? 0) + 1
        while let versions = inventory.segments[index], let first = versions.first {
            let name = "segments/" + SegmentFiles.name(index)
            // The writer's mirror writes each segment once: a second version, or one hidden by a
            // delete marker, was not its doing.
            guard versions.count == 1, !inventory.removed.contains(name) else {
                throw SteleError.mirror(.tampered(["\(name): \(versions.count) versions, or a delete marker, in the copy (written once by the mirror)"]))
            }
            guard let segment = inventory.choose(index: index, after: previous, frontier: frontier, storeID: storeID, target, prefetched: nil) else {
                throw SteleError.mirror(.tampered(inventory.altered.isEmpty ? ["segments/\(SegmentFiles.name(index)): no version of it continues the chain"]
                                                      : inventory.altered))
            }
            let (_, leaves) = try SegmentBytes.leafHashes(segment.bytes, name: segment.label)
            for leaf in leaves { frontier.append(leaf) }
            pending.append((segment, first, leaves))
            previous = segment
            index += 1
        }
        if let beyond = inventory.segments.keys.filter({ $0 > index }).min() {
            throw SteleError.mirror(.tampered(["segments/\(SegmentFiles.name(index)): missing from the copy, which holds segments/\(SegmentFiles.name(beyond)) (a gap)"]))
        }
        // Chunks of the segment after the chain: records the writer made durable since its last
        // seal. From the standby's own end when no sealed segment is pending (its active segment
        // may hold some of them already), else from the chain's.
        let base = pending.isEmpty ? try store.treeFrontier() : (local ?? Frontier())
        let chunks = try readChunks(of: index, from: pending.isEmpty ? base.size : frontier.size, inventory: &inventory)
        report.recordsInCopy = chunks.last?.next ?? frontier.size
        let extensionLeaves = (pending.isEmpty ? [] : pending.map(\.leaves)) + chunks.map(\.leaves)

        // Checkpoints signed with the trusted key: each one the standby's tree, or the pending
        // segments', must reproduce; the largest of them decides how far the standby goes.
        let origin = store.config.origin
        inventory.checkpoints = inventory.checkpoints.filter { !checkedCheckpoints.contains($0.label) }
        var signed = aheadOfCopy
        for found in try inventory.signedCheckpoints(target, verifier: verifier, origin: origin) {
            signed[found.label] = (found.checkpoint, found.note)
        }
        newestCheckpointListed = max(newestCheckpointListed, newestListed)  // each one read
        for chunk in chunks { signed[chunk.label + " (its checkpoint)"] = (chunk.checkpoint, chunk.note) }
        report.ignored = inventory.ignored
        var held = store.recordCount
        var proven = held
        var toKeep: [(UInt64, Digest, String, String)] = []
        aheadOfCopy = [:]
        for (label, (checkpoint, note)) in signed.sorted(by: { $0.value.checkpoint.treeSize < $1.value.checkpoint.treeSize }) {
            let size = checkpoint.treeSize
            if size > report.recordsInCopy {
                aheadOfCopy[label] = (checkpoint, note)  // its segments are not in the copy yet
                continue
            }
            let root = size <= held ? try store.rootHash(treeSize: size) : Self.root(at: size, from: base, extensionLeaves)
            guard root == checkpoint.root else {
                throw SteleError.mirror(.tampered(["\(label): signed with the trusted key, but the log has root \(root.hex) at size \(size): a fork, "
                    + "or segments forged in the copy"]))
            }
            proven = max(proven, size)
            toKeep.append((size, checkpoint.root, note, label))
        }

        if acceptingUnproven && report.recordsInCopy > proven {
            logger.warning("installing segments no checkpoint proves (the promotion accepts them)",
                           metadata: ["stele.from": "\(proven)", "stele.records": "\(report.recordsInCopy)"])
            report.recordsUnproven = report.recordsInCopy - proven
            proven = report.recordsInCopy
        }
        for (segment, version, _) in pending where segment.footer.treeSize <= proven {
            do {
                held = try store.installSealedSegment(segment.bytes, name: segment.label)
            } catch SteleError.corruption(let damage) {
                // Found by the store's own checks (a record out of place, a stub): the copy's doing.
                throw SteleError.mirror(.tampered(["\(segment.label): \(damage.detail)"]))
            }
            installedVersions[version.name] = Self.fingerprint(version)
            report.segmentsInstalled += 1
            report.recordsInstalled += segment.footer.recordCount
            logger.info("segment installed", metadata: ["stele.segment": "\(segment.header.index)", "stele.records": "\(held)"])
        }
        // Then the chunks' records, as far as a checkpoint proves them, once every pending
        // segment is in (they follow the last).
        if held == (pending.last?.segment.footer.treeSize ?? held) {
            for chunk in chunks where chunk.next > held && chunk.first <= held {
                let end = min(proven, chunk.next)
                guard end > held, let from = chunk.offsets[held], let to = end == chunk.next ? chunk.bytes.count : chunk.offsets[end] else { break }
                let before = held
                do {
                    held = try store.installActiveRecords(Array(chunk.bytes[from ..< to]), segment: index, name: chunk.label)
                } catch SteleError.corruption(let damage) {
                    throw SteleError.mirror(.tampered(["\(chunk.label): \(damage.detail)"]))
                }
                report.recordsInstalled += held - before
                if end < chunk.next { break }
            }
        }
        for (size, root, note, label) in toKeep {
            if size <= held {
                try store.keepStandbyCheckpoint(note, size: size, root: root)
                checkedCheckpoints.insert(label)
                report.checkpointSize = max(report.checkpointSize, size)
            } else {
                aheadOfCopy[label] = (Checkpoint(origin: origin, treeSize: size, root: root), note)  // proven, its segment not whole
            }
        }
        report.checkpointSize = max(report.checkpointSize, try latestKeptSize())
        report.records = held
        if held > 0 {
            let newest = try store.timestamp(at: held - 1)
            report.newestRecordAge = max(0, Date().timeIntervalSince1970 - Double(newest) / 1e9)
        }
        return report
    }

    /// Makes the standby the writer: a last pass, then the next writer epoch claimed in the copy
    /// (``Promotion``), then its fence lifted. On return ``store`` accepts writes; the writer it
    /// replaces is fenced at its mirror's next pass. Mirror the store to the same copy.
    ///
    /// The copy may hold sealed segments that no checkpoint proves yet (the writer died between
    /// uploading a segment and the checkpoint its seal signed). A promotion past them would fork
    /// the log, and one that leaves them out cannot extend it (their names are taken), so it is
    /// refused unless `acceptingUnproven`: then they are installed on the strength of the hash
    /// chain, the seal and the recorded checksums alone (which anyone able to write to the copy
    /// could forge), and the report of the last pass is logged. An operator's decision.
    /// - Throws: ``MirrorError/fenced(epoch:holder:)`` if another store claimed the epoch first,
    ///   or was promoted after this standby was built (the copy's newest claim is newer than the
    ///   epoch the standby follows: rebuild it from the copy to follow that writer);
    ///   ``MirrorError/invalid(_:)`` if the copy holds segments no checkpoint proves and
    ///   `acceptingUnproven` is false; as ``catchUp()``.
    @discardableResult
    public func promote(retention: ObjectRetention? = nil, acceptingUnproven: Bool = false) throws -> WriterEpoch {
        let followed = store.currentFence?.epoch ?? 0
        if let newest = try WriterEpoch.claims(in: target, storeID: store.config.storeID).last, newest.epoch > followed, followed > 0 {
            throw SteleError.mirror(.fenced(epoch: newest.epoch, holder: newest.holder))
        }
        let last = try catchUp(acceptingUnproven: acceptingUnproven, wholeCopy: true)
        if last.recordsWaiting > 0 {
            throw SteleError.mirror(.invalid("\(target.description) holds \(last.recordsWaiting) records after the standby's \(last.records) that no "
                + "checkpoint proves: promoting without them would fork the log; promote accepting them (an operator's decision), or wait for their checkpoint"))
        }
        let claim = try Promotion.claim(storePath: directory, storeID: store.config.storeID, records: store.recordCount,
                                        sealedSegments: try store.lastSeal()?.header.index ?? 0, target: target, retention: retention)
        try store.liftStandbyFence()
        logger.notice("promoted: the standby is the writer", metadata: ["stele.epoch": "\(claim.epoch)", "stele.records": "\(claim.firstSequence)"])
        return claim
    }

    /// Records of one chunk read from the copy: its bytes, where each record's frame begins, and
    /// the leaf hashes of the records from where the standby needs them.
    private struct ReadChunk {
        var label: String
        /// The writer's checkpoint of `next` records that the chunk carries.
        var checkpoint: Checkpoint
        var note: String
        var first: UInt64
        var next: UInt64
        var bytes: [UInt8]
        var offsets: [UInt64: Int]
        var leaves: [Digest]
    }

    /// Reads the chunks of segment `index` that hold records from `start` on, in order and
    /// contiguous. A chunk removed, written twice, unreadable, or missing before a later one is
    /// tampering; chunks wholly before `start` are passed over (installed, or superseded).
    private func readChunks(of index: UInt64, from start: UInt64, inventory: inout RestoreInventory) throws -> [ReadChunk] {
        var byName: [String: [ObjectVersion]] = [:]
        for version in try target.versions(prefix: ActiveChunk.prefix(of: index)) { byName[version.name, default: []].append(version) }
        var found: [(ActiveChunk, ObjectVersion)] = []
        for (name, versions) in byName {
            guard let chunk = ActiveChunk(objectName: name) else { continue }
            guard chunk.next > start else { continue }
            // Only a removal's mark, no version: in a directory copy, also an upload in flight (its
            // checksum file goes first). Not there yet; a later chunk after it is a gap, below.
            if versions.allSatisfy(\.isDeleteMarker) { continue }
            guard versions.count == 1, let version = versions.first, !version.isDeleteMarker else {
                throw SteleError.mirror(.tampered(["\(name): \(versions.count) versions, or a delete marker, in the copy (written once by the mirror)"]))
            }
            found.append((chunk, version))
        }
        var read: [ReadChunk] = []
        var cursor = start
        for (chunk, version) in found.sorted(by: { $0.0.first < $1.0.first }) {
            guard chunk.first <= cursor else {
                throw SteleError.mirror(.tampered(["\(ActiveChunk.prefix(of: index)): records \(cursor)..<\(chunk.first) missing before \(version.name) (a gap)"]))
            }
            guard chunk.next > cursor else { continue }
            let bytes = try RestoreInventory.fetch(target, version)
            guard let (note, framesStart) = ActiveChunk.decode(bytes),
                  let checkpoint = try? Checkpoint(parsing: SignedNote.open(note, verifier: verifier)),
                  checkpoint.origin == store.config.origin, checkpoint.treeSize == chunk.next else {
                throw SteleError.mirror(.tampered(["\(version.label): does not begin with a checkpoint of its \(chunk.next) records signed with the trusted key"]))
            }
            var offsets: [UInt64: Int] = [:]
            var leaves: [Digest] = []
            var expected = chunk.first
            do {
                try ByteView.of(bytes) { view in
                    try SegmentLog.forEachFrame(view, from: framesStart, to: bytes.count, path: version.label) { frame, view in
                        guard frame.sequence == expected, let leaf = frame.leafHash(in: view) else {
                            throw SteleError.corruption(Corruption(file: version.label, offset: frame.offset, detail: "record \(frame.sequence) where \(expected) belongs"))
                        }
                        expected += 1
                        guard frame.sequence >= cursor else { return }
                        offsets[frame.sequence] = frame.offset
                        leaves.append(leaf)
                    }
                }
            } catch SteleError.corruption(let damage) {
                throw SteleError.mirror(.tampered(["\(version.label): \(damage.detail)"]))
            }
            guard expected == chunk.next else {
                throw SteleError.mirror(.tampered(["\(version.label): holds records \(chunk.first)..<\(expected), its name says ..<\(chunk.next)"]))
            }
            read.append(ReadChunk(label: version.label, checkpoint: checkpoint, note: note, first: cursor, next: chunk.next, bytes: bytes,
                                  offsets: offsets, leaves: leaves))
            cursor = chunk.next
        }
        return read
    }

    /// Checks that the segments this standby installed are still in the copy as it read them.
    private func checkInstalled(_ inventory: RestoreInventory) throws {
        // What the standby holds from before it followed (its restore) is taken as first listed.
        let held = try store.lastSeal()?.header.index ?? 0
        for (index, versions) in inventory.segments where index <= held && versions.count == 1 {
            let name = "segments/" + SegmentFiles.name(index)
            if installedVersions[name] == nil, !inventory.removed.contains(name) { installedVersions[name] = Self.fingerprint(versions[0]) }
        }
        var findings: [String] = []
        for (name, versionID) in installedVersions.sorted(by: { $0.key < $1.key }) {
            guard let index = SegmentFiles.index(of: String(name.dropFirst("segments/".count))) else { continue }
            let versions = inventory.segments[index] ?? []
            if inventory.removed.contains(name) || !versions.contains(where: { Self.fingerprint($0) == versionID }) {
                findings.append("\(name): removed from the copy after the standby installed it")
            } else if versions.count > 1 {
                findings.append("\(name): \(versions.count) versions (overwritten after the standby installed it)")
            }
        }
        if !findings.isEmpty { throw SteleError.mirror(.tampered(findings)) }
    }

    private static func fingerprint(_ version: ObjectVersion) -> String {
        version.versionID ?? version.etag ?? "\(version.size)@\(version.lastModified)"
    }

    /// The tree size of the checkpoint the standby keeps as its latest (0 for none).
    private func latestKeptSize() throws -> UInt64 {
        guard let note = try store.latestCheckpoint(),
              let checkpoint = try? Checkpoint(parsing: SignedNote.open(note, verifier: verifier)) else { return 0 }
        return checkpoint.treeSize
    }

    /// The root at `size` of the tree `base` extended by `leaves`.
    private static func root(at size: UInt64, from base: Frontier, _ leaves: [[Digest]]) -> Digest {
        var tree = base
        for segment in leaves {
            for leaf in segment {
                if tree.size == size { return tree.root }
                tree.append(leaf)
            }
        }
        return tree.root
    }
}
