import Foundation
import Glibc
import Testing
@testable import Stele
import SteleNative

@Suite struct ErrorTests {
    @Test func secondWriterIsRefusedUntilTheFirstCloses() throws {
        try withStore { _, path in
            let first = try Store(path: path)
            #expect(throws: SteleError.locked(path: path)) { try Store(path: path) }
            let reader = try Store(path: path, options: .init(readOnly: true))
            #expect(throws: SteleError.readOnly) { try reader.append(testEntry(0)) }
            try reader.close()
            try first.close()
            let second = try Store(path: path)
            try second.close()
        }
    }

    @Test func badArgumentsAreRefusedBeforeAnythingIsWritten() throws {
        try withStore { _, path in
            let store = try Store(path: path)
            let limit = Limits.maxValueLength(segmentSize: 64 * 1024)
            let bad: [(Entry, SteleError)] = [
                (Entry(namespace: "n", key: [], value: [1]), .invalidArgument("key must be 1-4096 bytes (got 0)")),
                (Entry(namespace: "n", key: [UInt8](repeating: 1, count: 4097), value: [1]), .invalidArgument("key must be 1-4096 bytes (got 4097)")),
                (Entry(namespace: "", key: [1], value: [1]), .invalidArgument("namespace must be 1-255 bytes without NUL (got 0 bytes)")),
                (Entry(namespace: String(repeating: "x", count: 256), key: [1], value: [1]),
                 .invalidArgument("namespace must be 1-255 bytes without NUL (got 256 bytes)")),
                (Entry(namespace: "a\u{0}b", key: [1], value: [1]), .invalidArgument("namespace must be 1-255 bytes without NUL (got 3 bytes)")),
                (Entry(namespace: "n", key: [1], value: [UInt8](repeating: 0, count: limit + 1)),
                 .invalidArgument("value of \(limit + 1) bytes exceeds the limit of \(limit) for this store's segment size")),
            ]
            for (entry, error) in bad {
                #expect(throws: error) { try store.append(contentsOf: [testEntry(0), entry]) }
            }
            #expect(throws: SteleError.invalidArgument("empty batch")) { try store.append(contentsOf: []) }
            #expect(store.recordCount == firstRecord)
            // The largest value that is allowed fits.
            try store.append(Entry(namespace: "n", key: [UInt8](repeating: 1, count: 4096), value: [UInt8](repeating: 7, count: limit)))
            try store.append(testEntry(1))
            #expect(try store.record(at: firstRecord).value.count == limit)
            try store.close()
        }
    }

    @Test func closedStoreAndMissingRecords() throws {
        try withStore { _, path in
            let store = try Store(path: path)
            try store.append(testEntry(0))
            #expect(throws: SteleError.notFound(sequence: firstRecord + 1, count: firstRecord + 1)) { try store.record(at: firstRecord + 1) }
            try store.close()
            try store.close()
            #expect(throws: SteleError.closed) { try store.append(testEntry(1)) }
            #expect(throws: SteleError.closed) { try store.record(at: 0) }
            #expect(throws: SteleError.closed) { try store.sync() }
        }
    }

    @Test func notAStoreAndAlreadyExists() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        #expect(throws: SteleError.notAStore(path: dir.path)) { try Store(path: dir.path) }
        try writeFile(dir.child("file"), [1])
        #expect(throws: SteleError.alreadyExists(path: dir.path)) { try Store.create(at: dir.path) }
        #expect(throws: SteleError.invalidArgument("segment size 1000 must be a multiple of 4096 between \(Limits.minSegmentSize) and \(Limits.maxSegmentSize)")) {
            try Store.create(at: dir.child("s"), segmentSize: 1000)
        }
    }

    @Test func newerFormatVersionsAreRejectedWithAClearError() throws {
        try withStore { _, path in
            let config = path + "/stele.conf"
            let original = try readFile(config)
            var text = String(decoding: original, as: UTF8.self)
            text = text.replacingOccurrences(of: "stele-store 1", with: "stele-store 2")
            try writeFile(config, Array(text.utf8))
            #expect(throws: SteleError.unsupportedVersion(file: config, found: 2, supported: 1)) { try Store(path: path) }
            try writeFile(config, original)

            var header = try readFile(segmentPath(path, 1))
            header[8] = 2
            let sum = xxh3(Array(header[0 ..< 120]))
            withUnsafeBytes(of: sum.littleEndian) { header.replaceSubrange(120 ..< 128, with: $0) }
            try writeFile(segmentPath(path, 1), header)
            #expect(throws: SteleError.unsupportedVersion(file: segmentPath(path, 1), found: 2, supported: 1)) { try Store(path: path) }
        }
    }

    @Test func fullDiskIsAnErrorAndWritingResumesWhenSpaceIsFreed() throws {
        try withStore { _, path in
            let fs = FaultyFileSystem()
            var options = Store.Options()
            options.fileSystem = fs
            let store = try Store(path: path, options: options)
            fs.fail("allocate", errno: ENOSPC)
            var written = 0
            var failure: (any Error)?
            while failure == nil && written < 5000 {
                do {
                    try store.append(testEntry(written))
                    written += 1
                } catch {
                    failure = error
                }
            }
            guard case SteleError.io(let io) = try #require(failure) else {
                Issue.record("expected an I/O error, got \(String(describing: failure))")
                return
            }
            #expect(io.isOutOfSpace && io.operation == "allocate")
            // Everything acknowledged is still there and readable; nothing half-made is left.
            #expect(store.recordCount == firstRecord + UInt64(written))
            #expect(try store.record(at: firstRecord + UInt64(written - 1)).key == Array("k\(written - 1)".utf8))
            #expect(try FileManager.default.contentsOfDirectory(atPath: path + "/segments").allSatisfy { !$0.hasSuffix(".tmp") })
            #expect {
                try store.append(testEntry(written))
            } throws: { error in
                guard case SteleError.io(let io) = error else { return false }
                return io.isOutOfSpace && io.operation == "allocate" && io.path.hasSuffix(".seg.tmp")
            }
            fs.clear()
            try store.append(testEntry(written))
            try store.close()
            let reopened = try Store(path: path)
            #expect(reopened.recordCount == firstRecord + UInt64(written + 1))
            try reopened.close()
        }
    }

    /// Regression, found by the power-cut model: Linux reports a writeback error to one sync of
    /// the file and marks the pages clean, so a second sync of the same segment at the same time
    /// (a seal, inside the store's lock, beside the group commit's sync outside it) returned
    /// success, and the seal claimed records durable that the failed sync never wrote. Here the
    /// group commit's `msync` fails while a seal runs on another thread: the seal must fail too,
    /// and nothing beyond what was durable before may be claimed.
    @Test func aSyncBesideOneThatFailedClaimsNothing() throws {
        try withStore { _, path in
            let fs = FaultyFileSystem()
            var options = Store.Options(commitPolicy: .none)
            options.fileSystem = fs
            let store = try Store(path: path, options: options)
            try store.append(contentsOf: (0 ..< 50).map { testEntry($0) })
            let durableBefore = store.durableRecordCount
            final class Outcome: @unchecked Sendable {
                let done = DispatchSemaphore(value: 0)
                var seal: Result<Void, any Error>?
                var finishedWhileTheSyncFailed = false
            }
            let outcome = Outcome()
            fs.beforeFault.withLock {
                $0 = { _, _ in
                    Thread.detachNewThread {
                        outcome.seal = Result { try store.seal() }
                        outcome.done.signal()
                    }
                    // Give the seal every chance to finish while this sync is failing; through
                    // the store's sync gate it cannot, and goes on once this one has failed.
                    outcome.finishedWhileTheSyncFailed = outcome.done.wait(timeout: .now() + 1) == .success
                }
            }
            fs.fail("syncMapped", path: ".seg", errno: EIO, times: 1)
            #expect {
                try store.sync()
            } throws: { error in
                guard case SteleError.writesDisabled(let cause) = error else { return false }
                return cause.errno == EIO
            }
            if !outcome.finishedWhileTheSyncFailed { outcome.done.wait() }
            #expect(!outcome.finishedWhileTheSyncFailed, "the seal completed beside a failing sync")
            func disabledByEIO(_ error: any Error) -> Bool {
                guard case SteleError.writesDisabled(let cause) = error else { return false }
                return cause.errno == EIO
            }
            #expect(performing: { try outcome.seal?.get() }, throws: disabledByEIO)
            #expect(store.durableRecordCount == durableBefore)
            #expect(fs.fired("syncMapped") == 1)
            #expect(performing: { try store.close() }, throws: disabledByEIO)
        }
    }

    @Test func failedSyncDisablesWritesUntilReopen() throws {
        try withStore { _, path in
            let fs = FaultyFileSystem()
            var options = Store.Options()
            options.fileSystem = fs
            let store = try Store(path: path, options: options)
            try store.append(testEntry(0))
            fs.fail("syncMapped", errno: EIO, times: 1)
            #expect {
                try store.append(testEntry(1))
            } throws: { error in
                guard case SteleError.writesDisabled(let cause) = error else { return false }
                return cause.errno == EIO && cause.operation == "syncMapped"
            }
            // The fault is gone, but the store does not pretend: writes stay refused.
            #expect {
                try store.append(testEntry(2))
            } throws: { error in
                guard case SteleError.writesDisabled(let cause) = error else { return false }
                return cause.errno == EIO && cause.operation == "syncMapped"
            }
            #expect {
                try store.sync()
            } throws: { error in
                guard case SteleError.writesDisabled(let cause) = error else { return false }
                return cause.errno == EIO && cause.operation == "syncMapped"
            }
            #expect(try store.stats().writesDisabled?.errno == EIO)
            #expect(try store.record(at: firstRecord).key == Array("k0".utf8))
            #expect {
                try store.close()
            } throws: { error in
                guard case SteleError.writesDisabled(let cause) = error else { return false }
                return cause.errno == EIO && cause.operation == "syncMapped"
            }
            let reopened = try Store(path: path)
            #expect(reopened.recordCount >= 1)
            try reopened.append(testEntry(9))
            try reopened.close()
        }
    }

    @Test func segmentMadeReadOnlyUnderneathIsAClearError() throws {
        try withStore { _, path in
            let fs = FaultyFileSystem()
            fs.fail("open-rw", path: "000000000001.seg", errno: EACCES)
            var options = Store.Options()
            options.fileSystem = fs
            #expect {
                try Store(path: path, options: options)
            } throws: { error in
                guard case SteleError.io(let io) = error else { return false }
                return io.errno == EACCES && io.path == segmentPath(path, 1) && io.operation == "open"
            }
            // The lock was released: a normal open works.
            try Store(path: path).close()
        }
    }
}
