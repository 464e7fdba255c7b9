import Foundation
import Glibc
import MetricsTestKit
import Testing
@testable import Stele
import SteleMirror

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

    /// Each mirror pass reports the lag it leaves: records and seconds not yet off-host, bytes
    /// uploaded; a pass that throws is counted.
    @Test func mirrorPassesReportTheirLag() throws {
        try withStore { dir, path in
            let store = try Store(path: path)
            try store.append(contentsOf: (0 ..< 5).map { testEntry($0) })
            try store.seal()
            try store.append(contentsOf: (5 ..< 8).map { testEntry($0) })  // not sealed: not off-host
            let metrics = TestMetrics()
            var options = Mirror.Options()
            options.metricsFactory = metrics
            let report = try Mirror(storePath: path, target: DirectoryTarget(root: dir.child("copy")), options: options).runOnce()
            let store_ = [("store", path)]
            #expect(report.lagRecords == 3)
            #expect(try metrics.expectGauge("stele_mirror_lag_records", store_).lastValue == 3)
            #expect(try metrics.expectGauge("stele_mirror_lag_seconds", store_).lastValue ?? -1 >= 0)
            #expect(try metrics.expectCounter("stele_mirror_bytes_uploaded_total", store_).totalValue == Int64(report.bytesUploaded))
            #expect(report.bytesUploaded > 0)
            try store.close()

            let failing = Mirror(storePath: dir.child("no-such-store"), target: DirectoryTarget(root: dir.child("copy2")), options: options)
            #expect(throws: SteleError.self) { try failing.runOnce() }
            #expect(try metrics.expectCounter("stele_mirror_failed_passes_total", [("store", dir.child("no-such-store"))]).totalValue == 1)
        }
    }
}
