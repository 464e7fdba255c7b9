import Testing
@testable import Stele

/// Proof vectors from transparency-dev/merkle `testonly/reference_test.go` (TestRefInclusionProof,
/// TestRefConsistencyProof), over the RFC 6962 leaves of `MerkleTests.leafInputs`.
@Suite struct ProofTests {
    static let tree = InMemoryTree(leaves: MerkleTests.leafInputs.map { TreeHash.leaf($0) })

    static let inclusionVectors: [(index: UInt64, size: UInt64, proof: [String])] = [
        (0, 1, []),
        (0, 2, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"]),
        (1, 2, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"]),
        (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
        (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
        (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
        (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    ]

    static let consistencyVectors: [(from: UInt64, to: UInt64, proof: [String])] = [
        (1, 1, []),
        (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
        (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
        (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    ]

    static func root(_ size: UInt64) throws -> Digest { try #require(Digest(hex: MerkleTests.roots[Int(size)])) }

    @Test func inclusionProofVectors() throws {
        for v in Self.inclusionVectors {
            let proof = try MerkleProofs.inclusionProof(Self.tree, index: v.index, size: v.size)
            #expect(proof.map(\.hex) == v.proof, "index \(v.index) size \(v.size)")
            let leaf = TreeHash.leaf(MerkleTests.leafInputs[Int(v.index)])
            #expect(MerkleVerifier.verifyInclusion(leafHash: leaf, index: v.index, treeSize: v.size, proof: proof, root: try Self.root(v.size)))
        }
    }

    @Test func consistencyProofVectors() throws {
        for v in Self.consistencyVectors {
            let proof = try MerkleProofs.consistencyProof(Self.tree, from: v.from, to: v.to)
            #expect(proof.map(\.hex) == v.proof, "\(v.from) to \(v.to)")
            #expect(MerkleVerifier.verifyConsistency(oldSize: v.from, newSize: v.to, oldRoot: try Self.root(v.from),
                                                     newRoot: try Self.root(v.to), proof: proof))
        }
    }

    @Test func rootsFromNodeSourceMatchVectors() throws {
        for size in 0 ... 8 {
            #expect(try MerkleProofs.root(Self.tree, size: UInt64(size)).hex == MerkleTests.roots[size])
        }
    }

    @Test func badRequestsAreTypedErrors() {
        #expect(throws: SteleError.proof(.indexOutOfRange(index: 8, treeSize: 8))) { try MerkleProofs.inclusionProof(Self.tree, index: 8, size: 8) }
        #expect(throws: SteleError.proof(.invalidRange(from: 0, to: 8))) { try MerkleProofs.consistencyProof(Self.tree, from: 0, to: 8) }
        #expect(throws: SteleError.proof(.invalidRange(from: 5, to: 3))) { try MerkleProofs.consistencyProof(Self.tree, from: 5, to: 3) }
    }

    /// Every proof over random trees verifies; any single changed byte in the proof, the leaf or
    /// the root makes verification fail.
    @Test func randomTreesProofsVerifyAndTamperingFails() throws {
        var random = SplitMix64(seed: 20261121)
        var tree = InMemoryTree()
        var roots: [Digest] = [TreeHash.emptyRoot]
        let maxSize = 3000
        for i in 0 ..< maxSize {
            tree.append(TreeHash.leaf(Array("leaf-\(i)".utf8)))
            roots.append(try MerkleProofs.root(tree, size: tree.size))
        }
        func flip(_ d: Digest, _ byte: Int) -> Digest {
            var b = d.bytes
            b[byte] ^= 1 << UInt8(byte % 8)
            return Digest(bytes: b)!
        }
        for _ in 0 ..< 400 {
            let size = UInt64(1 + random.next(below: maxSize))
            let index = UInt64(random.next(below: Int(size)))
            let leaf = try tree.node(level: 0, index: index)
            let proof = try MerkleProofs.inclusionProof(tree, index: index, size: size)
            #expect(MerkleVerifier.verifyInclusion(leafHash: leaf, index: index, treeSize: size, proof: proof, root: roots[Int(size)]))
            let byte = random.next(below: 32)
            #expect(!MerkleVerifier.verifyInclusion(leafHash: flip(leaf, byte), index: index, treeSize: size, proof: proof, root: roots[Int(size)]))
            #expect(!MerkleVerifier.verifyInclusion(leafHash: leaf, index: index, treeSize: size, proof: proof, root: flip(roots[Int(size)], byte)))
            if !proof.isEmpty {
                var bad = proof
                let at = random.next(below: proof.count)
                bad[at] = flip(bad[at], byte)
                #expect(!MerkleVerifier.verifyInclusion(leafHash: leaf, index: index, treeSize: size, proof: bad, root: roots[Int(size)]))
                #expect(!MerkleVerifier.verifyInclusion(leafHash: leaf, index: index, treeSize: size, proof: Array(proof.dropLast()), root: roots[Int(size)]))
            }
            if size > 1 {
                #expect(!MerkleVerifier.verifyInclusion(leafHash: leaf, index: (index + 1) % size, treeSize: size, proof: proof, root: roots[Int(size)]))
            }

            let from = UInt64(1 + random.next(below: Int(size)))
            let consistency = try MerkleProofs.consistencyProof(tree, from: from, to: size)
            #expect(MerkleVerifier.verifyConsistency(oldSize: from, newSize: size, oldRoot: roots[Int(from)], newRoot: roots[Int(size)], proof: consistency))
            #expect(!MerkleVerifier.verifyConsistency(oldSize: from, newSize: size, oldRoot: flip(roots[Int(from)], byte), newRoot: roots[Int(size)], proof: consistency))
            #expect(!MerkleVerifier.verifyConsistency(oldSize: from, newSize: size, oldRoot: roots[Int(from)], newRoot: flip(roots[Int(size)], byte), proof: consistency))
            if !consistency.isEmpty {
                var bad = consistency
                let at = random.next(below: consistency.count)
                bad[at] = flip(bad[at], byte)
                #expect(!MerkleVerifier.verifyConsistency(oldSize: from, newSize: size, oldRoot: roots[Int(from)], newRoot: roots[Int(size)], proof: bad))
            }
        }
    }
}
