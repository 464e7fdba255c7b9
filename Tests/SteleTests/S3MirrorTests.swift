import Foundation
import Testing
@testable import Stele
@testable import SteleMirror

@Suite struct SigV4Tests {
    /// Amazon's worked example "GET Object" from the S3 API reference ("Signature Calculations
    /// for the Authorization Header: Transferring Payload in a Single Chunk"): example keys,
    /// 24 May 2013, us-east-1, bucket `examplebucket`, `GET /test.txt` with `Range: bytes=0-9`.
    @Test func matchesAmazonsGetObjectExample() {
        let signer = SigV4Signer(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
        let emptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        let authorization = signer.authorization(
            method: "GET", path: "/test.txt", query: [],
            headers: ["Host": "examplebucket.s3.amazonaws.com", "Range": "bytes=0-9", "x-amz-content-sha256": emptyHash,
                      "x-amz-date": "20130524T000000Z"],
            amzDate: "20130524T000000Z", payloadHash: emptyHash)
        #expect(authorization == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
            + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
            + "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    }

    @Test func encodesPathsAndQueriesTheWaySigV4Wants() {
        #expect(SigV4Signer.uriEncode("a b/c~d_e.f-g*") == "a%20b%2Fc~d_e.f-g%2A")
        let (signed, request) = SigV4Signer.canonicalRequest(method: "GET", path: "/b/k 1", query: [("prefix", "x/y"), ("list-type", "2")],
                                                             headers: ["X-Amz-Date": " 1  2 ", "host": "h"], payloadHash: "p")
        #expect(signed == "host;x-amz-date")
        #expect(request == "GET\n/b/k%201\nlist-type=2&prefix=x%2Fy\nhost:h\nx-amz-date:1 2\n\nhost;x-amz-date\np")
    }
}

/// Mirror and restore through the S3 REST API against a local S3-compatible server with Object
/// Lock (moto), started by `tools/test.sh`, which sets `STELE_S3_ENDPOINT`; skipped without it.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["STELE_S3_ENDPOINT"] != nil, "needs STELE_S3_ENDPOINT (tools/test.sh starts a local server)"))
struct S3MirrorTests {
    static func client(bucket: String) throws -> S3Client {
        let endpoint = try #require(URL(string: ProcessInfo.processInfo.environment["STELE_S3_ENDPOINT"] ?? ""))
        return S3Client(endpoint: endpoint, bucket: bucket, signer: SigV4Signer(accessKeyID: "stele-test", secretAccessKey: "stele-test-secret"))
    }

    /// A new bucket with Object Lock enabled.
    static func bucket(_ name: String) throws -> S3Client {
        let client = try client(bucket: name)
        let created = try client.send(.init(method: "PUT", key: "", headers: ["x-amz-bucket-object-lock-enabled": "true"]))
        #expect(created.status == 200, "\(S3Client.errorText(created))")
        return client
    }

    @Test func mirrorToObjectLockBucketThenRestoreAfterLosingThePrimary() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let signer = try NoteSigner.generate(name: "s3.test/log")
        let primary = dir.child("primary")
        // Segments of 12 MiB so that one goes up as a multipart upload (5 MiB parts).
        try Store.create(at: primary, segmentSize: 12 << 20)
        let store = try Store(path: primary, options: .init(commitPolicy: .none, checkpointSigner: signer))
        try store.put(namespace: "t/orders", key: Array("locked".utf8), value: Array("keep".utf8),
                      lock: RetentionLock(mode: .compliance, retainUntil: Int64(Date().timeIntervalSince1970 * 1e9) + 400 * 86_400 * 1_000_000_000))
        for batch in 0 ..< 10 { try store.append(contentsOf: (0 ..< 1000).map { testEntry(batch * 1000 + $0, valueLength: 1000) }) }
        try store.seal()
        try store.append(contentsOf: (0 ..< 50).map { testEntry(20_000 + $0) })
        try store.seal()
        try store.close()

        let client = try Self.bucket("stele-mirror-\(UInt32.random(in: 0 ... .max))")
        var target = S3Target(client: client, prefix: "store-a")
        target.partSize = 5 << 20
        let report = try Mirror(storePath: primary, target: target).runOnce()
        #expect(report.uploaded.contains("segments/000000000001.seg") && report.uploaded.contains("segments/000000000002.seg"))
        #expect(report.checkpointOffHost == report.recordsOffHost && report.lagRecords == 0)
        #expect(client.log.contains { $0.hasPrefix("POST store-a/segments/000000000001.seg?uploads") }, "the 11 MB segment used multipart")

        // Every object carries Object Lock; the segment with a 400-day compliance lock keeps it.
        let head = try client.send(.init(method: "HEAD", key: "store-a/segments/000000000001.seg"))
        #expect(head.headers["x-amz-object-lock-mode"] == "COMPLIANCE")
        let until = try #require(head.headers["x-amz-object-lock-retain-until-date"])
        #expect(until > ISO8601DateFormatter().string(from: Date().addingTimeInterval(399 * 86_400)), "retain until \(until)")

        // The mirror asked for nothing destructive: no DELETE, and a PUT only where HEAD found nothing.
        #expect(!client.log.contains { $0.hasPrefix("DELETE") })
        let second = try Mirror(storePath: primary, target: target).runOnce()
        #expect(second.uploaded.isEmpty && second.verified == report.uploaded.count)

        let checkpoint = String(decoding: try readFile(primary + "/checkpoints/checkpoint"), as: UTF8.self)
        removeTree(primary)
        let restored = try Restore.run(from: target, to: dir.child("restored"), checkpoint: checkpoint, verifier: signer.verifier)
        #expect(restored.treeSize == report.recordsOffHost)
        let back = try Store(path: dir.child("restored"))
        #expect(try back.get(namespace: "t/orders", key: Array("locked".utf8))?.value == Array("keep".utf8))
        #expect(try back.get(namespace: testEntry(9_999).namespaceString, key: testEntry(9_999).key)?.value == testEntry(9_999, valueLength: 1000).value)
        try back.close()
    }

    /// The object's lock mode follows the records' locks: a segment whose versions carry only
    /// governance locks gets GOVERNANCE (a lock its authority may lift does not become one nobody
    /// can), one with a compliance lock COMPLIANCE, one without locks the mirror's default mode.
    @Test func theCopysLockModeFollowsTheRecordsLocks() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let primary = dir.child("primary")
        try Store.create(at: primary, segmentSize: 64 * 1024)
        let store = try Store(path: primary, options: .init(commitPolicy: .none))
        let day: Int64 = 86_400 * 1_000_000_000
        let now = Int64(Date().timeIntervalSince1970 * 1e9)
        try store.put(namespace: "t/orders", key: Array("g".utf8), value: Array("v".utf8),
                      lock: RetentionLock(mode: .governance, retainUntil: now + 200 * day))
        try store.seal()
        try store.put(namespace: "t/orders", key: Array("c".utf8), value: Array("v".utf8),
                      lock: RetentionLock(mode: .compliance, retainUntil: now + 50 * day))
        try store.put(namespace: "t/orders", key: Array("g2".utf8), value: Array("v".utf8),
                      lock: RetentionLock(mode: .governance, retainUntil: now + 300 * day))
        try store.seal()
        try store.put(namespace: "t/orders", key: Array("free".utf8), value: Array("v".utf8))
        try store.seal()
        try store.close()

        let client = try Self.bucket("stele-modes-\(UInt32.random(in: 0 ... .max))")
        var options = Mirror.Options()
        options.defaultMode = .governance
        options.minimumRetention = .seconds(10 * 86_400)
        _ = try Mirror(storePath: primary, target: S3Target(client: client, prefix: "m"), options: options).runOnce()
        func lock(_ segment: UInt64) throws -> (mode: String?, days: Double) {
            let head = try client.send(.init(method: "HEAD", key: "m/segments/" + SegmentFiles.name(segment)))
            let until = try #require(head.headers["x-amz-object-lock-retain-until-date"].flatMap { ISO8601DateFormatter().date(from: $0.replacingOccurrences(of: #"\.\d+"#, with: "", options: .regularExpression)) })
            return (head.headers["x-amz-object-lock-mode"], until.timeIntervalSinceNow / 86_400)
        }
        let governed = try lock(1), mixed = try lock(2), free = try lock(3)
        #expect(governed.mode == "GOVERNANCE" && governed.days > 199 && governed.days < 201, "\(governed)")
        // Compliance wins the mode; the retention reaches the latest lock, whichever its mode.
        #expect(mixed.mode == "COMPLIANCE" && mixed.days > 299 && mixed.days < 301, "\(mixed)")
        #expect(free.mode == "GOVERNANCE" && free.days > 9 && free.days < 11, "the default mode and the minimum: \(free)")
    }

    @Test func theObjectStoreRefusesToDeleteAMirroredObjectUnderComplianceLock() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let signer = try NoteSigner.generate(name: "s3.test/log")
        let primary = dir.child("primary")
        try MirrorTests.makeStore(primary, signer: signer)
        let client = try Self.bucket("stele-lock-\(UInt32.random(in: 0 ... .max))")
        let target = S3Target(client: client, prefix: "")
        _ = try Mirror(storePath: primary, target: target).runOnce()
        let key = "segments/000000000001.seg"
        let original = try target.get(key)
        let head = try client.send(.init(method: "HEAD", key: key))
        let version = try #require(head.headers["x-amz-version-id"])
        // What an administrator with the bucket's keys might try: delete the version...
        let deleted = try client.send(.init(method: "DELETE", key: key, query: [("versionId", version)]))
        #expect(deleted.status == 403, "delete of a locked version: \(S3Client.errorText(deleted))")
        // ...or overwrite it: that only adds a version; the locked one is still there, intact.
        _ = try client.send(.init(method: "PUT", key: key, body: Array("evil".utf8)))
        let kept = try client.send(.init(method: "GET", key: key, query: [("versionId", version)]))
        #expect(kept.status == 200 && kept.body == original)
        // A restore reads the copy by versions: it restores the locked original, and names the
        // overwrite (no checksum was recorded with it) instead of being stopped by it.
        let checkpoint = String(decoding: try readFile(primary + "/checkpoints/checkpoint"), as: UTF8.self)
        let restored = try Restore.run(from: target, to: dir.child("restored"), checkpoint: checkpoint, verifier: signer.verifier)
        #expect(restored.treeSize >= firstRecord + 400)
        #expect(restored.altered.contains { $0.hasPrefix(key + " (version ") && $0.contains("no checksum recorded") }, "\(restored.altered)")
        // And a mirror pass calls it what it is.
        #expect(throws: SteleError.mirror(.tampered(["\(key): 2 versions (overwritten after the mirror wrote it)"]))) {
            try Mirror(storePath: primary, target: target).runOnce()
        }
    }
    /// A follower between full checks lists after a name (`key-marker`): only later keys, every
    /// version and delete marker of them, across pages.
    @Test func versionsAfterANameListOnlyLaterKeysAcrossPages() throws {
        let client = try Self.bucket("stele-after-\(UInt32.random(in: 0 ... .max))")
        for (key, body) in [("a/1", "one"), ("a/2", "two"), ("a/2", "two again"), ("a/3", "three"), ("a/4", "four"), ("b/1", "other")] {
            let put = try client.send(.init(method: "PUT", key: "p/" + key, body: Array(body.utf8)))
            #expect(put.status == 200, "\(S3Client.errorText(put))")
        }
        #expect(try client.send(.init(method: "DELETE", key: "p/a/4")).status == 204)
        var target = S3Target(client: client, prefix: "p/")
        target.pageSize = 1
        let whole = try target.versions(prefix: "a/")
        #expect(whole.map(\.name) == ["a/1", "a/2", "a/2", "a/3", "a/4", "a/4"], "\(whole)")
        let wholeRequests = client.log.count
        _ = try target.versions(prefix: "a/")
        let requestsForWhole = client.log.count - wholeRequests
        for after in ["", "a/1", "a/2", "a/3", "a/4"] {
            let before = client.log.count
            let listed = try target.versions(prefix: "a/", after: after)
            #expect(listed == whole.filter { $0.name > after }, "after \(after): \(listed)")
            // The listing starts at the marker: its first request names it, and it asks fewer pages.
            let requests = client.log[before...]
            if !after.isEmpty {
                #expect(requests.first?.contains("key-marker=p/" + after) == true && requests.first?.contains("version-id-marker") == false, "\(requests)")
                #expect(requests.count < requestsForWhole, "\(requests.count) requests after \(after), \(requestsForWhole) for all")
            }
        }
    }
}
