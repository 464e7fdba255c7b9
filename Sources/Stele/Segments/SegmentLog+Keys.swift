/// Rebuilding the key index from the records.
extension SegmentLog {
    /// Reads every frame in order (checksums verified) and records puts and tombstones.
    /// Cost: one pass over the log; a later change loads a snapshot and replays only the tail.
    func rebuildKeys() throws {
        var index = KeyIndex()
        for segment in sealed {
            try Self.forEachFrame(segment.region.wholeView, from: SegmentHeader.size, to: Int(segment.footer.framesEnd),
                                  path: segment.path) { frame, view in
                index.noteFrame(frame, view)
            }
        }
        if let segment = active {
            try Self.forEachFrame(segment.region.wholeView, from: SegmentHeader.size, to: segment.writeOffset,
                                  path: segment.path) { frame, view in
                index.noteFrame(frame, view)
            }
        }
        keys = index
    }

    static func forEachFrame(_ view: ByteView, from start: Int, to end: Int, path: String,
                             _ body: (FrameInfo, ByteView) -> Void) throws {
        var offset = start
        while offset < end {
            switch Frame.decode(view, at: offset, limit: end) {
            case .failure(let defect):
                throw SteleError.corruption(Corruption(file: path, offset: offset, detail: defect.description))
            case .success(let frame):
                body(frame, view)
                offset = frame.end
            }
        }
    }
}

extension KeyIndex {
    mutating func noteFrame(_ frame: FrameInfo, _ view: ByteView) {
        guard frame.type == .put || frame.type == .tombstone else { return }
        let composite = KeyIndex.compositeKey(namespace: view.slice(frame.namespace.lowerBound, frame.namespace.count).array,
                                              key: view.slice(frame.key.lowerBound, frame.key.count).array)
        record(composite, sequence: frame.sequence, deleted: frame.type == .tombstone)
    }
}
