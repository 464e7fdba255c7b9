import SteleNative

/// The 128-byte header at offset 0 of every segment file.
///
/// ```
/// offset size field
///  0     8    magic "STELESEG"
///  8     2    format version (1)
/// 10     2    header length (128)
/// 12     4    reserved, zero
/// 16    16    store UUID
/// 32     8    segment index (first segment is 1)
/// 40     8    first sequence number stored in this segment
/// 48     8    creation time, ns since epoch
/// 56    32    seal hash of the previous segment (zeros for segment 1)
/// 88     8    durable end: frames before this offset are known to be on disk
/// 96    24    reserved, zero
/// 120    8    XXH3-64 of bytes [0, 120)
/// ```
/// The durable end is rewritten with every sync (it trails by one sync) and equals the frames
/// end once sealed. Recovery treats damage before it as corruption and damage after it as a
/// write interrupted by a crash.
package struct SegmentHeader: Equatable, Sendable {
    package static let size = 128
    package static let magic: [UInt8] = Array("STELESEG".utf8)
    package static let formatVersion: UInt16 = 1

    package var storeID: [UInt8]  // 16 bytes
    package var index: UInt64
    package var firstSequence: UInt64
    package var createdAt: Int64
    package var previousSeal: Digest
    package var durableEnd: UInt64 = UInt64(SegmentHeader.size)

    package func encode(into writer: ByteWriter) {
        writer.put(SegmentHeader.magic, at: 0)
        writer.put(SegmentHeader.formatVersion, at: 8)
        writer.put(UInt16(SegmentHeader.size), at: 10)
        writer.put(UInt32(0), at: 12)
        writer.put(storeID, at: 16)
        writer.put(index, at: 32)
        writer.put(firstSequence, at: 40)
        writer.put(createdAt, at: 48)
        previousSeal.write(to: writer, at: 56)
        writer.put(durableEnd, at: 88)
        writer.zero(96 ..< 120)
        writer.put(xxh3(writer.view.slice(0, 120)), at: 120)
    }

    package var encoded: [UInt8] {
        ByteWriter.makeArray(count: SegmentHeader.size) { encode(into: $0) }
    }

    /// Decodes and verifies a header; the error says which check failed. The checksum is
    /// checked before the version, so a damaged version field reads as damage, not as a newer format.
    package static func decode(_ view: ByteView) -> Result<SegmentHeader, FormatDefect> {
        guard view.count >= size else { return .failure(.truncated("segment header")) }
        guard view.slice(0, 8).equals(magic) else { return .failure(.badMagic("segment header")) }
        let stored = view.u64(120), computed = xxh3(view.slice(0, 120))
        guard stored == computed else { return .failure(.checksum("segment header")) }
        let version = view.u16(8)
        guard version == formatVersion else { return .failure(.unsupportedVersion(found: Int(version), supported: Int(formatVersion))) }
        guard view.u16(10) == UInt16(size), view.u32(12) == 0, view.slice(96, 24).isAllZero,
              view.u64(88) >= UInt64(size), view.u64(88) <= UInt64(Limits.maxSegmentSize) else {
            return .failure(.malformed("segment header: length, durable end or reserved fields"))
        }
        return .success(SegmentHeader(storeID: view.slice(16, 16).array, index: view.u64(32),
                                      firstSequence: view.u64(40), createdAt: view.i64(48),
                                      previousSeal: Digest(view, at: 56), durableEnd: view.u64(88)))
    }
}

extension SegmentHeader {
    /// The header of an active segment whose checksum fails only because the process died
    /// between the two stores of a durable-end update (the new durable end, then the checksum:
    /// they go into a mapped page separately, so a kill in between, or a write-back of the page
    /// at that moment, leaves the new value beside the old checksum). The checksum then still
    /// covers the previous durable end, which was a frame end: each of `candidates` is tried in
    /// its place. Returns the header with the first that reproduces the stored checksum (every
    /// other byte as stored), or nil. The durable end it returns under-claims, which is safe.
    /// Cost: one XXH3 of 120 bytes per candidate.
    package static func recoverInterruptedUpdate(_ view: ByteView, candidates: some Sequence<Int>) -> SegmentHeader? {
        guard view.count >= size, view.slice(0, 8).equals(magic) else { return nil }
        var bytes = view.slice(0, size).array
        let stored = view.u64(120)
        for candidate in candidates {
            withUnsafeBytes(of: UInt64(candidate).littleEndian) { bytes.replaceSubrange(88 ..< 96, with: $0) }
            guard xxh3(Array(bytes[0 ..< 120])) == stored else { continue }
            return ByteView.of(bytes) { try? decode($0).get() }
        }
        return nil
    }
}

/// Why a header, footer or config is not acceptable.
package enum FormatDefect: Error, Equatable, CustomStringConvertible {
    case truncated(String)
    case badMagic(String)
    case unsupportedVersion(found: Int, supported: Int)
    case checksum(String)
    case malformed(String)

    package var description: String {
        switch self {
        case .truncated(let what): "\(what) is truncated"
        case .badMagic(let what): "\(what) has a wrong magic number"
        case .unsupportedVersion(let found, let supported): "format version \(found) is not supported (this build reads version \(supported))"
        case .checksum(let what): "\(what) checksum mismatch"
        case .malformed(let what): "\(what) is malformed"
        }
    }
}
