import Foundation
import Testing
@testable import Stele

/// More of the hostile-operator table (docs/durability.md, "What a deleted or edited file can
/// and cannot hide"): records taken away together with the evidence an operator can edit. Each
/// case works on a copy of `HostileOperatorTests.Fixture`'s store (2,001 records, a checkpoint
/// over all of them held "elsewhere"), through the real `stele` binary.
@Suite struct HostileOperatorLossTests {
    typealias Fixture = HostileOperatorTests.Fixture

    static func stele(_ arguments: [String], stdin: String? = nil) throws -> CLITests.Run { try CLITests.stele(arguments, stdin: stdin) }

    /// Frames cut from the end of the active segment after a clean close, with the header's
    /// durable end lowered to match (so the segment itself looks whole): the clean close recorded
    /// the exact count in `reach`, and the next writable open refuses.
    @Test func framesCutAfterACleanCloseWithTheDurableEndLoweredStopTheWriter() throws {
        let f = try Fixture()
        defer { f.dir.remove() }
        let store = try f.copy("cut")
        // Three records after the checkpoint, each by a writer that closes cleanly.
        for i in 1 ... 3 { #expect(try Self.stele(["put", store, "m/orders", "late-\(i)", "v\(i)"]).stdout == "\(2000 + i)\n") }
        let segment = try HostileOperatorTests.lastSegment(store)
        var bytes = try readFile(segment)
        let last = try #require(HostileOperatorTests.frames(bytes).last)
        #expect(last.sequence == 2003)
        // The last frame zeroed, and the header's durable end set to where it began.
        for i in last.offset ..< last.offset + last.length { bytes[i] = 0 }
        try writeFile(segment, bytes)
        try setDurableEnd(segment, last.offset)
        let before = try Self.stele(["stats", store, "--json"]).stdout
        #expect(CLITests.jsonObject(before)?["records"] as? Int == 2003, "the cut segment reads as whole: \(before)")

        let put = try Self.stele(["put", store, "m/orders", "after", "x"])
        #expect(put.status == 3 && put.stderr.contains("THE STORE HAS LOST RECORDS: the log holds 2003, the evidence says at least 2004")
            && put.stderr.contains("\(store)/reach records 2004 durable records at a clean close"), "\(put.stderr)")
        #expect(try Self.stele(["stats", store, "--json"]).stdout == before, "nothing was written")
        let fsck = try Self.stele(["fsck", store])
        #expect(fsck.status == 4 && fsck.stdout.contains("loss\t") && fsck.stdout.contains("at least 2004 records"), "\(fsck.stdout)")
        // The external checkpoint (2,001 records) does not cover the cut record; verify still
        // refuses a store whose own evidence shows a loss.
        let verify = try f.verify(store)
        #expect(verify.status == 3 && verify.stderr.contains("LOST RECORDS"), "\(verify.stderr)")
    }

    /// `reach`, the stored checkpoints, the tiles and the active segment all deleted: nothing on
    /// the host shows how far the log reached. The writer refuses a store without `reach`, the
    /// operator must say where to continue, and only the checkpoint held elsewhere shows how much
    /// was lost.
    @Test func reachCheckpointsTilesAndTheActiveSegmentDeletedTogether() throws {
        let f = try Fixture()
        defer { f.dir.remove() }
        let store = try f.copy("all-evidence")
        let active = try HostileOperatorTests.lastSegment(store)
        let held = try #require(HostileOperatorTests.frames(try readFile(active)).first).sequence
        for gone in [active, store + "/reach", store + "/checkpoints/checkpoint", store + "/checkpoints/history", store + "/tiles"] {
            try FileManager.default.removeItem(atPath: gone)
        }
        let put = try Self.stele(["put", store, "m/orders", "after", "x"])
        #expect(put.status == 3 && put.stderr.contains("\(store)/reach is missing"), "\(put.stderr)")
        // The store's own evidence cannot say how much is gone: fsck finds a loss of unknown size.
        let fsck = try Self.stele(["fsck", store])
        #expect(fsck.status == 4 && fsck.stdout.contains("loss\t") && fsck.stdout.contains("at least \(held) records")
            && fsck.stdout.contains("reach is missing"), "\(fsck.stdout)")
        // The checkpoint held elsewhere does.
        for tilesOnly in [false, true] {
            let verify = try Self.stele(["verify", store, "--checkpoint", f.checkpoint, "--verifier-key", f.verifierKey] + (tilesOnly ? ["--tiles-only"] : []))
            #expect(verify.status == 3 && verify.stderr.contains("THE STORE HAS LOST DATA: the checkpoint covers 2001 records, the store holds only \(held)"),
                    "\(verify.stderr)")
        }
        let guess = try Self.stele(["record-loss", store, "--reason", "test"])
        #expect(guess.status == 1 && guess.stderr.contains("--continue-at"), "\(guess.stderr)")
        #expect(try CLITests.recordCount(store) == Int(held), "nothing was written")
        // Continuing past what the external checkpoint covers.
        #expect(try Self.stele(["record-loss", store, "--reason", "test", "--continue-at", "2001"]).status == 0)
        #expect(try Self.stele(["put", store, "m/orders", "after", "x"]).stdout == "2001\n")
        #expect(try f.verify(store).status == 3, "the old checkpoint describes a history that is gone")
    }

    /// `tiles/state` is written at every seal, signed checkpoint, writable open and clean close,
    /// so that a record re-forged in the active segment after any of those is found by the next
    /// writable open. Regression: a clean close wrote `reach` but not the tiles, so a record
    /// appended in the last session before a clean close, then re-forged with its checksum
    /// recomputed, was taken in by the next writer and fsck found nothing.
    @Test func aRecordReforgedAfterACleanCloseIsFoundByTheNextOpen() throws {
        let f = try Fixture()
        defer { f.dir.remove() }
        let store = try f.copy("reforged-after-close")
        for i in 1 ... 3 { #expect(try Self.stele(["put", store, "m/orders", "late-\(i)", "value-\(i)"]).status == 0) }
        let segment = try HostileOperatorTests.lastSegment(store)
        var bytes = try readFile(segment)
        let victim = try #require(HostileOperatorTests.frames(bytes).last)
        #expect(victim.sequence == 2003)
        bytes[victim.offset + victim.length - 10] = UInt8(ascii: "Z")  // "value-3" becomes "valueZ3"
        HostileOperatorTests.refixChecksum(&bytes, frameAt: victim.offset, length: victim.length)
        try writeFile(segment, bytes)
        let put = try Self.stele(["put", store, "m/orders", "after", "x"])
        #expect(put.status == 3 && put.stderr.contains("tiles/state"), "\(put.status) \(put.stderr)")
        let fsck = try Self.stele(["fsck", store])
        #expect(fsck.status == 4 && fsck.stdout.contains("A RECORD WAS ALTERED"), "\(fsck.stdout)")
    }
}
