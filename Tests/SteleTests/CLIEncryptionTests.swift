import Foundation
import Testing
@testable import Stele

/// The real `stele` binary on an encrypted store: `init --encryption-key`, the key from the
/// option or from `STELE_ENCRYPTION_KEY_FILE` for what writes or reads values, a clear refusal
/// without it, and the commands that work on ciphertext (fsck, verify, prove, leaf) without it.
@Suite struct CLIEncryptionTests {
    static func stele(_ arguments: [String], stdin: String? = nil, environment: [String: String] = [:]) throws -> CLITests.Run {
        try CLITests.stele(arguments, stdin: stdin, environment: environment)
    }

    @Test func anEncryptedStoreThroughTheCommandLine() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = dir.child("store"), master = dir.child("master.key"), other = dir.child("other.key")
        #expect(try Self.stele(["keygen", "--encryption", "--out", master]).status == 0)
        #expect(try Self.stele(["keygen", "--encryption", "--out", other]).status == 0)
        let created = try Self.stele(["init", store, "--encryption-key", master, "--segment-size", "65536"])
        #expect(created.status == 0 && created.stdout.contains("encrypted under master key"), "\(created)")

        let withKey = ["--encryption-key", master]
        #expect(try Self.stele(["put", store, "acme", "order-SECRETKEY-1", "SECRETVALUE-1"] + withKey).status == 0)
        let lines = (0 ..< 200).map { #"{"ns":"acme","key":"order-SECRETKEY-\#($0 + 2)","value":"SECRETVALUE-\#($0 + 2)"}"# }
        #expect(try Self.stele(["append", store, "--jsonl", "-"] + withKey, stdin: lines.joined(separator: "\n") + "\n").status == 0)
        let environment = ["STELE_ENCRYPTION_KEY_FILE": master]
        let got = try Self.stele(["get", store, "acme", "order-SECRETKEY-1"], environment: environment)
        #expect(got.status == 0 && got.stdout.contains("SECRETVALUE-1"), "\(got)")
        let history = try Self.stele(["history", store, "acme", "order-SECRETKEY-150"] + withKey)
        #expect(history.status == 0 && history.stdout.contains("SECRETVALUE-150"), "\(history)")
        let read = try Self.stele(["read", store, "--from", "1", "--count", "1", "--json"] + withKey)
        #expect(read.status == 0 && read.stdout.contains("order-SECRETKEY-1") && read.stdout.contains("SECRETVALUE-1"), "\(read)")

        // Without the key: refused, exit 1, saying what to give.
        let refused = try Self.stele(["get", store, "acme", "order-SECRETKEY-1"])
        #expect(refused.status == 1 && refused.stderr.contains("STELE_ENCRYPTION_KEY_FILE"), "\(refused)")
        #expect(try Self.stele(["put", store, "acme", "k", "v"]).status == 1)
        let wrong = try Self.stele(["get", store, "acme", "order-SECRETKEY-1", "--encryption-key", other])
        #expect(wrong.status == 1 && wrong.stderr.contains("wrong encryption key"), "\(wrong)")

        // What works on ciphertext needs no key.
        let fsck = try Self.stele(["fsck", store])
        #expect(fsck.status == 0, "\(fsck)")
        #expect(try Self.stele(["prove", store, "--index", "5"]).status == 0)
        #expect(try Self.stele(["leaf", store, "--index", "5"]).status == 0)
        #expect(try EncryptedStoreTests.filesHolding(["SECRETKEY", "SECRETVALUE"], under: store) == [])

        // Shredded: the namespace is gone for every reader; the log still checks out.
        let shred = try Self.stele(["shred", store, "acme", "--reason", "erasure request 7"] + withKey)
        #expect(shred.status == 0 && shred.stdout.contains("shredded namespace acme"), "\(shred)")
        let gone = try Self.stele(["get", store, "acme", "order-SECRETKEY-1"] + withKey)
        #expect(gone.status == 1 && gone.stderr.contains("shredded at"), "\(gone)")
        #expect(try Self.stele(["shred", store, "acme", "--reason", "again"] + withKey).status == 1)
        let scan = try Self.stele(["scan", store, "acme"] + withKey)
        #expect(scan.status == 1 && scan.stdout.components(separatedBy: "(shredded)").count - 1 == 201 && scan.stderr.contains("shredded at"),
                "\(scan.status) \(scan.stderr)")
        #expect(try Self.stele(["fsck", store]).status == 0)
    }
}
