#if canImport(Glibc)
import Glibc
#endif
import CSteleSys

/// How ``FileDescriptor/open(_:_:)`` opens a file.
package enum OpenMode: Sendable {
    case readOnly
    case readWrite
    /// Create a new file (fail if it exists) with the given permission bits, read-write.
    case createNew(permissions: UInt32)
    /// Create or truncate, read-write.
    case createOrTruncate(permissions: UInt32)
}

/// An open file descriptor plus the path it was opened with, for error messages; thin wrappers
/// over the POSIX calls on it, retried on `EINTR`, each failure a ``SystemError``.
///
/// A value type with no `deinit`: whoever opens it closes it (the engine's file-system
/// abstraction decides when), as with swift-system's `FileDescriptor`.
package struct FileDescriptor: Sendable {
    package let raw: Int32
    package let path: String

    package init(raw: Int32, path: String) {
        self.raw = raw
        self.path = path
    }

    package static func open(_ path: String, _ mode: OpenMode) throws(SystemError) -> FileDescriptor {
        let flags: Int32
        var permissions: UInt32 = 0
        switch mode {
        case .readOnly: flags = O_RDONLY
        case .readWrite: flags = O_RDWR
        case .createNew(let p): flags = O_RDWR | O_CREAT | O_EXCL; permissions = p
        case .createOrTruncate(let p): flags = O_RDWR | O_CREAT | O_TRUNC; permissions = p
        }
        let fd = try retrying("open", path) { Glibc.open(path, flags | O_CLOEXEC, permissions) }
        return FileDescriptor(raw: fd, path: path)
    }

    package func close() {
        // close(2) must not be retried on EINTR on Linux: the descriptor is already released.
        _ = Glibc.close(raw)
    }

    package func size() throws(SystemError) -> Int {
        var st = stat()
        _ = try retrying("fstat", path) { fstat(raw, &st) }
        return Int(st.st_size)
    }

    /// Reads until `buffer` is full or the file ends; returns the bytes read.
    package func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws(SystemError) -> Int {
        guard let base = buffer.baseAddress else { return 0 }
        var done = 0
        while done < buffer.count {
            let n = try retrying("pread", path) { pread(raw, base + done, buffer.count - done, off_t(offset + done)) }
            if n == 0 { break }
            done += n
        }
        return done
    }

    /// Writes all of `bytes` at `offset`.
    package func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws(SystemError) {
        guard let base = bytes.baseAddress else { return }
        var done = 0
        while done < bytes.count {
            done += try retrying("pwrite", path) { pwrite(raw, base + done, bytes.count - done, off_t(offset + done)) }
        }
    }

    /// Reserves `length` bytes at `offset` so that later writes there cannot fail for space.
    package func allocate(offset: Int, length: Int) throws(SystemError) {
        if stele_fallocate(raw, off_t(offset), off_t(length)) == 0 { return }
        let err = errno
        if err == EOPNOTSUPP || err == ENOSYS {
            // Some file systems lack fallocate(2); posix_fallocate writes zeros instead.
            let r = posix_fallocate(raw, off_t(offset), off_t(length))
            if r == 0 { return }
            throw SystemError(operation: "posix_fallocate", path: path, errno: r)
        }
        throw SystemError(operation: "fallocate", path: path, errno: err)
    }

    package func truncate(to length: Int) throws(SystemError) {
        _ = try retrying("ftruncate", path) { ftruncate(raw, off_t(length)) }
    }

    package func syncData() throws(SystemError) {
        _ = try retrying("fdatasync", path) { fdatasync(raw) }
    }

    package func syncAll() throws(SystemError) {
        _ = try retrying("fsync", path) { fsync(raw) }
    }

    package func setPermissions(_ mode: UInt32) throws(SystemError) {
        _ = try retrying("fchmod", path) { fchmod(raw, mode_t(mode)) }
    }

    /// Maps the first `length` bytes, shared with the file.
    package func map(length: Int, writable: Bool) throws(SystemError) -> MappedRegion {
        let protection = writable ? (PROT_READ | PROT_WRITE) : PROT_READ
        guard let address = mmap(nil, length, protection, MAP_SHARED, raw, 0), address != MAP_FAILED else {
            throw SystemError(operation: "mmap", path: path, errno: errno)
        }
        return MappedRegion(base: address, count: length, writable: writable, path: path) { base, count in
            _ = munmap(base, count)
        }
    }

    /// Takes an exclusive `flock` without waiting. - Returns: false if another holds it.
    package func lockExclusive() throws(SystemError) -> Bool {
        while true {
            if flock(raw, LOCK_EX | LOCK_NB) == 0 { return true }
            let err = errno
            if err == EINTR { continue }
            if err == EWOULDBLOCK { return false }
            throw SystemError(operation: "flock", path: path, errno: err)
        }
    }

    /// Starts writing back dirty pages of the range without waiting (a hint; failures ignored:
    /// the durable sync that follows reports any).
    package func startWriteback(offset: Int = 0, length: Int = 0) {
        _ = stele_start_writeback(raw, off_t(offset), off_t(length))
    }
}

/// What ``Paths/status(_:followingLinks:)`` reports about a path.
package struct FileStatus: Sendable, Equatable {
    package var isDirectory: Bool
    package var isRegularFile: Bool
    package var size: Int
    package var permissions: UInt32
    /// Bytes of disk allocated to the file (`st_blocks` × 512, as `du` counts): less than `size`
    /// for a sparse file, more for a preallocated one.
    package var allocatedBytes: Int
    /// Last modification (`st_mtim`), in nanoseconds since 1970.
    package var modifiedNanoseconds: Int64

    package init(isDirectory: Bool, isRegularFile: Bool, size: Int, permissions: UInt32, allocatedBytes: Int, modifiedNanoseconds: Int64 = 0) {
        self.isDirectory = isDirectory
        self.isRegularFile = isRegularFile
        self.size = size
        self.permissions = permissions
        self.allocatedBytes = allocatedBytes
        self.modifiedNanoseconds = modifiedNanoseconds
    }
}
