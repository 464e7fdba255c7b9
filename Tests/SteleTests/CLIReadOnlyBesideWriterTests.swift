import Foundation
import Testing
@testable import Stele

/// README: `read`, `stats`, `prove`, `verify` and `leaf` open the store read-only: each runs, as a
/// real `stele` process, beside a writer that holds the store open in this process, and the
/// writer goes on appending afterwards.
@Suite struct CLIReadOnlyBesideWriterTests {
    static func stele(_ arguments: [String]) throws -> CLITests.Run { try CLITests.stele(arguments) }

    static func json(_ run: CLITests.Run) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any], "\(run.stdout) \(run.stderr)")
    }

    @Test func readStatsProveVerifyAndLeafRunBesideAnOpenWriter() throws {
        try withStore { dir, path in
            let signer = try NoteSigner.generate(name: "readers.test/log")
            try writeFile(dir.child("log.pub"), Array((signer.verifier.encoded + "\n").utf8))
            let writer = try Store(path: path)
            // Sealed segments and an active one.
            for batch in 0 ..< 6 { try writer.append(contentsOf: (0 ..< 50).map { testEntry(batch * 50 + $0) }) }
            #expect(try writer.stats().sealedSegments >= 1)
            try writeFile(dir.child("cp"), Array(try writer.checkpoint(signer: signer).utf8))
            let records = writer.recordCount

            // A command that opens for writing is refused: the writer holds the lock.
            let put = try Self.stele(["put", path, "n", "k", "v"])
            #expect(put.status == 1 && put.stderr.contains("locked"), "\(put.status) \(put.stderr)")

            let stats = try Self.stele(["stats", path, "--json"])
            #expect(stats.status == 0 && stats.stderr.isEmpty, "\(stats.stderr)")
            #expect(try Self.json(stats)["records"] as? Int == Int(records))

            let read = try Self.stele(["read", path, "--from", "7", "--count", "1", "--json"])
            #expect(read.status == 0 && read.stderr.isEmpty, "\(read.stderr)")
            #expect(try Self.json(read)["seq"] as? Int == 7)

            let prove = try Self.stele(["prove", path, "--index", "7", "--json"])
            #expect(prove.status == 0 && prove.stderr.isEmpty, "\(prove.stderr)")
            let proof = try Self.json(prove)
            let root = try writer.rootHash().hex
            #expect(proof["tree_size"] as? Int == Int(records) && proof["root"] as? String == root, "\(proof)")

            let leaf = try Self.stele(["leaf", path, "--index", "7", "--json"])
            #expect(leaf.status == 0 && leaf.stderr.isEmpty, "\(leaf.stderr)")
            let leafHash = try writer.leafHash(at: 7).hex
            #expect(try Self.json(leaf)["leaf_hash"] as? String == leafHash)

            let verify = try Self.stele(["verify", path, "--checkpoint", dir.child("cp"), "--verifier-key", dir.child("log.pub")])
            #expect(verify.status == 0 && verify.stdout.hasPrefix("ok: records 0..<\(records) recomputed"), "\(verify.status) \(verify.stdout) \(verify.stderr)")

            // The writer was not disturbed: it appends, seals and closes as before.
            let receipt = try writer.append(contentsOf: (0 ..< 100).map { testEntry(1000 + $0) })
            #expect(receipt.sequences == records ... records + 99)
            try writer.seal()
            try writer.close()
            let reopened = try Store(path: path)
            #expect(reopened.recordCount == records + 100)
            try reopened.close()
            #expect(try Self.stele(["fsck", path]).status == 0)
        }
    }
}
