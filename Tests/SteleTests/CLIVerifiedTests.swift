import Foundation
import Testing
@testable import Stele

/// The README's verification commands that take a checkpoint held elsewhere, through the real
/// `stele` binary: `verify --tiles-only` and `get --verified`, each against a trusted checkpoint
/// and against a history rewritten with every hash, seal and tile recomputed.
@Suite struct CLIVerifiedTests {
    static func stele(_ arguments: [String], stdin: String? = nil) throws -> CLITests.Run { try CLITests.stele(arguments, stdin: stdin) }

    /// Two stores of one identity (one genesis, one origin): `honest` with 600 records, and
    /// `forged`, the same history with record 18 ("acct-17") rewritten and every hash, seal and
    /// tile recomputed by the store itself, signed at 601 records (`cp-forged`) and then grown by
    /// 100 more. `cp` is the honest checkpoint at 601 records, held elsewhere; `k.pub` verifies
    /// both (the attacker holds the signing key too: only the checkpoint held elsewhere tells).
    struct Fixture {
        let dir = TemporaryDirectory()
        var honest: String { dir.child("honest") }
        var forged: String { dir.child("forged") }
        var checkpoint: String { dir.child("cp") }
        var forgedCheckpoint: String { dir.child("cp-forged") }
        var key: String { dir.child("k.pub") }

        init() throws {
            #expect(try stele(["init", dir.child("honest"), "--segment-size", "65536", "--origin", "example.com/ledger"]).status == 0)
            try FileManager.default.copyItem(atPath: dir.child("honest"), toPath: dir.child("forged"))
            #expect(try stele(["keygen", "--name", "example.com/ledger", "--out", dir.child("k")]).status == 0)
            func lines(_ range: Range<Int>, rewriting: Int? = nil) -> String {
                range.map { #"{"ns":"ledger","key":"acct-\#($0)","value":"amount \#($0 == rewriting ? 99 : $0)"}"# }.joined(separator: "\n") + "\n"
            }
            #expect(try stele(["append", dir.child("honest"), "--jsonl", "-"], stdin: lines(0 ..< 600)).stdout == "600\n")
            // Sealed, so that its records are read from a sealed segment, as most are.
            #expect(try stele(["checkpoint", dir.child("honest"), "--key", dir.child("k.key"), "--seal", "--out", dir.child("cp")]).status == 0)
            #expect(try stele(["append", dir.child("forged"), "--jsonl", "-"], stdin: lines(0 ..< 600, rewriting: 17)).stdout == "600\n")
            #expect(try stele(["checkpoint", dir.child("forged"), "--key", dir.child("k.key"), "--out", dir.child("cp-forged")]).status == 0)
            #expect(try stele(["append", dir.child("forged"), "--jsonl", "-"], stdin: lines(600 ..< 700)).stdout == "700\n")
        }

        /// The root a checkpoint file signs, in hex.
        func root(_ checkpoint: String) throws -> String {
            let lines = try String(contentsOfFile: checkpoint, encoding: .utf8).split(separator: "\n")
            return try #require(Data(base64Encoded: String(lines[2]))).map { String(format: "%02x", $0) }.joined()
        }
    }

    @Test func verifyTilesOnlyFailsWhenTheTilesDoNotExtendTheCheckpoint() throws {
        let f = try Fixture()
        defer { f.dir.remove() }
        // The rewrite is consistent: the store's own checks find nothing.
        #expect(try Self.stele(["fsck", f.forged]).status == 0)
        let honest = try Self.stele(["verify", f.honest, "--checkpoint", f.checkpoint, "--verifier-key", f.key, "--tiles-only"])
        #expect(honest.status == 0 && honest.stdout.hasPrefix("ok (tiles only): the tiles of the store (601 records) extend the checkpoint")
            && honest.stdout.contains("not checked: the records themselves were not read"), "\(honest.stdout)")
        // The forged store's tiles (701 leaves) are not an extension of the honest tree at 601.
        let forged = try Self.stele(["verify", f.forged, "--checkpoint", f.checkpoint, "--verifier-key", f.key, "--tiles-only"])
        let root = try f.root(f.checkpoint)
        #expect(forged.status == 3 && forged.stderr.contains("HISTORY WAS REWRITTEN: at tree size 601 the checkpoint's root is \(root)"),
                "\(forged.status) \(forged.stderr)")
        #expect(!forged.stdout.contains("ok"), "\(forged.stdout)")
        // The forged store's own checkpoint passes: the tiles cannot tell which history is true.
        #expect(try Self.stele(["verify", f.forged, "--checkpoint", f.forgedCheckpoint, "--verifier-key", f.key, "--tiles-only"]).status == 0)
    }

    @Test func getVerifiedProvesTheValueAndRefusesAWrongCheckpointOrKey() throws {
        let f = try Fixture()
        defer { f.dir.remove() }
        let get = { (store: String, checkpoint: String, key: String?) in
            try Self.stele(["get", store, "ledger", "acct-17", "--verified", "--checkpoint", checkpoint] + (key.map { ["--verifier-key", $0] } ?? []))
        }
        let ok = try get(f.honest, f.checkpoint, f.key)
        #expect(ok.status == 0 && ok.stdout == "amount 17", "\(ok.status) \(ok.stderr)")
        let root = try f.root(f.checkpoint)
        #expect(ok.stderr == "verified: version 18 is leaf 18 of tree size 601, root \(root)\n", "\(ok.stderr)")
        // Without a key the proof is still checked, and the output says the signature was not.
        let unsigned = try get(f.honest, f.checkpoint, nil)
        #expect(unsigned.status == 0 && unsigned.stdout == "amount 17" && unsigned.stderr.contains("checkpoint signature not checked"))

        // A key that did not sign the checkpoint, and a checkpoint edited after signing: refused (1).
        #expect(try Self.stele(["keygen", "--name", "example.com/ledger", "--out", f.dir.child("other")]).status == 0)
        let wrongKey = try get(f.honest, f.checkpoint, f.dir.child("other.pub"))
        #expect(wrongKey.status == 1 && wrongKey.stdout.isEmpty && wrongKey.stderr.contains("no signature by example.com/ledger"), "\(wrongKey.stderr)")
        let note = try String(contentsOfFile: f.checkpoint, encoding: .utf8)
        try writeFile(f.dir.child("cp-edited"), Array(note.replacingOccurrences(of: "\n601\n", with: "\n600\n").utf8))
        let edited = try get(f.honest, f.dir.child("cp-edited"), f.key)
        #expect(edited.status == 1 && edited.stdout.isEmpty && edited.stderr.contains("does not verify"), "\(edited.stderr)")

        // Another history (validly signed) against the honest store, and the honest checkpoint
        // against the rewritten store: the roots differ (3), and no value is printed.
        let rewritten = try get(f.honest, f.forgedCheckpoint, f.key)
        #expect(rewritten.status == 3 && rewritten.stdout.isEmpty && rewritten.stderr.contains("HISTORY WAS REWRITTEN: at tree size 601"), "\(rewritten.stderr)")
        let forged = try get(f.forged, f.checkpoint, f.key)
        #expect(forged.status == 3 && forged.stdout.isEmpty && forged.stderr.contains("HISTORY WAS REWRITTEN: at tree size 601"), "\(forged.stderr)")
        // A checkpoint larger than the store: records are missing (3).
        #expect(try Self.stele(["checkpoint", f.forged, "--key", f.dir.child("k.key"), "--out", f.dir.child("cp-701")]).status == 0)
        let behind = try get(f.honest, f.dir.child("cp-701"), f.key)
        #expect(behind.status == 3 && behind.stderr.contains("THE STORE HAS LOST DATA: the checkpoint covers 701 records, the store holds only 601"),
                "\(behind.stderr)")

        // The proof is checked against the value itself: a record re-forged (checksum recomputed)
        // after its tiles were written is refused, though the tiles still prove the old leaf.
        let segment = segmentPath(f.honest, 1)
        var bytes = try readFile(segment)
        let victim = try #require(HostileOperatorTests.frames(bytes).first { $0.sequence == 18 })
        let value = try #require(bytes[victim.offset ..< victim.offset + victim.length].firstRange(of: Array("amount 17".utf8)))
        bytes.replaceSubrange(value, with: Array("amount 99".utf8))
        HostileOperatorTests.refixChecksum(&bytes, frameAt: victim.offset, length: victim.length)
        try writeFile(segment, bytes)
        let reforged = try get(f.honest, f.checkpoint, f.key)
        #expect(reforged.status == 3 && reforged.stdout.isEmpty
            && reforged.stderr == "stele: corruption: \(f.honest)/tiles: tiles disagree with the log: inclusion proof of leaf 18 in tree size 601 "
                + "does not verify; run `stele fsck` on the store\n", "\(reforged.status) \(reforged.stdout) \(reforged.stderr)")
    }
}
