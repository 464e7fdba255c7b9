import Foundation
import Testing
@_spi(Fuzzing) @testable import Stele
@testable import SteleMirror
import SteleNative

/// The fuzz seed corpus (`tools/fuzz/corpus/TARGET/`) is cut from files a real store writes:
/// this test writes such a store, cuts the seeds, checks that each one is accepted by the
/// decoder its fuzz target drives (a seed the decoder rejects would teach the fuzzer nothing),
/// and, when `STELE_FUZZ_CORPUS_OUT` names a directory, writes them there
/// (`tools/fuzz/make-corpus.sh` does that).
@Suite struct FuzzCorpusTests {
    /// A fixed signer, so that regenerated corpora differ only where the store is random (its UUID).
    static let signer = try! NoteSigner(name: "corpus.example/log", seed: [UInt8](repeating: 3, count: 32))

    /// Seeds by fuzz target name, each a (file name, bytes) pair.
    static func seeds(_ dir: TemporaryDirectory) throws -> [String: [(String, [UInt8])]] {
        let path = dir.child("store")
        try Store.create(at: path, segmentSize: 64 * 1024, origin: "corpus.example/log")
        let clock = TestClock()
        var options = Store.Options()
        options.clock = clock
        options.indexSnapshotInterval = 10
        let store = try Store(path: path, options: options)
        let t0 = clock.nanosecondsSinceEpoch()
        // Every record type and both flags: puts (one LZ4-compressed), a lock that expires, a
        // legal hold, a namespace default, a tombstone, and after the seal a purge that leaves a
        // redaction record and a redaction stub.
        try store.put(namespace: "orders", key: Array("o-1".utf8), value: Array(#"{"total":4200}"#.utf8),
                      lock: RetentionLock(mode: .governance, retainUntil: t0 + 1_000_000_000))
        try store.put(namespace: "orders", key: "o-1", value: #"{"total":4300,"status":"paid"}"#)
        try store.put(namespace: "orders", key: "o-2", value: String(repeating: #"{"sku":"A-1","qty":2}"#, count: 60))
        try store.setLegalHold(namespace: "orders", key: Array("o-2".utf8), on: true, reason: "case 17")
        try store.setDefaultRetention(namespace: "ledger", mode: .compliance, duration: .seconds(86_400))
        for i in 0 ..< 8 { try store.put(namespace: "ledger", key: "e-\(i)", value: "{\"amount\":\(i * 100)}") }
        try store.delete(namespace: "orders", key: Array("o-2".utf8))
        try store.seal()
        clock.advance(.seconds(2))
        _ = try store.purge()
        _ = try store.checkpoint(signer: signer)
        try store.seal()
        try store.put(namespace: "orders", key: "o-3", value: "{}")
        try store.close()
        let snapshot = try readFile(path + "/index/snapshot")  // derived data, which recording a loss drops
        // The active segment lost, and the loss recorded: a loss record and its placeholders.
        try FileManager.default.removeItem(atPath: path + "/segments/000000000003.seg")
        try Store.recordLoss(at: path, reason: "corpus: segment 3 deleted")
        let after = try Store(path: path, options: options)
        try after.put(namespace: "orders", key: "o-3", value: "{}")
        try after.close()

        var out: [String: [(String, [UInt8])]] = [:]
        let sealed = try readFile(path + "/segments/000000000001.seg")
        let active = try readFile(path + "/segments/000000000003.seg")
        // The active segment is 64 KiB of mostly zeros: keep its frames and a little of the zeros.
        let activeEnd = try #require(ByteView.of(active) { $0.lastNonZero })
        out["segment"] = [("sealed.seg", sealed), ("active.seg", Array(active[..<min(active.count, activeEnd + 65)]))]
        // Segment 1 holds a purge's redaction stub; segment 2 the checkpoint's records.
        out["sealed"] = [("purged.seg", sealed), ("second.seg", try readFile(path + "/segments/000000000002.seg"))]
        out["state"] = [("tiles-state", try readFile(path + "/tiles/state")), ("reach", try readFile(path + "/reach"))]

        // One frame of each kind (type and flags) from the three segments, and the first frames back to back.
        var frames: [(String, [UInt8])] = []
        var kinds = Set<String>()
        for file in [sealed, try readFile(path + "/segments/000000000002.seg"), active] {
            var offset = SegmentHeader.size
            while case .success(let frame) = ByteView.of(file, { Frame.decode($0, at: offset, limit: $0.count) }) {
                let kind = "\(frame.type)-\(frame.flags)"
                if kinds.insert(kind).inserted { frames.append(("\(kind).frame", Array(file[offset ..< frame.end]))) }
                offset = frame.end
            }
        }
        // An encrypted store's frames: puts (one LZ4 under the blob), a tombstone, a shred record.
        let encrypted = dir.child("encrypted")
        let master = EncryptionKey(bytes: [UInt8](repeating: 5, count: 32))
        try Store.create(at: encrypted, segmentSize: 64 * 1024, origin: "corpus.example/encrypted", encryptionKey: master)
        var encryptedOptions = options
        encryptedOptions.encryptionKey = master
        let tenant = try Store(path: encrypted, options: encryptedOptions)
        try tenant.put(namespace: "tenant", key: "k-1", value: #"{"name":"A. Person"}"#)
        try tenant.put(namespace: "tenant", key: "k-2", value: String(repeating: #"{"line":"compressible"}"#, count: 60))
        try tenant.delete(namespace: "tenant", key: Array("k-1".utf8))
        try tenant.shred(namespace: "tenant", reason: "corpus: erasure request")
        try tenant.close()
        let encryptedSegment = try readFile(encrypted + "/segments/000000000001.seg")
        var offset = SegmentHeader.size
        while case .success(let frame) = ByteView.of(encryptedSegment, { Frame.decode($0, at: offset, limit: $0.count) }) {
            let kind = "\(frame.type)-\(frame.flags)"
            if kinds.insert(kind).inserted { frames.append(("\(kind).frame", Array(encryptedSegment[offset ..< frame.end]))) }
            offset = frame.end
        }
        let firstFive = try ByteView.of(sealed) { view in
            var end = SegmentHeader.size
            for _ in 0 ..< 5 { end = try Frame.decode(view, at: end, limit: view.count).get().end }
            return end
        }
        frames.append(("first-five.frames", Array(sealed[SegmentHeader.size ..< firstFive])))
        out["frame"] = frames

        let note = try readFile(path + "/checkpoints/checkpoint")
        let authorization = try GovernanceAuthorization.sign(origin: "corpus.example/log", namespace: "orders", key: Array("o-1".utf8),
                                                             version: 0, retainUntil: t0, asOf: 3, notAfter: t0 + 1_000_000_000,
                                                             with: signer)
        out["checkpoint"] = [("checkpoint.note", note), ("verifier.key", Array(signer.verifier.encoded.utf8)),
                             ("signer.key", Array(signer.encoded.utf8)), ("authorization.note", Array(authorization.utf8))]

        let keyChange = try GovernanceAuthorization.signKeyChange(origin: "corpus.example/log", newKey: signer.verifier, asOf: 12,
                                                                  notAfter: t0 + 1_000_000_000, with: signer)
        let retirement = GovernanceAuthorization.keyChangeText(origin: "corpus.example/log", newKey: nil, asOf: 14, notAfter: t0)
        let wholeKey = GovernanceAuthorization.text(origin: "corpus.example/log", namespace: "orders", key: Array("o-2".utf8),
                                                    version: nil, retainUntil: 0, asOf: 9, notAfter: t0)
        out["governance"] = [("bypass.note", Array(authorization.utf8)), ("key-change.note", Array(keyChange.utf8)),
                             ("retirement.txt", Array(retirement.utf8)), ("whole-key-bypass.txt", Array(wholeKey.utf8))]

        // S3 answers as the ListObjectsV2 and ListObjectVersions documentation shows them, with this
        // store's object names under the prefix "p/", and an error.
        let listing = """
            <?xml version="1.0" encoding="UTF-8"?>
            <ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bucket</Name><Prefix>p/</Prefix><KeyCount>2</KeyCount>\
            <MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated><NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>\
            <Contents><Key>p/segments/000000000001.seg</Key><LastModified>2026-12-01T10:00:00.000Z</LastModified>\
            <ETag>&quot;599bab3ed2c697f1d26842727561fd94&quot;</ETag><Size>1489</Size><StorageClass>STANDARD</StorageClass></Contents>\
            <Contents><Key>p/checkpoints/a&amp;b</Key><Size>312</Size></Contents></ListBucketResult>
            """
        let versions = """
            <?xml version="1.0" encoding="UTF-8"?>
            <ListVersionsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bucket</Name><Prefix>p/</Prefix>\
            <KeyMarker></KeyMarker><VersionIdMarker></VersionIdMarker><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>\
            <NextKeyMarker>p/stele.conf</NextKeyMarker><NextVersionIdMarker>3/L4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY</NextVersionIdMarker>\
            <DeleteMarker><Key>p/segments/000000000002.seg</Key><VersionId>null</VersionId><IsLatest>true</IsLatest>\
            <LastModified>2026-12-02T10:00:00.000Z</LastModified></DeleteMarker>\
            <Version><Key>p/segments/000000000002.seg</Key><VersionId>QUpfdndhfd8438MNFDN93jdnJFkdmqnh893</VersionId>\
            <IsLatest>false</IsLatest><LastModified>2026-12-01T10:00:00.000Z</LastModified><ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag>\
            <Size>434234</Size><StorageClass>STANDARD</StorageClass></Version></ListVersionsResult>
            """
        let error = """
            <?xml version="1.0" encoding="UTF-8"?>
            <Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>4442587FB7D0A2F9</RequestId></Error>
            """
        out["s3xml"] = [("list-objects-v2.xml", Array(listing.utf8)), ("list-object-versions.xml", Array(versions.utf8)),
                        ("error.xml", Array(error.utf8))]
        out["sidecar"] = [("segment.sha256", Array("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\nsegment 1 records 0...13\n".utf8)),
                          ("checkpoint.sha256", Array("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n".utf8))]

        out["jsonl"] = [
            #"{"ns":"merchant-42/orders","key":"o-1001","value":"{\"total\":4200}"}"#,
            #"{"ns":"bin","key_b64":"AAEC/w==","value_b64":"3q2+7w=="}"#,
            #"{"ns":"ledger","key":"e-1","value":"x","lock":{"mode":"compliance","until":"2027-01-31T00:00:00Z"}}"#,
            #"{"ns":"ledger","key":"e-2","value":"y","lock":{"mode":"governance","for":"30d"},"note":[1,2.5e3,null,true]}"#,
        ].enumerated().map { ("line-\($0.offset).jsonl", Array($0.element.utf8)) }

        out["snapshot"] = [("snapshot", snapshot)]

        let conf = try readFile(path + "/stele.conf")
        var governed = try StoreConfig.decode(String(decoding: conf, as: UTF8.self), path: "stele.conf")
        governed.governanceKey = signer.verifier
        out["config"] = [("stele.conf", conf), ("governed.conf", Array(governed.encoded.utf8))]
        return out
    }

    @Test func seedsAreAcceptedByTheirDecoders() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let seeds = try Self.seeds(dir)
        for (name, bytes) in seeds["frame"] ?? [] {
            let count = ByteView.of(bytes) { view -> Int in
                var offset = 0, count = 0
                while case .success(let frame) = Frame.decode(view, at: offset, limit: view.count) { offset = frame.end; count += 1 }
                return offset == view.count ? count : -1
            }
            #expect(count >= 1, "\(name)")
        }
        let types = Set((seeds["frame"] ?? []).compactMap { ByteView.of($0.1) { try? Frame.decode($0, at: 0, limit: $0.count).get().type } })
        // Type 6 (checkpoint) is defined by the format but not written by this version of the store.
        #expect(types == Set(RecordType.allCases).subtracting([.checkpointMarker]), "every record type the store writes is seeded")
        for (name, bytes) in seeds["segment"] ?? [] {
            let header = ByteView.of(bytes) { try? SegmentHeader.decode($0).get() }
            #expect(header != nil, "\(name)")
        }
        #expect(ByteView.of(try #require(seeds["segment"]?.first?.1)) { (try? SegmentFooter.decodeAtEnd($0).get()) != nil })
        let notes = try #require(seeds["checkpoint"])
        #expect(try Checkpoint(parsing: SignedNote.open(String(decoding: notes[0].1, as: UTF8.self), verifier: Self.signer.verifier)).origin
                == "corpus.example/log")
        #expect(try NoteVerifier(parsing: String(decoding: notes[1].1, as: UTF8.self)) == Self.signer.verifier)
        #expect(try NoteSigner(parsing: String(decoding: notes[2].1, as: UTF8.self)).verifier == Self.signer.verifier)
        for (name, bytes) in seeds["jsonl"] ?? [] {
            #expect((try? ImportLine(parsing: bytes, lineNumber: 1, now: 0)) != nil, "\(name)")
        }
        let snapshotBytes = try #require(seeds["snapshot"]?.first?.1)
        let snapshot = try #require(IndexSnapshot.decode(snapshotBytes))
        #expect(snapshot.keys.keyCount > 0 && !snapshot.retentionRecords.isEmpty)

        for (name, bytes) in seeds["config"] ?? [] {
            #expect((try? StoreConfig.decode(String(decoding: bytes, as: UTF8.self), path: name)) != nil, "\(name)")
        }

        for (name, bytes) in seeds["sealed"] ?? [] {
            let offsets = try ByteView.of(bytes) { view in
                let (_, footer) = try SealedSegment.checkedHeaderAndFooter(view, path: name, expectedIndex: try SegmentHeader.decode(view).get().index)
                return try SealedSegment.frameOffsets(view, footer: footer, path: name)
            }
            #expect(!offsets.isEmpty, "\(name)")
        }
        #expect(try TileState.decode(try #require(seeds["state"]?.first?.1), path: "state").size > 0)
        #expect(LogReach.decode(try #require(seeds["state"]?.last?.1)) != nil)
        for (name, bytes) in seeds["governance"] ?? [] {
            #expect(bytes.withUnsafeBytes { FuzzHarness.governance($0) }.isEmpty, "\(name)")
            #expect(GovernanceAuthorization.asOf(String(decoding: bytes, as: UTF8.self) + (name.hasSuffix(".txt") ? "\n" : "")) != nil, "\(name)")
        }
        let s3 = try #require(seeds["s3xml"])
        #expect(try S3Target.listingPage(s3[0].1, prefix: "p/", listing: "seed").objects.map(\.name) == ["segments/000000000001.seg", "checkpoints/a&b"])
        #expect(try S3Target.versionsPage(s3[1].1, prefix: "p/", listing: "seed").versions.map(\.isDeleteMarker) == [true, false])
        #expect(S3Client.errorText(.init(status: 403, headers: [:], body: s3[2].1)) == "HTTP 403 AccessDenied: Access Denied")
        for (name, bytes) in seeds["sidecar"] ?? [] { #expect(DirectoryTarget.sidecar(bytes).sha256?.count == 64, "\(name)") }

        // Each target's seeds stay a few KiB: they are committed.
        for (target, files) in seeds { #expect(files.reduce(0) { $0 + $1.1.count } < 16 * 1024, "\(target)") }

        if let out = ProcessInfo.processInfo.environment["STELE_FUZZ_CORPUS_OUT"] {
            for (target, files) in seeds {
                try FileManager.default.createDirectory(atPath: out + "/" + target, withIntermediateDirectories: true)
                for (name, bytes) in files { try writeFile(out + "/" + target + "/" + name, bytes) }
            }
        }
    }
}
