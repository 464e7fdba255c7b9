/// Rebuilding the key index from the records.
extension SegmentLog {
    /// Reads every frame in order (checksums verified) and records puts, tombstones, locks,
    /// holds and policies. Cost: one pass over the log; a later change loads a snapshot and
    /// replays only the tail.
    func rebuildKeys() throws {
        var index = KeyIndex()
        var retention = RetentionState()
        let segments: [(ByteView, Int, String)] = sealed.map { ($0.region.wholeView, Int($0.footer.framesEnd), $0.path) }
            + (active.map { [($0.region.wholeView, $0.writeOffset, $0.path)] } ?? [])
        for (view, end, path) in segments {
            try Self.forEachFrame(view, from: SegmentHeader.size, to: end, path: path) { frame, view in
                if frame.type == .put || frame.type == .tombstone {
                    index.noteFrame(frame, view)
                } else if frame.type == .retention || frame.type == .legalHold || frame.type == .policy {
                    let namespace = view.slice(frame.namespace.lowerBound, frame.namespace.count).array
                    let key = view.slice(frame.key.lowerBound, frame.key.count).array
                    guard let value = frame.value(in: view),
                          retention.apply(type: frame.type, sequence: frame.sequence, namespace: namespace, key: key, value: value) else {
                        throw SteleError.corruption(Corruption(file: path, offset: frame.offset, sequence: frame.sequence,
                                                               detail: "\(frame.type) record is malformed"))
                    }
                }
            }
        }
        keys = index
        self.retention = retention
    }

    /// Decodes the frame of record `sequence` (checksum verified) and hands it to `body` while
    /// its mapping is held.
    func withFrame<R>(at sequence: UInt64, _ body: (FrameInfo, ByteView) throws -> R) throws -> R {
        let (region, offset, limit, path): (MappedRegion, Int, Int, String)
        switch try locate(sequence) {
        case .sealed(let segment):
            (region, offset, limit, path) = (segment.region, try segment.offset(of: sequence), Int(segment.footer.framesEnd), segment.path)
        case .active(let r, let o, let l, let p):
            (region, offset, limit, path) = (r, o, l, p)
        }
        return try withExtendedLifetime(region) {
            let view = region.wholeView
            switch Frame.decode(view, at: offset, limit: limit) {
            case .failure(let defect):
                throw SteleError.corruption(Corruption(file: path, offset: offset, sequence: sequence, detail: defect.description))
            case .success(let frame):
                guard frame.sequence == sequence else {
                    throw SteleError.corruption(Corruption(file: path, offset: offset, sequence: sequence, detail: "frame holds sequence \(frame.sequence)"))
                }
                return try body(frame, view)
            }
        }
    }

    static func forEachFrame(_ view: ByteView, from start: Int, to end: Int, path: String,
                             _ body: (FrameInfo, ByteView) throws -> Void) throws {
        var offset = start
        while offset < end {
            switch Frame.decode(view, at: offset, limit: end) {
            case .failure(let defect):
                throw SteleError.corruption(Corruption(file: path, offset: offset, detail: defect.description))
            case .success(let frame):
                try body(frame, view)
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
