/// Rebuilding the key index from the records.
extension SegmentLog {
    /// Rebuilds the key index and the retention state: from the latest index snapshot plus the
    /// records after it when the snapshot checks out, else from every record. Checksums are
    /// verified on every frame read.
    func rebuildKeys() throws {
        var index = KeyIndex()
        var retention = RetentionState()
        var retentionRecords: [UInt64] = []
        var start: UInt64 = 0
        if let snapshot = loadSnapshot() {
            var fromSnapshot = snapshot.keys
            var retentionFromSnapshot = RetentionState()
            var listed: [UInt64] = []
            do {
                for sequence in snapshot.retentionRecords {
                    try withFrame(at: sequence) { frame, view in
                        guard frame.type == .retention || frame.type == .legalHold || frame.type == .policy else {
                            throw SteleError.corruption(Corruption(file: directory, sequence: sequence, detail: "snapshot lists a non-retention record"))
                        }
                        try Self.note(frame, view, path: directory, index: &fromSnapshot, retention: &retentionFromSnapshot, retentionRecords: &listed)
                    }
                }
                index = fromSnapshot
                retention = retentionFromSnapshot
                retentionRecords = listed
                start = snapshot.treeSize
                snapshotSize = snapshot.treeSize
                report.indexReplayed = start ..< nextSequence
                // Nothing cheap proves the snapshot's list of retention records complete: purge
                // re-reads the log before deciding anything (see `verifyRetention`).
                retentionFromLog = false
            } catch {
                report.indexSnapshotRejected = "lists records that are not retention records"
            }
        }
        var segments: [(ByteView, Int, UInt64, String)] = []
        for segment in sealed where segment.footer.lastSequence >= start {
            segments.append((segment.region.wholeView, Int(segment.footer.framesEnd), segment.header.index, segment.path))
        }
        if let segment = active { segments.append((segment.region.wholeView, segment.writeOffset, segment.header.index, segment.path)) }
        // Keys out of order (several namespaces, random ids) are sorted once at the end rather
        // than filed one by one.
        index.deferOrdering()
        for (view, end, number, path) in segments {
            try Self.forEachFrame(view, from: SegmentHeader.size, to: end, path: path) { frame, view in
                guard frame.sequence >= start else { return }
                try Self.note(frame, view, path: path, segment: number, index: &index, retention: &retention,
                              retentionRecords: &retentionRecords)
            }
        }
        index.finishOrdering()
        keys = index
        self.retention = retention
        self.retentionRecords = retentionRecords
    }

    /// Rebuilds the retention state from every record of the log (not from a snapshot), so that
    /// a purge never trusts derived data. Cost: one pass over the frames, once per open.
    func verifyRetention() throws {
        guard !retentionFromLog else { return }
        var retention = RetentionState()
        var records: [UInt64] = []
        var ignored = KeyIndex()
        let segments: [(ByteView, Int, String)] = sealed.map { ($0.region.wholeView, Int($0.footer.framesEnd), $0.path) }
            + (active.map { [($0.region.wholeView, $0.writeOffset, $0.path)] } ?? [])
        for (view, end, path) in segments {
            try Self.forEachFrame(view, from: SegmentHeader.size, to: end, path: path) { frame, view in
                guard frame.type == .retention || frame.type == .legalHold || frame.type == .policy else { return }
                try Self.note(frame, view, path: path, index: &ignored, retention: &retention, retentionRecords: &records)
            }
        }
        guard records == retentionRecords else {
            throw SteleError.corruption(Corruption(file: indexDirectory + "/snapshot", detail: "the index snapshot's retention records differ from the log's; remove it and reopen"))
        }
        self.retention = retention
        retentionFromLog = true
    }

    private static func note(_ frame: FrameInfo, _ view: ByteView, path: String, segment: UInt64 = 0, index: inout KeyIndex,
                             retention: inout RetentionState, retentionRecords: inout [UInt64]) throws {
        if frame.type == .put || frame.type == .tombstone {
            index.noteFrame(frame, view, hint: segment == 0 ? .unknown : KeyIndex.FrameHint(segment: segment, offset: frame.offset))
        } else if frame.type == .retention || frame.type == .legalHold || frame.type == .policy {
            let namespace = view.slice(frame.namespace.lowerBound, frame.namespace.count).array
            let key = view.slice(frame.key.lowerBound, frame.key.count).array
            guard let value = frame.value(in: view),
                  retention.apply(type: frame.type, sequence: frame.sequence, namespace: namespace, key: key, value: value) else {
                throw SteleError.corruption(Corruption(file: path, offset: frame.offset, sequence: frame.sequence,
                                                       detail: "\(frame.type) record is malformed"))
            }
            retentionRecords.append(frame.sequence)
        }
    }

    private var snapshotPath: String { indexDirectory + "/snapshot" }

    /// The snapshot, if it exists, decodes, and sits at a seal whose root it repeats.
    private func loadSnapshot() -> IndexSnapshot? {
        guard !indexDirectory.isEmpty, (try? fs.status(snapshotPath)) != nil else { return nil }
        // A snapshot is never larger than the log it summarises.
        let logBytes = sealed.reduce(0) { $0 + $1.fileSize } + (active?.capacity ?? 0)
        guard let bytes = try? fs.readWholeFile(snapshotPath, limit: max(1 << 20, logBytes)), let snapshot = IndexSnapshot.decode(bytes) else {
            report.indexSnapshotRejected = "unreadable or damaged"
            return nil
        }
        guard snapshot.treeSize <= nextSequence,
              let seal = sealed.first(where: { $0.footer.treeSize == snapshot.treeSize }), seal.footer.treeRoot == snapshot.root else {
            report.indexSnapshotRejected = "does not match a seal of this log"
            return nil
        }
        return snapshot
    }

    /// Writes a snapshot at a seal when enough records came since the last one. Derived data:
    /// a failure is ignored (the next open replays more).
    func writeIndexSnapshotIfDue() {
        guard writable, !indexDirectory.isEmpty, keysUnavailable == nil,
              frontier.size >= snapshotSize + snapshotInterval else { return }
        let snapshot = IndexSnapshot(treeSize: frontier.size, root: frontier.root, keys: keys, retentionRecords: retentionRecords)
        do {
            try fs.writeAtomically(snapshot.encoded, to: snapshotPath, permissions: 0o644, directory: indexDirectory)
            snapshotSize = frontier.size
        } catch {
            try? fs.remove(snapshotPath + ".tmp")
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
    mutating func noteFrame(_ frame: FrameInfo, _ view: ByteView, hint: FrameHint = .unknown) {
        guard frame.type == .put || frame.type == .tombstone else { return }
        let composite = view.slice(frame.namespace.lowerBound, frame.namespace.count).withBuffer { ns in
            view.slice(frame.key.lowerBound, frame.key.count).withBuffer { key in KeyIndex.compositeKey(namespace: ns, key: key) }
        }
        record(composite, sequence: frame.sequence, deleted: frame.type == .tombstone, hint: hint)
    }
}
