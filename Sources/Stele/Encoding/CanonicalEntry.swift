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
package enum CanonicalEntry {
    package static let version: UInt8 = 1

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
