import SteleNative

/// A snapshot of the key index and of where the retention records are, so that opening a
/// large store reads one file and replays only the records after it.
///
/// `index/snapshot`, written atomically (temporary file, fsync, rename, directory fsync):
/// ```
/// "STELEIDX" | u16 version (1) | u16 0 | u32 0 | u64 tree size s | 32-byte root at s
/// | u64 key count | u64 retention record count
/// | key count × (u16 length | namespace ‖ 0x00 ‖ key | u32 n | n × u64 version)
/// | retention record count × u64 sequence   (records of types 3, 4, 5 before s)
/// | u64 XXH3 of everything before
/// ```
/// A version is a sequence number with bit 63 set for a tombstone. Keys are in byte order.
/// A reader uses a snapshot only if its XXH3 matches, its size is a seal point of the log and
/// its root is that seal's root; anything else is ignored and the index rebuilt from the log.
package struct IndexSnapshot {
    package static let magic: [UInt8] = Array("STELEIDX".utf8)
    package var treeSize: UInt64
    package var root: Digest
    package var keys: KeyIndex
    package var retentionRecords: [UInt64]

    package var encoded: [UInt8] {
        var out = IndexSnapshot.magic
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        put(UInt16(1)); put(UInt16(0)); put(UInt32(0))
        put(treeSize)
        out += root.bytes
        put(UInt64(keys.keyCount))
        put(UInt64(retentionRecords.count))
        keys.forEachKeyInOrder { key, refs in
            put(UInt16(key.count))
            out += key
            put(UInt32(refs.count))
            for ref in refs { put(ref.raw) }
        }
        for sequence in retentionRecords { put(sequence) }
        put(xxh3(out))
        return out
    }

    /// Decodes a snapshot; nil for anything malformed (the caller rebuilds from the log).
    package static func decode(_ bytes: [UInt8]) -> IndexSnapshot? {
        guard bytes.count >= 72 else { return nil }
        return ByteView.of(bytes) { v -> IndexSnapshot? in
            guard v.slice(0, 8).equals(magic), v.u16(8) == 1, v.u16(10) == 0, v.u32(12) == 0,
                  v.u64(bytes.count - 8) == xxh3(v.slice(0, bytes.count - 8)) else { return nil }
            let treeSize = v.u64(16), root = Digest(v, at: 24)
            let keyCount = v.u64(56), retentionCount = v.u64(64)
            let end = bytes.count - 8
            guard keyCount <= UInt64(end), retentionCount <= UInt64(end) else { return nil }
            guard let (keys, offset) = KeyIndex.decode(v, at: 72, count: keyCount, end: end) else { return nil }
            guard UInt64(end - offset) == retentionCount * 8 else { return nil }
            let retention = (0 ..< Int(retentionCount)).map { v.u64(offset + 8 * $0) }
            // Retention records strictly increasing and inside the snapshot's tree.
            guard zip(retention, retention.dropFirst()).allSatisfy({ $0 < $1 }), retention.allSatisfy({ $0 < treeSize }) else { return nil }
            return IndexSnapshot(treeSize: treeSize, root: root, keys: keys, retentionRecords: retention)
        }
    }
}
