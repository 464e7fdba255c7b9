import SteleNative

/// RFC 6962 §2.1 / RFC 9162 §2.1.1 hashing.
public enum TreeHash {
    /// SHA-256 of the empty string: the root of a tree with no leaves.
    public static let emptyRoot: Digest = SHA256Hasher.hash([])

    /// SHA-256(0x00 ‖ data): the leaf hash of arbitrary leaf data.
    public static func leaf(_ data: [UInt8]) -> Digest {
        var h = SHA256Hasher()
        h.update([0])
        h.update(data)
        return h.finalize()
    }

    /// SHA-256(0x01 ‖ left ‖ right).
    @inline(__always)
    public static func node(_ left: Digest, _ right: Digest) -> Digest {
        var h = SHA256Hasher()
        h.update(littleEndian: UInt8(1))
        h.update(left)
        h.update(right)
        return h.finalize()
    }
}
