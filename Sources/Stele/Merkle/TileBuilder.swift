import SteleNative

/// Groups the tree's hashes into tiles as records are appended.
///
/// Invariant: `pending[L]` holds the hashes of the incomplete (rightmost) tile at level L, fewer
/// than 256, and `fullTiles[L]` full tiles precede it; for a tree of `size` leaves that means
/// `pending[L].count == (size >> 8L) & 255` and `fullTiles[L] == size >> 8(L+1)`.
/// Level-L hashes for L ≥ 1 come from the frontier's merges (nodes at tree level 8L), so
/// building tiles costs no hashing of its own. The frontier also hands over the nodes at heights
/// 4 to 7 inside each level-0 tile (`interior`), which are stored with the tile so that a proof
/// needs at most 11 hashes inside it instead of 247.
package struct TileBuilder {
    package private(set) var pending: [[Digest]] = [[]]
    package private(set) var fullTiles: [UInt64] = [0]
    /// Interior nodes of the current level-0 tile completed so far (see ``TileInterior``).
    package private(set) var interior = [Digest](repeating: .zero, count: TileInterior.count)

    package init() {}

    /// Restores the builder for a tree of `size` leaves from the tiles on disk (partial tiles
    /// for exactly that size); nil if one is missing.
    package init?(size: UInt64, store: TileStore) throws {
        var level = 0
        while level == 0 || size >> (8 * UInt64(level)) > 0 {
            let width = Int((size >> (8 * UInt64(level))) & 255)
            let full = size >> (8 * UInt64(level + 1))
            if level >= pending.count { pending.append([]); fullTiles.append(0) }
            fullTiles[level] = full
            if width > 0 {
                guard let hashes = try store.read(level: level, index: full, partialWidth: width) else { return nil }
                pending[level] = hashes
            }
            level += 1
        }
        interior = TileInterior.compute(pending[0])
    }

    /// Adds the next hash at tile level `level`; a tile that fills is handed to `store`.
    @inline(__always)
    package mutating func add(level: Int, _ hash: Digest, store: TileStore) {
        while pending.count <= level {
            pending.append([])
            fullTiles.append(0)
        }
        pending[level].append(hash)
        if pending[level].count == TileStore.width {
            store.writeFull(level: level, index: fullTiles[level], hashes: pending[level],
                            interior: level == 0 ? interior : [])
            fullTiles[level] += 1
            pending[level].removeAll(keepingCapacity: true)
        }
    }

    /// Appends one leaf: updates `frontier` and routes the leaf and every completed node at a
    /// multiple of 8 levels into tiles, and nodes at heights 4-7 into the level-0 interior.
    @inline(__always)
    package mutating func append(leaf: Digest, frontier: inout Frontier, store: TileStore) {
        let index = frontier.size
        frontier.append(leaf) { level, node in
            if level & 7 == 0 {
                add(level: level >> 3, node, store: store)
            } else if level >= 4 && level <= 7 {
                interior[TileInterior.slot(height: level, index: Int(index >> UInt64(level)) & ((256 >> level) - 1))] = node
            }
        }
        add(level: 0, leaf, store: store)
    }
}

extension TileBuilder {
    /// Leaves per aligned subtree that ``append(subtree:)`` takes whole.
    package static let subtreeWidth = 64

    /// A perfect subtree of ``subtreeWidth`` leaves starting at a multiple of that, with the
    /// nodes of it the tiles keep: heights 4 (4 nodes), 5 (2) and 6 (its root).
    package struct Subtree {
        package var leaves: [Digest]
        package var height4: [Digest]
        package var height5: [Digest]
        package var root: Digest

        /// Hashes the subtree's nodes over `leaves` (exactly ``subtreeWidth``): 63 node hashes.
        package init(leaves: [Digest]) {
            precondition(leaves.count == TileBuilder.subtreeWidth, "a subtree of the wrong width")
            self.leaves = leaves
            // Each height's nodes overwrite the front of one working copy.
            var nodes = leaves, width = leaves.count
            var height4: [Digest] = [], height5: [Digest] = []
            for height in 1 ... 6 {
                width /= 2
                for i in 0 ..< width { nodes[i] = TreeHash.node(nodes[2 * i], nodes[2 * i + 1]) }
                if height == 4 { height4 = Array(nodes[..<width]) }
                if height == 5 { height5 = Array(nodes[..<width]) }
            }
            self.height4 = height4
            self.height5 = height5
            root = nodes[0]
        }
    }

    /// Appends a whole aligned subtree: the same frontier, tiles and interior nodes as
    /// appending its leaves one by one with ``append(leaf:frontier:store:)``, but the hashing
    /// inside it was done by whoever built `subtree`.
    package mutating func append(subtree: Subtree, frontier: inout Frontier, store: TileStore) {
        let index = frontier.size
        let inTile = Int(index & 255)
        for (j, node) in subtree.height4.enumerated() { interior[TileInterior.slot(height: 4, index: (inTile >> 4) + j)] = node }
        for (j, node) in subtree.height5.enumerated() { interior[TileInterior.slot(height: 5, index: (inTile >> 5) + j)] = node }
        interior[TileInterior.slot(height: 6, index: inTile >> 6)] = subtree.root
        frontier.append(subtree: subtree.root, height: 6) { level, node in
            if level & 7 == 0 {
                add(level: level >> 3, node, store: store)
            } else if level == 7 {
                interior[TileInterior.slot(height: 7, index: Int(index >> 7) & 1)] = node
            }
        }
        for leaf in subtree.leaves { add(level: 0, leaf, store: store) }
    }
}

/// The interior nodes kept with each full level-0 tile: heights 4 (16 nodes), 5 (8), 6 (4) and
/// 7 (2), in that order, 30 hashes. Node j at height h covers the tile's hashes j·2^h ..< (j+1)·2^h.
package enum TileInterior {
    package static let count = 30
    private static let base = [0, 16, 24, 28]

    @inline(__always)
    package static func slot(height: Int, index: Int) -> Int { base[height - 4] + index }

    /// The interior nodes of a (possibly partial) tile; incomplete ones are zero.
    package static func compute(_ hashes: [Digest]) -> [Digest] {
        var out = [Digest](repeating: .zero, count: count)
        var level = hashes
        for height in 1 ... 7 {
            level = stride(from: 0, to: level.count - 1, by: 2).map { TreeHash.node(level[$0], level[$0 + 1]) }
            if height >= 4 {
                for (j, node) in level.enumerated() { out[slot(height: height, index: j)] = node }
            }
        }
        return out
    }
}
