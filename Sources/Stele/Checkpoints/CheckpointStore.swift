import SteleNative

/// Signed checkpoints on disk: `checkpoints/checkpoint` is the latest, and
/// `checkpoints/history/<tree size, 20 digits>` keeps the ones that stay evidence. Each file is a
/// complete C2SP signed note, written atomically (temporary file, fsync, rename, directory fsync).
///
/// Invariants:
/// - The store never signs a checkpoint that is inconsistent with the latest one it signed: a
///   new one must be at least as large, and the tree at the old size must have the old root
///   (checked against the tiles before signing).
/// - The history keeps every checkpoint not yet published, every one published with a
///   cosignature, and every one at or before the end of the sealed segments when it was
///   superseded: so for each sealed segment the newest checkpoint at or before its end (what a
///   mirror copies and a restore proves the segment with) stays. A published checkpoint inside
///   the active segment with only the log's signature is removed once a larger one is published
///   (or kept, on a standby): the larger one proves the same records and more (it was checked to
///   extend it), and a writer signing on a timer (four a second for a standby's recovery point)
///   would otherwise add 345,600 files a day.
package struct CheckpointStore: Sendable {
    package let directory: String
    package let origin: String
    private let fs: any FileSystem

    package init(fs: any FileSystem, directory: String, origin: String) {
        self.fs = fs
        self.directory = directory
        self.origin = origin
    }

    package var latestPath: String { directory + "/checkpoint" }
    package func historyPath(_ size: UInt64) -> String {
        let digits = String(size)
        return directory + "/history/" + String(repeating: "0", count: 20 - digits.count) + digits
    }

    /// The newest checkpoint in the history that is larger than the published one (signed for
    /// witnesses and not published: below their quorum, or a crash or close came first); nil if
    /// none.
    package func newestUnpublished() throws -> String? {
        let history = directory + "/history"
        guard try fs.status(history) != nil else { return nil }
        let publishedSize = try latest().map { try CheckpointStore.body(of: $0, path: latestPath).treeSize }
        let newest = try fs.listDirectory(history).compactMap { $0.count == 20 ? UInt64($0) : nil }.max()
        guard let newest, publishedSize.map({ newest > $0 }) ?? true else { return nil }
        return try fs.readWholeFile(historyPath(newest), limit: SignedNote.maxSize).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The latest signed note, or nil if none was written.
    package func latest() throws -> String? {
        try fs.readWholeFile(latestPath, limit: SignedNote.maxSize).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The latest signed note with its tree size, or nil if none was written.
    private func latestWithSize() throws -> (size: UInt64, note: String)? {
        try latest().map { (try CheckpointStore.body(of: $0, path: latestPath).treeSize, $0) }
    }

    /// Signs a checkpoint of `size` and `root` after checking it extends the latest one (`rootAt`
    /// gives the current tree's root at an earlier size); stores it in the history and, if
    /// `publish`, as the latest (else ``publish(_:cosignatures:)`` does that once witnesses have
    /// cosigned it). A checkpoint of the same tree signed before is kept with every line it
    /// carries (its witnesses' cosignatures): signing again never strips them. Once published,
    /// the latest before it leaves the history if it lies past `sealedEnd` (the records in sealed
    /// segments) with the store's signature alone (see the type's invariants).
    package func sign(size: UInt64, root: Digest, signer: NoteSigner, publish: Bool = true, sealedEnd: UInt64,
                      rootAt: (UInt64) throws -> Digest) throws -> String {
        var superseded: (size: UInt64, note: String)?
        if let previousNote = try latest() {
            // Our own earlier checkpoint: its body is what we signed; parse it past the signature block.
            let previous = try CheckpointStore.body(of: previousNote, path: latestPath)
            guard previous.origin == origin else {
                throw SteleError.checkpoint(.inconsistentWithPrevious(previousSize: previous.treeSize, detail: "origin \(previous.origin)"))
            }
            guard previous.treeSize <= size else {
                throw SteleError.checkpoint(.storeBehindCheckpoint(checkpointSize: previous.treeSize, storeSize: size))
            }
            let oldRoot = try rootAt(previous.treeSize)
            guard oldRoot == previous.root else {
                throw SteleError.checkpoint(.inconsistentWithPrevious(previousSize: previous.treeSize,
                                                                      detail: "the tree at that size now has root \(oldRoot.hex)"))
            }
            superseded = (previous.treeSize, previousNote)
        }
        let text = Checkpoint(origin: origin, treeSize: size, root: root).text
        var note = try SignedNote.sign(text, with: signer)
        if let stored = try fs.readWholeFile(historyPath(size), limit: SignedNote.maxSize).map({ String(decoding: $0, as: UTF8.self) }),
           (try? SignedNote.split(stored).text) == text {
            // This tree was signed before, perhaps cosigned since: keep every line, add ours if missing.
            note = (try? SignedNote.open(stored, verifier: signer.verifier)) != nil ? stored : stored + String(note.dropFirst(text.utf8.count + 1))
        }
        if try fs.status(directory + "/history") == nil { try fs.makeDirectory(directory + "/history") }
        try fs.writeAtomically(Array(note.utf8), to: historyPath(size), permissions: 0o644, directory: directory + "/history")
        if publish {
            try fs.writeAtomically(Array(note.utf8), to: latestPath, permissions: 0o644, directory: directory)
            if let superseded { retire(superseded, by: size, sealedEnd: sealedEnd) }
        }
        return note
    }

    /// Removes `superseded`, the checkpoint published before one of `size`, from the history if
    /// it lies past `sealedEnd` and its entry is that note with one signature (no witness
    /// cosigned it). Best effort, after the new one is published: a file left behind is only a
    /// file, and the publication stands. Not synced: a crash that brings it back leaves a
    /// checkpoint consistent with the rest.
    private func retire(_ superseded: (size: UInt64, note: String), by size: UInt64, sealedEnd: UInt64) {
        guard superseded.size > sealedEnd, superseded.size < size else { return }
        let path = historyPath(superseded.size)
        guard let stored = (try? fs.readWholeFile(path, limit: SignedNote.maxSize)) ?? nil,
              String(decoding: stored, as: UTF8.self) == superseded.note,
              (try? SignedNote.split(superseded.note))?.signatures.count == 1 else { return }
        try? fs.remove(path)
    }

    /// Keeps `note`, a checkpoint of `size` records signed elsewhere for the same log (a standby
    /// keeps the primary's, checked against its own tree by the caller), in the history, and as
    /// the latest unless a larger one is; the latest before it may leave the history, as in
    /// ``sign(size:root:signer:publish:sealedEnd:rootAt:)``.
    package func keep(_ note: String, size: UInt64, sealedEnd: UInt64) throws {
        if try fs.status(directory + "/history") == nil { try fs.makeDirectory(directory + "/history") }
        try fs.writeAtomically(Array(note.utf8), to: historyPath(size), permissions: 0o644, directory: directory + "/history")
        let previous = try latestWithSize()
        if let previous, previous.size > size { return }
        try fs.writeAtomically(Array(note.utf8), to: latestPath, permissions: 0o644, directory: directory)
        // A standby keeps each chunk's checkpoint: as on the writer, one inside the active segment
        // gives way to the next.
        if let previous { retire(previous, by: size, sealedEnd: sealedEnd) }
    }

    /// Publishes `note`, a checkpoint this store signed (its history entry holds it), with
    /// `cosignatures` (lines `— name base64\n`) added: the history entry and the latest are
    /// replaced atomically; the latest before it may leave the history, as in
    /// ``sign(size:root:signer:publish:sealedEnd:rootAt:)``. Returns the published note.
    /// - Throws: ``SteleError/checkpoint(_:)`` if the history holds another note at its size, a
    ///   line is malformed, or a larger checkpoint is published already.
    package func publish(_ note: String, cosignatures: [String], sealedEnd: UInt64) throws -> String {
        let checkpoint = try CheckpointStore.body(of: note, path: latestPath)
        guard let stored = try fs.readWholeFile(historyPath(checkpoint.treeSize), limit: SignedNote.maxSize),
              String(decoding: stored, as: UTF8.self).hasPrefix(note) else {
            throw SteleError.checkpoint(.malformedNote("not a checkpoint this store signed"))
        }
        let previous = try latestWithSize()
        if let previous, previous.size > checkpoint.treeSize {
            throw SteleError.checkpoint(.inconsistentWithPrevious(previousSize: checkpoint.treeSize, detail: "a larger checkpoint is published"))
        }
        let published = note + cosignatures.filter { !note.contains($0) }.joined()
        _ = try SignedNote.split(published)  // still a note: every added line a signature line
        try fs.writeAtomically(Array(published.utf8), to: historyPath(checkpoint.treeSize), permissions: 0o644, directory: directory + "/history")
        try fs.writeAtomically(Array(published.utf8), to: latestPath, permissions: 0o644, directory: directory)
        if let previous { retire(previous, by: checkpoint.treeSize, sealedEnd: sealedEnd) }
        return published
    }

    /// The checkpoint body of a stored note (the text before its last blank line).
    static func body(of note: String, path: String) throws -> Checkpoint {
        let bytes = Array(note.utf8)
        guard let split = (0 ..< max(0, bytes.count - 1)).last(where: { bytes[$0] == 0x0a && bytes[$0 + 1] == 0x0a }) else {
            throw SteleError.corruption(Corruption(file: path, detail: "stored checkpoint is not a signed note"))
        }
        do {
            return try Checkpoint(parsing: String(decoding: bytes[...split], as: UTF8.self))
        } catch {
            throw SteleError.corruption(Corruption(file: path, detail: "stored checkpoint: \(error)"))
        }
    }
}
