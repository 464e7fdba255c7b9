import Foundation
import Testing
@testable import Stele
@testable import SteleMirror
import SteleNative

/// A warm standby (issue 21): it follows the primary's copy segment by segment, installs only
/// what a checkpoint signed with the trusted key proves, stops loudly on anything altered,
/// removed or forked, and becomes the writer of the same log in its own process.
@Suite struct StandbyTests {
    /// A primary that signs a checkpoint at every seal, mirrored to a directory target, and a
    /// standby built from that copy.
    struct Setup {
        let dir = TemporaryDirectory()
        let signer: NoteSigner
        let primaryPath: String
        let primary: Store
        let target: DirectoryTarget
        let standbyPath: String

        init() throws {
            signer = try NoteSigner.generate(name: "standby.test/log")
            primaryPath = dir.child("primary")
            try Store.create(at: primaryPath, segmentSize: 64 * 1024)
            primary = try Store(path: primaryPath, options: .init(commitPolicy: .none, checkpointSigner: signer))
            target = DirectoryTarget(root: dir.child("copy"))
            standbyPath = dir.child("standby")
            try write(0 ..< 100)
            let trusted = String(decoding: try readFile(primaryPath + "/checkpoints/checkpoint"), as: UTF8.self)
            try Standby.create(from: target, to: standbyPath, checkpoint: trusted, verifier: signer.verifier)
        }

        /// Appends and seals records `range` (a checkpoint is signed at the seal), then mirrors.
        func write(_ range: Range<Int>, seal: Bool = true, mirror: Bool = true) throws {
            try primary.append(contentsOf: range.map { testEntry($0) })
            if seal { try primary.seal() }
            if mirror { _ = try Mirror(storePath: primaryPath, target: target).runOnce() }
        }

        func standby() throws -> Standby { try Standby(directory: standbyPath, target: target, verifier: signer.verifier) }

        /// The primary reopened without its signing key appends and seals `range`, and is mirrored:
        /// the copy gets a segment that continues the chain but that no checkpoint vouches for (as
        /// for segments forged into the copy). Returns that store, open.
        func sealUnsigned(_ range: Range<Int>) throws -> Store {
            try primary.close()
            let unsigned = try Store(path: primaryPath, options: .init(commitPolicy: .none))
            try unsigned.append(contentsOf: range.map { testEntry($0) })
            try unsigned.seal()
            _ = try Mirror(storePath: primaryPath, target: target).runOnce()
            return unsigned
        }

        func finish() {
            try? primary.close()
            dir.remove()
        }
    }

    static func value(_ store: Store, _ n: Int) throws -> [UInt8]? {
        let entry = testEntry(n)
        return try store.get(namespace: String(decoding: entry.namespace, as: UTF8.self), key: entry.key)?.value
    }

    @Test func aStandbyInstallsProvenSegmentsAndRefusesWrites() throws {
        let setup = try Setup()
        defer { setup.finish() }
        let standby = try setup.standby()
        defer { try? standby.close() }
        #expect(standby.store.recordCount == setup.primary.recordCount)

        try setup.write(100 ..< 250)
        #expect(try Self.value(standby.store, 200) == nil)
        let report = try standby.catchUp()
        #expect(report.segmentsInstalled >= 1 && report.records == setup.primary.recordCount && report.recordsWaiting == 0, "\(report)")
        #expect(report.checkpointSize == report.records, "the primary's checkpoint at the seal proves them, and the standby keeps it")
        #expect(try Self.value(standby.store, 200) == testEntry(200).value)
        #expect(try standby.store.rootHash() == setup.primary.rootHash())
        #expect(report.epoch == 1)

        // A standby is fenced: nothing but an install changes it.
        #expect(throws: SteleError.self) { try standby.store.put(namespace: "x", key: "y", value: "z") }
        #expect(throws: SteleError.self) { try Store(path: setup.standbyPath, options: .init()) }
        // A pass with nothing new installs nothing.
        #expect(try standby.catchUp().segmentsInstalled == 0)

        // Reopened (a restarted `stele standby`), it goes on from where it was.
        try standby.close()
        try setup.write(250 ..< 300)
        let reopened = try setup.standby()
        defer { try? reopened.close() }
        #expect(try reopened.catchUp().records == setup.primary.recordCount)
        #expect(try Self.value(reopened.store, 299) == testEntry(299).value)
        let fsck = try Fsck.check(path: setup.standbyPath)
        #expect(fsck.problems.isEmpty, "\(fsck.problems)")
    }

    @Test func aSegmentNoCheckpointProvesWaitsAndIsNeverServed() throws {
        let setup = try Setup()
        defer { setup.finish() }
        let standby = try setup.standby()
        defer { try? standby.close() }
        let unsigned = try setup.sealUnsigned(100 ..< 150)
        let waiting = try standby.catchUp()
        #expect(waiting.segmentsInstalled == 0 && waiting.recordsWaiting == 50, "\(waiting)")
        #expect(try Self.value(standby.store, 120) == nil, "a record the copy cannot prove is not served")

        // The writer signs a checkpoint over it: the next pass installs it.
        _ = try unsigned.checkpoint(signer: setup.signer)
        _ = try Mirror(storePath: setup.primaryPath, target: setup.target).runOnce()
        let proven = try standby.catchUp()
        #expect(proven.segmentsInstalled == 1 && proven.recordsWaiting == 0, "\(proven)")
        #expect(try Self.value(standby.store, 120) == testEntry(120).value)
        try unsigned.close()
    }

    @Test func anAlteredSegmentStopsTheFollowAndNothingOfItIsInstalled() throws {
        let setup = try Setup()
        defer { setup.finish() }
        let standby = try setup.standby()
        defer { try? standby.close() }
        try setup.write(100 ..< 200)
        let newest = try #require(try setup.target.list(prefix: "segments/").map(\.name).max())
        let path = setup.target.root + "/" + newest
        var bytes = try readFile(path)
        bytes[bytes.count / 2] ^= 0x20
        chmod(path, 0o644)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let before = standby.store.recordCount
        #expect {
            try standby.catchUp()
        } throws: { error in
            guard case SteleError.mirror(.tampered(let findings)) = error else { return false }
            return findings.contains { $0.contains(newest) }
        }
        #expect(standby.store.recordCount == before, "nothing of the altered segment was installed")
        #expect(try Self.value(standby.store, 150) == nil)
    }

    @Test func aCheckpointTheStandbyCannotReproduceIsAFork() throws {
        let setup = try Setup()
        defer { setup.finish() }
        let standby = try setup.standby()
        defer { try? standby.close() }
        // The key signs a checkpoint of another tree over the standby's records (a split view).
        let size = standby.store.recordCount - 1
        let forged = try SignedNote.sign(Checkpoint(origin: setup.primary.config.origin, treeSize: size, root: Digest(bytes: [UInt8](repeating: 7, count: 32))!).text,
                                         with: setup.signer)
        let name = "checkpoints/" + String(repeating: "0", count: 20 - String(size).count) + String(size)
        _ = try setup.target.put(name, Array(forged.utf8), retention: ObjectRetention(mode: .compliance, retainUntil: 0), label: nil)
        #expect {
            try standby.catchUp()
        } throws: { error in
            guard case SteleError.mirror(.tampered(let findings)) = error else { return false }
            return findings.contains { $0.contains("a fork") }
        }
    }

    @Test func aRemovedInstalledSegmentStopsTheFollow() throws {
        let setup = try Setup()
        defer { setup.finish() }
        let standby = try setup.standby()
        defer { try? standby.close() }
        try setup.write(100 ..< 200)
        _ = try standby.catchUp()
        let newest = try #require(try setup.target.list(prefix: "segments/").map(\.name).max())
        chmod(setup.target.root + "/segments", 0o755)
        try FileManager.default.removeItem(atPath: setup.target.root + "/" + newest)
        #expect {
            try standby.catchUp()
        } throws: { error in
            guard case SteleError.mirror(.tampered(let findings)) = error else { return false }
            return findings.contains { $0.contains(newest) && $0.contains("removed") }
        }
    }

    @Test func aPromotedStandbyWritesAtOnceAndFencesThePrimary() throws {
        let setup = try Setup()
        defer { setup.finish() }
        let standby = try setup.standby()
        defer { try? standby.close() }
        try setup.write(100 ..< 200)
        let claim = try standby.promote()
        #expect(claim.epoch == 2 && claim.firstSequence == setup.primary.recordCount, "it caught up before claiming")
        // The same open store is the writer now.
        let receipt = try standby.store.put(namespace: "orders", key: "after", value: "failover")
        #expect(receipt.sequences.lowerBound == claim.firstSequence)
        #expect(throws: SteleError.self) { try standby.catchUp() }
        #expect(try WriterEpoch.held(by: setup.standbyPath) == claim)

        // The old primary's mirror adds nothing to the copy, and fences it.
        let segments = try setup.target.list(prefix: "segments/").map(\.name)
        try setup.primary.append(contentsOf: (200 ..< 220).map { testEntry($0) })
        try setup.primary.seal()
        #expect(throws: SteleError.self) { try Mirror(storePath: setup.primaryPath, target: setup.target).runOnce() }
        #expect(try setup.target.list(prefix: "segments/").map(\.name) == segments)

        // The promoted store seals and mirrors the same log to the same copy.
        try standby.store.seal()
        _ = try standby.store.checkpoint(signer: setup.signer)
        try standby.close()
        let mirrored = try Mirror(storePath: setup.standbyPath, target: setup.target).runOnce()
        #expect(mirrored.recordsOffHost == claim.firstSequence + 1, "\(mirrored)")
    }

    /// A redaction stub keeps a record's leaf hash but hashes none of its type or key: forged
    /// into a copied segment (same length, same leaf), it passes the checksum, the chain, the
    /// seal and the checkpoint, and would file a tombstone for any key. The store refuses it.
    @Test func aForgedStubInACopiedSegmentIsRefused() throws {
        let setup = try Setup()
        defer { setup.finish() }
        let standby = try setup.standby()
        defer { try? standby.close() }
        try setup.write(100 ..< 200)
        let name = try #require(try setup.target.list(prefix: "segments/").map(\.name).max())
        var bytes = try readFile(setup.target.root + "/" + name)
        let footer = try SegmentBytes.verifiedFooter(bytes, name: name)
        var target: (frame: FrameInfo, leaf: Digest, namespace: [UInt8], key: [UInt8])?
        try ByteView.of(bytes) { view in
            try SegmentLog.forEachFrame(view, from: SegmentHeader.size, to: Int(footer.framesEnd), path: name) { frame, view in
                guard target == nil, frame.type == .put, !frame.isCompressed, frame.stored.count >= 40, let leaf = frame.leafHash(in: view) else { return }
                target = (frame, leaf, view.slice(frame.namespace.lowerBound, frame.namespace.count).array,
                          view.slice(frame.key.lowerBound, frame.key.count).array)
            }
        }
        let (frame, leaf, namespace, key) = try #require(target)
        let forgedKey = key + [UInt8](repeating: UInt8(ascii: "x"), count: frame.stored.count - 32)
        let stub = ByteWriter.makeArray(count: frame.length) { w in
            namespace.withUnsafeBytes { ns in
                forgedKey.withUnsafeBytes { k in
                    leaf.bytes.withUnsafeBytes { stored in
                        _ = Frame.encode(into: w, at: 0, type: .tombstone, flags: Frame.flagRedacted, sequence: frame.sequence,
                                         timestamp: frame.timestamp, namespace: ns, key: k, stored: stored, valueLength: frame.valueLength)
                    }
                }
            }
        }
        bytes.replaceSubrange(frame.offset ..< frame.end, with: stub)
        #expect(try SegmentBytes.leafHashes(bytes, name: name).1.count == Int(footer.recordCount), "the forged segment still checks out as bytes")
        for file in [name, name + ".sha256"] { try FileManager.default.removeItem(atPath: setup.target.root + "/" + file) }
        _ = try setup.target.put(name, bytes, retention: nil, label: nil)
        let before = standby.store.recordCount
        #expect {
            try standby.catchUp()
        } throws: { error in
            guard case SteleError.mirror(.tampered(let findings)) = error else { return false }
            return findings.contains { $0.contains("redaction stub") }
        }
        #expect(standby.store.recordCount == before, "nothing of the forged segment was installed")
    }

    /// Two standbys of one copy: the first promoted is the writer; the second, built to follow
    /// epoch 1, is refused (it would replace the new writer, which nobody asked for).
    @Test func aSecondStandbyDoesNotReplaceTheFirstPromoted() throws {
        let setup = try Setup()
        defer { setup.finish() }
        let first = try setup.standby()
        defer { try? first.close() }
        let secondPath = setup.dir.child("standby-2")
        try Standby.create(from: setup.target, to: secondPath,
                           checkpoint: String(decoding: try readFile(setup.primaryPath + "/checkpoints/checkpoint"), as: UTF8.self),
                           verifier: setup.signer.verifier)
        let second = try Standby(directory: secondPath, target: setup.target, verifier: setup.signer.verifier)
        defer { try? second.close() }
        #expect(try first.promote().epoch == 2)
        #expect {
            try second.promote()
        } throws: { error in
            guard case SteleError.mirror(.fenced(let epoch, _)) = error else { return false }
            return epoch == 2
        }
        #expect(try WriterEpoch.claims(in: setup.target, storeID: setup.primary.config.storeID).map(\.epoch) == [1, 2])
        #expect(throws: SteleError.self) { try second.store.put(namespace: "x", key: "y", value: "z") }
    }

    /// The primary died between uploading a segment and its checkpoint: a promotion is refused
    /// until the operator accepts the unproven segment, which it then installs.
    @Test func aPromotionPastAnUnprovenSegmentNeedsTheOperatorsWord() throws {
        let setup = try Setup()
        defer { setup.finish() }
        let standby = try setup.standby()
        defer { try? standby.close() }
        let unsigned = try setup.sealUnsigned(100 ..< 130)
        let records = unsigned.recordCount
        try unsigned.close()
        #expect {
            try standby.promote()
        } throws: { error in
            guard case SteleError.mirror(.invalid(let detail)) = error else { return false }
            return detail.contains("no checkpoint proves")
        }
        #expect(standby.store.currentFence != nil, "refused: still a standby")
        let claim = try standby.promote(acceptingUnproven: true)
        #expect(claim.firstSequence == records && standby.store.recordCount == records)
        #expect(try Self.value(standby.store, 120) == testEntry(120).value)
    }

    /// Segments 2 and 3 reach the copy; segment 2 is then removed before the standby saw it: a
    /// gap, which stops the follow (segment 3 alone cannot be installed, and must not be waited on).
    @Test func aGapInTheCopyStopsTheFollow() throws {
        let setup = try Setup()
        defer { setup.finish() }
        let standby = try setup.standby()
        defer { try? standby.close() }
        try setup.write(100 ..< 150)
        try setup.write(150 ..< 200)
        let second = "segments/" + SegmentFiles.name(2)
        chmod(setup.target.root + "/segments", 0o755)
        for file in [second, second + ".sha256"] { try FileManager.default.removeItem(atPath: setup.target.root + "/" + file) }
        #expect {
            try standby.catchUp()
        } throws: { error in
            guard case SteleError.mirror(.tampered(let findings)) = error else { return false }
            return findings.contains { $0.contains(second) && $0.contains("a gap") }
        }
        #expect(standby.store.recordCount == 101)
    }

    /// A listing that trails the copy (an S3-compatible service that is not strongly consistent):
    /// what it does not show yet is waited for; an installed segment it no longer shows is
    /// reported as removed, never passed over.
    @Test func aStaleListingIsWaitedOutOrReported() throws {
        let setup = try Setup()
        defer { setup.finish() }
        let stale = StaleListing(setup.target)
        let standby = try Standby(directory: setup.standbyPath, target: stale, verifier: setup.signer.verifier)
        defer { try? standby.close() }
        try setup.write(100 ..< 200)
        try stale.freeze()  // the listing stops here
        try setup.write(200 ..< 300)
        let waited = try standby.catchUp()
        #expect(waited.records == 201 && waited.segmentsInstalled == 1, "\(waited)")
        stale.thaw()
        #expect(try standby.catchUp().records == setup.primary.recordCount)
        stale.hide("segments/" + SegmentFiles.name(2))
        #expect {
            try standby.catchUp()
        } throws: { error in
            guard case SteleError.mirror(.tampered(let findings)) = error else { return false }
            return findings.contains { $0.contains("removed from the copy") }
        }
    }

    /// A governance key change in a followed segment: the standby's `stele.conf` follows its log,
    /// so that it still opens (and a promoted store still does).
    @Test func aGovernanceKeyChangeIsFollowed() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let a = try NoteSigner.generate(name: "gov/a"), b = try NoteSigner.generate(name: "gov/b")
        let signer = try NoteSigner.generate(name: "standby.test/gov")
        let primaryPath = dir.child("primary"), standbyPath = dir.child("standby")
        try Store.create(at: primaryPath, segmentSize: 64 * 1024, origin: "standby.test/gov", governanceKey: a.verifier)
        let primary = try Store(path: primaryPath, options: .init(commitPolicy: .none, checkpointSigner: signer))
        defer { try? primary.close() }
        let target = DirectoryTarget(root: dir.child("copy"))
        _ = try primary.put(namespace: "n", key: "k", value: "v")
        try primary.seal()
        _ = try Mirror(storePath: primaryPath, target: target).runOnce()
        try Standby.create(from: target, to: standbyPath, checkpoint: String(decoding: try readFile(primaryPath + "/checkpoints/checkpoint"), as: UTF8.self),
                           verifier: signer.verifier)
        let authorization = try GovernanceAuthorization.signKeyChange(origin: "standby.test/gov", newKey: b.verifier, asOf: primary.treeSize,
                                                                      notAfter: Int64(Date().timeIntervalSince1970 * 1e9) + 86_400_000_000_000, with: a)
        try primary.changeGovernanceKey(to: b.verifier, authorization: authorization)
        try primary.seal()
        _ = try Mirror(storePath: primaryPath, target: target).runOnce()
        let standby = try Standby(directory: standbyPath, target: target, verifier: signer.verifier)
        #expect(try standby.catchUp().segmentsInstalled == 1)
        #expect(standby.store.governanceKey == b.verifier && standby.store.config.governanceKey == b.verifier)
        try standby.close()
        let reopened = try Standby(directory: standbyPath, target: target, verifier: signer.verifier)
        #expect(reopened.store.config.governanceKey == b.verifier, "stele.conf follows the log: the standby opens again")
        try reopened.close()
    }
}

/// A target whose listings can trail the copy (frozen at a moment) or leave an object out.
final class StaleListing: MirrorTarget, @unchecked Sendable {
    let inner: DirectoryTarget
    private let lock = NSLock()
    private var frozen: [String: [ObjectVersion]]?
    private var hidden: Set<String> = []

    init(_ inner: DirectoryTarget) { self.inner = inner }

    var description: String { inner.description }
    /// From now on, listings show the copy as it is now.
    func freeze() throws {
        var now: [String: [ObjectVersion]] = [:]
        for prefix in [StoreConfig.fileName, "segments/", "checkpoints/", WriterEpoch.prefix] { now[prefix] = try inner.versions(prefix: prefix) }
        lock.withLock { frozen = now }
    }
    func thaw() { lock.withLock { frozen = nil } }
    func hide(_ name: String) { lock.withLock { _ = hidden.insert(name) } }

    func versions(prefix: String) throws -> [ObjectVersion] {
        let live = try inner.versions(prefix: prefix)
        return lock.withLock {
            (frozen?[prefix] ?? live).filter { !hidden.contains($0.name) }
        }
    }

    func list(prefix: String) throws -> [ObjectInfo] { try inner.list(prefix: prefix).filter { info in lock.withLock { !hidden.contains(info.name) } } }
    func put(_ name: String, _ bytes: [UInt8], retention: ObjectRetention?, label: String?) throws -> Bool {
        try inner.put(name, bytes, retention: retention, label: label)
    }
    func head(_ name: String) throws -> ObjectInfo? { try inner.head(name) }
    func get(_ name: String) throws -> [UInt8] { try inner.get(name) }
    func head(_ name: String, version: String?) throws -> ObjectInfo? { try inner.head(name, version: version) }
    func get(_ name: String, version: String?) throws -> [UInt8] { try inner.get(name, version: version) }
}
