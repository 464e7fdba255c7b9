import Foundation
import Glibc
import Testing
@testable import Stele

/// A real process crash: a child appends under `.everyBatch` and reports every acknowledged
/// sequence number; the parent SIGKILLs it at a random moment, reopens the store and checks
/// that every acknowledged record is there, byte for byte, and that recovery needed no help.
@Suite struct ProcessCrashTests {
    /// The child binary sits next to the test bundle in the build products directory.
    static var childPath: String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // Inside an .xctest bundle directory on some layouts.
        while dir.path != "/" && !FileManager.default.fileExists(atPath: dir.appendingPathComponent("stele-crash-child").path) {
            dir = dir.deletingLastPathComponent()
        }
        return dir.appendingPathComponent("stele-crash-child").path
    }

    /// Record n as the child writes it.
    static func expectedValue(_ n: UInt64) -> [UInt8] {
        Array(String(repeating: "value-\(n);", count: 300).utf8.prefix(40 + Int(n % 7) * 300))
    }

    @Test func acknowledgedRecordsSurviveSIGKILL() throws {
        let seed = ProcessInfo.processInfo.environment["STELE_CRASH_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 1 ... 1 << 40)
        let iterations = ProcessInfo.processInfo.environment["STELE_CRASH_ITERATIONS"].flatMap(Int.init) ?? 100
        print("process crash test: seed \(seed), \(iterations) iterations (STELE_CRASH_SEED / STELE_CRASH_ITERATIONS to change)")
        var random = SplitMix64(seed: seed)
        let child = Self.childPath
        #expect(FileManager.default.isExecutableFile(atPath: child), "missing \(child)")
        try withStore(segmentSize: 256 * 1024) { _, path in
            var acknowledged: Int64 = -1
            var tornTails = 0
            var verified: UInt64 = 0
            for iteration in 0 ..< iterations {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: child)
                // Small batches (one thread, frames through the mapping) and, every other kill,
                // batches of 64 or more (two threads, frames staged and written with `pwrite`).
                let batch = iteration % 2 == 0 ? 1 + random.next(below: 20) : 64 + random.next(below: 100)
                process.arguments = [path, String(batch)]
                let output = Pipe()
                process.standardOutput = output
                try process.run()
                usleep(UInt32(30_000 + random.next(below: 200_000)))
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                #expect(process.terminationReason == .uncaughtSignal, "iteration \(iteration): child exited on its own")
                let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                // Only complete lines count: a line cut by the kill was never fully reported.
                for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
                    if let n = Int64(line) { acknowledged = max(acknowledged, n) }
                }
                let store = try Store(path: path)
                if store.recovery.tornTail != nil { tornTails += 1 }
                #expect(Int64(store.recordCount) > acknowledged, "iteration \(iteration): lost acknowledged records")
                // Every record is read back every tenth kill and after the last; in between only
                // the ones written since the previous kill (so the run stays linear in records).
                let full = iteration % 10 == 9 || iteration == iterations - 1
                let from = full ? firstRecord : max(firstRecord, min(verified, store.recordCount))
                try store.forEachRecord(from: from, count: Int(store.recordCount - from)) { record in
                    #expect(record.key == Array("k\(record.sequence)".utf8))
                    #expect(record.value == Self.expectedValue(record.sequence), "record \(record.sequence)")
                }
                verified = store.recordCount
                try store.close()
            }
            print("process crash test: \(iterations) kills, \(acknowledged + 1) records acknowledged, \(tornTails) torn tails recovered")
            #expect(acknowledged > 0, "the child never acknowledged anything")
        }
    }

    /// Many writers at once, killed under load: 16 threads (blocking API) or 64 tasks (async
    /// API), each printing its acknowledgements as its calls return. After every kill each
    /// acknowledged record is in the store with its exact bytes (the key names the writer and
    /// its counter, from which the value is regenerated).
    @Test func acknowledgedRecordsOfConcurrentWritersSurviveSIGKILL() throws {
        let seed = ProcessInfo.processInfo.environment["STELE_CRASH_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 1 ... 1 << 40)
        print("concurrent process crash test: seed \(seed) (STELE_CRASH_SEED to change)")
        var random = SplitMix64(seed: seed)
        try withStore(segmentSize: 256 * 1024) { _, path in
            var acknowledgements = 0
            var highest: Int64 = -1
            for iteration in 0 ..< 16 {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: Self.childPath)
                let writers = iteration % 2 == 0 ? ["--writers", "16"] : ["--tasks", "64"]
                process.arguments = [path, String(1 + random.next(below: 4))] + writers
                let output = Pipe()
                process.standardOutput = output
                try process.run()
                usleep(UInt32(100_000 + random.next(below: 200_000)))
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                #expect(process.terminationReason == .uncaughtSignal, "iteration \(iteration): child exited on its own")
                let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                let acknowledged = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().compactMap { Int64($0) }
                acknowledgements += acknowledged.count
                highest = max(highest, acknowledged.max() ?? -1)
                let store = try Store(path: path)
                #expect(Int64(store.recordCount) > highest, "iteration \(iteration) (\(writers[0])): lost acknowledged records")
                try store.forEachRecord(from: firstRecord, count: Int(store.recordCount - firstRecord)) { record in
                    let key = String(decoding: record.key, as: UTF8.self)
                    guard let counter = key.split(separator: "-").last.flatMap({ UInt64($0) }) else {
                        Issue.record("record \(record.sequence): unexpected key \(key)")
                        return
                    }
                    #expect(record.value == Self.expectedValue(counter), "record \(record.sequence) (\(key))")
                }
                try store.close()
            }
            print("concurrent process crash test: 16 kills, \(acknowledgements) acknowledgements, \(highest + 1) records acknowledged")
            #expect(acknowledgements > 100, "the writers were hardly acknowledged: the kills proved little")
        }
    }
}

/// A small seeded generator so failures can be replayed (SplitMix64).
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func next(below bound: Int) -> Int { Int(next() % UInt64(bound)) }
}
