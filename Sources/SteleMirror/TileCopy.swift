import Stele

/// Rebuilds the log's C2SP tiles (`tile/L/N`, and partial `tile/L/N.p/W`) from leaf hashes, so
/// that a mirror copies tiles it computed from verified records rather than the store's own tile
/// files, and a tile server can serve proofs from the copy.
///
/// Invariant: `frontier` holds every leaf appended; `pending[t]` the hashes of the incomplete
/// tile at tile level t (the leaves at t = 0, tree nodes at level 8t above), fewer than 256 each;
/// `fullTiles[t]` how many full tiles of level t were emitted before them.
struct TileAccumulator {
    private(set) var frontier = Frontier()
    private var pending: [[Digest]] = [[]]
    private var fullTiles: [UInt64] = [0]

    /// A tile to copy: its C2SP path (relative to `tile/`'s parent) and bytes.
    struct Tile {
        var path: String
        var bytes: [UInt8]
    }

    /// Adds the next leaf; returns the full tiles it completed, lowest level first.
    mutating func append(_ leaf: Digest) -> [Tile] {
        pending[0].append(leaf)
        frontier.append(leaf) { level, node in
            guard level % 8 == 0 else { return }
            let tileLevel = level / 8
            while pending.count <= tileLevel { pending.append([]); fullTiles.append(0) }
            pending[tileLevel].append(node)
        }
        var completed: [Tile] = []
        for level in pending.indices where pending[level].count == 256 {
            completed.append(Tile(path: TileStore.path(level: level, index: fullTiles[level]), bytes: Self.bytes(pending[level])))
            fullTiles[level] += 1
            pending[level].removeAll(keepingCapacity: true)
        }
        return completed
    }

    /// The partial tiles at the right edge of the tree so far (what a client holding a
    /// checkpoint of exactly this size fetches besides the full tiles).
    var partialTiles: [Tile] {
        pending.indices.filter { !pending[$0].isEmpty }.map { level in
            Tile(path: TileStore.path(level: level, index: fullTiles[level], partialWidth: pending[level].count),
                 bytes: Self.bytes(pending[level]))
        }
    }

    private static func bytes(_ hashes: [Digest]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(hashes.count * 32)
        for hash in hashes { out += hash.bytes }
        return out
    }
}
