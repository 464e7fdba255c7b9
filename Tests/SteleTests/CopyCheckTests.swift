import Foundation
import Testing
@testable import Stele
@testable import SteleMirror
import SteleNative

/// A follower's pass lists what is new in the copy, and the whole copy only at its full checks
/// (`Mirror.Options.fullCheckInterval`, `Standby.fullCheckInterval`): a copy kept for years
/// holds millions of objects, and listing them all every 200 ms is neither cheap on a disk nor
/// possible against S3. What is new is still checked at every pass; what was removed or
/// overwritten among the old objects is found at the next full check.
@Suite struct CopyCheckTests {
    /// Appends 60 records to the primary and seals them (the seal signs a checkpoint).
    static func sealNext(_ setup: StandbyTests.Setup, _ n: inout Int) throws {
        try setup.primary.append(contentsOf: (n ..< n + 60).map { testEntry($0) })
        n += 60
        try setup.primary.seal()
    }

    /// What a pass (or promotion) that must stop as tampering found; none, and an issue
    /// recorded saying `missed`, if it did not stop.
    func tamperingFindings(_ missed: Comment, _ pass: () throws -> Void) -> [String] {
        do {
            try pass()
            Issue.record(missed)
        } catch SteleError.mirror(.tampered(let findings)) {
            return findings
        } catch {
            Issue.record("\(missed): \(error)")
        }
        return []
    }

    static func wholeListing(_ target: any MirrorTarget) throws -> Int {
        try target.versions(prefix: "segments/").count + target.versions(prefix: "checkpoints/").count
    }

    @Test func aFollowingMirrorListsWhatIsNewAndTheWholeCopyAtItsFullChecks() throws {
        let setup = try StandbyTests.Setup()
        defer { setup.finish() }
        var options = Mirror.Options()
        options.fullCheckInterval = .seconds(3600)
        let mirror = Mirror(store: setup.primary, target: setup.target, options: options)
        #expect(try mirror.runOnce().checkedWholeCopy, "a new mirror checks the whole copy first")
        var n = 100
        for _ in 0 ..< 12 {
            try Self.sealNext(setup, &n)
            let pass = try mirror.runOnce()
            // What the pass before uploaded: a segment and the checkpoint its seal signed.
            #expect(!pass.checkedWholeCopy && pass.versionsListed <= 2 && pass.lagRecords == 0, "\(pass)")
        }
        #expect(try Self.wholeListing(setup.target) >= 26)

        // Something new that the mirror never wrote is found at once, and the pass after a
        // finding checks the whole copy.
        let sealedCount = try setup.primary.sealedSegments().count
        let forged = "segments/" + SegmentFiles.name(UInt64(sealedCount) + 1)
        try writeFile(setup.target.root + "/" + forged, [1, 2, 3])
        let findings = tamperingFindings("a forged segment after the newest was not found") { _ = try mirror.runOnce() }
        #expect(findings.contains { $0.hasPrefix(forged + ":") }, "\(findings)")
        try FileManager.default.removeItem(atPath: setup.target.root + "/" + forged)
        let afterFinding = try mirror.runOnce()
        #expect(afterFinding.checkedWholeCopy && afterFinding.versionsListed >= 26, "\(afterFinding)")

        // An old segment removed from the copy: passes between full checks do not list it; a
        // full check does.
        let old = "segments/" + SegmentFiles.name(3)
        try FileManager.default.removeItem(atPath: setup.target.root + "/" + old)
        #expect(try !mirror.runOnce().checkedWholeCopy)
        var everyPass = Mirror.Options()
        everyPass.fullCheckInterval = nil
        let fullCheck = Mirror(store: setup.primary, target: setup.target, options: everyPass)
        let removedFindings = tamperingFindings("a full check missed a segment removed from the copy") { _ = try fullCheck.runOnce() }
        #expect(removedFindings.contains { $0.contains(old) }, "\(removedFindings)")
    }

    /// The interval is kept: a pass once it has passed is a full check again.
    @Test func aFullCheckComesBackWhenItsIntervalHasPassed() throws {
        let setup = try StandbyTests.Setup()
        defer { setup.finish() }
        var options = Mirror.Options()
        options.fullCheckInterval = .seconds(2)
        let mirror = Mirror(store: setup.primary, target: setup.target, options: options)
        #expect(try mirror.runOnce().checkedWholeCopy)
        var n = 100
        try Self.sealNext(setup, &n)
        #expect(try !mirror.runOnce().checkedWholeCopy)
        let old = "segments/" + SegmentFiles.name(1)
        try FileManager.default.removeItem(atPath: setup.target.root + "/" + old)
        Thread.sleep(forTimeInterval: 2.1)
        let findings = tamperingFindings("the full check after its interval missed a removed segment") { _ = try mirror.runOnce() }
        #expect(findings.contains { $0.hasPrefix(old + ":") }, "\(findings)")
    }

    @Test func aFollowingStandbyListsWhatIsNewAndPromotionChecksTheWholeCopy() throws {
        let setup = try StandbyTests.Setup()
        defer { setup.finish() }
        let standby = try setup.standby()
        defer { try? standby.close() }
        standby.fullCheckInterval = .seconds(3600)
        #expect(try standby.catchUp().checkedWholeCopy)
        var n = 100
        for _ in 0 ..< 10 {
            try setup.write(n ..< n + 60)
            n += 60
            let pass = try standby.catchUp()
            // The new segment and the checkpoint its seal signed; nothing installed before.
            #expect(!pass.checkedWholeCopy && pass.versionsListed <= 2 && pass.segmentsInstalled == 1, "\(pass)")
            #expect(pass.records == setup.primary.recordCount && pass.recordsWaiting == 0, "\(pass)")
        }
        #expect(try standby.store.rootHash() == setup.primary.rootHash())
        #expect(try Self.wholeListing(setup.target) >= 22)

        // A segment the copy gained without a checkpoint waits, and is listed again at the next
        // pass (from the last one installed on), until one proves it.
        let unsigned = try setup.sealUnsigned(n ..< n + 60)
        n += 60
        let waiting = try standby.catchUp()
        #expect(waiting.segmentsInstalled == 0 && waiting.recordsWaiting == 60, "\(waiting)")
        try unsigned.checkpoint(signer: setup.signer)
        _ = try Mirror(storePath: setup.primaryPath, target: setup.target).runOnce()
        let proven = try standby.catchUp()
        #expect(!proven.checkedWholeCopy && proven.segmentsInstalled == 1 && proven.recordsWaiting == 0, "\(proven)")
        try unsigned.close()

        // An installed segment removed from the copy: the next pass lists only what is new; the
        // promotion's last pass checks the whole copy, and claims nothing.
        let removed = "segments/" + SegmentFiles.name(4)
        try FileManager.default.removeItem(atPath: setup.target.root + "/" + removed)
        #expect(try !standby.catchUp().checkedWholeCopy)
        let claimsBefore = try WriterEpoch.claims(in: setup.target, storeID: standby.store.config.storeID).count
        let findings = tamperingFindings("a promotion over a copy that lost a segment") { _ = try standby.promote() }
        #expect(findings.contains { $0.hasPrefix(removed + ":") }, "\(findings)")
        #expect(try WriterEpoch.claims(in: setup.target, storeID: standby.store.config.storeID).count == claimsBefore)
        #expect(throws: SteleError.self) { try standby.store.append(testEntry(1)) }
    }

    /// A directory copy lists after a name exactly the objects named after it: a removed one (its
    /// checksum file left) as a delete marker under its own name, not its checksum file's.
    @Test func aDirectoryListsAfterANameTheObjectsNamedAfterIt() throws {
        let setup = try StandbyTests.Setup()
        defer { setup.finish() }
        var n = 100
        for _ in 0 ..< 5 { try setup.write(n ..< n + 60); n += 60 }
        let count = UInt64(try setup.primary.sealedSegments().count)
        try FileManager.default.removeItem(atPath: setup.target.root + "/segments/" + SegmentFiles.name(5))
        for after in 0 ... count + 1 {
            let listed = try setup.target.versions(prefix: "segments/", after: after == 0 ? "" : "segments/" + SegmentFiles.name(after))
            #expect(listed.map(\.name) == (min(after + 1, count + 1) ..< count + 1).map { "segments/" + SegmentFiles.name($0) }, "after \(after): \(listed)")
            #expect(listed.filter(\.isDeleteMarker).map(\.name) == (after < 5 ? ["segments/" + SegmentFiles.name(5)] : []))
        }
        #expect(try setup.target.versions(prefix: "checkpoints/", after: "checkpoints/zzz").isEmpty)
    }

    /// A name that sorts after every checkpoint's (`checkpoints/9`) holds nothing back: the
    /// mirror reports it at its next pass, and a following standby passes over it and goes on
    /// listing the checkpoints that come after it.
    @Test func aForgedNameThatSortsLastHoldsNothingBack() throws {
        let setup = try StandbyTests.Setup()
        defer { setup.finish() }
        let forged = setup.target.root + "/checkpoints/9"
        var options = Mirror.Options()
        options.fullCheckInterval = .seconds(3600)
        let mirror = Mirror(store: setup.primary, target: setup.target, options: options)
        #expect(try mirror.runOnce().checkedWholeCopy)
        var n = 100
        try Self.sealNext(setup, &n)
        #expect(try !mirror.runOnce().checkedWholeCopy)
        try writeFile(forged, Array("forged".utf8))
        try Self.sealNext(setup, &n)
        let findings = tamperingFindings("a pass between full checks passed over checkpoints/9") { _ = try mirror.runOnce() }
        #expect(findings.contains { $0.hasPrefix("checkpoints/9:") }, "\(findings)")

        // A following standby passes over it, and goes on listing the checkpoints after it.
        try FileManager.default.removeItem(atPath: forged)
        _ = try mirror.runOnce()
        let standby = try setup.standby()
        defer { try? standby.close() }
        standby.fullCheckInterval = .seconds(3600)
        try writeFile(forged, Array("forged".utf8))
        let first = try standby.catchUp()
        #expect(first.checkedWholeCopy && first.records == setup.primary.recordCount, "\(first)")
        #expect(first.ignored.contains { $0.hasPrefix("checkpoints/9") }, "\(first.ignored)")
        for _ in 0 ..< 2 {
            try FileManager.default.removeItem(atPath: forged)
            try Self.sealNext(setup, &n)
            _ = try mirror.runOnce()
            try writeFile(forged, Array("forged".utf8))
            let pass = try standby.catchUp()
            #expect(!pass.checkedWholeCopy && pass.segmentsInstalled == 1 && pass.records == setup.primary.recordCount, "\(pass)")
        }
    }
}
