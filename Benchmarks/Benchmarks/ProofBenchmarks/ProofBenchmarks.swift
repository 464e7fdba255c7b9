// Proof generation from a store of 10 million records (tiles on disk, warm page cache).
//
// Setup builds the store once per run in /tmp (10 M tiny records, `sync=none`, about 1 GB with
// tiles; a few seconds), so the measured part is proof generation alone. Each iteration asks
// for one proof at a random index (or random old size); `inclusionProof` includes its own check
// against the record (read, leaf hash, RFC 9162 verification), as every caller gets it.
//
// Run from Benchmarks/: swift package --allow-writing-to-package-directory benchmark --target ProofBenchmarks

import Benchmark
import Foundation
import Stele

let benchmarks: @Sendable () -> Void = {
    let fixture = ProofFixture(records: 10_000_000)
    let configuration = Benchmark.Configuration(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        warmupIterations: 1_000,
        maxDuration: .seconds(5),
        maxIterations: 100_000
    )

    Benchmark("inclusion proof, 10M leaves, random index", configuration: configuration) { benchmark in
        var random = SystemRandomNumberGenerator()
        let store = fixture.store!
        for _ in benchmark.scaledIterations {
            blackHole(try store.inclusionProof(index: UInt64.random(in: 0 ..< fixture.records, using: &random)))
        }
    } setup: {
        try fixture.setUp()
    }

    Benchmark("consistency proof, 10M leaves, random old size", configuration: configuration) { benchmark in
        var random = SystemRandomNumberGenerator()
        let store = fixture.store!
        for _ in benchmark.scaledIterations {
            blackHole(try store.consistencyProof(from: UInt64.random(in: 1 ... fixture.records, using: &random)))
        }
    } setup: {
        try fixture.setUp()
    }
}

final class ProofFixture: @unchecked Sendable {
    let records: UInt64
    private(set) var store: Store?

    init(records: UInt64) { self.records = records }

    func setUp() throws {
        if store != nil { return }
        let path = "/tmp/stele-bench-fixture-proof-\(getpid())"
        try? FileManager.default.removeItem(atPath: path)
        try Store.create(at: path)
        let writer = try Store(path: path, options: .init(commitPolicy: .none))
        var batch: [Entry] = []
        batch.reserveCapacity(10_000)
        var n: UInt64 = 0
        while n < records {
            batch.removeAll(keepingCapacity: true)
            for i in n ..< min(records, n + 10_000) {
                var key = [UInt8](repeating: 0, count: 8)
                withUnsafeBytes(of: i.littleEndian) { key = Array($0) }
                batch.append(Entry(namespace: "p", key: key, value: []))
            }
            try writer.append(contentsOf: batch)
            n += UInt64(batch.count)
        }
        try writer.close()
        // The store is left for the run's other benchmark; tools/bench.sh removes it afterwards.
        store = try Store(path: path, options: .init(readOnly: true))
    }
}
