import SteleNative

/// The narrow set of file operations Stele performs.
///
/// Every `open`, `mmap`, `msync`, `fdatasync`, `fallocate`, `ftruncate`, `flock` and `rename` in
/// the engine goes through this protocol, so that tests can substitute an implementation that
/// injects faults (a full disk, `EIO`, a lost `fsync`, a power cut) without touching the engine.
/// ``PosixFileSystem`` is the real one. All methods throw ``SteleError/io(_:)`` on failure.
package protocol FileSystem: Sendable {
    func open(_ path: String, _ mode: OpenMode) throws -> FileDescriptor
    func close(_ fd: FileDescriptor)
    func size(_ fd: FileDescriptor) throws -> Int
    /// Reads up to `buffer.count` bytes at `offset`; returns how many were read (0 at end of file).
    func read(_ fd: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws -> Int
    /// Writes all of `bytes` at `offset`.
    func write(_ fd: FileDescriptor, _ bytes: UnsafeRawBufferPointer, at offset: Int) throws
    /// Reserves disk blocks for `[offset, offset + length)` and extends the file to cover it.
    func allocate(_ fd: FileDescriptor, offset: Int, length: Int) throws
    func truncate(_ fd: FileDescriptor, to length: Int) throws
    /// `fdatasync`: data and the metadata needed to read it back.
    func syncData(_ fd: FileDescriptor) throws
    /// `fsync`: data and all metadata (size, mode).
    func syncAll(_ fd: FileDescriptor) throws
    func setPermissions(_ fd: FileDescriptor, _ mode: UInt32) throws
    /// Maps `length` bytes of the file from offset 0, shared with the file.
    func map(_ fd: FileDescriptor, length: Int, writable: Bool) throws -> MappedRegion
    /// `msync(MS_SYNC)` of `range` (made page-aligned here): on return those bytes are on disk.
    func syncMapped(_ region: MappedRegion, _ range: Range<Int>) throws
    /// Takes an exclusive advisory lock without waiting; returns false if another holder has it.
    func lockExclusive(_ fd: FileDescriptor) throws -> Bool
    func rename(_ from: String, to: String) throws
    /// Makes a directory's entries (creations, renames) durable.
    func syncDirectory(_ path: String) throws
    /// `syncfs`: makes everything written to the file system holding `path` durable, in one
    /// call (used for the many small tile files, where one `fsync` each would cost far more).
    func syncFileSystem(_ path: String) throws
    /// Starts writing the dirty pages of `length` bytes from `offset` (0: to the end) to disk and
    /// returns at once, so that a later sync finds most of the work done. Promises nothing about
    /// durability; a failure is left for that sync to report.
    func startWriteback(_ fd: FileDescriptor, offset: Int, length: Int)
    func makeDirectory(_ path: String) throws
    /// Names in a directory, without `.` and `..`.
    func listDirectory(_ path: String) throws -> [String]
    /// Removes a file, or an empty directory.
    func remove(_ path: String) throws
    /// Kind, size, allocated bytes and permission bits of a path (following links), or nil if nothing is there.
    func status(_ path: String) throws -> FileStatus?
    /// Whether ``storedIntoMapping(_:_:)`` wants to hear of every store into a mapping. Only the
    /// power-cut model of the tests does; the writer asks once per segment, so the real file
    /// system costs the append path one branch per frame and no call.
    var observesMappedStores: Bool { get }
    /// Tells the file system that `range` of `region` was just written through the mapping. No
    /// system call: a page written so may reach the disk at any moment, whole or in part, which
    /// is what the power-cut model makes a crash point of.
    func storedIntoMapping(_ region: MappedRegion, _ range: Range<Int>)
}

extension FileSystem {
    package var observesMappedStores: Bool { false }
    package func storedIntoMapping(_ region: MappedRegion, _ range: Range<Int>) {}
}

extension FileSystem {
    /// The whole content of a small regular file; nil if nothing is there.
    /// - Throws: ``SteleError/corruption(_:)`` if it is not a regular file or larger than
    ///   `limit`, ``SteleError/io(_:)`` if it cannot be read, or shrank while being read.
    package func readWholeFile(_ path: String, limit: Int) throws -> [UInt8]? {
        guard let status = try status(path) else { return nil }
        guard status.isRegularFile, status.size <= limit else {
            throw SteleError.corruption(Corruption(file: path, detail: "\(status.size) bytes; expected a file of at most \(limit)"))
        }
        let fd = try open(path, .readOnly)
        defer { close(fd) }
        // Read straight into the array's storage (no zero fill first: the file may be a 64 MiB
        // segment). Only the bytes read are ever counted as initialised.
        var failure: (any Error)?
        let bytes = [UInt8](unsafeUninitializedCapacity: status.size) { buffer, initialized in
            do {
                initialized = try read(fd, into: UnsafeMutableRawBufferPointer(buffer), at: 0)
            } catch {
                failure = error
                initialized = 0
            }
        }
        if let failure { throw failure }
        guard bytes.count == status.size else { throw SteleError.corruption(Corruption(file: path, detail: "shrank while being read")) }
        return bytes
    }

    /// A private copy of the first `length` bytes of a file, for reading a file that another
    /// process may truncate under us (a live writer's active segment, cut to size by its seal):
    /// touching a shared mapping past a file's new end raises SIGBUS, a copy cannot. Bytes past
    /// a shrunken end read as zeros, as an unwritten tail does.
    /// - Cost: one read of `length` bytes.
    package func snapshot(_ fd: FileDescriptor, length: Int) throws -> MappedRegion {
        let region = try system { () throws(SystemError) in try MappedRegion.anonymous(count: length, path: fd.path) }
        var done = 0
        while done < length {
            let n = try read(fd, into: UnsafeMutableRawBufferPointer(start: region.base + done, count: length - done), at: done)
            if n == 0 { break }
            done += n
        }
        return region
    }

    /// Replaces (or creates) `path` with `bytes` so that a crash leaves either the old file or
    /// the new one, never a mix: the bytes go to `path.tmp` (a leftover one is removed first),
    /// which is synced, renamed over `path`, and then `directory` (the one holding `path`) is
    /// synced so the rename itself is durable. If writing or syncing fails the temporary file is
    /// removed; after a failed rename it stays, as after a crash, for recovery to remove.
    ///
    /// Cost: one write, two fsyncs and a rename.
    /// - Throws: ``SteleError/io(_:)`` if any step fails; `path` is then untouched.
    package func writeAtomically(_ bytes: [UInt8], to path: String, permissions: UInt32, directory: String) throws {
        let temporary = path + ".tmp"
        do {
            if try status(temporary) != nil { try remove(temporary) }
            let fd = try open(temporary, .createNew(permissions: permissions))
            defer { close(fd) }
            try bytes.withUnsafeBytes { try write(fd, $0, at: 0) }
            try syncAll(fd)
        } catch {
            try? remove(temporary)
            throw error
        }
        try rename(temporary, to: path)
        try syncDirectory(directory)
    }
}

/// The directory that holds `path`: "." for a bare name, "/" for a name at the root. (Not
/// Foundation's `deletingLastPathComponent`, which crashes on a bare name with Swift 6 on Linux.)
package func parentDirectory(of path: String) -> String {
    var path = Substring(path)
    while path.count > 1 && path.hasSuffix("/") { path = path.dropLast() }
    guard let slash = path.lastIndex(of: "/") else { return "." }
    return slash == path.startIndex ? "/" : String(path[..<slash])
}
