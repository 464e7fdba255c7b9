import Synchronization
import SteleNative

/// The interior of one tile: its hashes and subtree hashes above them inside the tile.
/// `levels[h][j]` is the root of hashes `j·2^h ..< (j+1)·2^h`; a partial tile has only the
/// complete ones. A level-0 tile read from its pack has heights 4-7 stored and computes heights
/// 1-3 on demand (at most 7 hashes a node); other tiles are expanded fully (255 hashes).
package struct ExpandedTile: Sendable {
    package let levels: [[Digest]]

    package init(_ hashes: [Digest]) {
        var levels = [hashes]
        while let below = levels.last, below.count >= 2, levels.count < 8 {
            levels.append(stride(from: 0, to: below.count - 1, by: 2).map { TreeHash.node(below[$0], below[$0 + 1]) })
        }
        self.levels = levels
    }

    /// A full level-0 tile and its 30 stored interior nodes.
    package init(level0 slot: [Digest]) {
        let leaves = Array(slot.prefix(TileStore.width))
        var levels: [[Digest]] = [leaves, [], [], []]
        for height in 4 ... 7 {
            let start = TileInterior.slot(height: height, index: 0)
            levels.append(Array(slot[TileStore.width + start ..< TileStore.width + start + (256 >> height)]))
        }
        self.levels = levels
    }

    /// The node at `height`, index `j`; nil if that subtree is not complete in this tile.
    package func node(height: Int, index j: Int) -> Digest? {
        if height < levels.count, !levels[height].isEmpty || height == 0 {
            return j < levels[height].count ? levels[height][j] : nil
        }
        guard height < 8 else { return nil }
        let width = 1 << height
        guard (j + 1) * width <= levels[0].count else { return nil }
        return ExpandedTile.root(levels[0][j * width ..< (j + 1) * width])
    }

    private static func root(_ hashes: ArraySlice<Digest>) -> Digest {
        if hashes.count == 1, let only = hashes.first { return only }
        let half = hashes.count / 2
        return TreeHash.node(root(hashes.prefix(half)), root(hashes.suffix(half)))
    }
}

/// Expanded tiles, shared by all proof requests. Full tiles never change, and a partial tile is
/// keyed by its width, so entries never go stale. Level-0 tiles (one per 256 records, cheap to
/// load) and higher tiles (one per 65,536 records and up, 255 hashes to expand) are evicted
/// separately, oldest first, so a stream of random level-0 lookups never pushes out the few
/// upper tiles every proof needs. About 16 KiB per entry.
package final class TileCache: Sendable {
    private struct Tier {
        var tiles: [TileKey: ExpandedTile] = [:]
        var order: [TileKey] = []
        let capacity: Int

        mutating func insert(_ tile: ExpandedTile, for key: TileKey) {
            if tiles.updateValue(tile, forKey: key) == nil { order.append(key) }
            if order.count > capacity {
                let excess = order.count - capacity
                for k in order.prefix(excess) { tiles.removeValue(forKey: k) }
                order.removeFirst(excess)
            }
        }
    }

    private let tiers: Mutex<(level0: Tier, upper: Tier)>

    package init(level0Capacity: Int = 256, upperCapacity: Int = 2048) {
        tiers = Mutex((Tier(capacity: level0Capacity), Tier(capacity: upperCapacity)))
    }

    package convenience init(capacity: Int) {
        self.init(level0Capacity: capacity, upperCapacity: capacity)
    }

    package func tile(_ key: TileKey, load: () throws -> ExpandedTile) rethrows -> ExpandedTile {
        if let hit = tiers.withLock({ key.level == 0 ? $0.level0.tiles[key] : $0.upper.tiles[key] }) { return hit }
        let tile = try load()
        tiers.withLock { t in
            if key.level == 0 { t.level0.insert(tile, for: key) } else { t.upper.insert(tile, for: key) }
        }
        return tile
    }
}

/// Perfect-subtree hashes of the tree at the moment a snapshot was taken: full tiles from the
/// store (through the cache), the rightmost partial tiles from the snapshot. Used for roots and
/// proofs at any size up to the snapshot's.
package final class TileReader: MerkleNodeSource {
    private let store: TileStore
    private let cache: TileCache
    package let size: UInt64
    private let pending: [[Digest]]
    private let fullTiles: [UInt64]

    package init(store: TileStore, cache: TileCache, size: UInt64, pending: [[Digest]], fullTiles: [UInt64]) {
        self.store = store
        self.cache = cache
        self.size = size
        self.pending = pending
        self.fullTiles = fullTiles
    }

    package convenience init(store: TileStore, cache: TileCache, size: UInt64, builder: TileBuilder) {
        self.init(store: store, cache: cache, size: size, pending: builder.pending, fullTiles: builder.fullTiles)
    }

    package func node(level: Int, index: UInt64) throws -> Digest {
        guard level < 64, index < (size >> UInt64(level)) else {
            throw SteleError.proof(.invalidTreeSize((index + 1) << UInt64(min(level, 63)), available: size))
        }
        let tileLevel = level >> 3, height = level & 7
        let first = index << UInt64(height)
        let tileIndex = first >> 8
        let offset = Int(first & 255)
        let expanded: ExpandedTile
        if tileLevel < fullTiles.count, tileIndex < fullTiles[tileLevel] {
            expanded = try cache.tile(TileKey(level: tileLevel, index: tileIndex)) {
                if tileLevel == 0, let slot = try store.readLevel0(tileIndex) { return ExpandedTile(level0: slot) }
                guard let hashes = try store.read(level: tileLevel, index: tileIndex) else {
                    throw SteleError.corruption(Corruption(
                        file: store.directory + "/" + TileStore.path(level: tileLevel, index: tileIndex),
                        detail: "tile missing"))
                }
                return ExpandedTile(hashes)
            }
        } else if tileLevel < pending.count {
            // The rightmost tiles change as records arrive; one key per width keeps them cacheable.
            let key = TileKey(level: tileLevel, index: tileIndex << 8 | UInt64(pending[tileLevel].count) | 1 << 63)
            expanded = cache.tile(key) { ExpandedTile(pending[tileLevel]) }
        } else {
            throw SteleError.proof(.invalidTreeSize(size + 1, available: size))
        }
        guard let node = expanded.node(height: height, index: offset >> height) else {
            throw SteleError.proof(.invalidTreeSize((index + 1) << UInt64(level), available: size))
        }
        return node
    }
}
