import SteleNative

/// RFC 9162 §2.1.3 and §2.1.4: inclusion and consistency proofs, generated from any source of
/// perfect-subtree hashes and verified by pure functions that need nothing but the proof.

/// Hashes of perfect, aligned subtrees: `node(level, index)` is the Merkle tree hash of leaves
/// `index·2^level ..< (index+1)·2^level`, which must lie inside the tree the source describes.
package protocol MerkleNodeSource {
    func node(level: Int, index: UInt64) throws -> Digest
}

/// Why a proof or a root cannot be produced.
public enum ProofError: Sendable, Equatable, CustomStringConvertible {
    /// The leaf index is not below the tree size.
    case indexOutOfRange(index: UInt64, treeSize: UInt64)
    /// The tree size is 0 (no inclusion proof exists) or larger than the log.
    case invalidTreeSize(UInt64, available: UInt64)
    /// A consistency proof needs `0 < from ≤ to`.
    case invalidRange(from: UInt64, to: UInt64)

    /// What was asked and what the log has, in one line.
    public var description: String {
        switch self {
        case .indexOutOfRange(let i, let n): "leaf index \(i) is not in a tree of size \(n)"
        case .invalidTreeSize(let n, let available): "tree size \(n) is not available (the log has \(available) leaves)"
        case .invalidRange(let a, let b): "no consistency proof from size \(a) to size \(b)"
        }
    }
}

package enum MerkleProofs {
    /// The largest power of two strictly smaller than `n` (n ≥ 2).
    @inline(__always)
    static func splitPoint(_ n: UInt64) -> UInt64 {
        1 << (63 - (n - 1).leadingZeroBitCount)
    }

    /// MTH of leaves `start ..< end`, composed from perfect subtrees.
    static func subtreeHash(_ source: some MerkleNodeSource, _ start: UInt64, _ end: UInt64) throws -> Digest {
        let size = end - start
        if size.nonzeroBitCount == 1 && start % size == 0 {
            return try source.node(level: size.trailingZeroBitCount, index: start >> size.trailingZeroBitCount)
        }
        let k = splitPoint(size)
        return TreeHash.node(try subtreeHash(source, start, start + k), try subtreeHash(source, start + k, end))
    }

    /// The root of the tree of `size` leaves.
    package static func root(_ source: some MerkleNodeSource, size: UInt64) throws -> Digest {
        size == 0 ? TreeHash.emptyRoot : try subtreeHash(source, 0, size)
    }

    /// PATH(index, D[0:size]) of RFC 9162 §2.1.3.1, leaf-side first.
    package static func inclusionProof(_ source: some MerkleNodeSource, index: UInt64, size: UInt64) throws -> [Digest] {
        guard index < size else { throw SteleError.proof(.indexOutOfRange(index: index, treeSize: size)) }
        var proof: [Digest] = []
        var start: UInt64 = 0, end = size
        var siblings: [(UInt64, UInt64)] = []
        while end - start > 1 {
            let k = splitPoint(end - start)
            if index < start + k {
                siblings.append((start + k, end))
                end = start + k
            } else {
                siblings.append((start, start + k))
                start += k
            }
        }
        for (a, b) in siblings.reversed() { proof.append(try subtreeHash(source, a, b)) }
        return proof
    }

    /// PROOF(from, D[0:to]) of RFC 9162 §2.1.4.1 (SUBPROOF with b = true).
    package static func consistencyProof(_ source: some MerkleNodeSource, from: UInt64, to: UInt64) throws -> [Digest] {
        guard from > 0, from <= to else { throw SteleError.proof(.invalidRange(from: from, to: to)) }
        if from == to { return [] }
        // Walk down from the root of `to`, collecting the hashes in reverse order.
        var collected: [Digest] = []
        var start: UInt64 = 0, end = to, m = from
        var haveRoot = true
        while true {
            let n = end - start
            if m == n {
                if !haveRoot { collected.append(try subtreeHash(source, start, end)) }
                break
            }
            let k = splitPoint(n)
            if m <= k {
                collected.append(try subtreeHash(source, start + k, end))
                end = start + k
            } else {
                collected.append(try subtreeHash(source, start, start + k))
                start += k
                m -= k
                haveRoot = false
            }
        }
        return collected.reversed()
    }
}

/// Verifiers for RFC 9162 proofs; they trust nothing but their arguments.
public enum MerkleVerifier {
    /// RFC 9162 §2.1.3.2: whether `leafHash` is leaf `index` of the tree of `treeSize` leaves
    /// whose root is `root`.
    /// - Parameters:
    ///   - leafHash: the leaf's hash, recomputed from data you hold (``Version/leafHash``).
    ///   - index: the leaf index (the record's sequence number).
    ///   - treeSize: the size of the tree `root` is the root of.
    ///   - proof: the sibling hashes from the leaf up (``InclusionProof/hashes``).
    ///   - root: a root you trust, such as a verified ``Checkpoint/root``.
    /// - Returns: false for any proof that does not verify, including sizes and indices out of
    ///   range; it never throws or traps on bad input.
    /// - Cost: one node hash per proof element.
    public static func verifyInclusion(leafHash: Digest, index: UInt64, treeSize: UInt64,
                                       proof: [Digest], root: Digest) -> Bool {
        guard index < treeSize else { return false }
        var fn = index, sn = treeSize - 1
        var r = leafHash
        for p in proof {
            if sn == 0 { return false }
            if fn & 1 == 1 || fn == sn {
                r = TreeHash.node(p, r)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 {
                        fn >>= 1
                        sn >>= 1
                    }
                }
            } else {
                r = TreeHash.node(r, p)
            }
            fn >>= 1
            sn >>= 1
        }
        return sn == 0 && r == root
    }

    /// RFC 9162 §2.1.4.2: whether the tree of `oldSize` leaves with root `oldRoot` is a prefix of
    /// the tree of `newSize` leaves with root `newRoot`. Equal sizes need an empty proof and equal
    /// roots; an empty old tree is a prefix of anything.
    /// - Parameters:
    ///   - oldSize: the size of the older tree.
    ///   - newSize: the size of the newer tree.
    ///   - oldRoot: the older tree's root, from a checkpoint you trust.
    ///   - newRoot: the newer tree's root.
    ///   - proof: the proof nodes (``ConsistencyProof/hashes``).
    /// - Returns: false for any proof that does not verify; it never throws or traps on bad input.
    /// - Cost: about two node hashes per proof element.
    public static func verifyConsistency(oldSize: UInt64, newSize: UInt64, oldRoot: Digest, newRoot: Digest,
                                         proof: [Digest]) -> Bool {
        guard oldSize <= newSize else { return false }
        if oldSize == newSize { return proof.isEmpty && oldRoot == newRoot }
        if oldSize == 0 { return proof.isEmpty }
        var path = proof
        if oldSize.nonzeroBitCount == 1 { path.insert(oldRoot, at: 0) }
        guard let first = path.first else { return false }
        var fn = oldSize - 1, sn = newSize - 1
        while fn & 1 == 1 {
            fn >>= 1
            sn >>= 1
        }
        var fr = first, sr = first
        for c in path.dropFirst() {
            if sn == 0 { return false }
            if fn & 1 == 1 || fn == sn {
                fr = TreeHash.node(c, fr)
                sr = TreeHash.node(c, sr)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 {
                        fn >>= 1
                        sn >>= 1
                    }
                }
            } else {
                sr = TreeHash.node(sr, c)
            }
            fn >>= 1
            sn >>= 1
        }
        return fr == oldRoot && sr == newRoot && sn == 0
    }
}

/// A complete tree held in memory, level by level: the reference source for tests and small trees.
package struct InMemoryTree: MerkleNodeSource {
    package private(set) var levels: [[Digest]] = [[]]

    package init(leaves: [Digest] = []) {
        for leaf in leaves { append(leaf) }
    }

    package var size: UInt64 { UInt64(levels[0].count) }

    package mutating func append(_ leaf: Digest) {
        levels[0].append(leaf)
        var level = 0
        while levels[level].count % 2 == 0 {
            let n = levels[level].count
            let parent = TreeHash.node(levels[level][n - 2], levels[level][n - 1])
            if levels.count == level + 1 { levels.append([]) }
            levels[level + 1].append(parent)
            level += 1
        }
    }

    package func node(level: Int, index: UInt64) throws -> Digest {
        guard level < levels.count, index < UInt64(levels[level].count) else {
            throw SteleError.proof(.invalidTreeSize(index << level, available: size))
        }
        return levels[level][Int(index)]
    }
}
