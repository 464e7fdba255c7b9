import Foundation
import Testing
@testable import Stele

@Suite struct TileTests {
    /// A copy of the store's `tiles/` directory, to put back later (the tiles as of now).
    static func copyTiles(_ path: String) throws -> String {
        let copy = path + ".tiles-copy"
        try? FileManager.default.removeItem(atPath: copy)
        try FileManager.default.copyItem(atPath: path + "/tiles", toPath: copy)
        return copy
    }

    /// Replaces the store's `tiles/` with a copy made by ``copyTiles(_:)``.
    static func putBack(_ copy: String, _ path: String) throws {
        try FileManager.default.removeItem(atPath: path + "/tiles")
        try FileManager.default.moveItem(atPath: copy, toPath: path + "/tiles")
    }

    @Test func tilePathsFollowTlogTiles() {
        #expect(TileStore.path(level: 0, index: 0) == "tile/0/000")
        #expect(TileStore.path(level: 1, index: 1_234_067) == "tile/1/x001/x234/067")
        #expect(TileStore.path(level: 2, index: 1000) == "tile/2/x001/000")
        #expect(TileStore.path(level: 0, index: 273, partialWidth: 112) == "tile/0/273.p/112")
    }

    /// Leaf hashes of every record, recomputed from the records.
    static func leaves(_ store: Store) throws -> [Digest] {
        var leaves: [Digest] = []
        try store.forEachRecord(from: 0, count: Int(store.recordCount)) { leaves.append(TreeHash.leaf(Store.canonicalEntry($0))) }
        return leaves
    }

    /// All files under `tiles/` with their bytes.
    static func tileFiles(_ path: String) throws -> [String: [UInt8]] {
        var files: [String: [UInt8]] = [:]
        let root = path + "/tiles"
        for sub in try FileManager.default.subpathsOfDirectory(atPath: root) {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: root + "/" + sub, isDirectory: &isDirectory), !isDirectory.boolValue {
                files[sub] = try readFile(root + "/" + sub)
            }
        }
        return files
    }

    @Test func tilesMatchTheC2SPExampleAndEveryProofMatchesTheReferenceTree() throws {
        try withStore(segmentSize: 4 << 20) { _, path in
            let store = try Store(path: path, options: .init(commitPolicy: .none))
            // 69,999 records after the genesis: 70,000 leaves.
            for batch in 0 ..< 70 {
                try store.append(contentsOf: (0 ..< (batch == 69 ? 999 : 1000)).map { testEntry(batch * 1000 + $0, valueLength: 8) })
            }
            try store.seal()
            // tlog-tiles: a tree of 70,000 leaves is 273 full level-0 tiles, a partial level-0 tile
            // of width 112, one full level-1 tile, a partial level-1 tile of width 17, and a
            // partial level-2 tile of width 1.
            let files = try Self.tileFiles(path)
            // Full level-0 tiles live in a pack: 273 slots, slot N starts with tile/0/N's bytes.
            #expect(files.keys.filter { $0.hasPrefix("tile/0/") && !$0.contains(".p") }.isEmpty)
            #expect(files["pack/0/000000"]?.count == 273 * TileStore.slotBytes)
            #expect(files["tile/0/273.p/112"]?.count == 112 * 32)
            #expect(files["tile/1/000"]?.count == 8192)
            #expect(files["tile/1/001.p/17"]?.count == 17 * 32)
            #expect(files["tile/2/000.p/1"]?.count == 32)

            let reference = InMemoryTree(leaves: try Self.leaves(store))
            func expectedTile(level: Int, index: Int) throws -> [UInt8] {
                var bytes: [UInt8] = []
                for i in 0 ..< 256 { bytes += try reference.node(level: level, index: UInt64(index * 256 + i)).bytes }
                return bytes
            }
            let level0 = try expectedTile(level: 0, index: 5)
            let level1 = try expectedTile(level: 8, index: 0)
            let slot5 = files["pack/0/000000"].map { Array($0[5 * TileStore.slotBytes ..< 5 * TileStore.slotBytes + 8192]) }
            #expect(slot5 == level0, "tile/0/005 bytes in pack slot 5")
            let interior = files["pack/0/000000"].map { Array($0[5 * TileStore.slotBytes + 8192 ..< 6 * TileStore.slotBytes]) }
            var expectedInterior: [UInt8] = []
            for height in 4 ... 7 {
                for j in 0 ..< (256 >> height) { expectedInterior += try reference.node(level: height, index: UInt64((5 * 256 >> height) + j)).bytes }
            }
            #expect(interior == expectedInterior, "interior nodes of tile 5")
            #expect(files["tile/1/000"] == level1)

            var random = SplitMix64(seed: 7)
            for _ in 0 ..< 200 {
                let size = UInt64(1 + random.next(below: 70_000))
                let index = UInt64(random.next(below: Int(size)))
                let proof = try store.inclusionProof(index: index, treeSize: size)
                #expect(proof.hashes == (try MerkleProofs.inclusionProof(reference, index: index, size: size)))
                #expect(proof.root == (try MerkleProofs.root(reference, size: size)))
                let from = UInt64(1 + random.next(below: Int(size)))
                let consistency = try store.consistencyProof(from: from, to: size)
                #expect(consistency.hashes == (try MerkleProofs.consistencyProof(reference, from: from, to: size)))
            }
            // Roots read through the tiles, at every size that ends a tile and a spread of others,
            // against the tree rebuilt here from the records.
            for size in stride(from: UInt64(256), through: 70_000, by: 256) + [1, 255, 257, 65_535, 65_536, 65_537, 69_999, 70_000] {
                #expect(try store.rootHash(treeSize: size) == (try MerkleProofs.root(reference, size: size)), "size \(size)")
            }
            try store.close()
        }
    }

    @Test func tilesRebuiltAfterDeletingThemEqualTheOnesWrittenDuringAppend() throws {
        try withStore(segmentSize: 1 << 20) { _, path in
            let store = try Store(path: path, options: .init(commitPolicy: .none))
            for batch in 0 ..< 40 { try store.append(contentsOf: (0 ..< 500).map { testEntry(batch * 500 + $0, valueLength: 20) }) }
            try store.seal()
            try store.close()
            let written = try Self.tileFiles(path)
            #expect(written.count > 3)
            try FileManager.default.removeItem(atPath: path + "/tiles")
            try FileManager.default.createDirectory(atPath: path + "/tiles", withIntermediateDirectories: false)

            let reopened = try Store(path: path, options: .init(commitPolicy: .none))
            #expect(reopened.recovery.tilesRebuilt == 0 ..< firstRecord + 20_000)
            try reopened.seal()  // nothing to seal: the active segment is empty
            try reopened.close()
            let rebuilt = try Self.tileFiles(path)
            for (name, bytes) in written where !name.contains(".p/") && name != "state" {
                #expect(rebuilt[name] == bytes, "\(name)")
            }
            // Every full tile is back; partial tiles and the state file come with the next persist.
            #expect(rebuilt.keys.filter { !$0.contains(".p/") && $0 != "state" }.count
                == written.keys.filter { !$0.contains(".p/") && $0 != "state" }.count)
            // The next open trusts nothing it cannot check: with no state file it rebuilds again.
            let again = try Store(path: path)
            #expect(try again.inclusionProof(index: 12_345).hashes.count > 0)
            try again.close()
        }
    }

    @Test func tilesTrailingTheLogAreRebuiltOnOpenAndADamagedTileIsCaught() throws {
        try withStore(segmentSize: 1 << 20) { _, path in
            let store = try Store(path: path, options: .init(commitPolicy: .none))
            try store.append(contentsOf: (0 ..< 3000).map { testEntry($0, valueLength: 20) })
            try store.seal()
            let tilesAtSeal = try TileTests.copyTiles(path)
            try store.append(contentsOf: (3000 ..< 4000).map { testEntry($0, valueLength: 20) })
            try store.close()
            // As a crash after the seal leaves them (a clean close writes the tiles too): tiles
            // for the 3,000 leaves of the seal; the 1,000 after it are replayed.
            try TileTests.putBack(tilesAtSeal, path)
            let reopened = try Store(path: path)
            #expect(reopened.recovery.tilesRebuilt == firstRecord + 3000 ..< firstRecord + 4000)
            // The rebuilt tiles, on disk and read through, against the tree of the records.
            let reference = InMemoryTree(leaves: try Self.leaves(reopened))
            let rebuiltPack = try readFile(path + "/tiles/pack/0/000000")
            #expect(rebuiltPack.count == 15 * TileStore.slotBytes, "tiles 0-14 full: 3,840 of 4,001 leaves")
            for tile in 11 ..< 15 {  // made full by the replayed leaves
                var expected: [UInt8] = []
                for i in 0 ..< 256 { expected += try reference.node(level: 0, index: UInt64(tile * 256 + i)).bytes }
                #expect(Array(rebuiltPack[tile * TileStore.slotBytes ..< tile * TileStore.slotBytes + 8192]) == expected, "tile 0/\(tile)")
            }
            for size: UInt64 in [3001, 3072, 3500, 3840, 3841, 4000, 4001] {
                #expect(try reopened.rootHash(treeSize: size) == (try MerkleProofs.root(reference, size: size)), "size \(size)")
                #expect(try reopened.inclusionProof(index: size - 1, treeSize: size).hashes == (try MerkleProofs.inclusionProof(reference, index: size - 1, size: size)))
            }
            // A full tile edited underneath: proofs through it no longer match the records.
            var pack = try readFile(path + "/tiles/pack/0/000000")
            pack[2 * TileStore.slotBytes + 100] ^= 1
            try writeFile(path + "/tiles/pack/0/000000", pack)
            #expect {
                // Leaf 2·256+3's hash was damaged; leaf 2·256+2's proof starts with it.
                try reopened.inclusionProof(index: 2 * 256 + 2, treeSize: 3500)
            } throws: { error in
                guard case SteleError.corruption(let c) = error else { return false }
                return c.detail.contains("tiles disagree with the log")
            }
            // Bad requests are typed errors.
            #expect(throws: SteleError.proof(.indexOutOfRange(index: 4001, treeSize: 4001))) { try reopened.inclusionProof(index: 4001) }
            #expect(throws: SteleError.proof(.invalidTreeSize(0, available: 4001))) { try reopened.inclusionProof(index: 0, treeSize: 0) }
            #expect(throws: SteleError.proof(.invalidTreeSize(4002, available: 4001))) { try reopened.rootHash(treeSize: 4002) }
            #expect(throws: SteleError.proof(.invalidRange(from: 0, to: 4001))) { try reopened.consistencyProof(from: 0) }
            try reopened.close()
        }
    }
    /// Regression (found by PowerLossTests): a power cut between writing the tiles of a seal and
    /// the `syncfs` that makes them durable can leave a torn partial tile on disk, at the very
    /// width the log has after recovery. Recovery replays the leaves after `tiles/state`; it must
    /// also write the replayed tiles out again, or the torn file stays and fsck (rightly) reports
    /// a tile that disagrees with the records.
    @Test func tilesReplayedOnOpenAreWrittenOverATornPartialTile() throws {
        try withStore(segmentSize: 1 << 20) { _, path in
            let store = try Store(path: path, options: .init(commitPolicy: .none))
            try store.append(contentsOf: (0 ..< 100).map { testEntry($0, valueLength: 20) })
            try store.seal()
            let tilesAtSeal = try TileTests.copyTiles(path)
            try store.append(contentsOf: (100 ..< 150).map { testEntry($0, valueLength: 20) })
            try store.close()
            try TileTests.putBack(tilesAtSeal, path)  // as a crash after the seal leaves them
            // The partial tile for the 151 leaves (the genesis and 150 records), as a cut-short
            // write would leave it.
            let partial = path + "/tiles/" + TileStore.path(level: 0, index: 0, partialWidth: 151)
            try FileManager.default.createDirectory(atPath: PowerLossFileSystem.parent(partial), withIntermediateDirectories: true)
            try writeFile(partial, (0 ..< 151 * 32).map { UInt8(truncatingIfNeeded: $0 * 7) })
            let reopened = try Store(path: path)
            #expect(reopened.recovery.tilesRebuilt == firstRecord + 100 ..< firstRecord + 150)
            try reopened.close()
            let report = try Fsck.check(path: path)
            #expect(report.problems.isEmpty, "\(report.problems)")
        }
    }

    /// A batch's threads hand the tree whole 64-leaf subtrees: `TileBuilder.append(subtree:)`
    /// must leave what appending those leaves one by one leaves, in the frontier, the pending
    /// (partial) tiles, the interior nodes kept with each level-0 tile, and the tile files,
    /// across a level-1 tile (65,536 leaves) and with single leaves in between.
    @Test func subtreesAppendedWholeLeaveTheTilesOfTheirLeaves() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let fs = PosixFileSystem()
        for name in ["leaf", "whole"] { try FileManager.default.createDirectory(atPath: dir.child(name), withIntermediateDirectories: true) }
        let byLeafStore = TileStore(fs: fs, directory: dir.child("leaf"), writable: true)
        let wholeStore = TileStore(fs: fs, directory: dir.child("whole"), writable: true)
        var byLeaf = TileBuilder(), whole = TileBuilder()
        var byLeafFrontier = Frontier(), wholeFrontier = Frontier()
        let count = 66_300
        let leaves = (0 ..< count).map { TreeHash.leaf(Array("record \($0)".utf8)) }
        var position = 0
        var subtrees = 0
        while position < count {
            // Mostly whole subtrees; now and then a few single leaves, which shift the alignment
            // until the next boundary.
            let width = TileBuilder.subtreeWidth
            if position % width == 0, position + width <= count, position % 1000 >= 40 {
                whole.append(subtree: TileBuilder.Subtree(leaves: Array(leaves[position ..< position + width])),
                             frontier: &wholeFrontier, store: wholeStore)
                for leaf in leaves[position ..< position + width] { byLeaf.append(leaf: leaf, frontier: &byLeafFrontier, store: byLeafStore) }
                position += width
                subtrees += 1
            } else {
                whole.append(leaf: leaves[position], frontier: &wholeFrontier, store: wholeStore)
                byLeaf.append(leaf: leaves[position], frontier: &byLeafFrontier, store: byLeafStore)
                position += 1
            }
            #expect(whole.interior == byLeaf.interior, "interior nodes after \(position) leaves")
        }
        #expect(subtrees > 900)
        #expect(wholeFrontier == byLeafFrontier)
        #expect(whole.pending == byLeaf.pending)
        #expect(whole.fullTiles == byLeaf.fullTiles && whole.fullTiles.count >= 2 && whole.fullTiles[1] == 1)
        try byLeafStore.persist(size: byLeafFrontier.size, root: byLeafFrontier.root, partials: byLeaf.pending)
        try wholeStore.persist(size: wholeFrontier.size, root: wholeFrontier.root, partials: whole.pending)
        let files = { (root: String) -> [String: [UInt8]] in
            var out: [String: [UInt8]] = [:]
            for case let name as String in FileManager.default.enumerator(atPath: root)! where !name.hasSuffix("state") {
                var isDirectory: ObjCBool = false
                if FileManager.default.fileExists(atPath: root + "/" + name, isDirectory: &isDirectory), !isDirectory.boolValue {
                    out[name] = try? readFile(root + "/" + name)
                }
            }
            return out
        }
        let wholeFiles = files(dir.child("whole")), leafFiles = files(dir.child("leaf"))
        #expect(wholeFiles.count >= 3)
        // Names only on failure: the files run to megabytes.
        let differing = Set(wholeFiles.keys).union(leafFiles.keys).filter { wholeFiles[$0] != leafFiles[$0] }
        #expect(differing.isEmpty, "tile files that differ: \(differing.sorted())")
    }
}
