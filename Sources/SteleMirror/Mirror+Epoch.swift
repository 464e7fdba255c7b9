import Foundation
import Stele

extension Mirror {
    /// The fence (see ``WriterEpoch``): the copy's newest writer epoch must be the one this store
    /// holds (its `epoch` file), or this store has been replaced as the log's writer.
    ///
    /// The first pass of a store claims epoch 1 (a create that one of two racing writers wins) and
    /// records the claim in the store's `epoch` file; a further copy of the store (another
    /// region) gets the same claim at its first pass. A store without that file takes the copy's
    /// epoch-1 claim as its own only if the claim names this host and store path (a mirror of this
    /// store made it: before epoch files, or in a pass whose file write failed); any other store
    /// (a standby restored from the copy, a copy of the directory elsewhere) is fenced.
    /// - Throws: ``MirrorError/fenced(epoch:holder:)`` when another store holds the newest epoch;
    ///   ``MirrorError/tampered(_:)`` when the copy lacks the epoch this store holds.
    func checkEpoch(_ store: Store, floor: ObjectRetention) throws {
        let storeID = store.config.storeID
        var held = try WriterEpoch.held(by: storePath)
        var claims = try claimsFencingOnNewer(than: held, storeID: storeID)
        if claims.isEmpty {
            let claim: WriterEpoch
            if let held {
                // Another copy of this store (a second region) starts with the claim the store
                // holds; a copy that has segments already has lost its claims.
                guard try target.list(prefix: "segments/").isEmpty else {
                    throw SteleError.mirror(.tampered(["epochs/: no writer epoch claim, but the copy holds segments and this store holds epoch \(held.epoch) (claims lost from the copy)"]))
                }
                claim = held
            } else {
                claim = WriterEpoch(epoch: 1, storeID: storeID, firstSequence: 0, claimedAt: Int64(Date().timeIntervalSince1970 * 1e9),
                                    holder: Self.holder(storePath))
            }
            // (Not remembered in `known`: every pass lists the claims again, by version.)
            do {
                try target.put(claim.objectName, claim.encoded, retention: floor, label: nil)
                if held == nil { try claim.hold(at: storePath) }
                heldClaim = claim
                return
            } catch SteleError.mirror(.conflict) {
                // Another writer created it first: whose it is decides below.
                claims = try claimsFencingOnNewer(than: held, storeID: storeID)
            }
        }
        guard let newest = claims.last else { throw SteleError.mirror(.missing(name: WriterEpoch.objectName(1))) }
        if held == nil, newest.epoch == 1, newest.holder == Self.holder(storePath) {
            try newest.hold(at: storePath)
            held = newest
        }
        if let held, newest.epoch < held.epoch {
            throw SteleError.mirror(.tampered(["\(held.objectName): this store's writer epoch claim is not in the copy (the newest there is \(newest.epoch))"]))
        }
        // A newer epoch, a claim of this one by another store, or no claim of this store's at
        // all: this store is not the copy's writer.
        guard let held, held == newest else { throw fenced(by: newest) }
        heldClaim = held
    }

    /// Checks again, right before an object that carries records (a segment, a chunk), that no
    /// newer claim appeared since the pass began: a standby promoted during a long pass (a large
    /// segment, a slow target) fences this writer before its next upload, not at the next pass.
    /// What remains is one upload already under way when the claim is made: that object lands,
    /// and the promoted writer's mirror then meets it as a conflict or a segment it never sealed
    /// (docs/operations.md, "Writer epochs and fencing").
    func checkStillTheWriter(_ store: Store) throws {
        guard let heldClaim else { return }
        let claims = try claimsFencingOnNewer(than: heldClaim, storeID: store.config.storeID)
        guard let newest = claims.last, newest == heldClaim else {
            throw claims.last.map { fenced(by: $0) } ?? SteleError.mirror(.tampered(["\(heldClaim.objectName): this store's writer epoch claim is not in the copy"]))
        }
    }

    /// The copy's claims. A copy whose claims were tampered with stops the pass (tampering), and
    /// if a newer claim than this store's is among them, hidden or not, the store is fenced
    /// first: hiding a successor's claim must not give the copy back to the writer it replaced.
    private func claimsFencingOnNewer(than held: WriterEpoch?, storeID: [UInt8]) throws -> [WriterEpoch] {
        let (claims, findings) = try WriterEpoch.inspect(target, storeID: storeID)
        guard findings.isEmpty else {
            // The rule of `checkEpoch`: a newest claim that is not this store's (bar the epoch-1
            // claim a mirror of this very store made before it kept an `epoch` file).
            var reported = findings
            if let newest = claims.last, newest != held, newest.epoch >= (held?.epoch ?? 0),
               !(held == nil && newest.epoch == 1 && newest.holder == Self.holder(storePath)) {
                _ = fenced(by: newest)
                reported.append("this store is fenced: epoch \(newest.epoch) (\(newest.holder)) replaced it")
            }
            throw SteleError.mirror(.tampered(reported))
        }
        return claims
    }

    /// Leaves the fence in the store's directory, so that its writer (in this process or another)
    /// is refused writes, and returns the error that ends the pass. A marker that cannot be
    /// written (a read-only mount) does not hide the fence: the pass is refused all the same.
    private func fenced(by newest: WriterEpoch) -> SteleError {
        try? Store.markFenced(at: storePath, epoch: newest.epoch, holder: newest.holder)
        // The writer this mirror reads, in this process: refused from its next write on.
        try? liveStore?.fence(epoch: newest.epoch, holder: newest.holder)
        return SteleError.mirror(.fenced(epoch: newest.epoch, holder: newest.holder))
    }

    /// Who claims an epoch, for people reading the claim: host and store path.
    static func holder(_ storePath: String) -> String {
        ProcessInfo.processInfo.hostName + ":" + storePath
    }
}
