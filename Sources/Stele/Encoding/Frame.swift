import SteleNative

/// The record frame: how one record is laid out inside a segment.
///
/// ```
/// offset size  field
///  0     4     frame length L (whole frame, checksum included)
///  4     1     record type
///  5     1     flags (bit 0: value is LZ4; bit 1: redaction stub; bit 2: key and value
///              encrypted, see `RecordCipher`; others zero)
///  6     2     namespace length N
///  8     8     sequence number
/// 16     8     timestamp, ns since epoch (signed)
/// 24     2     key length K
/// 26     2     reserved, zero
/// 28     4     value length V (logical, uncompressed)
/// 32     4     stored length S (bytes that follow the key)
/// 36     N     namespace
/// 36+N   K     key
/// 36+N+K S     stored value: V raw bytes, LZ4 block, or a 32-byte leaf hash (stub)
/// L-8    8     XXH3-64 of bytes [0, L-8)
/// ```
/// All integers little-endian; L = 44 + N + K + S. `docs/format.md` is the normative text.
package enum Frame {
    package static let headerSize = 36
    package static let checksumSize = 8
    package static let overhead = headerSize + checksumSize

    package static let flagLZ4: UInt8 = 1 << 0
    package static let flagRedacted: UInt8 = 1 << 1
    /// The key field holds a ``RecordCipher`` key blob and the stored value a value blob (or a
    /// redaction stub); with `LZ4`, the encrypted plaintext is the compressed form. Puts and
    /// tombstones only. Leaves cover the stored (encrypted) bytes, so they are computed without
    /// any key, and no proof changes when a namespace's key is destroyed.
    package static let flagEncrypted: UInt8 = 1 << 2
    package static let knownFlags: UInt8 = flagLZ4 | flagRedacted | flagEncrypted

    /// Total frame length for the given field lengths.
    @inline(__always)
    package static func length(namespace: Int, key: Int, stored: Int) -> Int {
        overhead + namespace + key + stored
    }

    /// Encodes a frame at `offset` of `writer`; returns its length. Lengths were validated by
    /// the caller against ``Limits``.
    @inline(__always)
    package static func encode(into writer: ByteWriter, at offset: Int, type: RecordType, flags: UInt8,
                               sequence: UInt64, timestamp: Int64, namespace: UnsafeRawBufferPointer,
                               key: UnsafeRawBufferPointer, stored: UnsafeRawBufferPointer, valueLength: Int) -> Int {
        let total = length(namespace: namespace.count, key: key.count, stored: stored.count)
        writer.put(UInt32(total), at: offset)
        writer.put(type.rawValue, at: offset + 4)
        writer.put(flags, at: offset + 5)
        writer.put(UInt16(namespace.count), at: offset + 6)
        writer.put(sequence, at: offset + 8)
        writer.put(timestamp, at: offset + 16)
        writer.put(UInt16(key.count), at: offset + 24)
        writer.put(UInt16(0), at: offset + 26)
        writer.put(UInt32(valueLength), at: offset + 28)
        writer.put(UInt32(stored.count), at: offset + 32)
        var cursor = offset + headerSize
        writer.put(namespace, at: cursor); cursor += namespace.count
        writer.put(key, at: cursor); cursor += key.count
        writer.put(stored, at: cursor); cursor += stored.count
        let checksum = xxh3(writer.view.slice(offset, total - checksumSize))
        writer.put(checksum, at: cursor)
        return total
    }

    /// Decodes and verifies the frame at `offset`, reading nothing at or past `limit`.
    /// An `ENCRYPTED` frame decodes with its blobs as key and stored value: whoever hands out a
    /// key or a value opens them first (`Store.plainKey`, `Store.plainValue`).
    package static func decode(_ view: ByteView, at offset: Int, limit: Int) -> Result<FrameInfo, FrameDefect> {
        guard offset + 4 <= limit else { return .failure(.truncated) }
        let total = Int(view.u32(offset))
        if total == 0 { return .failure(.zeroLength) }
        guard total >= overhead else { return .failure(.badLength(total)) }
        guard total <= limit - offset else { return .failure(.truncated) }
        let stored = view.u64(offset + total - checksumSize)
        let computed = xxh3(view.slice(offset, total - checksumSize))
        guard stored == computed else { return .failure(.checksumMismatch(stored: stored, computed: computed)) }
        guard let type = RecordType(rawValue: view.u8(offset + 4)) else {
            return .failure(.unknownType(view.u8(offset + 4)))
        }
        let flags = view.u8(offset + 5)
        guard flags & ~knownFlags == 0, flags & (flagLZ4 | flagRedacted) != flagLZ4 | flagRedacted else { return .failure(.unknownFlags(flags)) }
        let encrypted = flags & flagEncrypted != 0
        guard !encrypted || type == .put || type == .tombstone else { return .failure(.unknownFlags(flags)) }
        guard view.u16(offset + 26) == 0 else { return .failure(.reservedNotZero) }
        let namespaceLength = Int(view.u16(offset + 6))
        let keyLength = Int(view.u16(offset + 24))
        let valueLength = Int(view.u32(offset + 28))
        let storedLength = Int(view.u32(offset + 32))
        guard length(namespace: namespaceLength, key: keyLength, stored: storedLength) == total else {
            return .failure(.lengthsDisagree)
        }
        if encrypted {
            // The key blob is never shorter than its generation, nonce and tag; the stored value
            // is opaque (V = S), and its plaintext's own length is inside it: a put always has a
            // value blob (an empty value too, so that stripping it is caught by its tag), a
            // tombstone never.
            guard keyLength >= RecordCipher.keyBlobOverhead else { return .failure(.lengthsDisagree) }
            if flags & flagRedacted != 0 {
                guard type == .put, storedLength == 32 else { return .failure(.lengthsDisagree) }
            } else {
                guard storedLength == valueLength,
                      type == .put ? storedLength >= RecordCipher.valueBlobOverhead : storedLength == 0 else { return .failure(.lengthsDisagree) }
            }
        } else if flags & flagRedacted != 0 {
            guard storedLength == 32 else { return .failure(.lengthsDisagree) }
        } else if flags & flagLZ4 != 0 {
            // LZ4 expands at most about 255 times; a larger claim would only make readers allocate.
            guard storedLength > 0, valueLength > 0, valueLength <= storedLength * 255,
                  valueLength <= Limits.maxSegmentSize else { return .failure(.lengthsDisagree) }
        } else {
            guard storedLength == valueLength else { return .failure(.lengthsDisagree) }
        }
        let namespaceStart = offset + headerSize
        return .success(FrameInfo(
            offset: offset, length: total, type: type, flags: flags,
            sequence: view.u64(offset + 8), timestamp: view.i64(offset + 16),
            namespace: namespaceStart ..< namespaceStart + namespaceLength,
            key: namespaceStart + namespaceLength ..< namespaceStart + namespaceLength + keyLength,
            stored: namespaceStart + namespaceLength + keyLength ..< offset + total - checksumSize,
            valueLength: valueLength))
    }
}

/// A decoded, checksum-verified frame header; the ranges are offsets into the same view.
package struct FrameInfo: Equatable {
    package var offset: Int
    package var length: Int
    package var type: RecordType
    package var flags: UInt8
    package var sequence: UInt64
    package var timestamp: Int64
    package var namespace: Range<Int>
    package var key: Range<Int>
    package var stored: Range<Int>
    package var valueLength: Int

    package var isCompressed: Bool { flags & Frame.flagLZ4 != 0 }
    package var isRedacted: Bool { flags & Frame.flagRedacted != 0 }
    package var isEncrypted: Bool { flags & Frame.flagEncrypted != 0 }
    package var end: Int { offset + length }

    /// The logical value bytes (decompressed); nil if the LZ4 block is malformed. For an
    /// encrypted record, the value blob as stored (``RecordCipher`` opens it).
    package func value(in view: ByteView) -> [UInt8]? {
        if isRedacted { return [] }
        let storedView = view.slice(stored.lowerBound, stored.count)
        if isCompressed && !isEncrypted { return LZ4.decompress(storedView, originalLength: valueLength) }
        return storedView.array
    }

    /// The key as retention knows it: the key, or for an encrypted record its key id (which
    /// locks and holds name in its place; see ``RecordCipher``). Needs no key to read.
    package func retentionKey(in view: ByteView) -> [UInt8] {
        let key = view.slice(self.key.lowerBound, self.key.count).array
        return isEncrypted ? RecordCipher.keyID(ofKeyBlob: key) ?? key : key
    }

    /// The leaf hash of this record (stored in the stub for redacted records). An encrypted
    /// record's leaf covers its key and value blobs as stored.
    package func leafHash(in view: ByteView) -> Digest? {
        if isRedacted { return Digest(view, at: stored.lowerBound) }
        let ns = view.slice(namespace.lowerBound, namespace.count)
        let keyView = view.slice(key.lowerBound, key.count)
        if isEncrypted {
            return CanonicalEntry.encryptedLeafHash(type: type, flags: flags, sequence: sequence, timestamp: timestamp, namespace: ns,
                                                    keyBlob: keyView, valueBlob: view.slice(stored.lowerBound, stored.count))
        }
        if isCompressed {
            guard let plain = value(in: view) else { return nil }
            return ByteView.of(plain) { CanonicalEntry.leafHash(type: type, sequence: sequence, timestamp: timestamp,
                                                                namespace: ns, key: keyView, value: $0) }
        }
        return CanonicalEntry.leafHash(type: type, sequence: sequence, timestamp: timestamp, namespace: ns,
                                       key: keyView, value: view.slice(stored.lowerBound, stored.count))
    }

    /// The full record, decompressed.
    package func record(in view: ByteView) -> Record? {
        guard let value = value(in: view) else { return nil }
        return Record(sequence: sequence, type: type, timestamp: timestamp,
                      namespace: view.slice(namespace.lowerBound, namespace.count).array,
                      key: view.slice(key.lowerBound, key.count).array, value: value,
                      redactedLeafHash: isRedacted ? Digest(view, at: stored.lowerBound) : nil)
    }
}

/// Why bytes at a position are not a valid frame.
package enum FrameDefect: Error, Equatable, CustomStringConvertible {
    /// The frame would extend past the end of the readable region.
    case truncated
    /// A zero length word: in a segment, the start of unused space.
    case zeroLength
    case badLength(Int)
    case checksumMismatch(stored: UInt64, computed: UInt64)
    case unknownType(UInt8)
    case unknownFlags(UInt8)
    case reservedNotZero
    case lengthsDisagree

    package var description: String {
        switch self {
        case .truncated: "frame runs past the end of the data"
        case .zeroLength: "zero frame length"
        case .badLength(let n): "impossible frame length \(n)"
        case .checksumMismatch(let s, let c):
            "XXH3 mismatch: stored \(hexString(withUnsafeBytes(of: s.littleEndian) { Array($0) })), computed \(hexString(withUnsafeBytes(of: c.littleEndian) { Array($0) }))"
        case .unknownType(let t): "unknown record type \(t)"
        case .unknownFlags(let f): "unknown or contradictory flags 0x\(String(f, radix: 16))"
        case .reservedNotZero: "reserved field is not zero"
        case .lengthsDisagree: "field lengths disagree with the frame length"
        }
    }
}
