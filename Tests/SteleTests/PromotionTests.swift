import Foundation
import Testing
@testable import Stele
@testable import SteleMirror

/// Failover through the copy, by the CLI (issue 21, first steps): a standby restored from the
/// copy is promoted; the old primary, back, cannot add a record to the copy or to itself; the
/// promoted store extends the same log, which a restore checks against the old checkpoint.
@Suite struct PromotionTests {
    /// Runs `stele` in `directory`, expecting `status`.
    static func run(_ arguments: [String], in directory: String, status: Int32 = 0) throws -> CLITests.Run {
        let result = try CLITests.stele(arguments, in: directory)
        #expect(result.status == status, "stele \(arguments.joined(separator: " ")): \(result.status) \(result.stderr)")
        return result
    }

    @Test func aPromotedStandbyFencesTheOldPrimaryAndExtendsTheLog() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        func run(_ arguments: [String], status: Int32 = 0) throws -> CLITests.Run { try Self.run(arguments, in: dir.path, status: status) }
        _ = try run(["keygen", "--name", "failover.test/log", "--out", "log"])
        _ = try run(["init", "primary", "--origin", "failover.test/log"])
        for n in 0 ..< 5 { _ = try run(["put", "primary", "orders", "k\(n)", "v\(n)"]) }
        _ = try run(["checkpoint", "primary", "--key", "log.key", "--seal", "--out", "trusted"])
        _ = try run(["mirror", "primary", "--to", "copy"])
        _ = try run(["restore", "--from", "copy", "--to", "standby", "--checkpoint", "trusted", "--verifier-key", "log.pub"])

        let promoted = try run(["promote", "standby", "--copy", "copy"])
        #expect(promoted.stdout.contains("writer epoch 2 from record"), "\(promoted.stdout)")
        let copy = DirectoryTarget(root: dir.child("copy"))
        let storeID = try Store(path: dir.child("standby"), options: .init(readOnly: true)).config.storeID
        #expect(try WriterEpoch.claims(in: copy, storeID: storeID).map(\.epoch) == [1, 2])
        // Promoting again, or promoting the other one, claims nothing it should not.
        _ = try run(["promote", "standby", "--copy", "copy"])
        #expect(try WriterEpoch.claims(in: copy, storeID: storeID).map(\.epoch) == [1, 2], "a second promotion of the same store is idempotent")

        // The old primary comes back after the partition: it seals more records, but its mirror
        // adds nothing to the copy, and it is refused as a writer from then on.
        let segmentsBefore = try copy.list(prefix: "segments/").map(\.name)
        _ = try run(["put", "primary", "orders", "late", "fork"])
        _ = try run(["checkpoint", "primary", "--key", "log.key", "--seal"])
        let fenced = try run(["mirror", "primary", "--to", "copy"], status: 1)
        #expect(fenced.stderr.contains("fenced"), "\(fenced.stderr)")
        #expect(try copy.list(prefix: "segments/").map(\.name) == segmentsBefore, "not a single record of the old primary reached the copy")
        let refused = try run(["put", "primary", "orders", "later", "x"], status: 1)
        #expect(refused.stderr.contains("fenced"), "\(refused.stderr)")

        // The promoted store writes on, signs, mirrors; a restore of the copy checks its records
        // against the checkpoint the old primary signed (consistency), and reads the new ones.
        _ = try run(["put", "standby", "orders", "after", "failover"])
        _ = try run(["checkpoint", "standby", "--key", "log.key", "--seal"])
        _ = try run(["mirror", "standby", "--to", "copy"])
        _ = try run(["restore", "--from", "copy", "--to", "again", "--checkpoint", "trusted", "--verifier-key", "log.pub"])
        #expect(try run(["get", "again", "orders", "after"]).stdout.contains("failover"))
        #expect(try run(["get", "again", "orders", "k3"]).stdout.contains("v3"))
        _ = try run(["get", "again", "orders", "late"], status: 1)
    }

    @Test func aStoreThatLacksSegmentsOfTheCopyIsNotPromoted() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        func run(_ arguments: [String], status: Int32 = 0) throws -> CLITests.Run { try Self.run(arguments, in: dir.path, status: status) }
        _ = try run(["keygen", "--name", "lag.test/log", "--out", "log"])
        _ = try run(["init", "primary", "--origin", "lag.test/log"])
        _ = try run(["put", "primary", "orders", "a", "1"])
        _ = try run(["checkpoint", "primary", "--key", "log.key", "--seal", "--out", "trusted"])
        _ = try run(["mirror", "primary", "--to", "copy"])
        _ = try run(["restore", "--from", "copy", "--to", "standby", "--checkpoint", "trusted", "--verifier-key", "log.pub"])
        // The primary seals another segment into the copy after the standby was restored.
        _ = try run(["put", "primary", "orders", "b", "2"])
        _ = try run(["checkpoint", "primary", "--key", "log.key", "--seal"])
        _ = try run(["mirror", "primary", "--to", "copy"])
        let refused = try run(["promote", "standby", "--copy", "copy"], status: 1)
        #expect(refused.stderr.contains("would fork the log"), "\(refused.stderr)")
        let storeID = try Store(path: dir.child("standby"), options: .init(readOnly: true)).config.storeID
        #expect(try WriterEpoch.claims(in: DirectoryTarget(root: dir.child("copy")), storeID: storeID).map(\.epoch) == [1])
    }

    /// The failover by the CLI with a following standby: `stele standby --follow` installs what
    /// the primary's mirror ships; `stele promote` asks it to promote in its own process; the
    /// promoted store takes writes and the old primary's mirror is fenced.
    @Test func aFollowingStandbyIsPromotedInItsOwnProcess() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        func run(_ arguments: [String], status: Int32 = 0) throws -> CLITests.Run { try Self.run(arguments, in: dir.path, status: status) }
        _ = try run(["keygen", "--name", "follow.test/log", "--out", "log"])
        _ = try run(["init", "primary", "--origin", "follow.test/log"])
        _ = try run(["put", "primary", "orders", "first", "1"])
        _ = try run(["checkpoint", "primary", "--key", "log.key", "--seal", "--out", "trusted"])
        _ = try run(["mirror", "primary", "--to", "copy"])

        let follower = Process()
        follower.executableURL = URL(fileURLWithPath: URL(fileURLWithPath: ProcessCrashTests.childPath).deletingLastPathComponent().appendingPathComponent("stele").path)
        follower.arguments = ["standby", "--from", "copy", "--to", "standby", "--checkpoint", "trusted", "--verifier-key", "log.pub",
                              "--follow", "--interval", "0.2"]
        follower.currentDirectoryURL = URL(fileURLWithPath: dir.path)
        let output = Pipe()
        follower.standardOutput = output
        follower.standardError = output
        try follower.run()
        defer { if follower.isRunning { follower.terminate() } }

        // The primary writes and seals on; its mirror ships; the standby serves it once proven.
        _ = try run(["put", "primary", "orders", "second", "2"])
        _ = try run(["checkpoint", "primary", "--key", "log.key", "--seal"])
        _ = try run(["mirror", "primary", "--to", "copy"])
        var served = false
        for _ in 0 ..< 200 where !served {
            served = try CLITests.stele(["get", "standby", "orders", "second"], in: dir.path).stdout.contains("2")
            if !served { Thread.sleep(forTimeInterval: 0.1) }
        }
        #expect(served, "the standby installed the primary's new segment")
        _ = try run(["put", "standby", "orders", "x", "y"], status: 1)  // held by the follower, and fenced

        let promoted = try run(["promote", "standby", "--copy", "copy"])
        #expect(promoted.stdout.contains("writer epoch 2 from record"), "\(promoted.stdout)")
        follower.waitUntilExit()
        let log = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(follower.terminationStatus == 0, "\(log)")
        #expect(log.contains("installed 1 segments"), "\(log)")

        _ = try run(["put", "standby", "orders", "after", "failover"])
        _ = try run(["put", "primary", "orders", "late", "fork"])
        _ = try run(["checkpoint", "primary", "--key", "log.key", "--seal"])
        let fenced = try run(["mirror", "primary", "--to", "copy"], status: 1)
        #expect(fenced.stderr.contains("fenced"), "\(fenced.stderr)")
        // Asked again, with nobody following: the store already holds the epoch.
        _ = try run(["promote", "standby", "--copy", "copy"])
    }
}
