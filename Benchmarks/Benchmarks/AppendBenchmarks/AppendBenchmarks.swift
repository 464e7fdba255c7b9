// Append throughput of Stele: random (incompressible) values of 100 B, 1 KiB and 64 KiB,
// 16-byte random keys, in batches of 1 and 1000 under each commit policy, written into a fresh store (default 64 MiB segments, so seals happen along the way) in a
// temporary directory under /tmp.
//
// Every benchmark uses `scalingFactor: .kilo`, so one iteration appends
// `benchmark.scaledIterations.count` (1000) records: one `append(contentsOf:)` of 1000 entries
// for `batch=1000`, or 1000 calls of one entry each for `batch=1`. The throughput column
// ("(K) *") therefore reads in thousands of records per second, and the scaled metrics
// (wall clock, malloc count) are per record. Entry arrays (and, for the `EntryBatch` variants,
// the batches) are built outside the measured region; the store is opened there too and closed (with its final sync) in `teardown`.
//
// Run from /work/main/Benchmarks:
//   swift package --allow-writing-to-package-directory benchmark

import Benchmark
import Foundation
import Stele

#if canImport(Glibc)
import Glibc
#endif

let benchmarks: @Sendable () -> Void = {
    let keySize = 16

    /// Builds the suite's common configuration.
    func configuration(maxDuration: Duration = .seconds(3), maxIterations: Int = 2_000) -> Benchmark.Configuration {
        .init(
            metrics: [.wallClock, .throughput, .mallocCountTotal],
            warmupIterations: 2,
            scalingFactor: .kilo,
            maxDuration: maxDuration,
            maxIterations: maxIterations
        )
    }

    func register(valueSize: Int, batchSize: Int, policy: CommitPolicy, policyName: String, maxDuration: Duration = .seconds(3),
                  encrypted: Bool = false) {
        let fixture = AppendFixture(policy: policy, batchSize: batchSize, keySize: keySize, valueSize: valueSize, encrypted: encrypted)
        Benchmark(
            "append \(valueSize >= 1024 ? "\(valueSize / 1024)KiB" : "\(valueSize)B") batch=\(batchSize) sync=\(policyName)"
                + (encrypted ? " encrypted" : ""),
            configuration: configuration(maxDuration: maxDuration)
        ) { benchmark in
            let records = benchmark.scaledIterations.count
            precondition(records % batchSize == 0, "scaled iterations must be whole batches")
            let batches = fixture.nextBatches(records / batchSize)
            let store = fixture.store!
            benchmark.startMeasurement()
            for batch in batches {
                blackHole(try store.append(contentsOf: batch))
            }
            benchmark.stopMeasurement()
        } setup: {
            try fixture.setUp()
        } teardown: {
            fixture.tearDown()
        }
    }

    /// The same with the batches as `EntryBatch`es (one buffer per batch, `putBatch(_:)`), filled
    /// outside the measured region as the `[Entry]` arrays are.
    func registerEntryBatch(valueSize: Int, policy: CommitPolicy, policyName: String) {
        let fixture = AppendFixture(policy: policy, batchSize: 1000, keySize: keySize, valueSize: valueSize)
        Benchmark(
            "append \(valueSize >= 1024 ? "\(valueSize / 1024)KiB" : "\(valueSize)B") batch=1000 sync=\(policyName) EntryBatch",
            configuration: configuration()
        ) { benchmark in
            let records = benchmark.scaledIterations.count
            precondition(records % 1000 == 0, "scaled iterations must be whole batches")
            let batches = fixture.nextBatches(records / 1000).map { entries in
                var batch = EntryBatch(reservingCapacity: entries.count, bytes: entries.count * (keySize + valueSize + 8))
                for entry in entries { batch.put(namespace: String(decoding: entry.namespace, as: UTF8.self), key: entry.key, value: entry.value) }
                return batch
            }
            let store = fixture.store!
            benchmark.startMeasurement()
            for batch in batches {
                blackHole(try store.putBatch(batch))
            }
            benchmark.stopMeasurement()
        } setup: {
            try fixture.setUp()
        } teardown: {
            fixture.tearDown()
        }
    }

    for valueSize in [100, 1024] {
        registerEntryBatch(valueSize: valueSize, policy: .none, policyName: "none")
        registerEntryBatch(valueSize: valueSize, policy: .everyBatch, policyName: "everyBatch")
    }

    // What encryption at rest costs (issue 20): the same batches into an encrypted store.
    for valueSize in [100, 1024] {
        register(valueSize: valueSize, batchSize: 1000, policy: .none, policyName: "none", encrypted: true)
        register(valueSize: valueSize, batchSize: 1000, policy: .everyBatch, policyName: "everyBatch", encrypted: true)
    }

    /// Random `get`s of the records the pool holds (at most 64 Ki keys, all written once before
    /// the measurement): what reading costs, plain or encrypted (issue 20: the key's latest
    /// version found in the index, its frame checked, its value opened).
    func registerGet(valueSize: Int, encrypted: Bool) {
        let fixture = AppendFixture(policy: .none, batchSize: 1000, keySize: keySize, valueSize: valueSize, encrypted: encrypted)
        Benchmark(
            "get \(valueSize >= 1024 ? "\(valueSize / 1024)KiB" : "\(valueSize)B") random key" + (encrypted ? " encrypted" : ""),
            configuration: configuration(maxIterations: 1_000)
        ) { benchmark in
            let store = fixture.store!
            let keys = fixture.writtenKeys
            var probe = 0
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                probe = (probe &+ 7_919) % keys.count
                blackHole(try store.get(namespace: "bench", key: keys[probe]))
            }
            benchmark.stopMeasurement()
        } setup: {
            try fixture.setUp()
            try fixture.writePool()
        } teardown: {
            fixture.tearDown()
        }
    }

    for valueSize in [100, 1024] {
        registerGet(valueSize: valueSize, encrypted: false)
        registerGet(valueSize: valueSize, encrypted: true)
    }

    for valueSize in [100, 1024, 64 * 1024] {
        register(valueSize: valueSize, batchSize: 1000, policy: .none, policyName: "none")
        register(valueSize: valueSize, batchSize: 1000, policy: .interval(.milliseconds(10)), policyName: "interval(10ms)")
        register(valueSize: valueSize, batchSize: 1000, policy: .everyBatch, policyName: "everyBatch")
        register(valueSize: valueSize, batchSize: 1, policy: .none, policyName: "none")
        register(valueSize: valueSize, batchSize: 1, policy: .interval(.milliseconds(10)), policyName: "interval(10ms)")
        register(valueSize: valueSize, batchSize: 1, policy: .everyBatch, policyName: "everyBatch", maxDuration: .seconds(5))
    }
}

/// A fresh store per benchmark run plus a pool of pre-built batches, handed out in turn.
///
/// The pool holds up to 64 Ki distinct records and at most about 64 MB of values (at least one
/// batch); the store sees them again after that, which does not matter for an append-only log
/// (and random values do not compress, so LZ4 is tried and given up as it would be for them).
final class AppendFixture: @unchecked Sendable {
    let policy: CommitPolicy
    let batchSize: Int
    let keySize: Int
    let valueSize: Int
    /// An encrypted store, under a master key made for the run.
    let encrypted: Bool
    private(set) var store: Store?
    private var directory: String?
    private var pool: [[Entry]] = []
    private var cursor = 0

    private var poolRecords: Int {
        max(batchSize, min(64 * 1024, (64 << 20) / valueSize) / batchSize * batchSize)
    }

    init(policy: CommitPolicy, batchSize: Int, keySize: Int, valueSize: Int, encrypted: Bool = false) {
        self.encrypted = encrypted
        self.policy = policy
        self.batchSize = batchSize
        self.keySize = keySize
        self.valueSize = valueSize
    }

    func setUp() throws {
        tearDown()
        if pool.isEmpty {
            var generator = SystemRandomNumberGenerator()
            func randomBytes(_ count: Int) -> [UInt8] {
                var bytes = [UInt8](repeating: 0, count: count)
                for i in stride(from: 0, to: count, by: 8) {
                    let word = generator.next()
                    for j in 0 ..< min(8, count - i) { bytes[i + j] = UInt8(truncatingIfNeeded: word >> (8 * j)) }
                }
                return bytes
            }
            pool = (0 ..< poolRecords / batchSize).map { _ in
                (0 ..< batchSize).map { _ in
                    Entry(namespace: "bench", key: randomBytes(keySize), value: randomBytes(valueSize))
                }
            }
        }
        var template = Array("/tmp/stele-bench-XXXXXX".utf8CString)
        let path: String = try template.withUnsafeMutableBufferPointer { buffer in
            guard let result = mkdtemp(buffer.baseAddress!) else {
                throw BenchmarkSetupError.mkdtemp(errno: errno)
            }
            return String(cString: result)
        }
        directory = path
        let master = encrypted ? try EncryptionKey.generate() : nil
        try Store.create(at: path, encryptionKey: master)
        var options = Store.Options(commitPolicy: policy)
        options.encryptionKey = master
        store = try Store(path: path, options: options)
        cursor = 0
    }

    /// The next `count` batches of the pool (array copies share storage: no record is copied).
    func nextBatches(_ count: Int) -> ArraySlice<[Entry]> {
        if cursor + count > pool.count { cursor = 0 }
        defer { cursor += count }
        return pool[cursor ..< cursor + count]
    }

    /// Appends every batch of the pool once (for read benchmarks), then seals.
    func writePool() throws {
        guard let store else { return }
        for batch in pool { try store.append(contentsOf: batch) }
        try store.seal()
        writtenKeys = pool.flatMap { $0.map(\.key) }
    }

    /// The keys ``writePool()`` wrote.
    private(set) var writtenKeys: [[UInt8]] = []

    func tearDown() {
        if let store {
            try? store.close()
            self.store = nil
        }
        if let directory {
            try? FileManager.default.removeItem(atPath: directory)
            self.directory = nil
        }
    }
}

enum BenchmarkSetupError: Error {
    case mkdtemp(errno: Int32)
}
