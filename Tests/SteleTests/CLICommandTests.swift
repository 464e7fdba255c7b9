import Foundation
import Glibc
import Testing
@testable import Stele
import SteleNative

/// The subcommands the other CLI suites leave out (governance keys, holds, migration) and the
/// exit codes README documents that they do not reach: fsck's 8, and 4 for an I/O error.
@Suite struct CLICommandTests {
    static func stele(_ arguments: [String], stdin: String? = nil) throws -> CLITests.Run { try CLITests.stele(arguments, stdin: stdin) }

    static func treeSize(_ store: String) throws -> String {
        let stats = try Self.stele(["stats", store, "--json"])
        let json = try JSONSerialization.jsonObject(with: Data(stats.stdout.utf8)) as? [String: Any]
        let size = try #require(json?["tree_size"] as? Int, "\(stats.stdout)")
        return String(size)
    }

    @Test func theGovernanceKeyChangesOnlyUnderANoteByTheKeyInForce() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = dir.child("s"), origin = "example.com/ledger"
        for name in ["a", "b"] { #expect(try Self.stele(["keygen", "--name", "gov/\(name)", "--out", dir.child(name)]).status == 0) }
        #expect(try Self.stele(["init", store, "--segment-size", "65536", "--origin", origin, "--governance-key", dir.child("a.pub")]).status == 0)
        #expect(try Self.stele(["put", store, "ledger", "e-1", "100"]).status == 0)

        // Signed by a key not in force: refused, nothing changes.
        let byB = try Self.stele(["authorize-key", "--signer", dir.child("b.key"), "--origin", origin, "--to", dir.child("b.pub"),
                                  "--as-of", try Self.treeSize(store)])
        #expect(byB.status == 0 && byB.stdout.hasPrefix("stele-governance-key v1\n"))
        try writeFile(dir.child("by-b.note"), Array(byB.stdout.utf8))
        let refused = try Self.stele(["governance-key", store, "--to", dir.child("b.pub"), "--authorization", dir.child("by-b.note")])
        #expect(refused.status == 1 && refused.stderr.contains("gov/a"), "\(refused.status) \(refused.stderr)")

        // Signed by the key in force: the change is a record, and the old note cannot be replayed.
        let byA = try Self.stele(["authorize-key", "--signer", dir.child("a.key"), "--origin", origin, "--to", dir.child("b.pub"),
                                  "--as-of", try Self.treeSize(store)])
        try writeFile(dir.child("by-a.note"), Array(byA.stdout.utf8))
        let changed = try Self.stele(["governance-key", store, "--to", dir.child("b.pub"), "--authorization", dir.child("by-a.note")])
        #expect(changed.status == 0 && UInt64(changed.stdout.trimmingCharacters(in: .newlines)) != nil, "\(changed.stderr)")
        let replayed = try Self.stele(["governance-key", store, "--to", dir.child("b.pub"), "--authorization", dir.child("by-a.note")])
        #expect(replayed.status == 1 && replayed.stderr.contains("gov/b"), "\(replayed.stderr)")
        let store2 = try Store(path: store, options: .init(readOnly: true))
        #expect(store2.governanceKey?.name == "gov/b")
        try store2.close()

        // The new key retires itself; a note for another origin is refused first.
        let elsewhere = try Self.stele(["authorize-key", "--signer", dir.child("b.key"), "--origin", "example.com/other", "--to", "none",
                                        "--as-of", try Self.treeSize(store)])
        try writeFile(dir.child("elsewhere.note"), Array(elsewhere.stdout.utf8))
        let wrongOrigin = try Self.stele(["governance-key", store, "--to", "none", "--authorization", dir.child("elsewhere.note")])
        #expect(wrongOrigin.status == 1 && wrongOrigin.stderr.contains("does not match"), "\(wrongOrigin.stderr)")
        let retire = try Self.stele(["authorize-key", "--signer", dir.child("b.key"), "--origin", origin, "--to", "none",
                                     "--as-of", try Self.treeSize(store)])
        try writeFile(dir.child("retire.note"), Array(retire.stdout.utf8))
        #expect(try Self.stele(["governance-key", store, "--to", "none", "--authorization", dir.child("retire.note")]).status == 0)
        #expect(try Self.stele(["fsck", store]).status == 0)
    }

    @Test func aLegalHoldKeepsSupersededVersionsFromPurgeUntilReleased() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = dir.child("s")
        #expect(try Self.stele(["init", store, "--segment-size", "65536"]).status == 0)
        let draft = try Self.stele(["put", store, "orders", "o-1", "draft"]).stdout.trimmingCharacters(in: .newlines)
        #expect(try Self.stele(["put", store, "orders", "o-1", "final"]).status == 0)
        #expect(try Self.stele(["hold", store, "orders", "o-1", "--on"]).status == 2, "a reason is required")
        #expect(try Self.stele(["hold", store, "orders", "o-1", "--on", "--off", "--reason", "x"]).status != 0, "one of --on and --off")
        #expect(try Self.stele(["hold", store, "orders", "nothing", "--on", "--reason", "x"]).status == 1, "no such key")
        #expect(try Self.stele(["hold", store, "orders", "o-1", "--on", "--reason", "case 9"]).status == 0)
        #expect(try Self.stele(["history", store, "orders", "o-1"]).stdout.contains("[legal hold: case 9]"))

        func purge(_ extra: [String] = []) throws -> [String: Any] {
            let run = try Self.stele(["purge", store, "--json"] + extra)
            #expect(run.status == 0, "\(run.stderr)")
            return try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        }
        let held = try purge()
        #expect(held["purged"] as? Int == 0 && held["still_protected"] as? Int == 1, "\(held)")
        #expect(try Self.stele(["get", store, "orders", "o-1", "--at", draft]).stdout == "draft", "version \(draft)")

        #expect(try Self.stele(["hold", store, "orders", "o-1", "--off", "--reason", "case 9 closed"]).status == 0)
        #expect(try purge(["--dry-run"])["purged"] as? Int == 1)
        let released = try purge()
        #expect(released["purged"] as? Int == 1 && released["still_protected"] as? Int == 0, "\(released)")
        #expect(try Self.stele(["get", store, "orders", "o-1"]).stdout == "final")
        let purged = try Self.stele(["get", store, "orders", "o-1", "--at", draft])
        #expect(purged.status == 1 && purged.stdout.isEmpty && purged.stderr.contains("version \(draft) was purged"), "\(purged.stderr)")
        let record = try Self.stele(["read", store, "--from", draft, "--json"])
        let redacted = CLITests.jsonObject(record.stdout)
        #expect(record.status == 0 && redacted?["redacted_leaf_hash"] is String && redacted?["value"] == nil, "\(record.stdout)")
        #expect(try Self.stele(["read", store, "--from", draft]).stdout.hasSuffix("\t(redacted)\n"))
        #expect(try Self.stele(["fsck", store]).status == 0)
    }

    @Test func aStoreFromBeforeConfigRecordsIsMigratedOnce() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = dir.child("old")
        try Store.create(at: store, segmentSize: 64 * 1024, origin: "example.com/old", governanceKey: nil,
                         fileSystem: PosixFileSystem(), clock: SystemClock(), legacy: true)
        let refused = try Self.stele(["put", store, "n", "k", "v"])
        #expect(refused.status == 1 && refused.stderr.contains("migrate"), "\(refused.stderr)")
        let migrated = try Self.stele(["migrate", store])
        #expect(migrated.status == 0 && migrated.stdout.contains("0"), "\(migrated.stdout) \(migrated.stderr)")
        #expect(try Self.stele(["put", store, "n", "k", "v"]).status == 0)
        let again = try Self.stele(["migrate", store])
        #expect(again.status == 1 && again.stderr.contains("nothing to migrate"), "\(again.stderr)")
        #expect(try Self.stele(["fsck", store]).status == 0)
    }

    @Test func fsckExitsEightWhenItCannotCheckAndCountsNothingInFlightBesideAWriter() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let missing = try Self.stele(["fsck", dir.child("nothing-here")])
        #expect(missing.status == 8 && missing.stderr.hasPrefix("stele fsck:"), "\(missing.status) \(missing.stderr)")
        try writeFile(dir.child("a-file"), [1, 2, 3])
        #expect(try Self.stele(["fsck", dir.child("a-file")]).status == 8)

        let store = dir.child("s")
        #expect(try Self.stele(["init", store, "--segment-size", "65536"]).status == 0)
        let writer = try Store(path: store)
        try writer.put(namespace: "n", key: "k", value: "v")
        try writeFile(store + "/segments/stray", [1])
        let beside = try Self.stele(["fsck", store])
        #expect(beside.status == 0 && beside.stdout.contains("in flight?") && beside.stderr.contains("a writer had the store open"),
                "\(beside.status) \(beside.stdout) \(beside.stderr)")
        let json = try Self.stele(["fsck", store, "--json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(object["writer_active"] as? Bool == true && (object["in_flight"] as? [String])?.count == 1, "\(json.stdout)")
        let repair = try Self.stele(["fsck", store, "--repair"])
        #expect(repair.status == 8 && repair.stderr.contains(store), "\(repair.status) \(repair.stderr)")
        try writer.close()
        let closed = try Self.stele(["fsck", store])
        #expect(closed.status == 4 && closed.stdout.contains("segments/stray"), "\(closed.status) \(closed.stdout)")
    }

    /// `checkpoint --out` and `restore --report` replace their file whole (the engine's
    /// `writeAtomically`): a longer file already there leaves no tail, and no `.tmp` stays.
    @Test func checkpointOutAndRestoreReportReplaceAnExistingFileWhole() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = dir.child("s"), checkpoint = dir.child("cp"), report = dir.child("report.json")
        #expect(try Self.stele(["init", store, "--segment-size", "65536"]).status == 0)
        #expect(try Self.stele(["put", store, "n", "k", "v"]).status == 0)
        #expect(try Self.stele(["keygen", "--name", "t/log", "--out", dir.child("k")]).status == 0)
        let stale = Array(repeating: UInt8(ascii: "x"), count: 10_000)
        for path in [checkpoint, report] { try writeFile(path, stale) }

        let signed = try Self.stele(["checkpoint", store, "--key", dir.child("k.key"), "--seal", "--out", checkpoint])
        #expect(signed.status == 0 && signed.stdout.isEmpty, "\(signed.stderr)")
        let latest = try Self.stele(["checkpoint", store]).stdout, written = String(decoding: try readFile(checkpoint), as: UTF8.self)
        #expect(!latest.isEmpty && written == latest, "\(written.prefix(80))")

        #expect(try Self.stele(["mirror", store, "--to", dir.child("copy")]).status == 0)
        let restore = try Self.stele(["restore", "--from", dir.child("copy"), "--to", dir.child("restored"), "--checkpoint", checkpoint,
                                      "--verifier-key", dir.child("k.pub"), "--report", report, "--json"])
        #expect(restore.status == 0, "\(restore.stderr)")
        #expect(String(decoding: try readFile(report), as: UTF8.self) == restore.stdout, "the report is what --json prints")
        #expect(CLITests.jsonObject(restore.stdout)?["tree_size"] as? Int == 2, "the genesis and the put: \(restore.stdout)")
        for path in [checkpoint, report] { #expect(!FileManager.default.fileExists(atPath: path + ".tmp")) }
    }

    /// An I/O error exits 4: the file-size limit (with SIGXFSZ ignored, so the write fails with
    /// EFBIG instead of killing the process) makes `init`'s first segment impossible to allocate.
    @Test func anIOErrorExitsFour() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let binary = URL(fileURLWithPath: ProcessCrashTests.childPath).deletingLastPathComponent().appendingPathComponent("stele").path
        let store = dir.child("s")
        let limited = try CLITests.run("/bin/bash", ["-c", "trap '' XFSZ; ulimit -f 32; exec \"$0\" \"$@\"",
                                                     binary, "init", store, "--segment-size", "65536"])
        #expect(limited.status == 4 && limited.stderr.contains("errno \(EFBIG)"),
                "\(limited.status) \(limited.stderr)")
        // Nothing half-made is left in the way of the next `init`.
        #expect(!FileManager.default.fileExists(atPath: store))
        #expect(try Self.stele(["init", store, "--segment-size", "65536"]).status == 0, "the same directory, without the limit")
    }
}
