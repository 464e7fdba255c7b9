import Foundation
import Glibc
import Testing
@testable import Stele

/// A real full disk: a 4 MiB tmpfs mounted for the test (needs root, as CI has; skipped, and
/// said so, where mounting is not allowed). The injected-ENOSPC variant that runs everywhere is
/// `ErrorTests.fullDiskIsAnErrorAndWritingResumesWhenSpaceIsFreed`.
@Suite struct DiskFullTests {
    /// Mounts a tmpfs of `megabytes` at a new directory; nil if this machine does not allow it.
    static func mountSmallFileSystem(megabytes: Int) -> TemporaryDirectory? {
        let dir = TemporaryDirectory()
        let mount = Process()
        mount.executableURL = URL(fileURLWithPath: "/bin/mount")
        mount.arguments = ["-t", "tmpfs", "-o", "size=\(megabytes)m", "tmpfs", dir.path]
        mount.standardError = FileHandle.nullDevice
        guard (try? mount.run()) != nil else { dir.remove(); return nil }
        mount.waitUntilExit()
        guard mount.terminationStatus == 0 else { dir.remove(); return nil }
        return dir
    }

    static func unmount(_ dir: TemporaryDirectory) {
        let umount = Process()
        umount.executableURL = URL(fileURLWithPath: "/bin/umount")
        umount.arguments = [dir.path]
        try? umount.run()
        umount.waitUntilExit()
        dir.remove()
    }

    static let canMount: Bool = {
        guard getuid() == 0, let dir = mountSmallFileSystem(megabytes: 1) else { return false }
        unmount(dir)
        return true
    }()

    @Test(.enabled(if: canMount, "needs root to mount a small tmpfs"))
    func realFullDiskIsAClearErrorAndWritesResumeWhenSpaceIsFreed() throws {
        let mounted = try #require(Self.mountSmallFileSystem(megabytes: 4))
        defer { Self.unmount(mounted) }
        // Ballast to delete later: the only way to free space on a store that deletes nothing.
        let ballast = mounted.child("ballast")
        #expect(FileManager.default.createFile(atPath: ballast, contents: Data(count: 1 << 20)))
        let path = mounted.child("store")
        try Store.create(at: path, segmentSize: 128 * 1024)
        let store = try Store(path: path)
        var written = 0
        var failure: (any Error)?
        while failure == nil && written < 100_000 {
            do {
                try store.append(testEntry(written, valueLength: 200))
                written += 1
            } catch {
                failure = error
            }
        }
        let cause: IOError
        switch try #require(failure) {
        case SteleError.io(let io): cause = io
        case SteleError.writesDisabled(let io): cause = io
        default: Issue.record("expected an I/O error, got \(String(describing: failure))"); return
        }
        #expect(cause.isOutOfSpace, "\(cause)")
        print("real disk full: \(written) records acknowledged before \(cause)")
        // Everything acknowledged is readable, byte for byte.
        #expect(store.recordCount >= firstRecord + UInt64(written))
        try store.forEachRecord(from: firstRecord, count: written) { record in
            #expect(record.value == testEntry(Int(record.sequence - firstRecord), valueLength: 200).value)
        }
        // Space comes back: writes resume (after a reopen if the failure disabled them).
        try FileManager.default.removeItem(atPath: ballast)
        var writer = store
        if case SteleError.writesDisabled = try #require(failure) {
            try? store.close()
            writer = try Store(path: path)
        }
        try writer.append(testEntry(written, valueLength: 200))
        try writer.close()
        let reopened = try Store(path: path)
        #expect(reopened.recordCount == firstRecord + UInt64(written + 1))
        try reopened.close()
        let report = try Fsck.check(path: path)
        #expect(report.problems.isEmpty, "\(report.problems)")
    }
}
