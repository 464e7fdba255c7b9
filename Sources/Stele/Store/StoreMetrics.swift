import CoreMetrics

/// The metrics a store emits through swift-metrics (``Store/Options/metricsFactory``, else the
/// process's bootstrapped backend; none bootstrapped: nothing is recorded). Every metric carries
/// the dimension `store` (the store's path). Names and units:
///
/// | name | kind | what |
/// |---|---|---|
/// | `stele_records_appended_total` | counter | records appended (acknowledged or not yet durable) |
/// | `stele_bytes_appended_total` | counter | bytes of frames appended to segments |
/// | `stele_commit_duration` | timer (ns) | one durable sync of the active segment (a commit group) |
/// | `stele_commit_group_records` | recorder | records one durable sync made durable |
/// | `stele_seal_duration` | timer (ns) | one seal: records and tiles synced, footer written |
/// | `stele_index_keys` | gauge | keys in the key index, at each seal |
/// | `stele_sync_failures_total` | counter | syncs or seals that failed and stopped writes |
struct StoreMetrics: Sendable {
    let recordsAppended: Counter
    let bytesAppended: Counter
    let commitDuration: CoreMetrics.Timer
    let commitGroupRecords: Recorder
    let sealDuration: CoreMetrics.Timer
    let indexKeys: Gauge
    let syncFailures: Counter

    init(store: String, factory: any MetricsFactory) {
        let dimensions = [("store", store)]
        recordsAppended = Counter(label: "stele_records_appended_total", dimensions: dimensions, factory: factory)
        bytesAppended = Counter(label: "stele_bytes_appended_total", dimensions: dimensions, factory: factory)
        commitDuration = CoreMetrics.Timer(label: "stele_commit_duration", dimensions: dimensions, factory: factory)
        commitGroupRecords = Recorder(label: "stele_commit_group_records", dimensions: dimensions, aggregate: true, factory: factory)
        sealDuration = CoreMetrics.Timer(label: "stele_seal_duration", dimensions: dimensions, factory: factory)
        indexKeys = Gauge(label: "stele_index_keys", dimensions: dimensions, factory: factory)
        syncFailures = Counter(label: "stele_sync_failures_total", dimensions: dimensions, factory: factory)
    }
}

extension Duration {
    /// Whole nanoseconds as a timer takes them (saturating).
    var timerNanoseconds: Int64 { Int64(clamping: nanoseconds) }
}
