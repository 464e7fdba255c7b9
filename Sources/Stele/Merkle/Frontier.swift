import SteleNative

/// The right edge of an RFC 6962 Merkle tree: enough state to append leaves and compute the root.
///
/// Invariant: `hashes` are the roots of the perfect subtrees that make up a tree of `size`
/// leaves, largest (leftmost) first; there is one per set bit of `size`, so at most 64.
/// Appending a leaf costs one hash per trailing one bit of the old size: on average one.
public struct Frontier: Sendable, Equatable {
    /// The number of leaves appended.
    public private(set) var size: UInt64 = 0
    /// The roots of the perfect subtrees, largest first: one per set bit of ``size``.
    public private(set) var hashes: [Digest] = []

    /// An empty tree.
    public init() {}

    /// Restores a frontier saved in a segment footer; nil if the count does not match `size`.
    public init?(size: UInt64, hashes: [Digest]) {
        guard size.nonzeroBitCount == hashes.count else { return nil }
        self.size = size
        self.hashes = hashes
    }

    /// Adds the next leaf hash.
    public mutating func append(_ leaf: Digest) {
        append(leaf) { _, _ in }
    }

    /// Adds the next leaf hash and reports every interior node it completes, as
    /// `(level, hash)` with level ≥ 1 (a node at level L covers 2^L leaves). The tile builder
    /// takes the nodes at multiples of 8 from here, so no tree node is ever hashed twice.
    @inline(__always)
    package mutating func append(_ leaf: Digest, completed: (Int, Digest) -> Void) {
        append(subtree: leaf, height: 0, completed: completed)  // a leaf is a subtree of height 0
    }

    /// Adds the `2^height` leaves whose perfect subtree hashes to `root`, at a size that is a
    /// multiple of `2^height` (where such a subtree starts), and reports the nodes it completes
    /// above it as ``append(_:completed:)`` does; the subtree's own nodes are the caller's.
    /// Equivalent to appending its leaves one by one, for a fraction of the hashing: a batch's
    /// threads hash aligned subtrees in parallel and the tree takes only their roots.
    @inline(__always)
    package mutating func append(subtree root: Digest, height: Int, completed: (Int, Digest) -> Void) {
        precondition(height >= 0 && height < 64 && size & ((1 << UInt64(height)) - 1) == 0, "a subtree not on its boundary")
        var node = root
        var s = size >> UInt64(height)
        var level = height
        while s & 1 == 1, let left = hashes.popLast() {
            node = TreeHash.node(left, node)
            s >>= 1
            level += 1
            completed(level, node)
        }
        hashes.append(node)
        size += 1 << UInt64(height)
    }

    /// The Merkle tree hash of all leaves appended so far.
    /// Cost: one node hash per subtree after the first (at most 63).
    public var root: Digest {
        guard var node = hashes.last else { return TreeHash.emptyRoot }
        for left in hashes.dropLast().reversed() { node = TreeHash.node(left, node) }
        return node
    }
}
