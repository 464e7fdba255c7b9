// Reads of a 10 M-record store: open time (with its index snapshot), random `get`, `history`
// and `scan`, and fsck throughput.
//
// Setup builds the store once per run in /tmp: 1,000,000 keys ("key-<n>") with 10 versions each,
// 100-byte values, `sync=none`, 64 MiB segments, sealed at the end so the index snapshot is
// written (about 20 s). tools/bench.sh removes it afterwards (/tmp/stele-bench-fixture-*).
//
// Run from Benchmarks/: swift package --allow-writing-to-package-directory benchmark --target IndexBenchmarks

import Benchmark
import Foundation
import Stele

let benchmarks: @Sendable () -> Void = {
    let fixture = IndexFixture()

    Benchmark("open 10M records (1M keys x 10 versions) with index snapshot, read-only",
              configuration: .init(metrics: [.wallClock, .peakMemoryResident], warmupIterations: 1, maxDuration: .seconds(20), maxIterations: 10)) { benchmark in
        for _ in benchmark.scaledIterations {
            let store = try Store(path: fixture.path, options: .init(readOnly: true))
            blackHole(store.recordCount)
            try store.close()
        }
    } setup: {
        try fixture.setUp()
    }

    Benchmark("get, random key of 1M, 10 versions each",
              configuration: .init(metrics: [.wallClock, .throughput, .mallocCountTotal], warmupIterations: 10_000,
                                   scalingFactor: .kilo, maxDuration: .seconds(5), maxIterations: 1_000)) { benchmark in
        // Random keys, built beforehand (so that building them is not measured) and walked in
        // order (so that fetching the probe itself stays cheap, as for a key from a request).
        let store = fixture.reader!
        let keys = fixture.probes
        for _ in benchmark.scaledIterations {
            blackHole(try store.get(namespace: "bench", key: keys[fixture.nextProbe()]))
        }
    } setup: {
        try fixture.setUp()
        try fixture.openReader()
    }

    Benchmark("history, random key of 1M, 10 versions each (values included)",
              configuration: .init(metrics: [.wallClock, .throughput, .mallocCountTotal], warmupIterations: 1_000,
                                   maxDuration: .seconds(5), maxIterations: 200_000)) { benchmark in
        let store = fixture.reader!
        let keys = fixture.probes
        for _ in benchmark.scaledIterations {
            blackHole(try store.history(namespace: "bench", key: keys[fixture.nextProbe()]))
        }
    } setup: {
        try fixture.setUp()
        try fixture.openReader()
    }

    Benchmark("scan, 100 keys after a random prefix of 1M keys (latest versions)",
              configuration: .init(metrics: [.wallClock, .throughput, .mallocCountTotal], warmupIterations: 100,
                                   maxDuration: .seconds(5), maxIterations: 100_000)) { benchmark in
        let store = fixture.reader!
        let keys = fixture.probes
        for _ in benchmark.scaledIterations {
            // "key-123456" -> prefix "key-123": the keys after it in byte order.
            blackHole(try store.scan(namespace: "bench", prefix: Array(keys[fixture.nextProbe()].prefix(7)), limit: 100))
        }
    } setup: {
        try fixture.setUp()
        try fixture.openReader()
    }

    Benchmark("fsck, 10M records (1M keys x 10 versions, 100 B values), warm page cache",
              configuration: .init(metrics: [.wallClock], warmupIterations: 0, maxDuration: .seconds(60), maxIterations: 3)) { benchmark in
        for _ in benchmark.scaledIterations {
            let report = try Fsck.check(path: fixture.path)
            guard report.problems.isEmpty else { throw FixtureError.fsckProblems(report.problems.count) }
            blackHole(report.records)
        }
    } setup: {
        try fixture.setUp()
    }
}

final class IndexFixture: @unchecked Sendable {
    let path = "/tmp/stele-bench-fixture-index-\(getpid())"
    let keys = 1_000_000
    private(set) var reader: Store?
    private(set) var probes: [[UInt8]] = []
    private var cursor = 0

    func nextProbe() -> Int {
        cursor = cursor + 1 == probes.count ? 0 : cursor + 1
        return cursor
    }
    private var built = false

    func setUp() throws {
        if built { return }
        try? FileManager.default.removeItem(atPath: path)
        try Store.create(at: path)
        let store = try Store(path: path, options: .init(commitPolicy: .none))
        var value = [UInt8](repeating: 7, count: 100)
        var batch: [Entry] = []
        batch.reserveCapacity(1000)
        for round in 0 ..< 10 {
            value[0] = UInt8(round)
            for k in 0 ..< keys {
                batch.append(Entry(namespace: "bench", key: Array("key-\(k)".utf8), value: value))
                if batch.count == 1000 {
                    try store.append(contentsOf: batch)
                    batch.removeAll(keepingCapacity: true)
                }
            }
        }
        try store.seal()
        try store.close()
        var random = SystemRandomNumberGenerator()
        probes = (0 ..< keys).map { _ in Array("key-\(Int.random(in: 0 ..< keys, using: &random))".utf8) }
        built = true
    }

    func openReader() throws {
        if reader == nil { reader = try Store(path: path, options: .init(readOnly: true)) }
    }
}

enum FixtureError: Error {
    case fsckProblems(Int)
}
