import SteleNative

/// Sealed segments as whole byte strings, for off-host copies: which segments a store has
/// sealed, and checks on a segment's bytes that do not need the file (verification before an
/// upload, telling a purge's rewrite from damage).

/// A sealed segment as the store knows it (for mirrors).
package struct SealedSegmentInfo: Sendable {
    package var path: String
    package var records: ClosedRange<UInt64>
    package var sealHash: Digest
}

/// Checks that `bytes` are a sealed segment whose every frame verifies (XXH3), and returns its
/// footer; or whether `local` is a purge's rewrite of `original` (every frame equal, or a
/// redaction stub holding the original's leaf hash). For mirrors, which must never lock damaged
/// bytes away off-host, nor mistake damage for a purge.
package enum SegmentBytes {
    package static func verifiedFooter(_ bytes: [UInt8], name: String) throws -> SegmentFooter {
        try ByteView.of(bytes) { view in
            let footer = try SealedSegment.check(SegmentFooter.decodeAtEnd(view), path: name, offset: nil)
            try SegmentLog.forEachFrame(view, from: SegmentHeader.size, to: Int(footer.framesEnd), path: name) { _, _ in }
            return footer
        }
    }

    /// The header and footer of a sealed segment's bytes, checked as opening the file checks
    /// them (header and footer checksums, seal hash, first sequence, durable end), and every
    /// frame's XXH3.
    package static func sealedHeaderAndFooter(_ bytes: [UInt8], name: String) throws -> (SegmentHeader, SegmentFooter) {
        let footer = try verifiedFooter(bytes, name: name)
        return try ByteView.of(bytes) { view in
            let header = try SealedSegment.check(SegmentHeader.decode(view), path: name, offset: 0)
            guard footer.firstSequence == header.firstSequence, header.durableEnd == footer.framesEnd,
                  footer.computeSealHash(header: header) == footer.sealHash else {
                throw SteleError.corruption(Corruption(file: name, offset: Int(footer.framesEnd), detail: "header and footer disagree, or the seal hash does not match them"))
            }
            return (header, footer)
        }
    }

    /// The leaf hash of every record of a sealed segment, in order (stubs give the hash they keep).
    package static func leafHashes(_ bytes: [UInt8], name: String) throws -> (SegmentFooter, [Digest]) {
        let footer = try verifiedFooter(bytes, name: name)
        var leaves: [Digest] = []
        try ByteView.of(bytes) { view in
            try SegmentLog.forEachFrame(view, from: SegmentHeader.size, to: Int(footer.framesEnd), path: name) { frame, v in
                guard let leaf = frame.leafHash(in: v) else {
                    throw SteleError.corruption(Corruption(file: name, offset: frame.offset, sequence: frame.sequence, detail: "LZ4 value does not decode"))
                }
                leaves.append(leaf)
            }
        }
        return (footer, leaves)
    }

    package static func isRedaction(_ local: [UInt8], of original: [UInt8], name: String) throws -> Bool {
        let a = try verifiedFooter(local, name: name), b = try verifiedFooter(original, name: name)
        guard a.sealHash == b.sealHash, a.firstSequence == b.firstSequence, a.lastSequence == b.lastSequence else { return false }
        var localFrames: [(FrameInfo, [UInt8], Digest?)] = []
        try ByteView.of(local) { view in
            try SegmentLog.forEachFrame(view, from: SegmentHeader.size, to: Int(a.framesEnd), path: name) { frame, v in
                localFrames.append((frame, v.slice(frame.offset, frame.length).array,
                                    frame.isRedacted ? Digest(v, at: frame.stored.lowerBound) : nil))
            }
        }
        var index = 0
        var matches = true
        try ByteView.of(original) { view in
            try SegmentLog.forEachFrame(view, from: SegmentHeader.size, to: Int(b.framesEnd), path: name) { frame, v in
                guard matches, index < localFrames.count else { matches = false; return }
                let (mine, bytes, stubLeaf) = localFrames[index]
                index += 1
                if let stubLeaf {
                    matches = mine.sequence == frame.sequence && frame.leafHash(in: v) == stubLeaf
                } else {
                    matches = bytes == v.slice(frame.offset, frame.length).array
                }
            }
        }
        return matches && index == localFrames.count
    }
}
