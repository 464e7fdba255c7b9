import Foundation
import Glibc
import MetricsTestKit
import Testing
@testable import Stele

/// The metrics a store emits (`Store.Options.metricsFactory`), read from a test backend.
@Suite struct MetricsTests {
    @Test func appendsCommitsSealsAndFailuresAreCounted() throws {
        try withStore { _, path in
            let metrics = TestMetrics()
            let (store, fs) = try openOnFaultyFileSystem(path) { $0.metricsFactory = metrics }
            defer { try? store.close() }
            let store_ = [("store", path)]

            let entries = (0 ..< 10).map { testEntry($0, valueLength: 100) }
            try store.append(contentsOf: entries)
            #expect(try metrics.expectCounter("stele_records_appended_total", store_).totalValue == 10)
            let frames = entries.reduce(0) { $0 + Frame.length(namespace: $1.namespace.count, key: $1.key.count, stored: $1.value.count) }
            #expect(try metrics.expectCounter("stele_bytes_appended_total", store_).totalValue == Int64(frames))
            // Durable every batch: one sync, which made the ten records durable.
            #expect(try metrics.expectTimer("stele_commit_duration", store_).values.count == 1)
            #expect(try metrics.expectRecorder("stele_commit_group_records", store_).lastValue == 10)

            try store.seal()
            #expect(try metrics.expectTimer("stele_seal_duration", store_).values.count == 1)
            #expect(try metrics.expectGauge("stele_index_keys", store_).lastValue == 10)

            fs.fail("syncMapped", errno: EIO, times: 1)
            #expect(throws: SteleError.self) { try store.append(testEntry(11)) }
            #expect(try metrics.expectCounter("stele_sync_failures_total", store_).totalValue == 1)
        }
    }
}
