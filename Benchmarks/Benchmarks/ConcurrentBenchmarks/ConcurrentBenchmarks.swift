// Many writers at once, each putting single 100-byte records, every put durable before it
// returns (`.everyBatch`): the request pattern of a server embedding Stele (issue 18).
//
//   put 100B threads=64 sync=everyBatch   64 threads, blocking `store.put`
//   put 100B tasks=1024 sync=everyBatch   1,024 concurrent tasks, `try await store.put`
//
// One iteration writes `benchmark.scaledIterations.count` (1,000 with `.kilo`) records, split
// evenly over the writers, so the throughput column reads in thousands of records per second.
// Keys and values are made before the measured region; the store is created in `setup` (a fresh
// one per run, under /tmp) and closed in `teardown`. The peers (LevelDB, RocksDB, SQLite, LMDB)
// run the same pattern in tools/bench-peers.sh, which is where the ratios come from.
//
// Run from /work/main/Benchmarks:
//   swift package --allow-writing-to-package-directory benchmark --target ConcurrentBenchmarks

import Benchmark
import Foundation
import Stele

let benchmarks: @Sendable () -> Void = {
    let configuration = Benchmark.Configuration(metrics: [.wallClock, .throughput], warmupIterations: 1,
                                                scalingFactor: .kilo, maxDuration: .seconds(5), maxIterations: 200)
    let fixture = PutFixture()

    Benchmark("put 100B threads=64 sync=everyBatch", configuration: configuration) { benchmark in
        let store = fixture.store!
        let writers = 64
        let perWriter = max(1, benchmark.scaledIterations.count / writers)
        let base = fixture.take(writers * perWriter)
        let done = DispatchGroup()
        benchmark.startMeasurement()
        for writer in 0 ..< writers {
            done.enter()
            Thread.detachNewThread {
                for i in 0 ..< perWriter {
                    let n = base + writer * perWriter + i
                    blackHole(try? store.put(namespace: "bench", key: fixture.key(n), value: fixture.value(n)))
                }
                done.leave()
            }
        }
        done.wait()
        benchmark.stopMeasurement()
    } setup: {
        try fixture.setUp()
    } teardown: {
        fixture.tearDown()
    }

    Benchmark("put 100B tasks=1024 sync=everyBatch", configuration: configuration) { benchmark in
        let store = fixture.store!
        let tasks = 1024
        let perTask = max(1, benchmark.scaledIterations.count / tasks)
        let base = fixture.take(tasks * perTask)
        benchmark.startMeasurement()
        await withTaskGroup(of: Void.self) { group in
            for task in 0 ..< tasks {
                group.addTask {
                    for i in 0 ..< perTask {
                        let n = base + task * perTask + i
                        blackHole(try? await store.put(namespace: "bench", key: fixture.key(n), value: fixture.value(n)))
                    }
                }
            }
        }
        benchmark.stopMeasurement()
    } setup: {
        try fixture.setUp()
    } teardown: {
        fixture.tearDown()
    }
}

/// A fresh store per run, and a pool of keys and values handed out in turn.
final class PutFixture: @unchecked Sendable {
    private(set) var store: Store?
    private var directory: String?
    private let keys: [[UInt8]]
    private let values: [[UInt8]]
    private let cursor = NSLock()
    private var next = 0

    init() {
        var generator = SystemRandomNumberGenerator()
        let count = 1 << 16
        keys = (0 ..< count).map { n in Array(String(format: "%016d", n).utf8) }
        values = (0 ..< count).map { _ in (0 ..< 100).map { _ in UInt8.random(in: 0 ... 255, using: &generator) } }
    }

    func key(_ n: Int) -> [UInt8] { keys[n % keys.count] }
    func value(_ n: Int) -> [UInt8] { values[n % values.count] }

    /// The first index of `count` records not handed out before (the pool wraps around).
    func take(_ count: Int) -> Int {
        cursor.lock()
        defer { cursor.unlock() }
        let first = next
        next += count
        return first
    }

    func setUp() throws {
        tearDown()
        let path = NSTemporaryDirectory() + "stele-concurrent-" + UUID().uuidString
        try Store.create(at: path)
        store = try Store(path: path, options: .init(commitPolicy: .everyBatch))
        directory = path
    }

    func tearDown() {
        try? store?.close()
        store = nil
        if let directory { try? FileManager.default.removeItem(atPath: directory) }
        directory = nil
    }
}
