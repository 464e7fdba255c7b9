import Foundation
import Glibc
import Logging
import Synchronization
import Testing
@testable import Stele

/// A log backend that keeps every entry, for tests to read.
final class CapturedLog: @unchecked Sendable {
    struct Entry {
        var level: Logger.Level
        var message: String
        var metadata: Logger.Metadata
    }

    private let entries = Mutex<[Entry]>([])
    var all: [Entry] { entries.withLock { $0 } }

    /// A logger whose entries (debug and up) land here.
    var logger: Logger {
        var logger = Logger(label: "stele.test") { _ in Handler(log: self) }
        logger.logLevel = .debug
        return logger
    }

    fileprivate func append(_ entry: Entry) { entries.withLock { $0.append(entry) } }

    private struct Handler: LogHandler {
        let log: CapturedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .debug

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            log.append(Entry(level: event.level, message: event.message.description,
                             metadata: metadata.merging(event.metadata ?? [:]) { $1 }))
        }
    }
}

/// What the store tells the logger an embedding server gives it (`Store.Options.logger`).
@Suite struct LoggingTests {
    @Test func aFailedSyncIsAnErrorNamingTheCallAndTheStore() throws {
        try withStore { _, path in
            let captured = CapturedLog()
            let (store, fs) = try openOnFaultyFileSystem(path) { $0.logger = captured.logger }
            defer { try? store.close() }
            try store.append(testEntry(1))
            #expect(!captured.all.contains { $0.level >= .error }, "nothing to report yet")
            fs.fail("syncMapped", errno: EIO, times: 1)
            #expect(throws: SteleError.self) { try store.append(testEntry(2)) }
            let errors = captured.all.filter { $0.level == .error }
            #expect(errors.count == 1)
            #expect(errors.first?.message.contains("writes disabled") == true)
            #expect(errors.first?.metadata["stele.errno"] == "\(EIO)")
            #expect(errors.first?.metadata["stele.store"] == .string(path))
        }
    }

    @Test func aClockThatWentBackIsAWarning() throws {
        try withStore { _, path in
            let captured = CapturedLog()
            let clock = TestClock()
            var options = Store.Options()
            options.clock = clock
            options.logger = captured.logger
            let store = try Store(path: path, options: options)
            defer { try? store.close() }
            try store.append(testEntry(1))
            #expect(!captured.all.contains { $0.level == .warning })
            clock.now.subtract(5_000_000_000, ordering: .relaxed)  // five seconds back
            try store.append(testEntry(2))
            let warnings = captured.all.filter { $0.level == .warning }
            #expect(warnings.count == 1)
            #expect(warnings.first?.metadata["stele.behind_ns"] == "5000000000")
        }
    }

    @Test func sealsAreDebugLinesAndTilesThatFailToPersistAreErrors() throws {
        try withStore { _, path in
            let captured = CapturedLog()
            let (store, fs) = try openOnFaultyFileSystem(path) { $0.logger = captured.logger }
            defer { try? store.close() }
            #expect(captured.all.map(\.message) == ["store opened"])
            try store.append(contentsOf: (0 ..< 10).map { testEntry($0) })
            try store.seal()
            let sealed = captured.all.filter { $0.message == "segment sealed" }
            #expect(sealed.count == 1)
            #expect(sealed.first?.level == .debug && sealed.first?.metadata["stele.segment"] == "1")
            #expect(sealed.first?.metadata["stele.sequence"] == "10", "the genesis record is 0")

            try store.append(contentsOf: (10 ..< 20).map { testEntry($0) })
            fs.fail("syncFileSystem", errno: EIO, times: 1)
            try store.seal()  // stands: the tiles are derived data
            let tileErrors = captured.all.filter { $0.level == .error && $0.message.hasPrefix("tiles not durable") }
            #expect(tileErrors.count == 1)
            #expect(tileErrors.first?.metadata["stele.errno"] == "\(EIO)")
        }
    }
}
