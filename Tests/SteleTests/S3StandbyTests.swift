import Foundation
import Testing
@testable import Stele
@testable import SteleMirror

/// A standby following an S3 copy through the fault proxy (issue 21): a failing listing or a
/// fetch that hangs past the client's timeout leaves the standby as it was, reported as a fault
/// the next pass may clear; a second version of a segment (an overwrite the mirror never makes)
/// stops the follow. The primary and its mirror talk to the server directly.
extension S3FaultTests {
    @Test func aStandbyOverS3SurvivesFailingRequestsAndStopsAtAnOverwrite() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let name = Self.bucketName("standby")
        let direct = S3Target(client: try S3MirrorTests.bucket(name), prefix: "p")
        let signer = try NoteSigner.generate(name: "s3-standby.test/log")
        let primaryPath = dir.child("primary")
        try Store.create(at: primaryPath, segmentSize: 64 * 1024)
        let primary = try Store(path: primaryPath, options: .init(commitPolicy: .none, checkpointSigner: signer))
        defer { try? primary.close() }
        func write(_ range: Range<Int>) throws {
            try primary.append(contentsOf: range.map { testEntry($0) })
            try primary.seal()
            _ = try Mirror(storePath: primaryPath, target: direct).runOnce()
        }
        try write(0 ..< 100)
        let trusted = String(decoding: try readFile(primaryPath + "/checkpoints/checkpoint"), as: UTF8.self)
        let standbyPath = dir.child("standby")
        try Standby.create(from: direct, to: standbyPath, checkpoint: trusted, verifier: signer.verifier)
        let standby = try Standby(directory: standbyPath, target: S3Target(client: client(name), prefix: "p"), verifier: signer.verifier)
        defer { try? standby.close() }
        try write(100 ..< 200)
        let before = standby.store.recordCount

        // Every attempt at a listing fails (the client tries 4 times): the pass fails as
        // something a later pass may clear.
        try setFaults(#"[{"method": "GET", "query": "versions", "action": "503", "times": 4}]"#)
        do {
            _ = try standby.catchUp()
            Issue.record("a pass through a failing listing succeeded")
        } catch SteleError.mirror(let error) {
            #expect(error.isTransient, "\(error)")
        }
        #expect(standby.store.recordCount == before)

        // The new segment's download hangs past the client's timeout, every attempt.
        try setFaults(#"[{"method": "GET", "path": "segments/", "action": "delay:2.5", "times": 4}]"#)
        do {
            _ = try standby.catchUp()
            Issue.record("a pass whose segment never arrived succeeded")
        } catch SteleError.mirror(let error) {
            #expect(error.isTransient || "\(error)".contains("segments/"), "\(error)")
        }
        #expect(standby.store.recordCount == before, "nothing half-fetched was installed")

        // The network heals: the next pass installs what the copy proves.
        try setFaults("[]")
        let report = try standby.catchUp()
        #expect(report.segmentsInstalled == 1 && report.records == primary.recordCount, "\(report)")
        #expect(try standby.store.rootHash() == primary.rootHash())

        // Someone overwrites a segment the standby installed: a second version, never the mirror's.
        let installed = "segments/" + SegmentFiles.name(2)
        let overwrite = try direct.client.send(.init(method: "PUT", key: "p/" + installed, body: [1, 2, 3]))
        #expect((200 ..< 300).contains(overwrite.status))
        #expect {
            try standby.catchUp()
        } throws: { error in
            guard case SteleError.mirror(.tampered(let findings)) = error else { return false }
            return findings.contains { $0.contains(installed) }
        }
    }
}
