import SteleNative

/// Canonical entry bytes and leaf hashes (RFC 6962 §2.1 / RFC 9162 §2.1.1).
///
/// The canonical bytes cover a record's logical content and nothing about how it is stored:
/// ```
/// u8 version (1) | u8 type | u64 sequence | i64 timestamp |
/// u16 N | namespace | u16 K | key | u32 V | value (uncompressed)
/// ```
/// leaf hash = SHA-256(0x00 ‖ canonical bytes). Because compression, framing and redaction
/// do not enter it, recompressing or purging a payload changes no leaf hash, no seal and no proof.
///
/// An encrypted record (frame flag `ENCRYPTED`) has version 2, whose bytes carry the storage
/// flags that its blobs cannot be read without, after the type:
/// ```
/// u8 version (2) | u8 type | u8 flags (ENCRYPTED, and LZ4 if the plaintext is compressed) |
/// u64 sequence | i64 timestamp | u16 N | namespace | u16 K | key blob | u32 S | value blob
/// ```
/// so clearing or setting the flag (which would serve a blob as a plaintext value, or a
/// plaintext as a blob) changes the leaf, and an entry bundle says how to open each entry.
package enum CanonicalEntry {
    package static let version: UInt8 = 1
    package static let encryptedVersion: UInt8 = 2

    /// The canonical bytes of a record (used by `stele leaf` and tests; the write path hashes
    /// the same bytes piecewise without building this array).
    package static func bytes(type: RecordType, sequence: UInt64, timestamp: Int64,
                              namespace: [UInt8], key: [UInt8], value: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [version, type.rawValue]
        func append<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        append(sequence)
        append(timestamp)
        append(UInt16(namespace.count)); out += namespace
        append(UInt16(key.count)); out += key
        append(UInt32(value.count)); out += value
        return out
    }

    /// The canonical bytes of an encrypted record (version 2): `flags` are the frame's, of which
    /// `ENCRYPTED` and `LZ4` are kept.
    package static func encryptedBytes(type: RecordType, flags: UInt8, sequence: UInt64, timestamp: Int64,
                                       namespace: [UInt8], keyBlob: [UInt8], valueBlob: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [encryptedVersion, type.rawValue, flags & (Frame.flagEncrypted | Frame.flagLZ4)]
        func append<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        append(sequence)
        append(timestamp)
        append(UInt16(namespace.count)); out += namespace
        append(UInt16(keyBlob.count)); out += keyBlob
        append(UInt32(valueBlob.count)); out += valueBlob
        return out
    }

    /// SHA-256(0x00 ‖ version 2 canonical bytes) of an encrypted record.
    package static func encryptedLeafHash(type: RecordType, flags: UInt8, sequence: UInt64, timestamp: Int64,
                                          namespace: ByteView, keyBlob: ByteView, valueBlob: ByteView) -> Digest {
        var h = SHA256Hasher()
        ByteWriter.withTemporary(count: 22) { w in
            w.put(UInt8(0), at: 0)
            w.put(encryptedVersion, at: 1)
            w.put(type.rawValue, at: 2)
            w.put(flags & (Frame.flagEncrypted | Frame.flagLZ4), at: 3)
            w.put(sequence, at: 4)
            w.put(timestamp, at: 12)
            w.put(UInt16(namespace.count), at: 20)
            h.update(w.view)
        }
        h.update(namespace)
        h.update(littleEndian: UInt16(keyBlob.count))
        h.update(keyBlob)
        h.update(littleEndian: UInt32(valueBlob.count))
        h.update(valueBlob)
        return h.finalize()
    }

    /// SHA-256(0x00 ‖ canonical bytes), hashed piecewise without copying the value.
    @inline(__always)
    package static func leafHash(type: RecordType, sequence: UInt64, timestamp: Int64,
                                 namespace: ByteView, key: ByteView, value: ByteView) -> Digest {
        var h = SHA256Hasher()
        // 0x00 leaf prefix, version, type, sequence, timestamp, namespace length: 21 bytes.
        ByteWriter.withTemporary(count: 21) { w in
            w.put(UInt8(0), at: 0)
            w.put(version, at: 1)
            w.put(type.rawValue, at: 2)
            w.put(sequence, at: 3)
            w.put(timestamp, at: 11)
            w.put(UInt16(namespace.count), at: 19)
            h.update(w.view)
        }
        h.update(namespace)
        h.update(littleEndian: UInt16(key.count))
        h.update(key)
        h.update(littleEndian: UInt32(value.count))
        h.update(value)
        return h.finalize()
    }
}
