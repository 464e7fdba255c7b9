/// Groups the tree's hashes into tiles as records are appended.
///
/// Invariant: `pending[L]` holds the hashes of the incomplete (rightmost) tile at level L, fewer
/// than 256, and `fullTiles[L]` full tiles precede it; for a tree of `size` leaves that means
/// `pending[L].count == (size >> 8L) & 255` and `fullTiles[L] == size >> 8(L+1)`.
/// Level-L hashes for L ≥ 1 come from the frontier's merges (nodes at tree level 8L), so
/// building tiles costs no hashing of its own.
package struct TileBuilder {
    package private(set) var pending: [[Digest]] = [[]]
    package private(set) var fullTiles: [UInt64] = [0]

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
            store.writeFull(level: level, index: fullTiles[level], hashes: pending[level])
            fullTiles[level] += 1
            pending[level].removeAll(keepingCapacity: true)
        }
    }

    /// Appends one leaf: updates `frontier` and routes the leaf and every completed node at a
    /// multiple of 8 levels into tiles.
    @inline(__always)
    package mutating func append(leaf: Digest, frontier: inout Frontier, store: TileStore) {
        add(level: 0, leaf, store: store)
        frontier.append(leaf) { level, node in
            if level & 7 == 0 { add(level: level >> 3, node, store: store) }
        }
    }
}
