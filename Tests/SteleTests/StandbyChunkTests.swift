import Foundation
import Testing
@testable import Stele
@testable import SteleMirror

/// Shipping the active segment between seals (issue 21): the mirror copies the writer's durable
/// records as chunks, the standby installs them once a signed checkpoint proves them, and the
/// sealed segment, when it comes, supersedes them byte for byte. A chunk altered or missing stops
/// the follow; nothing of it is installed.
@Suite struct StandbyChunkTests {
    typealias Setup = StandbyTests.Setup

    static func shipping(_ setup: Setup) throws -> Mirror.Report {
        var options = Mirror.Options()
        options.shipsActiveRecords = true
        return try Mirror(storePath: setup.primaryPath, target: setup.target, options: options).runOnce()
    }

    /// Appends `range` without sealing, signs a checkpoint over them, and mirrors with chunks.
    static func writeUnsealed(_ setup: Setup, _ range: Range<Int>) throws -> Mirror.Report {
        try setup.primary.append(contentsOf: range.map { testEntry($0) })
        _ = try setup.primary.checkpoint(signer: setup.signer)
        return try shipping(setup)
    }

    static func chunkNames(_ setup: Setup) throws -> [String] {
        try setup.target.list(prefix: ActiveChunk.prefix).map(\.name).sorted()
    }

    @Test func chunksAreInstalledWhenProvenAndTheSealSupersedesThem() throws {
        let setup = try Setup()
        defer { setup.finish() }
        let standby = try setup.standby()
        defer { try? standby.close() }

        let shipped = try Self.writeUnsealed(setup, 100 ..< 150)
        #expect(shipped.recordsOffHost == setup.primary.recordCount && shipped.lagRecords == 0, "\(shipped)")
        #expect(try Self.chunkNames(setup) == ["chunks/000000000002/00000000000000000101-00000000000000000151"])
        let first = try standby.catchUp()
        #expect(first.recordsInstalled == 50 && first.segmentsInstalled == 0 && first.records == 151, "\(first)")
        #expect(try StandbyTests.value(standby.store, 120) == testEntry(120).value)
        #expect(try standby.store.rootHash() == setup.primary.rootHash())

        // More records: the next chunk continues the standby's active segment.
        _ = try Self.writeUnsealed(setup, 150 ..< 200)
        #expect(try standby.catchUp().recordsInstalled == 50)
        #expect(try StandbyTests.value(standby.store, 199) == testEntry(199).value)

        // The seal: the sealed segment begins with the very records the chunks gave.
        try setup.primary.seal()
        _ = try Self.shipping(setup)
        let sealed = try standby.catchUp()
        #expect(sealed.segmentsInstalled == 1 && sealed.records == setup.primary.recordCount, "\(sealed)")
        try standby.close()
        let fsck = try Fsck.check(path: setup.standbyPath)
        #expect(fsck.problems.isEmpty, "\(fsck.problems)")
        let reopened = try setup.standby()
        defer { try? reopened.close() }
        #expect(try reopened.store.rootHash() == setup.primary.rootHash())
        #expect(try StandbyTests.value(reopened.store, 160) == testEntry(160).value)
    }

    @Test func aPromotedStandbyKeepsTheChunkRecordsAndWritesOn() throws {
        let setup = try Setup()
        defer { setup.finish() }
        let standby = try setup.standby()
        defer { try? standby.close() }
        _ = try Self.writeUnsealed(setup, 100 ..< 150)
        let claim = try standby.promote()
        #expect(claim.firstSequence == 151)
        #expect(try standby.store.put(namespace: "orders", key: "after", value: "failover").sequences.lowerBound == 151)
        try standby.store.seal()
        try standby.close()
        let fsck = try Fsck.check(path: setup.standbyPath)
        #expect(fsck.problems.isEmpty, "\(fsck.problems)")
    }

    @Test func anUnprovenChunkWaitsAndAnAlteredOrMissingOneStopsTheFollow() throws {
        let setup = try Setup()
        defer { setup.finish() }
        let standby = try setup.standby()
        defer { try? standby.close() }
        // Records synced but not yet under a checkpoint: shipped (the header vouches for them
        // once a later sync runs), not installed.
        try setup.primary.append(contentsOf: (100 ..< 130).map { testEntry($0) })
        try setup.primary.sync()
        try setup.primary.append(contentsOf: (130 ..< 131).map { testEntry($0) })
        try setup.primary.sync()
        _ = try Self.shipping(setup)
        let waiting = try standby.catchUp()
        #expect(waiting.recordsInstalled == 0 && waiting.recordsWaiting == 30, "\(waiting)")
        #expect(try StandbyTests.value(standby.store, 110) == nil)

        // Two more chunks, each under a checkpoint; the first of the three is then altered.
        _ = try Self.writeUnsealed(setup, 131 ..< 140)
        _ = try Self.writeUnsealed(setup, 140 ..< 150)
        let names = try Self.chunkNames(setup)
        #expect(names.count == 3, "\(names)")
        var bytes = try readFile(setup.target.root + "/" + names[0])
        bytes[bytes.count / 2] ^= 0x01
        chmod(setup.target.root + "/chunks/000000000002", 0o755)
        for file in [names[0], names[0] + ".sha256"] { try FileManager.default.removeItem(atPath: setup.target.root + "/" + file) }
        _ = try setup.target.put(names[0], bytes, retention: nil, label: nil)
        let before = standby.store.recordCount
        #expect {
            try standby.catchUp()
        } throws: { error in
            guard case SteleError.mirror(.tampered(let findings)) = error else { return false }
            return findings.contains { $0.contains(names[0]) }
        }
        #expect(standby.store.recordCount == before)

        // The altered chunk removed altogether: a gap before the next one.
        for file in [names[0], names[0] + ".sha256"] { try FileManager.default.removeItem(atPath: setup.target.root + "/" + file) }
        #expect {
            try standby.catchUp()
        } throws: { error in
            guard case SteleError.mirror(.tampered(let findings)) = error else { return false }
            return findings.contains { $0.contains("a gap") }
        }
        #expect(standby.store.recordCount == before)
    }
}
