import SteleNative

/// What ``Store/recordLoss(at:reason:continuingAt:)`` recorded.
public struct LossReport: Sendable, Equatable {
    /// What the store's evidence showed.
    public var lost: LostRecords
    /// The loss record's sequence number: the first number lost.
    public var first: UInt64
    /// The sequence number the next record gets; `first + 1 ..< end` are placeholders.
    public var end: UInt64
    /// Checkpoint files that described the lost history, moved aside (new paths).
    public var supersededCheckpoints: [String]
}

extension Store {
    /// Records in the log that records were lost from the files, and lets the store be written
    /// again without ever handing their sequence numbers out twice.
    ///
    /// Crash-safe: `reach` is left as it was until the loss record and its placeholders are in
    /// the log, so a crash before that leaves the loss as visible as it was; a recording cut
    /// short after its loss record is finished by the next call (its placeholders continue).
    ///
    /// Appends a loss record at the first missing sequence number (with `reason`, what the
    /// evidence showed, and the largest checkpoint that described the lost history), then one
    /// placeholder per number that may have been handed out before (up to what the evidence
    /// bounds: the capacity of the last segment a writer created, or the exact count of a clean
    /// close), so the next record continues past them. Checkpoints over more records than
    /// remain are moved to `checkpoints/superseded-<first>/`: the history they sign is gone, and
    /// no new checkpoint can be consistent with them (a witness that cosigned one will refuse the
    /// new ones: the fork is visible to outsiders, as it should be). Tiles past the loss and the
    /// index snapshot are derived and are rebuilt.
    ///
    /// Prefer a restore from an off-host copy when one holds the records: this is for records
    /// that are gone everywhere.
    /// - Parameters:
    ///   - path: the store directory; no writer may have it open.
    ///   - reason: why, for the record (required, at most 16 KiB).
    ///   - continuingAt: the sequence number to continue at, when the evidence cannot bound the
    ///     numbers handed out (its `reach` file is missing) or you know a larger one; never below
    ///     what the evidence bounds.
    /// - Throws: ``SteleError/invalidArgument(_:)`` when nothing shows a loss, or `continuingAt`
    ///   is below the bound; as ``init(path:options:)`` and ``append(_:)-7eqx6`` otherwise.
    @discardableResult
    public static func recordLoss(at path: String, reason: String, continuingAt: UInt64? = nil) throws -> LossReport {
        guard !reason.isEmpty, reason.utf8.count <= LossRecord.maxText else {
            throw SteleError.invalidArgument("a loss needs a reason (1-\(LossRecord.maxText) bytes)")
        }
        let reader = try Store(path: path, options: Options(readOnly: true))
        let found = reader.recovery.lostRecords
        let first = reader.recordCount
        let resuming = reader.state.withLock { $0.log?.openLossEnd() }
        let segmentSize = reader.config.segmentSize
        try reader.close()
        // Without evidence, only the operator knows numbers were handed out (say, by a primary
        // whose last records never reached the copy this store was restored from).
        let lost = found ?? LostRecords(held: first, atLeast: first, upTo: first, findings: [])
        guard found != nil || continuingAt.map({ $0 > first }) == true else {
            throw SteleError.invalidArgument("nothing shows records lost from \(path): there is no loss to record (give --continue-at to record numbers you know were handed out)")
        }
        guard lost.upTo != nil || continuingAt != nil else {
            throw SteleError.invalidArgument("the evidence that would bound the lost sequence numbers is itself missing (\(lost.findings.joined(separator: "; "))): "
                + "give --continue-at with a number past every one handed out (a checkpoint held elsewhere, clients' receipts, the mirror's last report)")
        }
        let bound = max(first + 1, lost.atLeast, lost.upTo ?? 0, resuming ?? 0)
        if let continuingAt, continuingAt < bound {
            throw SteleError.invalidArgument("sequence numbers up to \(bound - 1) may have been handed out; continue at \(bound) or later")
        }
        // A range longer than sixteen segments' worth of records is taken only when asked for:
        // evidence that claims one is more likely forged than lost.
        let sanity = 16 * LogReach.capacity(segmentSize: segmentSize)
        guard continuingAt != nil || bound - first <= sanity else {
            throw SteleError.invalidArgument("the evidence claims records \(first)..<\(bound) lost (\(lost.findings.joined(separator: "; "))); "
                + "that is more than sixteen segments: give --continue-at \(bound) to confirm")
        }
        let end = max(bound, continuingAt ?? 0)
        let fs = PosixFileSystem()
        let layout = StoreLayout(root: path)
        let (superseded, largest) = try setAsideCheckpoints(fs: fs, layout: layout, over: first)
        try dropDerivedData(fs: fs, layout: layout)

        var options = Options(commitPolicy: .none)
        options.acceptingLoss = true
        let store = try Store(path: path, options: options)
        defer { try? store.close() }
        guard store.recordCount == first else {
            throw SteleError.invalidArgument("the store changed while its loss was being recorded; run the command again")
        }
        var next = first
        if resuming == nil {
            let evidence = lost.findings.isEmpty ? "none in the store: the operator gave \(end) as the first number never handed out"
                : lost.findings.joined(separator: "; ")
            let record = LossRecord(end: end, supersededCheckpoint: largest, evidence: evidence, reason: reason)
            try store.append(contentsOf: [Entry(type: .loss, namespace: [], key: [], value: record.encoded)])
            next += 1
        }
        let placeholders = [Entry](repeating: Entry(type: .loss, namespace: [], key: [], value: []), count: 65_536)
        while next < end {
            let count = Int(min(UInt64(placeholders.count), end - next))
            next = try store.append(contentsOf: Array(placeholders.prefix(count))).sequences.upperBound + 1
        }
        try store.close()
        return LossReport(lost: lost, first: first, end: end, supersededCheckpoints: superseded)
    }

    /// Moves every stored checkpoint over more than `size` records to
    /// `checkpoints/superseded-<size>/`, and makes the largest one left the latest.
    /// Returns the moved files and the largest checkpoint moved.
    private static func setAsideCheckpoints(fs: PosixFileSystem, layout: StoreLayout, over size: UInt64) throws
        -> ([String], (size: UInt64, root: Digest)?) {
        let directory = layout.checkpoints
        let aside = directory + "/superseded-\(size)"
        var moved: [String] = []
        var largest: (size: UInt64, root: Digest)?
        var kept: (size: UInt64, path: String)?
        var files = [(directory + "/checkpoint", "checkpoint")]
        for name in (try? fs.listDirectory(directory + "/history")) ?? [] where !name.hasSuffix(".tmp") {
            files.append((directory + "/history/" + name, name))
        }
        for (file, name) in files {
            guard let bytes = try fs.readWholeFile(file, limit: SignedNote.maxSize),
                  let body = try? CheckpointStore.body(of: String(decoding: bytes, as: UTF8.self), path: file) else { continue }
            if body.treeSize <= size {
                if name != "checkpoint", body.treeSize > (kept?.size ?? 0) { kept = (body.treeSize, file) }
                continue
            }
            if try fs.status(aside) == nil { try fs.makeDirectory(aside) }
            try fs.rename(file, to: aside + "/" + name)
            moved.append(aside + "/" + name)
            if body.treeSize > (largest?.size ?? 0) { largest = (body.treeSize, body.root) }
        }
        if !moved.isEmpty {
            try fs.syncDirectory(aside)
            if let kept, try fs.status(directory + "/checkpoint") == nil, let bytes = try fs.readWholeFile(kept.path, limit: SignedNote.maxSize) {
                try fs.writeAtomically(bytes, to: directory + "/checkpoint", permissions: 0o644, directory: directory)
            }
            try fs.syncDirectory(directory)
            if try fs.status(directory + "/history") != nil { try fs.syncDirectory(directory + "/history") }
        }
        return (moved, largest)
    }

    /// Removes what is derived from the lost history: `tiles/state`, every partial tile and the
    /// index snapshot (full tiles are overwritten as the new history reaches them).
    private static func dropDerivedData(fs: PosixFileSystem, layout: StoreLayout) throws {
        func walk(_ directory: String) throws {
            for name in try fs.listDirectory(directory) {
                let path = directory + "/" + name
                guard let status = try fs.status(path) else { continue }
                if status.isDirectory {
                    try walk(path)
                } else if directory.hasSuffix(".p") {
                    try fs.remove(path)
                }
            }
        }
        if try fs.status(layout.tiles + "/state") != nil { try fs.remove(layout.tiles + "/state") }
        if try fs.status(layout.tiles + "/tile") != nil { try walk(layout.tiles + "/tile") }
        if try fs.status(layout.index + "/snapshot") != nil { try fs.remove(layout.index + "/snapshot") }
    }
}
