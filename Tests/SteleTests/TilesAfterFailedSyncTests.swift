import Foundation
import Synchronization
import Testing
@testable import Stele

/// Regression for the bug the power-cut test found (seed 878425126986): a seal's `syncfs` of the
/// tiles failed, so the kernel dropped the partial tile it had just written while the page cache
/// still showed it; the next seal's `syncfs` succeeded without writing it again and recorded a
/// larger size in `tiles/state`, vouching for a tile that was zeros on the disk. fsck then found
/// the tile wrong after a power cut. Now a persist after a failed `syncfs` rewrites every tile
/// past the size `tiles/state` vouches for, and an open rewrites partial tiles past it that
/// disagree with the records.
@Suite struct TilesAfterFailedSyncTests {
    @Test func aFailedTilesSyncIsMadeGoodByTheNextPersist() throws {
        let dir = TemporaryDirectory(inMemory: true)
        defer { dir.remove() }
        let path = dir.child("store")
        let (store, fs) = try PowerLossFileSystem.openNewStore(at: path, policy: .everyBatch)
        try store.append(contentsOf: (0 ..< 65).map { testEntry($0, valueLength: 40) })
        try store.seal()  // tiles/state at 65, with its partial tile, durable
        try store.append(contentsOf: (65 ..< 100).map { testEntry($0, valueLength: 40) })
        let failed = Atomic(false)
        fs.failSync = { _, operation in operation == "syncfs" && !failed.exchange(true, ordering: .relaxed) }
        let signer = try NoteSigner.generate(name: "tiles.test")
        // The checkpoint's syncfs of the tiles fails: the partial tile of 101 may be zeros on
        // disk, and no checkpoint is signed over it.
        #expect(throws: SteleError.self) { _ = try store.checkpoint(signer: signer) }
        #expect(fs.syncsFailed == 1, "the injected failure fired")
        #expect(try recordedTreeSize(path) == 66, "the failed persist recorded no size")
        try store.append(contentsOf: (100 ..< 104).map { testEntry($0, valueLength: 40) })
        _ = try store.checkpoint(signer: signer)  // a good syncfs: tiles/state at 105 (the genesis record is 0)
        #expect(try recordedTreeSize(path) == 105)
        try store.close()

        var random = SplitMix64(seed: 0x7115)
        for attempt in 0 ..< 40 {
            let image = dir.child("image-\(attempt)")
            try fs.crashImage(&random).materialize(at: image)
            let reopened = try Store(path: image)
            #expect(reopened.recordCount == 105)
            try reopened.close()
            let report = try Fsck.check(path: image)
            #expect(report.problems.isEmpty, "image \(attempt): \(report.problems.map { "\($0)" })")
            removeTree(image)
        }
    }

    /// The tree size `tiles/state` records ("stele-tiles 1 <size> <root> <checksum>").
    private func recordedTreeSize(_ store: String) throws -> UInt64? {
        let text = try String(contentsOfFile: store + "/tiles/state", encoding: .utf8)
        return text.split(separator: " ").dropFirst(2).first.flatMap { UInt64($0) }
    }

    /// A seal's background work (tiles, the checkpoint it signs) fails without failing the seal:
    /// the failure is in the public stats until the next seal makes it good.
    @Test func aSealsBackgroundFailuresAreInTheStats() throws {
        let dir = TemporaryDirectory(inMemory: true)
        defer { dir.remove() }
        let path = dir.child("store")
        try Store.create(at: path, segmentSize: 64 * 1024)
        let fs = FaultyFileSystem()
        var options = Store.Options(commitPolicy: .everyBatch, checkpointSigner: try NoteSigner.generate(name: "stats.test"))
        options.fileSystem = fs
        let store = try Store(path: path, options: options)
        defer { try? store.close() }
        try store.append(contentsOf: (0 ..< 10).map { testEntry($0) })
        try store.seal()
        #expect(try store.stats().tilesNotDurable == nil)
        #expect(try store.stats().sealCheckpointFailure == nil)

        try store.append(contentsOf: (10 ..< 20).map { testEntry($0) })
        fs.fail("syncFileSystem", errno: EIO, times: 1)
        try store.seal()  // stands: records durable, tiles not
        let stats = try store.stats()
        #expect(stats.tilesNotDurable?.errno == EIO)
        #expect(stats.sealCheckpointFailure == "tiles are not durable")
        #expect(stats.writesDisabled == nil)

        try store.append(contentsOf: (20 ..< 30).map { testEntry($0) })
        try store.seal()
        #expect(try store.stats().tilesNotDurable == nil)
        #expect(try store.stats().sealCheckpointFailure == nil)
    }
}
