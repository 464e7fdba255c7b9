import Foundation
import Glibc
import Testing
@testable import Stele

/// docs/durability.md: a process that forks shares the writer lock with its child until the child
/// execs; a writer's open waits such a brief holder out for up to 250 ms (`LockFile.patience`),
/// and refuses a holder that keeps the lock longer with `SteleError.locked`. The holder here is
/// another process (`flock(1)`) holding an exclusive `flock` on the store's `LOCK` file.
@Suite(.serialized) struct WriterLockPatienceTests {
    /// Starts `flock -x LOCK sh -c 'echo held; exec sleep SECONDS'` and returns once it holds the
    /// lock (its first line of output).
    static func holdLock(_ lockPath: String, seconds: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
        process.arguments = ["-x", lockPath, "/bin/sh", "-c", "echo held; exec sleep \(seconds)"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        var line = Data()
        while !line.contains(0x0a) {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line += chunk
        }
        #expect(String(decoding: line, as: UTF8.self) == "held\n")
        return process
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }

    @Test func aLockHeldBrieflyByAnotherProcessIsWaitedOut() throws {
        try withStore { _, path in
            let lock = StoreLayout(root: path).lock
            #expect(LockFile.patience == .milliseconds(250))
            let holder = try Self.holdLock(lock, seconds: "0.1")
            defer { holder.waitUntilExit() }
            // Held when the open starts: an open that succeeds has waited for the holder to let go.
            #expect(LockFile.isHeld(fs: PosixFileSystem(), path: lock), "the other process holds the lock")
            let started = ContinuousClock.now
            let store = try Store(path: path)
            let waited = ContinuousClock.now - started
            try store.put(namespace: "n", key: "k", value: "v")
            try store.close()
            holder.waitUntilExit()
            #expect(holder.terminationStatus == 0)
            print("lock patience: a 100 ms holder was waited out in \(Self.milliseconds(waited)) ms")
        }
    }

    @Test func aLockHeldLongerThanThePatienceIsRefusedAsLocked() throws {
        try withStore { _, path in
            let lock = StoreLayout(root: path).lock
            let holder = try Self.holdLock(lock, seconds: "1")
            defer {
                kill(holder.processIdentifier, SIGKILL)
                holder.waitUntilExit()
            }
            let started = ContinuousClock.now
            #expect(throws: SteleError.locked(path: path)) { try Store(path: path) }
            let waited = Self.milliseconds(ContinuousClock.now - started)
            // It tried for the whole patience, and gave up long before the holder let go.
            #expect(waited >= 250 && waited < 900, "refused after \(waited) ms")
            // A read-only open takes no lock: it is not refused.
            let reader = try Store(path: path, options: .init(readOnly: true))
            #expect(reader.recordCount == firstRecord)
            try reader.close()
        }
    }
}
