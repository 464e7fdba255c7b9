import CoreMetrics

/// What each mirror pass reports through swift-metrics (``Mirror/Options/metricsFactory``, else
/// the process's bootstrapped backend), with the dimension `store` (the store's path):
///
/// | name | kind | what |
/// |---|---|---|
/// | `stele_mirror_lag_records` | gauge | records not yet off-host after the pass (the recovery point) |
/// | `stele_mirror_lag_seconds` | gauge | age of the oldest record not yet off-host (0 when none waits) |
/// | `stele_mirror_tiles_waiting` | gauge | tiles of off-host records still to be sent (``Mirror/Options/tilesPerPass``) |
/// | `stele_mirror_bytes_uploaded_total` | counter | bytes uploaded |
/// | `stele_mirror_failed_passes_total` | counter | passes that threw |
struct MirrorMetrics {
    let lagRecords: Gauge
    let lagSeconds: Gauge
    let tilesWaiting: Gauge
    let bytesUploaded: Counter
    let failedPasses: Counter

    init(store: String, factory: any MetricsFactory) {
        let dimensions = [("store", store)]
        lagRecords = Gauge(label: "stele_mirror_lag_records", dimensions: dimensions, factory: factory)
        lagSeconds = Gauge(label: "stele_mirror_lag_seconds", dimensions: dimensions, factory: factory)
        tilesWaiting = Gauge(label: "stele_mirror_tiles_waiting", dimensions: dimensions, factory: factory)
        bytesUploaded = Counter(label: "stele_mirror_bytes_uploaded_total", dimensions: dimensions, factory: factory)
        failedPasses = Counter(label: "stele_mirror_failed_passes_total", dimensions: dimensions, factory: factory)
    }

    func record(_ report: Mirror.Report) {
        lagRecords.record(Int64(clamping: report.lagRecords))
        lagSeconds.record(report.lagSeconds ?? 0)
        tilesWaiting.record(report.tilesWaiting)
        bytesUploaded.increment(by: Int64(report.bytesUploaded))
    }
}
