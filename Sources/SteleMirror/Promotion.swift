import Foundation
import Stele

/// Makes a store the writer of its log in a copy: claims the next writer epoch there, from the
/// record after the store's last, and holds it (docs/operations.md, "Writer epochs and fencing").
///
/// The store must hold everything the copy holds (a standby restored from it, and followed to
/// its end): a segment in the copy that the store lacks was written by the writer being
/// replaced, and a promotion past it would fork the log, so it is refused. Once the claim is in
/// the copy, the store it replaces finds it at its mirror's next pass and is fenced; the promoted
/// store's own mirror then writes to the copy under the new epoch.
///
/// A standby that follows the copy (``Standby``) promotes through ``Standby/promote(retention:)``,
/// which claims the same way without opening its store again. Not done yet (issue 21): the new
/// epoch's objects are not named apart from the old writer's.
public enum Promotion {
    /// Claims epoch N+1 for the store at `storePath` in `target` and makes the store hold it.
    /// - Parameter retention: the claim's Object Lock (compliance for 30 days unless given).
    /// - Returns: the claim.
    /// - Throws: ``SteleError/mirror(_:)``: ``MirrorError/invalid(_:)`` if the copy has no claim
    ///   yet (mirror the primary first) or holds segments the store lacks;
    ///   ``MirrorError/fenced(epoch:holder:)`` if another store claimed that epoch first;
    ///   ``MirrorError/tampered(_:)`` for claims removed or forged.
    public static func run(storePath: String, target: any MirrorTarget, retention: ObjectRetention? = nil) throws -> WriterEpoch {
        let store = try Store(path: storePath, options: .init(readOnly: true))
        let (storeID, records, sealed) = (store.config.storeID, store.recordCount, try store.sealedSegments())
        try store.close()
        // Already the writer (promoted before, records written since): nothing to do.
        if let held = try WriterEpoch.held(by: storePath), held == (try WriterEpoch.claims(in: target, storeID: storeID).last) {
            // A promotion that claimed and held the epoch but died before it removed the fence.
            try FenceMarker.remove(fs: PosixFileSystem(), layout: StoreLayout(root: storePath))
            return held
        }
        let lastLocal = sealed.last?.records.upperBound.advanced(by: 1) ?? 0
        // A standby's active segment holds chunk records (proven); any other store's holds its own.
        let isStandby = try FenceMarker.read(fs: PosixFileSystem(), layout: StoreLayout(root: storePath)) != nil
        guard lastLocal == records || isStandby else {
            throw SteleError.mirror(.invalid("\(storePath) has \(records - lastLocal) records in an unsealed segment: a standby holds sealed segments only"))
        }
        // A standby built to follow epoch N, when the copy has a newer writer since: promoting it
        // would replace that writer, which nobody asked for. Rebuild it from the copy instead.
        if let followed = try FenceMarker.read(fs: PosixFileSystem(), layout: StoreLayout(root: storePath)), followed.epoch > 0,
           let newest = try WriterEpoch.claims(in: target, storeID: storeID).last, newest.epoch > followed.epoch {
            throw SteleError.mirror(.fenced(epoch: newest.epoch, holder: newest.holder))
        }
        let claim = try self.claim(storePath: storePath, storeID: storeID, records: records, sealedSegments: UInt64(sealed.count),
                                   target: target, retention: retention)
        // A fence left by an earlier mirror pass over this store names an epoch it now outranks.
        try FenceMarker.remove(fs: PosixFileSystem(), layout: StoreLayout(root: storePath))
        return claim
    }

    /// Claims epoch N+1 for a store holding `records` records, all in its `sealedSegments`
    /// sealed segments, and records it in the store's `epoch` file; the caller lifts its fence.
    /// A standby that holds its store open promotes through this, without opening it again.
    static func claim(storePath: String, storeID: [UInt8], records: UInt64, sealedSegments: UInt64, target: any MirrorTarget,
                      retention: ObjectRetention?) throws -> WriterEpoch {
        let retention = retention ?? ObjectRetention(mode: .compliance, retainUntil: Int64(Date().timeIntervalSince1970 * 1e9) + 30 * 86_400 * 1_000_000_000)
        guard let newest = try WriterEpoch.claims(in: target, storeID: storeID).last else {
            throw SteleError.mirror(.invalid("\(target.description) has no writer epoch claim for this store: mirror its primary first"))
        }
        let copied = try target.list(prefix: "segments/").compactMap { SegmentFiles.index(of: String($0.name.dropFirst("segments/".count))) }
        if let beyond = copied.filter({ $0 > sealedSegments }).min() {
            throw SteleError.mirror(.invalid("\(target.description) holds segments from \(SegmentFiles.name(beyond)) on that \(storePath) lacks: "
                + "promoting it would fork the log; restore or follow them first"))
        }
        // Chunks of the segment after the store's last sealed one that hold records it lacks:
        // the same fork, between seals.
        let chunks = try target.list(prefix: ActiveChunk.prefix(of: sealedSegments + 1)).compactMap { ActiveChunk(objectName: $0.name) }
        if let beyond = chunks.map(\.next).max(), beyond > records {
            throw SteleError.mirror(.invalid("\(target.description) holds chunks of records up to \(beyond), beyond the \(records) \(storePath) holds: "
                + "promoting it would fork the log; follow them first (stele standby)"))
        }
        // Already the writer; or a promotion of this store that claimed the epoch but stopped
        // before holding it.
        if try WriterEpoch.held(by: storePath) == newest { return newest }
        if newest.holder == Mirror.holder(storePath), newest.firstSequence == records, newest.epoch > 1 {
            try newest.hold(at: storePath)
            return newest
        }
        let claim = WriterEpoch(epoch: newest.epoch + 1, storeID: storeID, firstSequence: records,
                                claimedAt: Int64(Date().timeIntervalSince1970 * 1e9), holder: Mirror.holder(storePath))
        do {
            try target.put(claim.objectName, claim.encoded, retention: retention, label: nil)
        } catch SteleError.mirror(.conflict) {
            let winner = try WriterEpoch.claims(in: target, storeID: storeID).last ?? claim
            throw SteleError.mirror(.fenced(epoch: winner.epoch, holder: winner.holder))
        }
        try claim.hold(at: storePath)
        return claim
    }
}
