import CoreMetrics
import Foundation
import Stele
import SteleNative

/// Copies a store's sealed history to a ``MirrorTarget``: the config, every sealed segment and
/// every checkpoint that covers only mirrored records, each object written once with retention.
///
/// Safe beside a live writer: it opens the store read-only at each pass (or, made with
/// ``init(store:target:options:)`` in the writer's process, reads the writer's own `Store`, with
/// no open to pay) and copies only the segments that were sealed when the pass began (never the
/// active one, whose file the writer truncates at its seal), each verified frame by frame first. Checkpoint history files are written once. A purge
/// may later rewrite a copied segment with redaction stubs: the mirror recognises that rewrite
/// (same seal hash, every frame equal or a stub of the original's leaf hash) and keeps the copy.
/// Idempotent and resumable: an object already in the target is verified by its recorded
/// SHA-256 (once per `Mirror` instance) and never sent again; a restarted mirror continues with
/// the first object missing. The active segment is not copied: the recovery point is the last
/// seal, so have the writer seal on a timer (`Store.Options.sealInterval`) to bound it.
///
/// Tiles (C2SP `tile/L/N`, and the partial tiles at each checkpointed size) are copied too,
/// rebuilt here from the leaf hashes of the verified segments (checked against each footer's
/// Merkle root), so that proofs can be served from the copy; a restore does not use them (it
/// rebuilds its own from the records). A new `Mirror` reads every sealed segment once to do so.
/// Tiles are derived, and sent after a pass's records; ``Options/tilesPerPass`` bounds them so
/// that a seal's few hundred tiles do not hold up the records of the passes after it.
/// Each pass first checks the copy for objects removed, overwritten or forged; a follower lists
/// the whole copy for that only every ``Options/fullCheckInterval``, and what is new in between.
/// Not thread-safe: one pass at a time (it remembers what it verified between passes).
public final class Mirror {
    /// Retention for objects whose records carry no lock of their own.
    public struct Options: Sendable {
        /// Mode of the object lock when the records imply none.
        public var defaultMode: ObjectRetention.Mode = .compliance
        /// Every object is kept at least this long after it is uploaded.
        public var minimumRetention: Duration = .seconds(30 * 86_400)
        /// Where each pass's lag goes (``MirrorMetrics``); nil: the process's bootstrapped backend.
        public var metricsFactory: (any MetricsFactory)?
        /// Also ship the active segment's records between seals, as chunks (``ActiveChunk``), each
        /// pass: those that the writer's latest published checkpoint covers (durable, and provable by a
        /// standby). Have the writer sign checkpoints often (`StoreService`'s `checkpoints`): the
        /// recovery point becomes that interval plus a pass, not a seal.
        public var shipsActiveRecords = false
        /// Where an encrypted store's keyring is copied (required for one): a target of its own,
        /// without Object Lock, so that a shred reaches the copy (see ``KeyringTarget``).
        public var keyringTarget: (any KeyringTarget)?
        /// At most this many tiles sent per pass, after the pass's records (nil: all of them, so
        /// that one pass leaves a complete copy). A follower that ships records between seals
        /// sets a bound: a seal completes about 4 tiles per 1,000 records, and sent in one pass
        /// they would delay the next chunk by as long. The rest wait for the next passes
        /// (``Report/tilesWaiting``); the records never wait for them.
        public var tilesPerPass: Int?
        /// How often a pass lists every version of every segment and checkpoint in the copy, to
        /// find one removed or overwritten since it was written. The passes between list only the
        /// names after the newest they have seen, so that a follower's pass costs what is new and
        /// not the size of a copy kept for years (about 4,000 objects a day at 10,000 records/s).
        /// Nil: every pass lists the whole copy. A pass that finds something makes the next one
        /// a full check as well.
        public var fullCheckInterval: Duration?
        public init() {}
    }

    /// What a pass did, and how far the copy trails the store.
    public struct Report: Sendable, Equatable {
        /// Objects uploaded in this pass.
        public var uploaded: [String] = []
        /// Bytes uploaded in this pass.
        public var bytesUploaded = 0
        /// Objects found already in the target and verified by checksum in this pass.
        public var verified = 0
        /// Segments whose copy is the original and the local file a purge's rewrite of it
        /// (redaction stubs, same seal hash): the copy keeps the purged payloads until its own
        /// retention ends.
        public var redactedLocally = 0
        /// Records whose segment is in the target (sequence numbers `0 ..< n`).
        public var recordsOffHost: UInt64 = 0
        /// Records in the store.
        public var recordsInStore: UInt64 = 0
        /// Largest tree size of a checkpoint in the target (in `checkpoints/`, or carried by a chunk).
        public var checkpointOffHost: UInt64?
        /// Age of the oldest record not yet off-host, in seconds (nil when none is waiting).
        public var lagSeconds: Double?
        /// The keyring copy was replaced in this pass (a new namespace's key, or a shred).
        public var keyringCopied = false
        /// Tiles of records already off-host that are still to be sent (``Options/tilesPerPass``).
        public var tilesWaiting = 0
        /// This pass listed the whole copy (``Options/fullCheckInterval``), not only what is new.
        public var checkedWholeCopy = false
        /// Object versions the pass's check of the copy listed.
        public var versionsListed = 0
        /// Records not yet off-host: the recovery point, in records.
        public var lagRecords: UInt64 { recordsInStore - min(recordsInStore, recordsOffHost) }
    }

    public let storePath: String
    public let target: any MirrorTarget
    public let options: Options
    /// What this mirror wrote or verified in the copy (read by the copy check too).
    var known: Set<String> = []
    /// What the copy's listing said of each known object the first time it was listed after this
    /// mirror wrote or verified it (the ETag S3 computed, or a file's size and modification time):
    /// a later pass that lists something else has found the object changed.
    var fingerprints: [String: String] = [:]
    /// Tiles rebuilt from the leaf hashes of every segment copied so far (see ``TileAccumulator``).
    private var tiles = TileAccumulator()
    /// Tiles completed but not yet sent, oldest first.
    private var tilesToSend: [TileAccumulator.Tile] = []
    /// The writer's store, when the mirror runs in its process; nil: each pass opens the store.
    let liveStore: Store?
    /// How far the copy's chunks of the active segment reach (its number, the sequence after
    /// them), as the last pass found or left them.
    var chunksReach: (segment: UInt64, next: UInt64)?
    /// With chunks: the sealed records through which `checkpoints/` has its seal checkpoints, and
    /// the largest checkpoint this mirror copied or found there (see `copySealCheckpoints`).
    private var checkpointsChosenThrough: UInt64 = 0
    var newestCheckpointCopied: UInt64 = 0
    /// The copy's segments and checkpoints as the last full check listed them, with what the
    /// passes since found after them.
    var copyInView = CopyInView()
    /// How many of the store's sealed segments, from the first, are known to be in the copy
    /// with their tiles.
    private var segmentsDone = 0
    /// The writer epoch claim this store held at the start of the pass (see `checkEpoch`).
    var heldClaim: WriterEpoch?
    /// SHA-256 of the keyring last known to be in the keyring target.
    private var keyringInCopy: [UInt8]?
    private let fs = PosixFileSystem()

    private let metrics: MirrorMetrics

    /// A mirror of the store at `storePath`, which each pass opens read-only (beside a writer in
    /// another process): the open reads and hashes the whole active segment.
    public init(storePath: String, target: any MirrorTarget, options: Options = Options()) {
        self.storePath = storePath
        self.target = target
        self.options = options
        liveStore = nil
        metrics = MirrorMetrics(store: storePath, factory: options.metricsFactory ?? MetricsSystem.factory)
    }

    /// A mirror of `store`, open for writing in this process: each pass reads it as it stands,
    /// with no open of its own, so that a pass costs what it copies and not the size of the
    /// active segment. The store must outlive the mirror's passes.
    public init(store: Store, target: any MirrorTarget, options: Options = Options()) {
        storePath = store.path
        self.target = target
        self.options = options
        liveStore = store
        metrics = MirrorMetrics(store: storePath, factory: options.metricsFactory ?? MetricsSystem.factory)
    }

    /// One pass: uploads what is missing, in order (config, segments, checkpoints).
    /// - Throws: ``SteleError/mirror(_:)`` (``MirrorError``) (target unreachable or refusing, an object in the target that
    ///   differs from the local one, a local file that vanished), ``SteleError`` (the store
    ///   cannot be read, or a sealed segment does not verify: nothing damaged is copied).
    /// - Cost: reads, verifies and hashes every segment not yet known to be in the target.
    public func runOnce() throws -> Report {
        do {
            let report = try pass()
            metrics.record(report)
            return report
        } catch {
            metrics.failedPasses.increment()
            throw error
        }
    }

    private func pass() throws -> Report {
        var report = Report()
        // Records by sequence only: a mirror reads no key, and a key index of the whole log,
        // rebuilt at every pass, would be most of its cost.
        var readOnly = Store.Options(readOnly: true)
        readOnly.keyIndex = false
        // The writer's published checkpoint, read before the open: its records are durable, so the
        // open sees them all (read after, it would mostly be ahead of the open, the writer signing
        // several a second, and no chunk would go).
        let publishedBeforeOpen = liveStore == nil && options.shipsActiveRecords
            ? try fs.readWholeFile(StoreLayout(root: storePath).checkpoints + "/checkpoint", limit: SignedNote.maxSize) : nil
        let store = try liveStore ?? Store(path: storePath, options: readOnly)
        defer { if liveStore == nil { try? store.close() } }
        let layout = StoreLayout(root: storePath)
        let floor = retention(RetentionHorizon())
        let history = layout.checkpoints + "/history"
        // Nothing goes to a copy that another store now extends (the keyring copy neither).
        try checkEpoch(store, floor: floor)
        let sealed = try store.sealedSegments()
        try checkCopy(sealed: sealed, store: store, &report)
        // Records in view before the keyring is copied: none shipped is under a key the copy lacks.
        let recordsInView = store.recordCount
        if store.config.encryptionKey != nil { try copyKeyring(layout, &report) }
        // A store's identity and governance key are records in its log, which a restore reads; a
        // store created before them has only its config file to give.
        if !store.recordsItsConfig && !known.contains(StoreConfig.fileName) {
            try send(StoreConfig.fileName, try read(layout.config), retention: floor, label: nil, &report)
        }
        // The sealed segments of the store as opened for this pass: never the active one (a live
        // writer may truncate it), never one sealed after the open (its records are not in view).
        // The segments before `segmentsDone` are in the copy with their tiles (the check above
        // looked at the copy): passed over without a look, so that a pass costs what is new.
        let done = min(segmentsDone, sealed.count)
        if done > 0 { report.recordsOffHost = sealed[done - 1].records.upperBound + 1 }
        for (position, segment) in sealed.enumerated().dropFirst(done) {
            let name = "segments/" + SegmentFiles.name(UInt64(position) + 1)
            let needsCopy = !known.contains(name), needsTiles = tiles.frontier.size <= segment.records.upperBound
            if needsCopy || needsTiles {
                // One read and one verification (every frame's XXH3) serve the copy and the tiles:
                // nothing damaged is locked away off-host.
                let bytes = try read(segment.path)
                let (footer, leaves) = try SegmentBytes.leafHashes(bytes, name: segment.path)
                var uploaded = false
                if needsCopy {
                    try checkStillTheWriter(store)
                    let horizon = try store.retentionHorizon(segment.records)
                    try send(name, bytes, retention: retention(horizon), label: "seal:" + segment.sealHash.hex, &report)
                    uploaded = report.uploaded.last == name
                }
                if needsTiles {
                    let completed = try accumulateTiles(footer, leaves, path: segment.path, history: history)
                    // A new seal's tiles wait for the pass's records; those of a segment already in
                    // the copy (a mirror rebuilding its tiles after a start) go now, so that the
                    // queue holds one pass's seals, never the whole log's tiles.
                    if uploaded { tilesToSend += completed } else { try send(tiles: completed, &report) }
                }
            }
            report.recordsOffHost = segment.records.upperBound + 1
            if position == segmentsDone, known.contains(name), tiles.frontier.size > segment.records.upperBound { segmentsDone += 1 }
        }
        if options.shipsActiveRecords {
            let sealedEnd = report.recordsOffHost
            // The store's published checkpoint, if this pass sees its records.
            var latest: (size: UInt64, note: String)?
            let published = try liveStore == nil ? publishedBeforeOpen.map { String(decoding: $0, as: UTF8.self) } : store.latestCheckpoint()
            if let note = published, let size = try? Checkpoint(parsing: SignedNote.split(note).text).treeSize, size <= recordsInView {
                latest = (size, note)
                try shipActiveRecords(store, segment: UInt64(sealed.count) + 1, checkpoint: (size, note), &report)
            }
            try copySealCheckpoints(sealed, sealedEnd: sealedEnd, latest: latest, history: history, floor: floor, &report)
        } else {
            for name in (try? fs.listDirectory(history))?.sorted() ?? [] {
                guard let size = UInt64(name), size <= report.recordsOffHost else { continue }
                if !known.contains("checkpoints/" + name) {
                    try send("checkpoints/" + name, try read(history + "/" + name), retention: floor, label: nil, &report)
                }
                report.checkpointOffHost = max(report.checkpointOffHost ?? 0, size)
            }
        }
        // Derived from records already off-host: after them, so that a seal's tiles delay them little.
        try sendTiles(&report)
        report.recordsInStore = store.recordCount
        if report.recordsOffHost < report.recordsInStore {
            let waiting = try store.timestamp(at: report.recordsOffHost)
            let now = Int64(Date().timeIntervalSince1970 * 1e9)
            report.lagSeconds = max(0, Double(now) / 1e9 - Double(waiting) / 1e9)
        }
        return report
    }

    /// With chunks, which carry each checkpoint the mirror ships, `checkpoints/` gets two a
    /// segment: for each sealed segment, the newest checkpoint at or before its end (the one its
    /// seal signed, if the writer signs at seals: what proves the segment whole to a restore),
    /// and for the newest seal, the first published checkpoint at or past its end once its
    /// records are in the copy (what proves that segment whole to a standby, and to a restore the
    /// evidence of what the writer signed). The writer may sign several a second: this way the
    /// copy's listing, which every mirror, standby and restore pass reads, grows with segments,
    /// not with time. The history directory is read once per new seal, not at every pass.
    private func copySealCheckpoints(_ sealed: [SealedSegmentInfo], sealedEnd: UInt64, latest: (size: UInt64, note: String)?,
                                     history: String, floor: ObjectRetention, _ report: inout Report) throws {
        if sealedEnd > checkpointsChosenThrough {
            let sizes = ((try? fs.listDirectory(history)) ?? []).compactMap { $0.count == 20 ? UInt64($0) : nil }.sorted()
            for segment in sealed where segment.records.upperBound + 1 > checkpointsChosenThrough {
                let end = segment.records.upperBound + 1
                // The newest at or before the segment's end, if it is inside the segment.
                let newest = sizes.last { $0 <= end }
                guard let newest, newest > segment.records.lowerBound else { continue }
                try sendCheckpoint(newest, history: history, floor: floor, &report)
            }
            checkpointsChosenThrough = sealedEnd
        }
        // Until the copy has one at or past the newest seal's end: the store's published one, once
        // its records are off-host (a checkpoint signed after the seal, or a chunk's).
        if newestCheckpointCopied < sealedEnd, let latest, latest.size >= sealedEnd, latest.size <= report.recordsOffHost {
            let name = "checkpoints/" + Self.checkpointName(latest.size)
            if !known.contains(name) { try send(name, Array(latest.note.utf8), retention: floor, label: nil, &report) }
            newestCheckpointCopied = latest.size
        }
        report.checkpointOffHost = [newestCheckpointCopied, chunksReach.map(\.next) ?? 0].max().flatMap { $0 > 0 ? $0 : nil }
    }

    private func sendCheckpoint(_ size: UInt64, history: String, floor: ObjectRetention, _ report: inout Report) throws {
        let name = Self.checkpointName(size)
        if !known.contains("checkpoints/" + name) {
            // A chunk found in the copy may carry a checkpoint this store no longer has (a
            // restored store's history starts at its restore): its chunk keeps it.
            guard let bytes = try fs.readWholeFile(history + "/" + name, limit: SignedNote.maxSize) else { return }
            try send("checkpoints/" + name, bytes, retention: floor, label: nil, &report)
        }
        newestCheckpointCopied = max(newestCheckpointCopied, size)
    }

    /// A tree size as checkpoint files and objects are named: 20 digits.
    static func checkpointName(_ size: UInt64) -> String {
        let digits = String(size)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits
    }

    /// The tree size an object name `checkpoints/<20 digits>` gives, or nil for any other name
    /// (one that sorts after every checkpoint's, say `checkpoints/9`, is not a checkpoint).
    static func checkpointSize(objectName name: String) -> UInt64? {
        guard name.hasPrefix("checkpoints/") else { return nil }
        let digits = name.utf8.dropFirst("checkpoints/".utf8.count)
        guard digits.count == 20, digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        return UInt64(String(decoding: digits, as: UTF8.self))
    }

    /// Ships the active segment's records that are durable and not yet in the copy, as one chunk.
    private func shipActiveRecords(_ store: Store, segment: UInt64, checkpoint: (size: UInt64, note: String), _ report: inout Report) throws {
        let from = chunksReach.flatMap { $0.segment == segment ? $0.next : nil } ?? report.recordsOffHost
        // The records up to the writer's newest checkpoint, with it: durable (a checkpoint is
        // signed over synced records only), and provable by a standby from the chunk alone.
        guard let active = try store.activeRecords(from: max(from, report.recordsOffHost), through: checkpoint.size),
              active.segment == segment, active.next == checkpoint.size else {
            if let reach = chunksReach, reach.segment == segment { report.recordsOffHost = max(report.recordsOffHost, reach.next) }
            return
        }
        let first = max(from, report.recordsOffHost)
        let chunk = ActiveChunk(segment: segment, first: first, next: active.next)
        let horizon = try store.retentionHorizon(first ... active.next - 1)
        try checkStillTheWriter(store)
        try send(chunk.objectName, ActiveChunk.encode(note: checkpoint.note, frames: active.bytes), retention: retention(horizon), label: nil, &report)
        chunksReach = (segment, active.next)
        report.recordsOffHost = active.next
    }

    /// Appends the segment's leaf hashes to the tile accumulator, checks they reproduce the
    /// Merkle root in its footer, and returns the full tiles they complete; at a size some signed
    /// checkpoint has, also the partial tiles a client of that checkpoint needs.
    private func accumulateTiles(_ footer: SegmentFooter, _ leaves: [Digest], path: String, history: String) throws -> [TileAccumulator.Tile] {
        guard tiles.frontier.size == footer.firstSequence else {
            throw SteleError.mirror(.invalid("tiles: segment \(path) starts at \(footer.firstSequence), tiles are at \(tiles.frontier.size)"))
        }
        var completed: [TileAccumulator.Tile] = []
        for leaf in leaves { completed += tiles.append(leaf) }
        guard tiles.frontier.size == footer.treeSize, tiles.frontier.root == footer.treeRoot else {
            throw SteleError.mirror(.altered(name: path, detail: "its records do not reproduce the Merkle root in its footer"))
        }
        if try fs.status(history + "/" + Self.checkpointName(footer.treeSize)) != nil { completed += tiles.partialTiles }
        return completed
    }

    private func send(tiles: [TileAccumulator.Tile], _ report: inout Report) throws {
        let floor = retention(RetentionHorizon())
        for tile in tiles where !known.contains("tiles/" + tile.path) {
            try send("tiles/" + tile.path, tile.bytes, retention: floor, label: nil, &report)
        }
    }

    /// Sends every tile still waiting (``Report/tilesWaiting``), whatever ``Options/tilesPerPass``
    /// says: for a follower's last pass, so that it leaves the copy's tiles complete.
    /// - Returns: how many were sent or found there.
    @discardableResult
    public func sendWaitingTiles() throws -> Int {
        var report = Report()
        let waiting = tilesToSend
        try send(tiles: waiting, &report)
        tilesToSend.removeAll()
        return waiting.count
    }

    /// Sends the oldest waiting tiles, up to ``Options/tilesPerPass``.
    private func sendTiles(_ report: inout Report) throws {
        let floor = retention(RetentionHorizon())
        var sent = 0
        while sent < tilesToSend.count, options.tilesPerPass.map({ sent < $0 }) ?? true {
            let tile = tilesToSend[sent]
            if !known.contains("tiles/" + tile.path) { try send("tiles/" + tile.path, tile.bytes, retention: floor, label: nil, &report) }
            sent += 1
        }
        tilesToSend.removeFirst(sent)
        report.tilesWaiting = tilesToSend.count
    }

    /// The object lock for a segment: compliance if any of its versions is under a compliance
    /// lock (or the default mode says so), until the latest lock expires but never sooner than
    /// the minimum; a legal hold on any version puts one on the object.
    private func retention(_ horizon: RetentionHorizon) -> ObjectRetention {
        let seconds = min(options.minimumRetention.components.seconds, 100 * 366 * 86_400)
        let floor = Int64(Date().timeIntervalSince1970 * 1e9) + seconds * 1_000_000_000
        // The object's mode follows the records' locks: compliance if any is, governance if they
        // all are (a governance lock, which its authority may lift, does not become one nobody can
        // lift), and the configured default only for records without locks.
        let mode: ObjectRetention.Mode = horizon.compliance != nil ? .compliance : horizon.governance != nil ? .governance : options.defaultMode
        let until = [floor, horizon.compliance ?? floor, horizon.governance ?? floor].max() ?? floor
        return ObjectRetention(mode: mode, retainUntil: until, legalHold: horizon.legalHold)
    }

    /// Brings the keyring copy up to date with the local keyring: first, so that a record is
    /// never off-host before a key that opens it, and a shred reaches the copy at the next pass.
    private func copyKeyring(_ layout: StoreLayout, _ report: inout Report) throws {
        guard let keyringTarget = options.keyringTarget else {
            throw SteleError.mirror(.invalid("\(storePath) is encrypted: its keyring must be copied too, to a target of its own without Object Lock (--keyring-to)"))
        }
        guard keyringTarget.description != target.description else {
            throw SteleError.mirror(.invalid("the keyring copy needs a target of its own, not the segments' (\(target.description)), which keeps every version"))
        }
        let local = try readWholeKeyring(layout.keyring)
        let digest = sha256(local)
        guard digest != keyringInCopy else { return }
        // Replaced even when the copy already matches: the replacement also deletes older
        // versions, which an earlier pass (or mirror) may have failed to delete after uploading.
        try keyringTarget.replaceKeyring(local)
        report.keyringCopied = true
        keyringInCopy = digest
    }

    /// The local keyring, read again if a read met a slot half overwritten (a shred writing it):
    /// a torn copy off-host would make a restore refuse the whole keyring.
    private func readWholeKeyring(_ path: String) throws -> [UInt8] {
        var bytes = try read(path)
        for _ in 0 ..< 5 where !Keyring.slotsAreWhole(bytes) {
            Thread.sleep(forTimeInterval: 0.01)
            bytes = try read(path)
        }
        guard Keyring.slotsAreWhole(bytes) else {
            throw SteleError.mirror(.altered(name: path, detail: "the keyring's checksums do not hold: run `stele fsck`"))
        }
        return bytes
    }

    private func read(_ path: String) throws -> [UInt8] {
        guard let bytes = try fs.readWholeFile(path, limit: Limits.maxSegmentSize) else { throw SteleError.mirror(.missing(name: path)) }
        return bytes
    }

    /// Stores `bytes` as `name` unless the same content is there. A segment whose copy differs
    /// is accepted only as the original of a purge's local rewrite: same seal-hash label, and
    /// every frame equal or a stub of the original's leaf hash (checked, not trusted).
    private func send(_ name: String, _ bytes: [UInt8], retention: ObjectRetention, label: String?, _ report: inout Report) throws {
        do {
            if try target.put(name, bytes, retention: retention, label: label) {
                report.uploaded.append(name)
                report.bytesUploaded += bytes.count
            } else {
                report.verified += 1
            }
        } catch SteleError.mirror(.conflict(let conflicting)) where conflicting == name && label != nil {
            guard try target.head(name)?.label == label, try SegmentBytes.isRedaction(bytes, of: try target.get(name), name: name) else {
                throw SteleError.mirror(.conflict(name: name))
            }
            report.redactedLocally += 1
        }
        known.insert(name)
    }
}
