import SteleNative

/// Fuzz checks for a sealed segment as the store reads it (its offset table and frames by
/// sequence number) and as a mirror or restore checks a copy's bytes, and for the one-line state
/// files `tiles/state` and `reach`.
extension FuzzRun {
    /// A sealed segment file: header and footer checked against each other, the offset table,
    /// each frame it points at; then the copy checks (every frame's XXH3, leaf hashes, and a
    /// segment being a purge's rewrite of itself). Decoded as given and with its checksums and
    /// seal hash recomputed, which a mutating fuzzer could not find by itself.
    func sealedSegment(_ data: UnsafeRawBufferPointer) {
        let input = Array(data)
        decodeSealed(input)
        var patched = withChecksumsRecomputed(input)
        if let header = ByteView.of(patched, { try? SegmentHeader.decode($0).get() }),
           var footer = ByteView.of(patched, { try? SegmentFooter.decodeAtEnd($0).get() }) {
            footer.sealHash = footer.computeSealHash(header: header)
            patched.replaceSubrange(patched.count - footer.size ..< patched.count, with: footer.encoded)
        }
        decodeSealed(patched)
    }

    /// The one-line state files, `tiles/state` and `reach`: one that decodes must encode to the
    /// same bytes. Also decoded with the checksum (the last field, in both) recomputed.
    func stateFile(_ data: UnsafeRawBufferPointer) {
        let input = Array(data)
        decodeStateFile(input)
        // Everything up to the last space is what the checksum covers.
        guard let space = input.lastIndex(of: 0x20) else { return }
        let body = Array(input[..<space])
        let digits = String(xxh3(body), radix: 16)
        decodeStateFile(body + Array((" " + String(repeating: "0", count: 16 - digits.count) + digits + "\n").utf8))
    }

    private func decodeStateFile(_ bytes: [UInt8]) {
        if let state = try? TileState.decode(bytes, path: "fuzz") {
            require(reencoded(state.encoded) == bytes, "tile state re-encodes to the same bytes")
        }
        if let reach = LogReach.decode(bytes) {
            require(reencoded(reach.encoded) == bytes, "reach re-encodes to the same bytes")
        }
    }

    private func decodeSealed(_ bytes: [UInt8]) {
        ByteView.of(bytes) { view in
            guard case .success(let claimed) = SegmentHeader.decode(view),
                  let (header, footer) = try? SealedSegment.checkedHeaderAndFooter(view, path: "fuzz", expectedIndex: claimed.index),
                  let offsets = try? SealedSegment.frameOffsets(view, footer: footer, path: "fuzz") else { return }
            require(UInt64(offsets.count) == footer.recordCount, "the offset table has one entry per record the footer counts")
            // As a read by sequence number finds each frame (`SegmentLog.Location.withFrame`).
            for (position, offset) in offsets.enumerated() {
                guard case .success(let frame) = Frame.decode(view, at: Int(offset), limit: Int(footer.framesEnd)) else { continue }
                _ = frame.sequence == header.firstSequence &+ UInt64(position)
                _ = frame.leafHash(in: view)
                _ = frame.record(in: view)
            }
        }
        // As a mirror checks a segment before its upload, and a restore a segment from the copy.
        guard (try? SegmentBytes.sealedHeaderAndFooter(bytes, name: "fuzz")) != nil,
              (try? SegmentBytes.leafHashes(bytes, name: "fuzz")) != nil else { return }
        require((try? SegmentBytes.isRedaction(reencoded(bytes), of: bytes, name: "fuzz")) == true,
                "a sealed segment is a purge's rewrite of itself (every frame equal)")
    }
}
