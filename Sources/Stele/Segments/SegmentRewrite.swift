import SteleNative

/// Replacing purged payloads with redaction stubs in a sealed segment.
///
/// The new file keeps the header (only its durable end moves), every frame in order, and the
/// footer's logical fields; each purged put becomes a stub frame that keeps type, sequence,
/// timestamp, namespace, key and value length, stores the 32-byte leaf hash instead of the value,
/// and sets the REDACTED flag. Leaf hashes, content digest, seal hash, chain, tiles and every
/// proof are therefore unchanged. The file is written beside the old one, synced, made
/// read-only and renamed over it (then the directory is synced): a crash leaves the old segment
/// or the new one, never a mix.
extension SegmentLog {
    /// Rewrites sealed segment `position` with stubs for `sequences` (puts only); returns the
    /// file sizes before and after and the value bytes removed.
    func rewriteWithStubs(position: Int, sequences: Set<UInt64>) throws -> (before: Int, after: Int, payload: Int) {
        let old = sealed[position]
        let view = old.region.wholeView
        var header = old.header
        var bytes = [UInt8](repeating: 0, count: SegmentHeader.size)
        bytes.reserveCapacity(old.fileSize)
        var payload = 0
        try Self.forEachFrame(view, from: SegmentHeader.size, to: Int(old.footer.framesEnd), path: old.path) { frame, view in
            guard sequences.contains(frame.sequence), frame.type == .put, !frame.isRedacted else {
                bytes += view.slice(frame.offset, frame.length).array
                return
            }
            guard let leaf = frame.leafHash(in: view) else {
                throw SteleError.corruption(Corruption(file: old.path, offset: frame.offset, sequence: frame.sequence, detail: "LZ4 value does not decode"))
            }
            let stubLength = Frame.length(namespace: frame.namespace.count, key: frame.key.count, stored: 32)
            let stub = ByteWriter.makeArray(count: stubLength) { w in
                view.slice(frame.namespace.lowerBound, frame.namespace.count).withBuffer { ns in
                    view.slice(frame.key.lowerBound, frame.key.count).withBuffer { key in
                        leaf.bytes.withUnsafeBytes { stored in
                            _ = Frame.encode(into: w, at: 0, type: frame.type, flags: Frame.flagRedacted | frame.flags & Frame.flagEncrypted, sequence: frame.sequence,
                                             timestamp: frame.timestamp, namespace: ns, key: key, stored: stored,
                                             valueLength: frame.valueLength)
                        }
                    }
                }
            }
            payload += frame.stored.count
            bytes += stub
        }
        header.durableEnd = UInt64(bytes.count)
        ByteWriter.into(&bytes, count: SegmentHeader.size) { header.encode(into: $0) }
        var footer = old.footer
        footer.framesEnd = UInt64(bytes.count)
        guard footer.computeSealHash(header: header) == old.footer.sealHash else {
            throw SteleError.corruption(Corruption(file: old.path, detail: "rewritten segment would not keep its seal"))
        }
        bytes += footer.encoded

        try fs.writeAtomically(bytes, to: old.path, permissions: 0o444, directory: directory)
        sealed[position] = try SealedSegment.open(fs: fs, path: old.path, expectedIndex: old.header.index)
        return (old.fileSize, bytes.count, payload)
    }

    /// The position in `sealed` of the segment holding `sequence`, if it is sealed.
    func sealedPosition(of sequence: UInt64) -> Int? {
        sequence < sealedRecordCount ? sealedPosition(containing: sequence) : nil
    }
}
