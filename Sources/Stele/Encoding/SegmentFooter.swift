import SteleNative

/// The footer written when a segment is sealed; it ends the file.
///
/// With k = popcount(tree size) frontier hashes, its length is F = 184 + 32·k:
/// ```
/// offset    size field
///  0        8    magic "STELESEA"
///  8        2    footer version (1)
/// 10        2    k, the number of frontier hashes
/// 12        4    reserved, zero
/// 16        8    record count (≥ 1)
/// 24        8    first sequence number
/// 32        8    last sequence number
/// 40        8    frames end: byte offset where this footer starts
/// 48        8    seal time, ns since epoch
/// 56        8    Merkle tree size at the seal (= last sequence + 1)
/// 64       32    Merkle root at that size
/// 96       32    content digest: SHA-256 of the segment's leaf hashes in order
/// 128      32·k  frontier: roots of the perfect subtrees of the tree, largest first
/// 128+32k  32    seal hash over the logical fields (see ``computeSealHash(header:)``)
/// 160+32k   8    XXH3-64 of footer bytes [0, 160+32k)
/// 168+32k   8    F
/// 176+32k   8    magic "STELEEND"
/// ```
/// The frontier lets a store reopen its Merkle tree from the last footer without re-reading
/// old segments; the seal hash binds each segment to its predecessor (the hash chain).
package struct SegmentFooter: Equatable, Sendable {
    package static let magic: [UInt8] = Array("STELESEA".utf8)
    package static let endMagic: [UInt8] = Array("STELEEND".utf8)
    package static let version: UInt16 = 1
    package static let fixedSize = 184
    /// The largest footer: a 64-bit tree size has at most 64 frontier hashes.
    package static let maxSize = fixedSize + 32 * 64

    package var recordCount: UInt64
    package var firstSequence: UInt64
    package var lastSequence: UInt64
    package var framesEnd: UInt64
    package var sealedAt: Int64
    package var treeSize: UInt64
    package var treeRoot: Digest
    package var contentDigest: Digest
    package var frontier: [Digest]
    package var sealHash: Digest

    package static func size(frontierCount: Int) -> Int { fixedSize + 32 * frontierCount }
    package var size: Int { SegmentFooter.size(frontierCount: frontier.count) }

    /// Encodes the footer. `sealHash` is written as stored; compute it with ``computeSealHash``.
    package var encoded: [UInt8] {
        let k = frontier.count
        return ByteWriter.makeArray(count: size) { w in
            w.put(SegmentFooter.magic, at: 0)
            w.put(SegmentFooter.version, at: 8)
            w.put(UInt16(k), at: 10)
            w.put(UInt32(0), at: 12)
            w.put(recordCount, at: 16)
            w.put(firstSequence, at: 24)
            w.put(lastSequence, at: 32)
            w.put(framesEnd, at: 40)
            w.put(sealedAt, at: 48)
            w.put(treeSize, at: 56)
            treeRoot.write(to: w, at: 64)
            contentDigest.write(to: w, at: 96)
            for (i, d) in frontier.enumerated() { d.write(to: w, at: 128 + 32 * i) }
            sealHash.write(to: w, at: 128 + 32 * k)
            w.put(xxh3(w.view.slice(0, 160 + 32 * k)), at: 160 + 32 * k)
            w.put(UInt64(size), at: 168 + 32 * k)
            w.put(SegmentFooter.endMagic, at: 176 + 32 * k)
        }
    }

    /// The seal hash: SHA-256 over the segment's *logical* identity, never over byte layout, so
    /// that replacing purged payloads with redaction stubs (which moves frames) changes no seal:
    /// ```
    /// "stele-seal-v1" ‖ previous seal ‖ store UUID ‖ u64 index ‖ u64 first sequence
    /// ‖ i64 created ‖ u64 record count ‖ u64 last sequence ‖ i64 sealed at ‖ u64 tree size
    /// ‖ tree root ‖ content digest ‖ frontier hashes
    /// ```
    package func computeSealHash(header: SegmentHeader) -> Digest {
        var h = SHA256Hasher()
        h.update(Array("stele-seal-v1".utf8))
        h.update(header.previousSeal)
        h.update(header.storeID)
        h.update(littleEndian: header.index)
        h.update(littleEndian: header.firstSequence)
        h.update(littleEndian: header.createdAt)
        h.update(littleEndian: recordCount)
        h.update(littleEndian: lastSequence)
        h.update(littleEndian: sealedAt)
        h.update(littleEndian: treeSize)
        h.update(treeRoot)
        h.update(contentDigest)
        for node in frontier { h.update(node) }
        return h.finalize()
    }

    /// Finds and decodes the footer that ends `view` (a whole sealed segment file).
    package static func decodeAtEnd(_ view: ByteView) -> Result<SegmentFooter, FormatDefect> {
        guard view.count >= SegmentHeader.size + fixedSize else { return .failure(.truncated("segment footer")) }
        guard view.slice(view.count - 8, 8).equals(endMagic) else { return .failure(.badMagic("segment footer end")) }
        let length = view.u64(view.count - 16)
        guard length >= UInt64(fixedSize), length <= UInt64(maxSize), length <= UInt64(view.count - SegmentHeader.size),
              (length - UInt64(fixedSize)) % 32 == 0 else {
            return .failure(.malformed("segment footer length"))
        }
        let result = decode(view, at: view.count - Int(length))
        // The footer must end the file exactly: nothing may hide between it and the trailer.
        if case .success(let footer) = result, footer.size != Int(length) {
            return .failure(.malformed("segment footer length disagrees with its frontier count"))
        }
        return result
    }

    /// Whether a valid footer starts at `offset` and only zeros follow it (a seal interrupted
    /// before the truncation).
    package static func isCompleteFooter(_ view: ByteView, at offset: Int) -> Bool {
        guard case .success(let footer) = decode(view, at: offset) else { return false }
        return view.slice(offset + footer.size, view.count - offset - footer.size).isAllZero
    }

    /// Decodes a footer that starts at `offset`; it must end exactly at `view.count` or
    /// fit before it (an unfinished seal leaves zeros after it). Checksum before version, so
    /// damage is reported as damage.
    package static func decode(_ view: ByteView, at offset: Int) -> Result<SegmentFooter, FormatDefect> {
        guard offset >= SegmentHeader.size, view.count - offset >= fixedSize else { return .failure(.truncated("segment footer")) }
        guard view.slice(offset, 8).equals(magic) else { return .failure(.badMagic("segment footer")) }
        let k = Int(view.u16(offset + 10))
        guard k <= 64, view.count - offset >= size(frontierCount: k) else { return .failure(.truncated("segment footer")) }
        let f = view.slice(offset, size(frontierCount: k))
        guard f.u64(160 + 32 * k) == xxh3(f.slice(0, 160 + 32 * k)) else { return .failure(.checksum("segment footer")) }
        let version = f.u16(8)
        guard version == SegmentFooter.version else {
            return .failure(.unsupportedVersion(found: Int(version), supported: Int(SegmentFooter.version)))
        }
        guard f.u32(12) == 0, f.u64(168 + 32 * k) == UInt64(f.count), f.slice(176 + 32 * k, 8).equals(endMagic) else {
            return .failure(.malformed("segment footer"))
        }
        let footer = SegmentFooter(
            recordCount: f.u64(16), firstSequence: f.u64(24), lastSequence: f.u64(32), framesEnd: f.u64(40),
            sealedAt: f.i64(48), treeSize: f.u64(56), treeRoot: Digest(f, at: 64), contentDigest: Digest(f, at: 96),
            frontier: (0 ..< k).map { Digest(f, at: 128 + 32 * $0) }, sealHash: Digest(f, at: 128 + 32 * k))
        // Every frame takes at least `Frame.overhead` bytes, which bounds the count by the file.
        let maxRecords = UInt64(offset - SegmentHeader.size) / UInt64(Frame.overhead)
        // `last - first == count - 1`, not `last - first + 1 == count`: the latter traps when
        // last - first is UInt64.max (found by fuzzing); count ≥ 1 is checked first.
        guard footer.recordCount >= 1, footer.recordCount <= maxRecords, footer.lastSequence >= footer.firstSequence,
              footer.lastSequence - footer.firstSequence == footer.recordCount - 1,
              footer.lastSequence < 1 << 62, footer.treeSize == footer.lastSequence + 1,
              footer.treeSize.nonzeroBitCount == k, footer.framesEnd == UInt64(offset) else {
            return .failure(.malformed("segment footer fields"))
        }
        return .success(footer)
    }
}
