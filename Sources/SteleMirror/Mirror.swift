import Foundation
import Stele

/// Copies a store's sealed history to a ``MirrorTarget``: the config, every sealed segment and
/// every checkpoint that covers only mirrored records, each object written once with retention.
///
/// Safe beside a live writer: it opens the store read-only, and what it copies is immutable
/// (sealed segments are read-only files closed by a footer; checkpoints are never rewritten).
/// Idempotent and resumable: an object already in the target is verified by its recorded
/// SHA-256 (once per `Mirror` instance) and never sent again; a restarted mirror continues with
/// the first object missing. The active segment is not copied: the recovery point is the last
/// seal, so have the writer seal on a timer (`Store.Options.sealInterval`) to bound it.
///
/// Tiles are not copied: they are derived from the records, and a restore rebuilds and checks
/// them against the trusted checkpoint instead of trusting copies.
public final class Mirror: @unchecked Sendable {
    /// Retention for objects whose records carry no lock of their own.
    public struct Options: Sendable {
        /// Mode of the object lock when the records imply none.
        public var defaultMode: ObjectRetention.Mode = .compliance
        /// Every object is kept at least this long after it is uploaded.
        public var minimumRetention: Duration = .seconds(30 * 86_400)
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
        /// Largest tree size of a checkpoint in the target.
        public var checkpointOffHost: UInt64?
        /// Age of the oldest record not yet off-host, in seconds (nil when none is waiting).
        public var lagSeconds: Double?
        /// Records not yet off-host: the recovery point, in records.
        public var lagRecords: UInt64 { recordsInStore - min(recordsInStore, recordsOffHost) }
    }

    public let storePath: String
    public let target: any MirrorTarget
    public let options: Options
    private var known: Set<String> = []
    private let fs = PosixFileSystem()

    public init(storePath: String, target: any MirrorTarget, options: Options = Options()) {
        self.storePath = storePath
        self.target = target
        self.options = options
    }

    /// One pass: uploads what is missing, in order (config, segments, checkpoints).
    /// - Throws: ``MirrorError`` (target unreachable or refusing, an object in the target that
    ///   differs from the local one), ``SteleError`` (the store cannot be read).
    /// - Cost: reads and hashes every segment not yet known to be in the target.
    public func runOnce() throws -> Report {
        var report = Report()
        let store = try Store(path: storePath, options: .init(readOnly: true))
        defer { try? store.close() }
        let layout = StoreLayout(root: storePath)
        try upload(StoreConfig.fileName, path: layout.config, retention: nil, label: nil, &report)
        for segment in try sealedSegments(layout) {
            let name = "segments/" + segment.name
            if known.contains(name) {
                report.recordsOffHost = segment.records.upperBound + 1
                continue
            }
            let horizon = try store.retentionHorizon(segment.records)
            try upload(name, path: segment.path, retention: retention(horizon), label: "seal:" + segment.sealHash, &report)
            report.recordsOffHost = segment.records.upperBound + 1
        }
        let history = layout.checkpoints + "/history"
        for name in (try? fs.listDirectory(history))?.sorted() ?? [] {
            guard let size = UInt64(name), size <= report.recordsOffHost else { continue }
            try upload("checkpoints/" + name, path: history + "/" + name, retention: nil, label: nil, &report)
            report.checkpointOffHost = max(report.checkpointOffHost ?? 0, size)
        }
        report.recordsInStore = store.recordCount
        if report.recordsOffHost < report.recordsInStore {
            let waiting = try store.record(at: report.recordsOffHost)
            let now = Int64(Date().timeIntervalSince1970 * 1e9)
            report.lagSeconds = max(0, Double(now - waiting.timestamp) / 1e9)
        }
        return report
    }

    struct SealedFile {
        var name: String
        var path: String
        var records: ClosedRange<UInt64>
        /// Hex seal hash: the same for the original and for a purge's rewrite with stubs.
        var sealHash: String
    }

    /// Sealed segments in order, up to the first that is not (the active one).
    func sealedSegments(_ layout: StoreLayout) throws -> [SealedFile] {
        var out: [SealedFile] = []
        let names = try fs.listDirectory(layout.segments).filter { $0.hasSuffix(".seg") }.sorted()
        for name in names {
            guard let index = SegmentFiles.index(of: name) else { continue }
            let path = layout.segments + "/" + name
            // The active segment has no footer: everything from it on is not sealed yet.
            guard let sealed = try? SealedSegment.open(fs: fs, path: path, expectedIndex: index) else { break }
            out.append(SealedFile(name: name, path: path, records: sealed.footer.firstSequence ... sealed.footer.lastSequence,
                                  sealHash: sealed.footer.sealHash.hex))
        }
        return out
    }

    /// The object lock for a segment: compliance if any of its versions is under a compliance
    /// lock (or the default mode says so), until the latest lock expires but never sooner than
    /// the minimum; a legal hold on any version puts one on the object.
    private func retention(_ horizon: RetentionHorizon) -> ObjectRetention {
        let floor = Int64(Date().timeIntervalSince1970 * 1e9) + Int64(options.minimumRetention.components.seconds) * 1_000_000_000
        let mode: ObjectRetention.Mode = horizon.compliance != nil ? .compliance : options.defaultMode
        let until = [floor, horizon.compliance ?? floor, horizon.governance ?? floor].max() ?? floor
        return ObjectRetention(mode: mode, retainUntil: until, legalHold: horizon.legalHold)
    }

    private func upload(_ name: String, path: String, retention: ObjectRetention?, label: String?, _ report: inout Report) throws {
        if known.contains(name) { return }
        guard let bytes = try fs.readWholeFile(path, limit: Limits.maxSegmentSize) else { return }
        if let existing = try target.head(name) {
            if existing.size == bytes.count, existing.sha256 == hexString(sha256(bytes)) {
                report.verified += 1
            } else if let label, existing.label == label {
                // The copy is the segment as sealed; the local file is a purge's rewrite of it.
                report.redactedLocally += 1
            } else {
                throw MirrorError.conflict(name: name)
            }
        } else {
            try target.put(name, bytes, retention: retention, label: label)
            report.uploaded.append(name)
            report.bytesUploaded += bytes.count
        }
        known.insert(name)
    }
}
