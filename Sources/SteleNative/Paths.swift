#if canImport(Glibc)
import Glibc
#endif
import CSteleSys

/// The system calls on paths (names in a directory), as opposed to open files
/// (``FileDescriptor``): retried on `EINTR`, each failure a ``SystemError``.
package enum Paths {
    /// Gives the file at `from` the new name `to` too (`link`), never replacing anything.
    /// - Returns: false if `to` exists.
    package static func linkNew(_ from: String, to: String) throws(SystemError) -> Bool {
        while link(from, to) != 0 {
            let err = errno
            if err == EINTR { continue }
            if err == EEXIST { return false }
            throw SystemError(operation: "link", path: to, errno: err)
        }
        return true
    }

    package static func rename(_ from: String, to: String) throws(SystemError) {
        _ = try retrying("rename", from) { Glibc.rename(from, to) }
    }

    /// `fsync` of a directory: makes the names created, renamed or removed in it durable.
    package static func syncDirectory(_ path: String) throws(SystemError) {
        let fd = try retrying("open", path) { Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        defer { _ = Glibc.close(fd) }
        _ = try retrying("fsync", path) { fsync(fd) }
    }

    /// `syncfs` of the file system holding `path`: one call for many files.
    package static func syncFileSystem(_ path: String) throws(SystemError) {
        let fd = try retrying("open", path) { Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        defer { _ = Glibc.close(fd) }
        _ = try retrying("syncfs", path) { stele_syncfs(fd) }
    }

    package static func makeDirectory(_ path: String) throws(SystemError) {
        _ = try retrying("mkdir", path) { mkdir(path, 0o755) }
    }

    /// The names in a directory but `.` and `..`, sorted.
    package static func listDirectory(_ path: String) throws(SystemError) -> [String] {
        try directoryEntries(path).map(\.name).sorted()
    }

    /// The entries of a directory but `.` and `..`, in the directory's order (unsorted: a caller
    /// that filters sorts less), each with whether it is a directory as `readdir` says
    /// (`d_type`; nil where the file system does not say, and a `stat` must): a walk of a large
    /// directory without a `stat` per name.
    package static func directoryEntries(_ path: String) throws(SystemError) -> [(name: String, isDirectory: Bool?)] {
        guard let dir = opendir(path) else {
            throw SystemError(operation: "opendir", path: path, errno: errno)
        }
        defer { closedir(dir) }
        var entries: [(name: String, isDirectory: Bool?)] = []
        // `readdir` returns nil at the end and on an error alike: only `errno` tells them apart.
        errno = 0
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard name != "." && name != ".." else { continue }
            let type = entry.pointee.d_type
            entries.append((name, type == UInt8(DT_UNKNOWN) ? nil : type == UInt8(DT_DIR)))
            errno = 0
        }
        if errno != 0 { throw SystemError(operation: "readdir", path: path, errno: errno) }
        return entries
    }

    /// Removes a file, or an empty directory (`remove(3)`).
    package static func remove(_ path: String) throws(SystemError) {
        _ = try retrying("remove", path) { Glibc.remove(path) }
    }

    /// What is at `path`; nil if nothing is (`ENOENT`, or a file where a directory was expected).
    /// A symbolic link is followed (`stat`), unless `followingLinks` is false (`lstat`: the link
    /// itself, neither a directory nor a regular file).
    package static func status(_ path: String, followingLinks: Bool = true) throws(SystemError) -> FileStatus? {
        var st = stat()
        if (followingLinks ? stat(path, &st) : lstat(path, &st)) != 0 {
            let err = errno
            if err == ENOENT || err == ENOTDIR { return nil }
            throw SystemError(operation: followingLinks ? "stat" : "lstat", path: path, errno: err)
        }
        let kind = st.st_mode & S_IFMT
        // st_blocks counts 512-byte units whatever the file system's block size (POSIX).
        return FileStatus(isDirectory: kind == S_IFDIR, isRegularFile: kind == S_IFREG, size: Int(st.st_size),
                          permissions: UInt32(st.st_mode & 0o7777), allocatedBytes: Int(st.st_blocks) * 512,
                          modifiedNanoseconds: Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec))
    }
}
