import SteleNative

/// The real file system: the engine's ``FileSystem`` over the native layer's system calls
/// (``FileDescriptor``, ``Paths``, ``MappedRegion``), with their failures as ``SteleError/io(_:)``.
///
/// It issues no system call itself: SteleNative does, and is the only target that can (the
/// engine target imports neither Glibc nor a C module). Tests swap it for fault-injecting
/// file systems that keep the same contract.
package struct PosixFileSystem: FileSystem {
    package init() {}

    package func open(_ path: String, _ mode: OpenMode) throws -> FileDescriptor {
        try system { () throws(SystemError) in try FileDescriptor.open(path, mode) }
    }

    package func close(_ fd: FileDescriptor) { fd.close() }

    package func size(_ fd: FileDescriptor) throws -> Int {
        try system { () throws(SystemError) in try fd.size() }
    }

    package func read(_ fd: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws -> Int {
        try system { () throws(SystemError) in try fd.read(into: buffer, at: offset) }
    }

    package func write(_ fd: FileDescriptor, _ bytes: UnsafeRawBufferPointer, at offset: Int) throws {
        try system { () throws(SystemError) in try fd.write(bytes, at: offset) }
    }

    package func allocate(_ fd: FileDescriptor, offset: Int, length: Int) throws {
        try system { () throws(SystemError) in try fd.allocate(offset: offset, length: length) }
    }

    package func truncate(_ fd: FileDescriptor, to length: Int) throws {
        try system { () throws(SystemError) in try fd.truncate(to: length) }
    }

    package func syncData(_ fd: FileDescriptor) throws {
        try system { () throws(SystemError) in try fd.syncData() }
    }

    package func syncAll(_ fd: FileDescriptor) throws {
        try system { () throws(SystemError) in try fd.syncAll() }
    }

    package func setPermissions(_ fd: FileDescriptor, _ mode: UInt32) throws {
        try system { () throws(SystemError) in try fd.setPermissions(mode) }
    }

    package func map(_ fd: FileDescriptor, length: Int, writable: Bool) throws -> MappedRegion {
        try system { () throws(SystemError) in try fd.map(length: length, writable: writable) }
    }

    package func syncMapped(_ region: MappedRegion, _ range: Range<Int>) throws {
        try system { () throws(SystemError) in try region.sync(range) }
    }

    package func lockExclusive(_ fd: FileDescriptor) throws -> Bool {
        try system { () throws(SystemError) in try fd.lockExclusive() }
    }

    /// Gives the file at `from` the new name `to` too (`link`), never replacing anything.
    /// - Returns: false if `to` exists.
    /// - Throws: ``SteleError/io(_:)`` on any other failure.
    package func linkNew(_ from: String, to: String) throws -> Bool {
        try system { () throws(SystemError) in try Paths.linkNew(from, to: to) }
    }

    package func rename(_ from: String, to: String) throws {
        try system { () throws(SystemError) in try Paths.rename(from, to: to) }
    }

    package func syncDirectory(_ path: String) throws {
        try system { () throws(SystemError) in try Paths.syncDirectory(path) }
    }

    package func startWriteback(_ fd: FileDescriptor, offset: Int = 0, length: Int = 0) {
        fd.startWriteback(offset: offset, length: length)
    }

    package func syncFileSystem(_ path: String) throws {
        try system { () throws(SystemError) in try Paths.syncFileSystem(path) }
    }

    package func makeDirectory(_ path: String) throws {
        try system { () throws(SystemError) in try Paths.makeDirectory(path) }
    }

    package func listDirectory(_ path: String) throws -> [String] {
        try system { () throws(SystemError) in try Paths.listDirectory(path) }
    }

    /// Removes a file, or an empty directory (`remove(3)`).
    package func remove(_ path: String) throws {
        try system { () throws(SystemError) in try Paths.remove(path) }
    }

    package func status(_ path: String) throws -> FileStatus? {
        try system { () throws(SystemError) in try Paths.status(path) }
    }
}
