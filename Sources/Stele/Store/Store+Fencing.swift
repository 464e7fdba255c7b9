import SteleNative

/// A store fenced off its off-host copy (docs/operations.md, "Writer epochs and fencing"): the
/// copy names a newer writer epoch, held by another store (a promoted standby), so this one must
/// not extend the log any more, or it would fork the history the copy and its checkpoints record.
///
/// ``Store/fence(epoch:holder:)`` refuses every write of the open store at once
/// (``SteleError/fenced(epoch:holder:)``), and leaves a `fenced` file that refuses every later
/// writable open, by this process or another, until the operator removes it. A mirror that finds
/// the newer epoch writes the same file (``FenceMarker/write(fs:layout:epoch:holder:)``), so a
/// writer in another process is refused at its next open even if nothing told it.
///
/// ```
/// fenced                       in the store's directory
///
/// stele-fenced 1               format line
/// epoch 2                      the epoch that replaced this store's
/// holder standby-b:/srv/stele  who holds it (one line)
/// ```
package enum FenceMarker {
    package static let fileName = "fenced"
    private static let formatLine = "stele-fenced 1"

    package static func path(_ layout: StoreLayout) -> String { layout.root + "/" + fileName }

    /// The fence recorded for the store, or nil.
    /// - Throws: ``SteleError/corruption(_:)`` for a file that is not a fence (it still fences:
    ///   a damaged marker must not let a replaced writer back in).
    package static func read(fs: any FileSystem, layout: StoreLayout) throws -> (epoch: UInt64, holder: String)? {
        guard let bytes = try fs.readWholeFile(path(layout), limit: 4096) else { return nil }
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard lines.count == 4, lines[0] == formatLine, lines[3].isEmpty, lines[1].hasPrefix("epoch "), lines[2].hasPrefix("holder "),
              let epoch = UInt64(lines[1].dropFirst("epoch ".count)) else {
            throw SteleError.corruption(Corruption(file: path(layout), detail: "not a fence marker (the store stays fenced until it is removed)"))
        }
        return (epoch, String(lines[2].dropFirst("holder ".count)))
    }

    /// Removes the fence (a promotion that outranks it), and syncs the directory.
    package static func remove(fs: any FileSystem, layout: StoreLayout) throws {
        guard try fs.status(path(layout)) != nil else { return }
        try fs.remove(path(layout))
        try fs.syncDirectory(layout.root)
    }

    /// Records the fence (written atomically and synced).
    package static func write(fs: any FileSystem, layout: StoreLayout, epoch: UInt64, holder: String) throws {
        let holder = oneLine(holder)
        try fs.writeAtomically(Array("\(formatLine)\nepoch \(epoch)\nholder \(holder)\n".utf8), to: path(layout), permissions: 0o644,
                               directory: layout.root)
    }
}

/// `text` without line breaks or other control characters (a name that came from a copy, bound
/// for a file of lines, a log or a terminal).
package func oneLine(_ text: String) -> String {
    String(text.unicodeScalars.filter { $0.properties.generalCategory != .control }.map(Character.init))
}

extension Store {
    /// How often a writer looks for a `fenced` file a mirror in another process may have left.
    static let fenceCheckInterval: Int64 = 100_000_000

    /// Fences the store (its `fenced` file, see `FenceMarker`): from now on every write (append, seal, checkpoint,
    /// purge, shred) throws ``SteleError/fenced(epoch:holder:)``, and so does every later writable
    /// open until the store's `fenced` file is removed. Reads go on. Called by the service that
    /// runs the store's mirror when the copy names a newer writer epoch.
    /// - Throws: ``SteleError/io(_:)`` if the marker cannot be written; the open store refuses
    ///   writes all the same.
    public func fence(epoch: UInt64, holder: String) throws {
        state.withLock { $0.fence = (epoch, holder) }
        try FenceMarker.write(fs: options.fileSystem, layout: StoreLayout(root: path), epoch: epoch, holder: holder)
    }

    /// With the writer lock held, at most every ``fenceCheckInterval``: fences the store if a
    /// mirror in another process left a `fenced` file since it opened (one `stat` when there is
    /// none), so that a writer that stays open stops within a tenth of a second of its mirror.
    func checkForFence(_ state: inout State, now: Int64) throws {
        guard now &- state.fenceCheckedAt >= Store.fenceCheckInterval || now < state.fenceCheckedAt else { return }
        state.fenceCheckedAt = now
        guard let fence = try FenceMarker.read(fs: options.fileSystem, layout: StoreLayout(root: path)) else { return }
        state.fence = fence
        throw SteleError.fenced(epoch: fence.epoch, holder: fence.holder)
    }

    /// At a writable open, under the lock: a fenced store is refused, unless it is opened as a
    /// standby, whose fence it returns (a standby must have one).
    static func checkFenceAtOpen(fs: any FileSystem, layout: StoreLayout, standby: Bool) throws -> (epoch: UInt64, holder: String)? {
        let fence = try FenceMarker.read(fs: fs, layout: layout)
        if standby {
            guard let fence else { throw SteleError.invalidArgument("\(layout.root) is not a standby: it has no `fenced` file") }
            return fence
        }
        if let fence { throw SteleError.fenced(epoch: fence.epoch, holder: fence.holder) }
        return nil
    }

    /// Records a fence for the store at `path` without opening it (a mirror in another process
    /// than the writer): the writer is refused at its next open.
    public static func markFenced(at path: String, epoch: UInt64, holder: String) throws {
        try FenceMarker.write(fs: PosixFileSystem(), layout: StoreLayout(root: path), epoch: epoch, holder: holder)
    }
}
