import Foundation
import Testing
@testable import Stele
@testable import SteleMirror

/// Writer epochs (issue 21, first step): the claim object, the first pass's claim of epoch 1,
/// and the fence: a mirror whose store holds an older epoch than the copy's newest adds nothing
/// to the copy. Directory targets here; S3 (conditional writes, delete markers) below.
@Suite struct WriterEpochTests {
    static let storeID: [UInt8] = Array(0 ..< 16)

    @Test func aClaimRoundTripsAndAnythingElseIsNotOne() throws {
        let claim = WriterEpoch(epoch: 2, storeID: Self.storeID, firstSequence: 1_048_576, claimedAt: 1_765_065_600_000_000_000,
                                holder: "standby-b:/var/lib/stele\nsecond line")
        #expect(claim.holder == "standby-b:/var/lib/stelesecond line", "one line")
        #expect(claim.objectName == "epochs/00000000000000000002")
        #expect(String(decoding: claim.encoded, as: UTF8.self) == """
        stele-writer-epoch 1
        epoch 2
        store 000102030405060708090a0b0c0d0e0f
        from 1048576
        at 1765065600000000000
        holder standby-b:/var/lib/stelesecond line

        """)
        #expect(WriterEpoch(decoding: claim.encoded) == claim)
        var altered = claim.encoded
        altered[altered.firstIndex(of: UInt8(ascii: "2"))!] = UInt8(ascii: "3")
        #expect(WriterEpoch(decoding: altered)?.epoch == 3, "a changed field is a different claim")
        #expect(WriterEpoch(decoding: claim.encoded + Array("x\n".utf8)) == nil)
        #expect(WriterEpoch(decoding: Array(claim.encoded.dropLast())) == nil)
        #expect(WriterEpoch(decoding: Array(String(decoding: claim.encoded, as: UTF8.self).replacingOccurrences(of: "epoch 2", with: "epoch 02").utf8)) == nil,
                "only the canonical encoding is a claim")
        #expect(WriterEpoch(decoding: Array(String(decoding: claim.encoded, as: UTF8.self).replacingOccurrences(of: "epoch 2", with: "epoch 0").utf8)) == nil)
        #expect(WriterEpoch(decoding: []) == nil)
    }

    /// A store with one sealed segment, mirrored once.
    static func mirroredStore(_ dir: TemporaryDirectory, target: any MirrorTarget) throws -> (path: String, store: Store) {
        let path = dir.child("primary")
        try Store.create(at: path, segmentSize: 64 * 1024)
        let store = try Store(path: path, options: .init(commitPolicy: .none))
        try store.append(contentsOf: (0 ..< 50).map { testEntry($0) })
        try store.seal()
        _ = try Mirror(storePath: path, target: target).runOnce()
        return (path, store)
    }

    static func segmentNames(_ target: any MirrorTarget) throws -> [String] {
        try target.list(prefix: "segments/").map(\.name)
    }

    @Test func theFirstPassClaimsEpochOneAndANewerClaimFencesTheMirror() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let target = DirectoryTarget(root: dir.child("offsite"))
        let (path, store) = try Self.mirroredStore(dir, target: target)
        defer { try? store.close() }
        let claims = try WriterEpoch.claims(in: target, storeID: store.config.storeID)
        #expect(claims.map(\.epoch) == [1] && claims.first?.firstSequence == 0)
        #expect(claims.first?.holder.hasSuffix(":" + path) == true)
        // Another pass: the claim is the store's own; nothing new is claimed.
        try store.append(contentsOf: (50 ..< 60).map { testEntry($0) })
        try store.seal()
        let report = try Mirror(storePath: path, target: target).runOnce()
        #expect(report.uploaded.contains("segments/000000000002.seg"))
        #expect(try WriterEpoch.claims(in: target, storeID: store.config.storeID).count == 1)

        // A standby is promoted: it claims epoch 2 in the copy. The old primary writes on and
        // seals; its mirror (running, or restarted) adds nothing.
        let successor = WriterEpoch(epoch: 2, storeID: store.config.storeID, firstSequence: store.recordCount, claimedAt: 1, holder: "standby-b:/srv/stele")
        try target.put(successor.objectName, successor.encoded, retention: nil, label: nil)
        try store.append(contentsOf: (60 ..< 70).map { testEntry($0) })
        try store.seal()
        let before = try Self.segmentNames(target)
        let running = Mirror(storePath: path, target: target)
        for mirror in [running, running, Mirror(storePath: path, target: target)] {
            #expect(throws: SteleError.mirror(.fenced(epoch: 2, holder: "standby-b:/srv/stele"))) { try mirror.runOnce() }
        }
        #expect(try Self.segmentNames(target) == before, "a fenced mirror uploads nothing")
        #expect(!before.contains("segments/000000000003.seg"))
        // The mirror left the fence in the store's directory: its writer, once it closes, is
        // refused a writable open (a read-only one still works), until the file is removed.
        try store.close()
        #expect(throws: SteleError.fenced(epoch: 2, holder: "standby-b:/srv/stele")) { try Store(path: path) }
        try Store(path: path, options: .init(readOnly: true)).close()
        try FileManager.default.removeItem(atPath: path + "/fenced")

        // The store that holds epoch 2 mirrors on (here, the same files, as a promoted copy
        // of them would be).
        try successor.hold(at: path)
        #expect(try WriterEpoch.held(by: path) == successor)
        let resumed = try Mirror(storePath: path, target: target).runOnce()
        #expect(resumed.uploaded.contains("segments/000000000003.seg"))
    }

    /// The first pass records the claim in the store's `epoch` file; a copy of the store's
    /// directory elsewhere (or a standby restored from the copy) has none, and the claim names
    /// another place: it is fenced, not a second writer of epoch 1.
    @Test func onlyTheStoreThatClaimedEpochOneWritesUnderIt() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let target = DirectoryTarget(root: dir.child("offsite"))
        let (path, store) = try Self.mirroredStore(dir, target: target)
        try store.close()
        let claim = try #require(try WriterEpoch.held(by: path))
        #expect(claim.epoch == 1 && claim.holder == Mirror.holder(path))
        let twin = dir.child("twin")
        try FileManager.default.copyItem(atPath: path, toPath: twin)
        try FileManager.default.removeItem(atPath: twin + "/epoch")
        #expect(throws: SteleError.mirror(.fenced(epoch: 1, holder: claim.holder))) { try Mirror(storePath: twin, target: target).runOnce() }
        #expect(throws: SteleError.fenced(epoch: 1, holder: claim.holder)) { try Store(path: twin) }
        // The store that claimed it mirrors on; without its file (an older version wrote none),
        // the claim's holder (this host and path) is enough.
        try FileManager.default.removeItem(atPath: path + "/epoch")
        _ = try Mirror(storePath: path, target: target).runOnce()
        #expect(try WriterEpoch.held(by: path) == claim)
    }

    /// A writer open in another process than its mirror stops within a tenth of a second of the
    /// mirror's fence file, without reopening.
    @Test func anOpenWriterFindsTheFenceFileItself() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.child("store")
        try Store.create(at: path)
        let store = try Store(path: path)
        defer { try? store.close() }
        try store.put(namespace: "n", key: [1], value: [1])
        try Store.markFenced(at: path, epoch: 2, holder: "dc2")
        Thread.sleep(forTimeInterval: 0.15)
        #expect(throws: SteleError.fenced(epoch: 2, holder: "dc2")) { try store.put(namespace: "n", key: [2], value: [2]) }
        #expect(throws: SteleError.fenced(epoch: 2, holder: "dc2")) { try store.seal() }
    }

    @Test func aStoreThatHoldsAnEpochTheCopyLacksIsRefused() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.child("promoted")
        try Store.create(at: path, segmentSize: 64 * 1024)
        let store = try Store(path: path, options: .init(commitPolicy: .none))
        try store.append(contentsOf: (0 ..< 20).map { testEntry($0) })
        try store.seal()
        let storeID = store.config.storeID
        try store.close()
        try WriterEpoch(epoch: 3, storeID: storeID, firstSequence: 10, claimedAt: 1, holder: "b").hold(at: path)
        // A new copy (another region) starts with the claim the store holds; a copy that holds
        // segments but lost its claims is tampering, and gets nothing more.
        let empty = DirectoryTarget(root: dir.child("empty"))
        _ = try Mirror(storePath: path, target: empty).runOnce()
        #expect(try WriterEpoch.claims(in: empty, storeID: storeID) == [try #require(try WriterEpoch.held(by: path))])
        try FileManager.default.removeItem(atPath: dir.child("empty") + "/epochs")
        let segments = try Self.segmentNames(empty)
        do {
            _ = try Mirror(storePath: path, target: empty).runOnce()
            Issue.record("a copy that lost its claims was mirrored to")
        } catch SteleError.mirror(.tampered(let findings)) {
            #expect(findings.first?.contains("claims lost") == true, "\(findings)")
        }
        #expect(try Self.segmentNames(empty) == segments && (try empty.list(prefix: "epochs/")).isEmpty)
        // A copy whose newest claim is older than the store's.
        let older = DirectoryTarget(root: dir.child("older"))
        let two = WriterEpoch(epoch: 2, storeID: storeID, firstSequence: 5, claimedAt: 1, holder: "a")
        try older.put(two.objectName, two.encoded, retention: nil, label: nil)
        do {
            _ = try Mirror(storePath: path, target: older).runOnce()
            Issue.record("a copy without the store's claim was mirrored to")
        } catch SteleError.mirror(.tampered(let findings)) {
            #expect(findings.first?.contains("epochs/00000000000000000003") == true, "\(findings)")
        }
        // A claim for another store, or an object that is no claim, is tampering.
        let foreign = DirectoryTarget(root: dir.child("foreign"))
        try foreign.put("epochs/00000000000000000001", WriterEpoch(epoch: 1, storeID: Self.storeID, firstSequence: 0, claimedAt: 1, holder: "x").encoded,
                        retention: nil, label: nil)
        try foreign.put("epochs/00000000000000000002", Array("hello\n".utf8), retention: nil, label: nil)
        do {
            _ = try WriterEpoch.claims(in: foreign, storeID: storeID)
            Issue.record("foreign claims were accepted")
        } catch SteleError.mirror(.tampered(let findings)) {
            #expect(findings.count == 2, "\(findings)")
        }
    }

    /// Two writers create one name at once, each with other bytes: exactly one wins, the other is
    /// told the name is taken (many rounds, so that the two really overlap).
    static func racingCreatesHaveOneWinner(_ target: any MirrorTarget, rounds: Int) throws {
        for round in 0 ..< rounds {
            let name = WriterEpoch.objectName(UInt64(round + 1))
            let outcomes = Outcomes()
            DispatchQueue.concurrentPerform(iterations: 2) { writer in
                let bytes = Array("writer \(writer) round \(round)\n".utf8)
                do {
                    outcomes.add(try target.put(name, bytes, retention: nil, label: nil) ? "won \(writer)" : "same")
                } catch SteleError.mirror(.conflict) {
                    outcomes.add("taken")
                } catch {
                    outcomes.add("\(error)")
                }
            }
            let all = outcomes.all
            let won = all.filter { $0.hasPrefix("won ") }
            #expect(all.count == 2 && won.count == 1 && all.contains("taken"), "round \(round): \(all)")
            let winner = won.first?.dropFirst("won ".count) ?? "none"
            #expect(try target.get(name) == Array("writer \(winner) round \(round)\n".utf8), "round \(round): the winner's bytes")
        }
    }

    @Test func racingCreatesInADirectoryHaveOneWinner() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try Self.racingCreatesHaveOneWinner(DirectoryTarget(root: dir.child("offsite")), rounds: 40)
    }
}

/// The same against the local S3-compatible server: conditional creates (`If-None-Match: *`) and
/// a claim hidden by a delete marker.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["STELE_S3_ENDPOINT"] != nil, "needs STELE_S3_ENDPOINT (tools/test.sh starts a local server)"))
struct S3WriterEpochTests {
    @Test func racingCreatesInABucketHaveOneWinner() throws {
        let client = try S3MirrorTests.bucket("stele-epoch-race-\(UInt32.random(in: 0 ... .max))")
        try WriterEpochTests.racingCreatesHaveOneWinner(S3Target(client: client, prefix: "copy"), rounds: 20)
        #expect(client.log.contains { $0.hasPrefix("PUT copy/epochs/") })
    }

    @Test func aFencedMirrorAddsNothingAndAHiddenClaimIsTampering() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let client = try S3MirrorTests.bucket("stele-epoch-fence-\(UInt32.random(in: 0 ... .max))")
        let target = S3Target(client: client, prefix: "copy")
        let (path, store) = try WriterEpochTests.mirroredStore(dir, target: target)
        defer { try? store.close() }
        let successor = WriterEpoch(epoch: 2, storeID: store.config.storeID, firstSequence: store.recordCount, claimedAt: 1, holder: "standby-b")
        try target.put(successor.objectName, successor.encoded, retention: nil, label: nil)
        try store.append(contentsOf: (50 ..< 60).map { testEntry($0) })
        try store.seal()
        #expect(throws: SteleError.mirror(.fenced(epoch: 2, holder: "standby-b"))) { try Mirror(storePath: path, target: target).runOnce() }
        #expect(try WriterEpochTests.segmentNames(target) == ["segments/000000000001.seg"])
        // The operator hides the successor's claim (a delete marker): the old primary does not
        // get the copy back.
        let deleted = try client.send(.init(method: "DELETE", key: "copy/" + successor.objectName))
        #expect((200 ..< 300).contains(deleted.status))
        do {
            _ = try Mirror(storePath: path, target: target).runOnce()
            Issue.record("a hidden claim gave the copy back to the fenced store")
        } catch SteleError.mirror(.tampered(let findings)) {
            #expect(findings.contains { $0.contains("removed from the copy") }, "\(findings)")
        }
        #expect(try WriterEpochTests.segmentNames(target) == ["segments/000000000001.seg"])

        // A writer whose mirror had not yet seen the successor's claim before it was hidden is
        // fenced all the same, as well as stopped: the hidden claim still names its successor.
        let twin = dir.child("twin")
        try FileManager.default.copyItem(atPath: path, toPath: twin)
        try? FileManager.default.removeItem(atPath: twin + "/fenced")
        try? FileManager.default.removeItem(atPath: twin + "/LOCK")
        let live = try Store(path: twin, options: .init(commitPolicy: .none))
        defer { try? live.close() }
        do {
            _ = try Mirror(store: live, target: target).runOnce()
            Issue.record("a hidden claim gave the copy back to the store it replaced")
        } catch SteleError.mirror(.tampered(let findings)) {
            #expect(findings.contains("this store is fenced: epoch 2 (standby-b) replaced it"), "\(findings)")
        }
        #expect(throws: SteleError.fenced(epoch: 2, holder: "standby-b")) { try live.put(namespace: "n", key: [1], value: [1]) }
    }
}

/// Outcomes gathered from concurrent writers.
private final class Outcomes: @unchecked Sendable {
    private let lock = NSLock()
    private var outcomes: [String] = []
    func add(_ outcome: String) { lock.withLock { outcomes.append(outcome) } }
    var all: [String] { lock.withLock { outcomes } }
}

/// The store's side of a fence: ``Store/fence(epoch:holder:)`` and its `fenced` file.
@Suite struct StoreFenceTests {
    @Test func aFencedStoreRefusesEveryWriteAndEveryWritableOpenUntilTheMarkerGoes() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.child("store")
        try Store.create(at: path)
        let store = try Store(path: path)
        try store.put(namespace: "n", key: [1], value: [1])
        try store.fence(epoch: 4, holder: "dc2:/srv/stele")
        let fenced = SteleError.fenced(epoch: 4, holder: "dc2:/srv/stele")
        #expect(throws: fenced) { try store.put(namespace: "n", key: [2], value: [2]) }
        #expect(throws: fenced) { try store.append(contentsOf: (0 ..< 100).map { testEntry($0) }) }
        #expect(throws: fenced) { try store.seal() }
        #expect(throws: fenced) { try store.checkpoint(signer: try NoteSigner.generate(name: "fence.test/log")) }
        #expect(try store.get(namespace: "n", key: [1])?.value == [1])
        let count = store.recordCount
        try store.close()
        #expect(String(decoding: try readFile(path + "/fenced"), as: UTF8.self) == "stele-fenced 1\nepoch 4\nholder dc2:/srv/stele\n")
        #expect(throws: fenced) { try Store(path: path) }
        let reader = try Store(path: path, options: .init(readOnly: true))
        #expect(reader.recordCount == count)
        try reader.close()
        // A damaged marker still fences.
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: path + "/fenced"))
        #expect(throws: SteleError.self) { try Store(path: path) }
        try FileManager.default.removeItem(atPath: path + "/fenced")
        let writer = try Store(path: path)
        try writer.put(namespace: "n", key: [2], value: [2])
        try writer.close()
    }

    /// A standby promoted while a pass is under way (after the pass checked the claims, before it
    /// uploads the next segment) fences the pass at that upload: not a record more reaches the copy.
    @Test func aClaimMadeDuringAPassFencesItBeforeItsNextUpload() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.child("store")
        try Store.create(at: path)
        let store = try Store(path: path, options: .init(commitPolicy: .none))
        defer { try? store.close() }
        try store.append(contentsOf: (0 ..< 50).map { testEntry($0) })
        try store.seal()
        let copy = DirectoryTarget(root: dir.child("copy"))
        _ = try Mirror(store: store, target: copy).runOnce()
        try store.append(contentsOf: (50 ..< 60).map { testEntry($0) })
        try store.seal()
        let successor = WriterEpoch(epoch: 2, storeID: store.config.storeID, firstSequence: store.recordCount, claimedAt: 1, holder: "standby-b:/srv/stele")
        let before = try WriterEpochTests.segmentNames(copy)
        // The claim lands right after the pass's first look at the claims.
        let racing = ClaimDuringPass(inner: copy, claim: successor)
        #expect(throws: SteleError.mirror(.fenced(epoch: 2, holder: "standby-b:/srv/stele"))) { try Mirror(store: store, target: racing).runOnce() }
        #expect(racing.claimed, "the claim was made during the pass")
        #expect(try WriterEpochTests.segmentNames(copy) == before, "the pass uploaded a segment after the claim")
        #expect(throws: SteleError.fenced(epoch: 2, holder: "standby-b:/srv/stele")) { try store.put(namespace: "n", key: [1], value: [1]) }
    }
}

/// A claim caught being written in a directory copy (its checksum file first) is looked at again,
/// not taken for a removed one: the fenced writer is fenced, not stopped as if tampered with.
@Test func aClaimCaughtBeingWrittenIsWaitedFor() throws {
    let dir = TemporaryDirectory()
    defer { dir.remove() }
    let copy = DirectoryTarget(root: dir.child("copy"))
    let storeID: [UInt8] = Array(0 ..< 16)
    let first = WriterEpoch(epoch: 1, storeID: storeID, firstSequence: 0, claimedAt: 1, holder: "a")
    let second = WriterEpoch(epoch: 2, storeID: storeID, firstSequence: 10, claimedAt: 2, holder: "b")
    try copy.put(first.objectName, first.encoded, retention: nil, label: nil)
    try copy.put(second.objectName, second.encoded, retention: nil, label: nil)
    let writing = ClaimBeingWritten(inner: copy, name: second.objectName, listingsBeforeItLands: 3)
    #expect(try WriterEpoch.claims(in: writing, storeID: storeID) == [first, second])
    // A mark that stays is a removal.
    let removed = ClaimBeingWritten(inner: copy, name: second.objectName, listingsBeforeItLands: .max)
    #expect(throws: SteleError.mirror(.tampered(["\(second.objectName): a writer epoch claim removed from the copy"]))) {
        try WriterEpoch.claims(in: removed, storeID: storeID)
    }
}

/// Lists one claim as its checksum file alone (a removal's mark in a directory copy) for the
/// first listings, as while a promotion writes it.
private final class ClaimBeingWritten: MirrorTarget, @unchecked Sendable {
    let inner: DirectoryTarget
    let name: String
    private var listingsLeft: Int
    var description: String { inner.description }

    init(inner: DirectoryTarget, name: String, listingsBeforeItLands: Int) {
        self.inner = inner
        self.name = name
        listingsLeft = listingsBeforeItLands
    }

    func versions(prefix: String) throws -> [ObjectVersion] {
        let listed = try inner.versions(prefix: prefix)
        guard listingsLeft > 0 else { return listed }
        listingsLeft -= 1
        return listed.map { $0.name == name ? ObjectVersion(name: name, versionID: nil, size: 0, isDeleteMarker: true, isLatest: true, lastModified: "") : $0 }
    }

    func put(_ name: String, _ bytes: [UInt8], retention: ObjectRetention?, label: String?) throws -> Bool {
        try inner.put(name, bytes, retention: retention, label: label)
    }
    func head(_ name: String) throws -> ObjectInfo? { try inner.head(name) }
    func list(prefix: String) throws -> [ObjectInfo] { try inner.list(prefix: prefix) }
    func get(_ name: String) throws -> [UInt8] { try inner.get(name) }
}

/// A directory target on which a newer writer epoch is claimed right after the first listing of
/// the claims: a promotion that happens while a mirror's pass runs.
private final class ClaimDuringPass: MirrorTarget, @unchecked Sendable {
    let inner: DirectoryTarget
    let claim: WriterEpoch
    private(set) var claimed = false
    var description: String { inner.description }

    init(inner: DirectoryTarget, claim: WriterEpoch) {
        self.inner = inner
        self.claim = claim
    }

    func versions(prefix: String) throws -> [ObjectVersion] {
        let listed = try inner.versions(prefix: prefix)
        if prefix == WriterEpoch.prefix && !claimed {
            claimed = true
            try inner.put(claim.objectName, claim.encoded, retention: nil, label: nil)
        }
        return listed
    }

    func put(_ name: String, _ bytes: [UInt8], retention: ObjectRetention?, label: String?) throws -> Bool {
        try inner.put(name, bytes, retention: retention, label: label)
    }
    func head(_ name: String) throws -> ObjectInfo? { try inner.head(name) }
    func list(prefix: String) throws -> [ObjectInfo] { try inner.list(prefix: prefix) }
    func get(_ name: String) throws -> [UInt8] { try inner.get(name) }
}
