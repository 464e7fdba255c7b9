import Foundation
import Testing
@testable import Stele
@testable import SteleMirror
import SteleNative

/// An operator with write access to the off-host copy: forging, adding, overwriting, hiding and
/// removing objects. Through the real `stele` binary: `mirror` must call it tampering (exit 3)
/// and upload nothing over it; `restore` must bring back exactly the history the trusted
/// checkpoint covers whenever the copy still holds it, and name every object it ignored or
/// found altered. S3 cases run against the local server (`tools/test.sh` starts it).
@Suite struct HostileCopyTests {
    static func stele(_ arguments: [String], stdin: String? = nil) throws -> CLITests.Run { try CLITests.stele(arguments, stdin: stdin) }

    /// A store of several sealed segments with a checkpoint signed at every seal (the mirror
    /// copies them), the key, and the trusted checkpoint (the latest) kept beside it.
    struct Fixture {
        let dir = TemporaryDirectory()
        var store: String { dir.child("store") }
        var checkpoint: String { dir.child("trusted.checkpoint") }
        var key: String { dir.child("k.pub") }

        init() throws {
            #expect(try stele(["init", store, "--segment-size", "65536"]).status == 0)
            #expect(try stele(["keygen", "--name", "copy.test/log", "--out", dir.child("k")]).status == 0)
            for round in 0 ..< 4 {
                let lines = (0 ..< 300).map { #"{"ns":"m/orders","key":"o-\#(round)-\#($0)","value":"\#(String(repeating: "v", count: 90))"}"# }
                #expect(try stele(["append", store, "--jsonl", "-"], stdin: lines.joined(separator: "\n") + "\n").status == 0)
                #expect(try stele(["checkpoint", store, "--key", dir.child("k.key"), "--seal", "--out", checkpoint]).status == 0)
            }
        }

        func restore(from copy: String, to name: String, _ extra: [String] = []) throws -> CLITests.Run {
            try stele(["restore", "--from", copy, "--to", dir.child(name), "--checkpoint", checkpoint, "--verifier-key", key] + extra)
        }

        /// The records of a store, as `stele read --json` prints them.
        func records(_ path: String) throws -> String {
            let count = try #require((try JSONSerialization.jsonObject(with: Data(try stele(["stats", path, "--json"]).stdout.utf8)) as? [String: Any])?["records"] as? Int)
            return try stele(["read", path, "--from", "0", "--count", "\(count)", "--json"]).stdout
        }
    }

    // MARK: A directory copy

    @Test func forgedAndExtraObjectsAreTamperingToTheMirrorAndIgnoredByTheRestore() throws {
        let f = try Fixture()
        defer { f.dir.remove() }
        let copy = f.dir.child("copy")
        #expect(try Self.stele(["mirror", f.store, "--to", copy]).status == 0)
        let segments = try FileManager.default.contentsOfDirectory(atPath: copy + "/segments").filter { $0.hasSuffix(".seg") }.sorted()
        // A forged segment after the last one (a copy of segment 1 renamed, with its checksum file),
        // and a stray one far beyond.
        let next = UInt64(segments.count + 1)
        let forged = try readFile(copy + "/segments/" + segments[0])
        for index in [next, 99] {
            let name = copy + "/segments/" + SegmentFiles.name(index)
            try Data(forged).write(to: URL(fileURLWithPath: name))
            try Data((hexString(sha256(forged)) + "\n").utf8).write(to: URL(fileURLWithPath: name + ".sha256"))
        }
        let mirror = try Self.stele(["mirror", f.store, "--to", copy])
        #expect(mirror.status == 3 && mirror.stderr.contains("TAMPERED") && mirror.stderr.contains(SegmentFiles.name(99))
            && mirror.stderr.contains(SegmentFiles.name(next)), "\(mirror.stderr)")

        let restore = try f.restore(from: copy, to: "restored")
        #expect(restore.status == 0, "\(restore.stderr)")
        #expect(restore.stdout.contains("segments/" + SegmentFiles.name(99)) && restore.stdout.contains("segments/" + SegmentFiles.name(next)), "\(restore.stdout)")
        #expect(try f.records(f.dir.child("restored")) == f.records(f.store), "exactly the store's records (every one sealed and covered)")
        #expect(try Self.stele(["fsck", f.dir.child("restored"), "--checkpoint", f.checkpoint, "--verifier-key", f.key]).status == 0)
    }

    @Test func anObjectAlteredUnderAnIntactChecksumFileIsNamed() throws {
        let f = try Fixture()
        defer { f.dir.remove() }
        let copy = f.dir.child("copy")
        #expect(try Self.stele(["mirror", f.store, "--to", copy]).status == 0)
        let second = copy + "/segments/" + SegmentFiles.name(2)
        var bytes = try readFile(second)
        bytes[400] ^= 0x01
        try writeFile(second, bytes)  // the .sha256 beside it is left alone
        let mirror = try Self.stele(["mirror", f.store, "--to", copy])
        #expect(mirror.status == 3 && mirror.stderr.contains("segments/" + SegmentFiles.name(2)), "the mirror hashes the file: \(mirror.stderr)")
        let restore = try f.restore(from: copy, to: "restored")
        #expect(restore.status == 3 && restore.stderr.contains("segments/" + SegmentFiles.name(2)) && restore.stderr.contains("SHA-256"), "\(restore.stderr)")
        #expect(!FileManager.default.fileExists(atPath: f.dir.child("restored")))

        // A removed object (its checksum file left behind) is a removal, not a gap to fill again.
        try FileManager.default.removeItem(atPath: second)
        let again = try Self.stele(["mirror", f.store, "--to", copy])
        #expect(again.status == 3 && again.stderr.contains("removed from the copy"), "\(again.stderr)")
        #expect(!FileManager.default.fileExists(atPath: second), "nothing uploaded over it")
    }

    @Test func aCopyThatLostItsLastSegmentsIsTamperingNotARecoveryPoint() throws {
        let f = try Fixture()
        defer { f.dir.remove() }
        let copy = f.dir.child("copy")
        #expect(try Self.stele(["mirror", f.store, "--to", copy]).status == 0)
        let names = try FileManager.default.contentsOfDirectory(atPath: copy + "/segments").filter { $0.hasSuffix(".seg") }.sorted()
        for name in names.suffix(2) {
            try FileManager.default.removeItem(atPath: copy + "/segments/" + name)
            try FileManager.default.removeItem(atPath: copy + "/segments/" + name + ".sha256")
        }
        // The copy's checkpoints cover records its segments no longer hold.
        let mirror = try Self.stele(["mirror", f.store, "--to", copy])
        #expect(mirror.status == 3 && mirror.stderr.contains("segments lost from the copy"), "\(mirror.stderr)")
        // --follow stops on it at once, with the same exit code.
        let follow = try Self.stele(["mirror", f.store, "--to", copy, "--follow", "--interval", "0.05", "--passes", "3"])
        #expect(follow.status == 3)
        // The trusted checkpoint covers segments the copy no longer holds: no restore to it.
        let third = "segments/" + names[names.count - 2]
        let refused = try f.restore(from: copy, to: "refused")
        #expect(refused.status == 3 && refused.stderr.contains("missing") && refused.stderr.contains(third), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: f.dir.child("refused")))
        // To an older trusted checkpoint, a restore brings back what the copy still proves, says
        // that records are missing, and leaves the store unwilling to hand their numbers out again.
        let history = try FileManager.default.contentsOfDirectory(atPath: f.store + "/checkpoints/history").sorted()
        let older = f.store + "/checkpoints/history/" + (try #require(history.first))
        let restore = try Self.stele(["restore", "--from", copy, "--to", f.dir.child("restored"), "--checkpoint", older, "--verifier-key", f.key])
        #expect(restore.status == 0 && restore.stdout.contains("RECORDS LOST FROM THE COPY"), "\(restore.stdout) \(restore.stderr)")
        let put = try Self.stele(["put", f.dir.child("restored"), "m/orders", "after", "x"])
        #expect(put.status == 3 && put.stderr.contains("LOST RECORDS"), "\(put.stderr)")
    }

    // MARK: An S3 copy (moto, 127.0.0.1)

    static var endpoint: String? { ProcessInfo.processInfo.environment["STELE_S3_ENDPOINT"] }

    @Test(.enabled(if: ProcessInfo.processInfo.environment["STELE_S3_ENDPOINT"] != nil, "needs STELE_S3_ENDPOINT"))
    func deleteMarkersAndOverwritesInAnS3CopyAreNamedAndSeenThrough() throws {
        let f = try Fixture()
        defer { f.dir.remove() }
        let endpoint = try #require(Self.endpoint)
        let bucket = "stele-hostile-\(UInt32.random(in: 0 ... .max))"
        let client = try S3MirrorTests.bucket(bucket)
        try Data("[default]\naws_access_key_id = stele-test\naws_secret_access_key = stele-test-secret\n".utf8)
            .write(to: URL(fileURLWithPath: f.dir.child("credentials")))
        let s3 = ["--endpoint", endpoint, "--credentials", f.dir.child("credentials")]
        #expect(try Self.stele(["mirror", f.store, "--to", "s3://\(bucket)/copy", "--retain-days", "1"] + s3).status == 0)
        let before = try f.records(f.store)

        // Someone with the bucket's write credentials hides segment 2 behind a delete marker
        // (allowed: it removes nothing locked) and overwrites segment 1 with a forged version
        // whose recorded checksum matches the forgery.
        let hidden = "copy/segments/" + SegmentFiles.name(2)
        #expect(try client.send(.init(method: "DELETE", key: hidden)).status == 204)
        let forged = Array("forged".utf8)
        let overwrite = try client.send(.init(method: "PUT", key: "copy/segments/" + SegmentFiles.name(1),
                                              headers: ["x-amz-meta-sha256": hexString(sha256(forged)),
                                                        "content-md5": Data(md5(forged)).base64EncodedString()], body: forged))
        #expect(overwrite.status == 200, "\(S3Client.errorText(overwrite))")

        let mirror = try Self.stele(["mirror", f.store, "--to", "s3://\(bucket)/copy", "--retain-days", "1"] + s3)
        #expect(mirror.status == 3 && mirror.stderr.contains("segments/\(SegmentFiles.name(2)): removed from the copy (hidden by a delete marker)")
            && mirror.stderr.contains("segments/\(SegmentFiles.name(1)): 2 versions"), "\(mirror.stderr)")

        let restore = try f.restore(from: "s3://\(bucket)/copy", to: "restored", s3)
        #expect(restore.status == 0, "\(restore.stderr)")
        #expect(restore.stdout.contains("segments/\(SegmentFiles.name(2)) (version") && restore.stdout.contains("delete marker hides"), "\(restore.stdout)")
        #expect(restore.stdout.contains("segments/\(SegmentFiles.name(1)) (version") && restore.stdout.contains("not a valid sealed segment"), "\(restore.stdout)")
        #expect(try f.records(f.dir.child("restored")) == before, "exactly the history the checkpoint covers")
    }
}
