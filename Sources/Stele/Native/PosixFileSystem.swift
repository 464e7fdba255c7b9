#if canImport(Glibc)
import Glibc
#endif
import CSteleSys

/// The real file system: thin wrappers over POSIX calls with `EINTR` retry and typed errors.
///
/// This is the only file in Stele that issues file-system system calls (the others go
/// through ``FileSystem``), which keeps the unsafe surface small and lets tests swap it out.
package struct PosixFileSystem: FileSystem {
    package init() {}

    package func open(_ path: String, _ mode: OpenMode) throws -> FileDescriptor {
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

    package func close(_ fd: FileDescriptor) {
        // close(2) must not be retried on EINTR on Linux: the descriptor is already released.
        _ = Glibc.close(fd.raw)
    }

    package func size(_ fd: FileDescriptor) throws -> Int {
        var st = stat()
        _ = try retrying("fstat", fd.path) { fstat(fd.raw, &st) }
        return Int(st.st_size)
    }

    package func read(_ fd: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws -> Int {
        var done = 0
        while done < buffer.count {
            let n = try retrying("pread", fd.path) {
                pread(fd.raw, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    package func write(_ fd: FileDescriptor, _ bytes: UnsafeRawBufferPointer, at offset: Int) throws {
        var done = 0
        while done < bytes.count {
            let n = try retrying("pwrite", fd.path) {
                pwrite(fd.raw, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
            }
            done += n
        }
    }

    package func allocate(_ fd: FileDescriptor, offset: Int, length: Int) throws {
        let rc = stele_fallocate(fd.raw, off_t(offset), off_t(length))
        if rc == 0 { return }
        let err = Glibc.errno
        if err == EOPNOTSUPP || err == ENOSYS {
            // Some file systems lack fallocate(2); posix_fallocate writes zeros instead.
            let r = posix_fallocate(fd.raw, off_t(offset), off_t(length))
            if r == 0 { return }
            throw SteleError.io(IOError(operation: "posix_fallocate", path: fd.path, errno: r))
        }
        throw SteleError.io(IOError(operation: "fallocate", path: fd.path, errno: err))
    }

    package func truncate(_ fd: FileDescriptor, to length: Int) throws {
        _ = try retrying("ftruncate", fd.path) { ftruncate(fd.raw, off_t(length)) }
    }

    package func syncData(_ fd: FileDescriptor) throws {
        _ = try retrying("fdatasync", fd.path) { fdatasync(fd.raw) }
    }

    package func syncAll(_ fd: FileDescriptor) throws {
        _ = try retrying("fsync", fd.path) { fsync(fd.raw) }
    }

    package func setPermissions(_ fd: FileDescriptor, _ mode: UInt32) throws {
        _ = try retrying("fchmod", fd.path) { fchmod(fd.raw, mode_t(mode)) }
    }

    package func map(_ fd: FileDescriptor, length: Int, writable: Bool) throws -> MappedRegion {
        let protection = writable ? (PROT_READ | PROT_WRITE) : PROT_READ
        guard let address = mmap(nil, length, protection, MAP_SHARED, fd.raw, 0), address != MAP_FAILED else {
            throw SteleError.io(IOError(operation: "mmap", path: fd.path, errno: Glibc.errno))
        }
        return MappedRegion(base: address, count: length, writable: writable, path: fd.path) { base, count in
            _ = munmap(base, count)
        }
    }

    package func syncMapped(_ region: MappedRegion, _ range: Range<Int>) throws {
        let page = MappedRegion.pageSize
        let start = range.lowerBound / page * page
        let end = min(region.count, range.upperBound)
        guard end > start else { return }
        _ = try retrying("msync", region.path) { msync(region.base + start, end - start, MS_SYNC) }
    }

    package func lockExclusive(_ fd: FileDescriptor) throws -> Bool {
        while true {
            if flock(fd.raw, LOCK_EX | LOCK_NB) == 0 { return true }
            let err = Glibc.errno
            if err == EINTR { continue }
            if err == EWOULDBLOCK { return false }
            throw SteleError.io(IOError(operation: "flock", path: fd.path, errno: err))
        }
    }

    /// Gives the file at `from` the new name `to` too (`link`), never replacing anything.
    /// - Returns: false if `to` exists.
    /// - Throws: ``SteleError/io(_:)`` on any other failure.
    package func linkNew(_ from: String, to: String) throws -> Bool {
        while link(from, to) != 0 {
            let err = Glibc.errno
            if err == EINTR { continue }
            if err == EEXIST { return false }
            throw SteleError.io(IOError(operation: "link", path: to, errno: err))
        }
        return true
    }

    package func rename(_ from: String, to: String) throws {
        _ = try retrying("rename", from) { Glibc.rename(from, to) }
    }

    package func syncDirectory(_ path: String) throws {
        let fd = try retrying("open", path) { Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        defer { _ = Glibc.close(fd) }
        _ = try retrying("fsync", path) { fsync(fd) }
    }

    package func startWriteback(_ fd: FileDescriptor, offset: Int = 0, length: Int = 0) {
        _ = stele_start_writeback(fd.raw, off_t(offset), off_t(length))
    }

    package func syncFileSystem(_ path: String) throws {
        let fd = try retrying("open", path) { Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        defer { _ = Glibc.close(fd) }
        _ = try retrying("syncfs", path) { stele_syncfs(fd) }
    }

    package func makeDirectory(_ path: String) throws {
        _ = try retrying("mkdir", path) { mkdir(path, 0o755) }
    }

    package func listDirectory(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else {
            throw SteleError.io(IOError(operation: "opendir", path: path, errno: Glibc.errno))
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// Removes a file, or an empty directory (`remove(3)`).
    package func remove(_ path: String) throws {
        _ = try retrying("remove", path) { Glibc.remove(path) }
    }

    package func status(_ path: String) throws -> FileStatus? {
        var st = stat()
        if stat(path, &st) != 0 {
            let err = Glibc.errno
            if err == ENOENT || err == ENOTDIR { return nil }
            throw SteleError.io(IOError(operation: "stat", path: path, errno: err))
        }
        let kind = st.st_mode & S_IFMT
        return FileStatus(isDirectory: kind == S_IFDIR, isRegularFile: kind == S_IFREG,
                          size: Int(st.st_size), permissions: UInt32(st.st_mode & 0o7777))
    }

    /// Runs a call that returns -1 and sets errno on failure, retrying on `EINTR`.
    private func retrying<T: BinaryInteger>(_ operation: String, _ path: String, _ call: () -> T) throws -> T {
        while true {
            let result = call()
            if result >= 0 { return result }
            let err = Glibc.errno
            if err == EINTR { continue }
            throw SteleError.io(IOError(operation: operation, path: path, errno: err))
        }
    }
}
