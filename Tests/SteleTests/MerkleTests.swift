import Testing
@testable import Stele

/// RFC 6962 reference vectors from transparency-dev/merkle, `testonly/constants.go`
/// (LeafInputs, RootHashes, CompactTrees): the tree over the 8 standard leaves.
@Suite struct MerkleTests {
    static let leafInputs: [[UInt8]] = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                        "606162636465666768696a6b6c6d6e6f"].map { bytesFromHex($0)! }
    static let roots = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
    /// CompactTrees: the frontier (perfect subtree roots) after each size.
    static let frontiers: [[String]] = {
        let l0 = ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                  "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                  "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
                  "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
                  "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                  "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
                  "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"]
        let l1 = ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
                  "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                  "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"]
        let l2 = "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"
        let l3 = "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
        return [[], [l0[0]], [l1[0]], [l1[0], l0[2]], [l2], [l2, l0[4]], [l2, l1[2]], [l2, l1[2], l0[6]], [l3]]
    }()

    @Test func rootsAndFrontiersMatchReferenceVectors() {
        var frontier = Frontier()
        #expect(frontier.root.hex == Self.roots[0])
        for (i, input) in Self.leafInputs.enumerated() {
            frontier.append(TreeHash.leaf(input))
            #expect(frontier.size == UInt64(i + 1))
            #expect(frontier.root.hex == Self.roots[i + 1], "root at size \(i + 1)")
            #expect(frontier.hashes.map(\.hex) == Self.frontiers[i + 1], "frontier at size \(i + 1)")
        }
    }

    /// Appending a perfect subtree's root where it starts gives the frontier, and reports the
    /// nodes above it, exactly as appending its leaves one by one (which reports those same
    /// nodes among its own).
    @Test func aSubtreeAppendedWholeEqualsItsLeavesOneByOne() {
        let leaves = (0 ..< 1024).map { TreeHash.leaf(Array("leaf \($0)".utf8)) }
        for (start, height) in [(0, 6), (64, 6), (128, 6), (192, 6), (256, 8), (512, 3), (520, 3), (0, 10)] {
            var byLeaf = Frontier(), whole = Frontier()
            for leaf in leaves[..<start] { byLeaf.append(leaf); whole.append(leaf) }
            var reportedByLeaf: [Int: Digest] = [:], reportedWhole: [Int: Digest] = [:]
            let width = 1 << height
            for leaf in leaves[start ..< start + width] {
                byLeaf.append(leaf) { level, node in if level > height { reportedByLeaf[level] = node } }
            }
            var level = Array(leaves[start ..< start + width])
            while level.count > 1 { level = stride(from: 0, to: level.count, by: 2).map { TreeHash.node(level[$0], level[$0 + 1]) } }
            whole.append(subtree: level[0], height: height) { level, node in reportedWhole[level] = node }
            #expect(whole == byLeaf, "subtree at \(start) of height \(height)")
            #expect(reportedWhole == reportedByLeaf)
        }
    }

    @Test func frontierRestoresFromSavedHashes() throws {
        var frontier = Frontier()
        for input in Self.leafInputs.prefix(7) { frontier.append(TreeHash.leaf(input)) }
        var restored = try #require(Frontier(size: 7, hashes: frontier.hashes))
        restored.append(TreeHash.leaf(Self.leafInputs[7]))
        #expect(restored.root.hex == Self.roots[8])
        #expect(Frontier(size: 7, hashes: Array(frontier.hashes.prefix(2))) == nil)
    }

    @Test func rootOfLargeTreeEqualsRecursiveDefinition() {
        // RFC 6962 §2.1: MTH(D[n]) = HASH(0x01 || MTH(D[0:k]) || MTH(D[k:n])), k the largest power of two < n.
        func mth(_ leaves: ArraySlice<Digest>) -> Digest {
            if leaves.isEmpty { return TreeHash.emptyRoot }
            if leaves.count == 1 { return leaves.first! }
            var k = 1
            while k * 2 < leaves.count { k *= 2 }
            return TreeHash.node(mth(leaves.prefix(k)), mth(leaves.dropFirst(k)))
        }
        let leaves = (0 ..< 300).map { TreeHash.leaf(Array("leaf \($0)".utf8)) }
        var frontier = Frontier()
        for (i, leaf) in leaves.enumerated() {
            frontier.append(leaf)
            if [1, 2, 3, 5, 64, 100, 255, 256, 257, 299].contains(i) || i == 299 {
                #expect(frontier.root == mth(leaves.prefix(i + 1)[...]), "size \(i + 1)")
            }
        }
    }
}
