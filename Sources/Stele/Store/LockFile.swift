import SteleNative

/// The store's `LOCK` file: an exclusive `flock` for the one writer, and a one-word record of
/// how the last writer left: `open` while a writer has the store, `clean` after a successful
/// close. A store found `open` was not closed cleanly (crash, kill, failed final sync), so the
/// next writer writes the active segment out again before trusting it.
package enum LockFile {
    /// Takes the lock; returns the descriptor and whether the last writer closed cleanly.
    /// - Throws: ``SteleError/locked(path:)`` if another writer holds it.
    package static func acquire(fs: any FileSystem, path: String, storePath: String) throws -> (FileDescriptor, clean: Bool) {
        let fd = try fs.status(path) == nil ? fs.open(path, .createNew(permissions: 0o644)) : fs.open(path, .readWrite)
        do {
            guard try lockPatiently(fs: fs, fd) else { throw SteleError.locked(path: storePath) }
            var bytes = [UInt8](repeating: 0, count: 16)
            let n = try bytes.withUnsafeMutableBytes { try fs.read(fd, into: $0, at: 0) }
            let word = String(decoding: bytes.prefix(n), as: UTF8.self)
            try mark(fs: fs, fd, clean: false)
            // An empty file is a store that was just created and never opened.
            return (fd, word.isEmpty || word == "clean\n")
        } catch {
            fs.close(fd)
            throw error
        }
    }

    /// A process that forks (to run a subprocess, say) shares the lock with the child until the
    /// child execs and close-on-exec drops it: a close-then-reopen in the parent can find the
    /// lock held for those few milliseconds. So a refused lock is tried again for up to
    /// `patience` before another writer is assumed; a real second writer holds it far longer.
    static let patience: Duration = .milliseconds(250)

    private static func lockPatiently(fs: any FileSystem, _ fd: FileDescriptor) throws -> Bool {
        let deadline = ContinuousClock.now + patience
        while true {
            if try fs.lockExclusive(fd) { return true }
            if ContinuousClock.now >= deadline { return false }
            sleepThread(milliseconds: 5)
        }
    }

    /// Whether a writer holds the lock now (this process's own included). The lock is taken
    /// and released at once when free: a writer opening at that instant waits it out.
    package static func isHeld(fs: any FileSystem, path: String) -> Bool {
        guard (try? fs.status(path)) ?? nil != nil, let fd = try? fs.open(path, .readOnly) else { return false }
        defer { fs.close(fd) }
        return (try? fs.lockExclusive(fd)) == false
    }

    package static func mark(fs: any FileSystem, _ fd: FileDescriptor, clean: Bool) throws {
        let word = Array((clean ? "clean\n" : "open\n").utf8)
        try fs.truncate(fd, to: 0)
        try word.withUnsafeBytes { try fs.write(fd, $0, at: 0) }
        try fs.syncData(fd)
    }
}
