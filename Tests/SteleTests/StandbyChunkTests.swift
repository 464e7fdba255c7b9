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

    /// A standby keeps each chunk's checkpoint as its own, and, as on the writer, one inside the
    /// active segment gives way to the next: a chunk every 200 ms adds no file per chunk.
    @Test func aStandbysHistoryKeepsTheNewestChunkCheckpointOnly() throws {
        let setup = try Setup()
        defer { setup.finish() }
        let standby = try setup.standby()
        defer { try? standby.close() }
        let history = setup.standbyPath + "/checkpoints/history"
        func kept() throws -> [UInt64] { try FileManager.default.contentsOfDirectory(atPath: history).compactMap { UInt64($0) }.sorted() }
        let before = try kept()
        var n = 100
        for _ in 0 ..< 6 {
            _ = try Self.writeUnsealed(setup, n ..< n + 20)
            n += 20
            #expect(try standby.catchUp().recordsInstalled == 20)
        }
        let afterChunks = try kept()
        #expect(afterChunks == before + [setup.primary.recordCount], "\(afterChunks)")
        #expect(try standby.store.latestCheckpoint().map { try Checkpoint(parsing: SignedNote.split($0).text).treeSize } == setup.primary.recordCount)
        // The seal's checkpoint, at the segment's end, stays once the next chunk's is kept.
        try setup.primary.seal()
        _ = try Self.shipping(setup)
        #expect(try standby.catchUp().segmentsInstalled == 1)
        let sealedEnd = setup.primary.recordCount
        _ = try Self.writeUnsealed(setup, n ..< n + 20)
        _ = try standby.catchUp()
        let afterSeal = try kept()
        #expect(afterSeal == before + [sealedEnd, setup.primary.recordCount], "\(afterSeal)")
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

    /// Replaces a directory copy's object (as whoever can write to the copy could).
    static func replace(_ setup: Setup, _ name: String, with bytes: [UInt8]) throws {
        chmod(setup.target.root + "/" + name.split(separator: "/").dropLast().joined(separator: "/"), 0o755)
        for file in [name, name + ".sha256"] { try FileManager.default.removeItem(atPath: setup.target.root + "/" + file) }
        _ = try setup.target.put(name, bytes, retention: nil, label: nil)
    }

    @Test func aChunkCarriesItsCheckpointAndAForgedAlteredOrMissingOneStopsTheFollow() throws {
        let setup = try Setup()
        defer { setup.finish() }
        let standby = try setup.standby()
        defer { try? standby.close() }
        // Records synced but under no checkpoint yet are not shipped.
        try setup.primary.append(contentsOf: (100 ..< 130).map { testEntry($0) })
        try setup.primary.sync()
        #expect(try Self.shipping(setup).recordsOffHost == 101 && Self.chunkNames(setup).isEmpty)
        _ = try setup.primary.checkpoint(signer: setup.signer)
        _ = try Self.shipping(setup)
        _ = try Self.writeUnsealed(setup, 130 ..< 140)
        _ = try Self.writeUnsealed(setup, 140 ..< 150)
        let names = try Self.chunkNames(setup)
        #expect(names.count == 3, "\(names)")
        let before = standby.store.recordCount

        // The second chunk's checkpoint re-signed with another key (same name, same tree).
        let original = try readFile(setup.target.root + "/" + names[1])
        let (_, framesStart) = try #require(ActiveChunk.decode(original))
        let other = try NoteSigner.generate(name: "standby.test/log")
        let forgedNote = try SignedNote.sign(Checkpoint(origin: setup.primary.config.origin, treeSize: 141,
                                                        root: try setup.primary.rootHash(treeSize: 141)).text, with: other)
        try Self.replace(setup, names[1], with: ActiveChunk.encode(note: forgedNote, frames: Array(original[framesStart...])))
        #expect {
            try standby.catchUp()
        } throws: { error in
            guard case SteleError.mirror(.tampered(let findings)) = error else { return false }
            return findings.contains { $0.contains(names[1]) && $0.contains("signed with the trusted key") }
        }
        #expect(standby.store.recordCount == before, "nothing installed, not even the chunk before it")
        try Self.replace(setup, names[1], with: original)

        // The first chunk altered (a bit of a record flipped): its checksum fails.
        var bytes = try readFile(setup.target.root + "/" + names[0])
        bytes[bytes.count - 20] ^= 0x01
        try Self.replace(setup, names[0], with: bytes)
        #expect {
            try standby.catchUp()
        } throws: { error in
            guard case SteleError.mirror(.tampered(let findings)) = error else { return false }
            return findings.contains { $0.contains(names[0]) }
        }
        #expect(standby.store.recordCount == before)
        #expect(try StandbyTests.value(standby.store, 110) == nil)

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

    /// A store restored from the copy lacks the chunk records after its last segment: promoting it
    /// would fork the log between seals, so it is refused.
    @Test func aRestoredStoreBehindTheChunksIsNotPromoted() throws {
        let setup = try Setup()
        defer { setup.finish() }
        _ = try Self.writeUnsealed(setup, 100 ..< 150)
        #expect {
            try Promotion.run(storePath: setup.standbyPath, target: setup.target)
        } throws: { error in
            guard case SteleError.mirror(.invalid(let detail)) = error else { return false }
            return detail.contains("chunks of records up to 151")
        }
    }

    /// A chunk name alone proves nothing to the mirror: one it did not write, whose checkpoint is
    /// not of this log, is tampering (it would otherwise count its records as off-host).
    @Test func aForgedChunkNameIsTamperingForTheMirror() throws {
        let setup = try Setup()
        defer { setup.finish() }
        _ = try Self.writeUnsealed(setup, 100 ..< 110)
        let forged = ActiveChunk(segment: 2, first: 111, next: 1_000_000)
        let note = try SignedNote.sign(Checkpoint(origin: setup.primary.config.origin, treeSize: 1_000_000,
                                                  root: Digest(bytes: [UInt8](repeating: 9, count: 32))!).text, with: setup.signer)
        _ = try setup.target.put(forged.objectName, ActiveChunk.encode(note: note, frames: []), retention: nil, label: nil)
        #expect {
            try Self.shipping(setup)
        } throws: { error in
            guard case SteleError.mirror(.tampered(let findings)) = error else { return false }
            return findings.contains { $0.contains(forged.objectName) }
        }
    }

    /// A directory copy writes an object's checksum file first: a chunk caught in flight (the
    /// checksum file alone) is waited for, not taken for a removal.
    @Test func aChunkInFlightIsWaitedFor() throws {
        let setup = try Setup()
        defer { setup.finish() }
        let standby = try setup.standby()
        defer { try? standby.close() }
        _ = try Self.writeUnsealed(setup, 100 ..< 150)
        let name = try #require(try Self.chunkNames(setup).first)
        let path = setup.target.root + "/" + name
        let bytes = try readFile(path)
        chmod(setup.target.root + "/chunks/000000000002", 0o755)
        try FileManager.default.removeItem(atPath: path)  // as if its upload had not reached the object yet
        let waiting = try standby.catchUp()
        #expect(waiting.recordsInstalled == 0 && waiting.records == 101, "\(waiting)")
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(try standby.catchUp().recordsInstalled == 50)
    }
}
