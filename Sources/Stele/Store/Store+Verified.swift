import SteleNative

/// A version with the proof that it is in the tree a checkpoint signed.
public struct VerifiedVersion: Sendable, Equatable {
    /// The version, as the store returned it (value included).
    public var version: Version
    /// Inclusion proof of the version's record in the checkpoint's tree.
    public var proof: InclusionProof
    /// The checkpoint the proof refers to.
    public var checkpoint: Checkpoint

    /// Recomputes the leaf hash from the version's own content and checks the proof against the
    /// checkpoint's root: what a client that does not trust the server does.
    public var isValid: Bool {
        guard let leaf = version.leafHash else { return false }
        return proof.treeSize == checkpoint.treeSize && proof.root == checkpoint.root
            && MerkleVerifier.verifyInclusion(leafHash: leaf, index: version.sequence, treeSize: checkpoint.treeSize,
                                              proof: proof.hashes, root: checkpoint.root)
    }
}

extension Version {
    /// The leaf hash of this version, recomputed from its content (RFC 6962 leaf over the
    /// canonical entry bytes); the stored hash for a redaction stub; nil for a tombstone.
    public var leafHash: Digest? {
        if let stub = redactedLeafHash { return stub }
        guard let value else { return nil }
        return TreeHash.leaf(CanonicalEntry.bytes(type: .put, sequence: sequence, timestamp: timestamp,
                                                  namespace: Array(namespace.utf8), key: key, value: value))
    }
}

extension Store {
    /// The latest live version of `key` within the tree of `checkpoint` (so, as of its tree
    /// size), with its inclusion proof against that checkpoint. Check it with
    /// ``VerifiedVersion/isValid``; a client should have verified the checkpoint's signature
    /// itself (``verify(checkpoint:verifier:)`` does, on the store's side).
    /// - Returns: nil if the key had no live version at that size.
    /// - Throws: ``SteleError/checkpoint(_:)`` if the checkpoint is for another log or larger
    ///   than the store; as ``inclusionProof(index:treeSize:)`` otherwise.
    public func getVerified(namespace: String, key: [UInt8], checkpoint: Checkpoint) throws -> VerifiedVersion? {
        guard checkpoint.origin == config.origin else {
            throw SteleError.checkpoint(.wrongOrigin(expected: config.origin, found: checkpoint.origin))
        }
        guard checkpoint.treeSize <= treeSize else {
            throw SteleError.checkpoint(.storeBehindCheckpoint(checkpointSize: checkpoint.treeSize, storeSize: treeSize))
        }
        guard checkpoint.treeSize > 0,
              let version = try get(namespace: namespace, key: key, asOf: checkpoint.treeSize - 1) else { return nil }
        let proof = try inclusionProof(index: version.sequence, treeSize: checkpoint.treeSize)
        guard proof.root == checkpoint.root else {
            throw SteleError.checkpoint(.rootMismatch(size: checkpoint.treeSize, checkpointRoot: checkpoint.root, storeRoot: proof.root))
        }
        return VerifiedVersion(version: version, proof: proof, checkpoint: checkpoint)
    }
}
