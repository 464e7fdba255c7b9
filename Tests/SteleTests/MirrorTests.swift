import Foundation
import Glibc
import Testing
@testable import Stele
@testable import SteleMirror
import SteleNative

/// Off-host copies and verified restores, with a directory target (S3: `S3MirrorTests`).
@Suite struct MirrorTests {
    /// A store with a few sealed segments, a signed checkpoint at every seal, and some records
    /// in the active segment (not mirrored: the recovery point is the last seal).
    static func makeStore(_ path: String, signer: NoteSigner) throws {
        try Store.create(at: path, segmentSize: 64 * 1024)
        let store = try Store(path: path, options: .init(commitPolicy: .none, checkpointSigner: signer))
        for round in 0 ..< 4 {
            try store.append(contentsOf: (0 ..< 100).map { testEntry(round * 100 + $0) })
            try store.seal()
        }
        try store.append(contentsOf: (400 ..< 420).map { testEntry($0) })
        try store.close()
    }

    static func latestCheckpoint(_ path: String) throws -> String {
        String(decoding: try readFile(path + "/checkpoints/checkpoint"), as: UTF8.self)
    }

    @Test func mirrorThenRestoreBringsBackEverySealedRecordAndProvesIt() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let signer = try NoteSigner.generate(name: "mirror.test/log")
        let primary = dir.child("primary")
        try Self.makeStore(primary, signer: signer)
        let target = DirectoryTarget(root: dir.child("offsite"))
        let mirror = Mirror(storePath: primary, target: target)
        let first = try mirror.runOnce()
        // The store's identity is in its log (record 0): a restore needs no config file from the copy.
        #expect(!first.uploaded.contains("stele.conf"))
        #expect(first.uploaded.filter { $0.hasPrefix("segments/") }.count >= 4)
        #expect(first.lagRecords == 20 && first.recordsInStore == first.recordsOffHost + 20)
        #expect(first.checkpointOffHost == first.recordsOffHost)
        // Objects are read-only files.
        let segment = dir.child("offsite/segments/000000000001.seg")
        #expect(try FileManager.default.attributesOfItem(atPath: segment)[.posixPermissions] as? Int == 0o444)

        // Tiles rebuilt by the mirror from the records equal the store's own: the full level-0
        // tile (in the store's pack) and every tile file the store wrote that the copy also has.
        let pack = try readFile(primary + "/tiles/" + TileStore.packPath(0))
        #expect(try target.get("tiles/tile/0/000") == Array(pack.prefix(256 * 32)))
        var compared = 0
        for name in try FileManager.default.subpathsOfDirectory(atPath: primary + "/tiles/tile") {
            var isDirectory: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: primary + "/tiles/tile/" + name, isDirectory: &isDirectory)
            guard !isDirectory.boolValue, try target.head("tiles/tile/" + name) != nil else { continue }
            #expect(try target.get("tiles/tile/" + name) == readFile(primary + "/tiles/tile/" + name), "tile/\(name)")
            compared += 1
        }
        #expect(compared >= 1)
        #expect(first.uploaded.contains("tiles/tile/0/001.p/145"), "the partial tile of the checkpoint at 401 leaves")

        // A second pass (a restarted mirror) sends nothing and verifies what is there.
        let again = try Mirror(storePath: primary, target: target).runOnce()
        #expect(again.uploaded.isEmpty && again.verified == first.uploaded.count)

        // The primary is gone; the checkpoint was kept outside.
        let checkpoint = try Self.latestCheckpoint(primary)
        removeTree(primary)
        let restored = dir.child("restored")
        let report = try Restore.run(from: target, to: restored, checkpoint: checkpoint, verifier: signer.verifier)
        #expect(report.treeSize == first.recordsOffHost && report.checkpointSize == first.recordsOffHost)
        let store = try Store(path: restored)
        #expect(store.recordCount == first.recordsOffHost)
        for n in 0 ..< 400 {
            let version = try store.get(namespace: testEntry(n).namespaceString, key: testEntry(n).key)
            #expect(version?.value == testEntry(n).value)
        }
        try store.append(testEntry(1000))
        try store.close()
        #expect(try Fsck.check(path: restored).problems.isEmpty)
    }

    @Test func restoreNamesAMissingOrAlteredObjectAndLeavesNothingBehind() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let signer = try NoteSigner.generate(name: "mirror.test/log")
        let primary = dir.child("primary")
        try Self.makeStore(primary, signer: signer)
        let offsite = dir.child("offsite")
        _ = try Mirror(storePath: primary, target: DirectoryTarget(root: offsite)).runOnce()
        let checkpoint = try Self.latestCheckpoint(primary)

        // One byte of a segment changed in the copy.
        let second = offsite + "/segments/000000000002.seg"
        var bytes = try readFile(second)
        bytes[300] ^= 0x40
        try writeFile(second, bytes)
        let restored = dir.child("restored")
        #expect {
            try Restore.run(from: DirectoryTarget(root: offsite), to: restored, checkpoint: checkpoint, verifier: signer.verifier)
        } throws: { error in
            guard case SteleError.mirror(.altered(let name, let detail)) = error else { return false }
            return name == "segments/000000000002.seg" && detail.contains("SHA-256")
        }
        do {
            _ = try Restore.run(from: DirectoryTarget(root: offsite), to: restored, checkpoint: checkpoint, verifier: signer.verifier)
        } catch let SteleError.mirror(.altered(name, _)) {
            #expect(name == "segments/000000000002.seg")
        }
        #expect(!FileManager.default.fileExists(atPath: restored) && !FileManager.default.fileExists(atPath: restored + ".restoring"))

        // The same segment altered consistently (checksum file too): the log itself gives it away.
        try writeFile(second + ".sha256", Array((hexString(sha256(bytes)) + "\n").utf8))
        #expect {
            try Restore.run(from: DirectoryTarget(root: offsite), to: restored, checkpoint: checkpoint, verifier: signer.verifier)
        } throws: { error in
            guard case SteleError.mirror(.altered(let name, let detail)) = error else { return false }
            return name == "segments/000000000002.seg" && detail.contains("XXH3 mismatch") && !detail.contains("SHA-256")
        }
        #expect(!FileManager.default.fileExists(atPath: restored) && !FileManager.default.fileExists(atPath: restored + ".restoring"))

        // A segment missing from the middle.
        try FileManager.default.removeItem(atPath: second)
        do {
            _ = try Restore.run(from: DirectoryTarget(root: offsite), to: restored, checkpoint: checkpoint, verifier: signer.verifier)
            Issue.record("restored with a segment missing")
        } catch let SteleError.mirror(.missing(name)) {
            #expect(name == "segments/000000000002.seg")
        }
        #expect(!FileManager.default.fileExists(atPath: restored) && !FileManager.default.fileExists(atPath: restored + ".restoring"))
    }

    @Test func aCheckpointAheadOfTheCopyOrSignedByAnotherKeyIsRefused() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let signer = try NoteSigner.generate(name: "mirror.test/log")
        let primary = dir.child("primary")
        try Self.makeStore(primary, signer: signer)
        let offsite = dir.child("offsite")
        _ = try Mirror(storePath: primary, target: DirectoryTarget(root: offsite)).runOnce()
        // A checkpoint of the whole log, active segment included: more than the copy holds.
        let store = try Store(path: primary)
        let ahead = try store.checkpoint(signer: signer)
        try store.close()
        #expect(throws: SteleError.mirror(.missing(name: "segments/000000000005.seg"))) {
            try Restore.run(from: DirectoryTarget(root: offsite), to: dir.child("r1"), checkpoint: ahead, verifier: signer.verifier)
        }
        let other = try NoteSigner.generate(name: "mirror.test/log")
        #expect(throws: SteleError.mirror(.invalid("the trusted checkpoint does not verify with that key: the note has no signature by mirror.test/log"))) {
            try Restore.run(from: DirectoryTarget(root: offsite), to: dir.child("r2"), checkpoint: try Self.latestCheckpoint(primary),
                            verifier: other.verifier)
        }
    }

    @Test func aSealTimerBoundsHowLongRecordsWaitToGoOffHost() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let primary = dir.child("primary")
        try Store.create(at: primary)
        var options = Store.Options(commitPolicy: .none)
        options.sealInterval = .milliseconds(100)
        let store = try Store(path: primary, options: options)
        try store.append(contentsOf: (0 ..< 50).map { testEntry($0) })
        let mirror = Mirror(storePath: primary, target: DirectoryTarget(root: dir.child("offsite")))
        var report = try mirror.runOnce()
        for _ in 0 ..< 50 where report.lagRecords > 0 {
            Thread.sleep(forTimeInterval: 0.05)
            report = try mirror.runOnce()
        }
        #expect(report.lagRecords == 0 && report.recordsOffHost == firstRecord + 50)
        #expect(try store.stats().sealedSegments >= 1)
        try store.close()
    }

    /// A purge rewrites a sealed segment with redaction stubs after it was copied: the mirror
    /// recognises the rewrite by its unchanged seal hash instead of calling it a conflict, and
    /// the copy (which keeps the payload until its own retention ends) still restores.
    @Test func aSegmentPurgedAfterItWasCopiedIsNotAConflict() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let signer = try NoteSigner.generate(name: "mirror.test/log")
        let primary = dir.child("primary")
        try Store.create(at: primary, segmentSize: 64 * 1024)
        let store = try Store(path: primary, options: .init(commitPolicy: .none, checkpointSigner: signer))
        try store.put(namespace: "t", key: "k", value: "first version")
        try store.put(namespace: "t", key: "k", value: "second version")
        try store.seal()
        let target = DirectoryTarget(root: dir.child("offsite"))
        #expect(try Mirror(storePath: primary, target: target).runOnce().uploaded.contains("segments/000000000001.seg"))
        let report = try store.purge()
        #expect(report.purged.count == 1 && report.segmentsRewritten == 1)
        try store.seal()
        let again = try Mirror(storePath: primary, target: target).runOnce()
        #expect(again.redactedLocally == 1)
        let checkpoint = try Self.latestCheckpoint(primary)
        try store.close()
        let restored = dir.child("restored")
        _ = try Restore.run(from: target, to: restored, checkpoint: checkpoint, verifier: signer.verifier)
        let back = try Store(path: restored, options: .init(readOnly: true))
        #expect(try back.history(namespace: "t", key: Array("k".utf8)).first?.value == Array("first version".utf8))
        try back.close()
    }

    /// Segments sealed after the newest checkpoint signed with the trusted key are vouched for by
    /// the hash chain alone, which whoever can write objects could extend: left out by default.
    @Test func segmentsBeyondEverySignedCheckpointAreLeftOutUnlessAskedFor() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let signer = try NoteSigner.generate(name: "mirror.test/log")
        let primary = dir.child("primary")
        try Self.makeStore(primary, signer: signer)
        let checkpoint = try Self.latestCheckpoint(primary)
        let unsigned = try Store(path: primary, options: .init(commitPolicy: .none))
        try unsigned.seal()
        try unsigned.append(contentsOf: (500 ..< 600).map { testEntry($0) })
        try unsigned.seal()
        try unsigned.close()
        let target = DirectoryTarget(root: dir.child("offsite"))
        let mirrored = try Mirror(storePath: primary, target: target).runOnce()
        let vouched = try Restore.run(from: target, to: dir.child("r1"), checkpoint: checkpoint, verifier: signer.verifier)
        #expect(vouched.segmentsLeftOut == 2 && vouched.treeSize == vouched.vouchedSize && vouched.treeSize < mirrored.recordsOffHost)
        let all = try Restore.run(from: target, to: dir.child("r2"), checkpoint: checkpoint, verifier: signer.verifier, includeUnvouched: true)
        #expect(all.segmentsLeftOut == 0 && all.treeSize == mirrored.recordsOffHost)
    }

    /// A sealed segment damaged on the primary is refused, never locked away off-host.
    @Test func aDamagedSegmentIsNeverCopied() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let primary = dir.child("primary")
        try Self.makeStore(primary, signer: try NoteSigner.generate(name: "mirror.test/log"))
        let second = primary + "/segments/000000000002.seg"
        var bytes = try readFile(second)
        bytes[SegmentHeader.size + 40] ^= 1
        try writeFile(second, bytes)
        chmod(second, 0o444)
        let target = DirectoryTarget(root: dir.child("offsite"))
        #expect {
            try Mirror(storePath: primary, target: target).runOnce()
        } throws: { error in
            guard case SteleError.corruption(let c) = error else { return false }
            return c.file == second && c.offset == SegmentHeader.size
        }
        #expect(try target.head("segments/000000000002.seg") == nil)
        #expect(try target.head("segments/000000000001.seg") != nil)
    }

    @Test func aDirectoryTargetNeverReplacesAnObject() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let target = DirectoryTarget(root: dir.child("offsite"))
        try target.put("a/b", [1, 2, 3], retention: nil, label: nil)
        try target.put("a/b", [1, 2, 3], retention: nil, label: nil)
        #expect(throws: SteleError.mirror(.conflict(name: "a/b"))) { try target.put("a/b", [9], retention: nil, label: nil) }
        #expect(try target.get("a/b") == [1, 2, 3])
        #expect(try target.list(prefix: "a/").map(\.name) == ["a/b"])
    }
}

extension Entry {
    var namespaceString: String { String(decoding: namespace, as: UTF8.self) }
}
