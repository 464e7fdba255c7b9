import Foundation
import Stele

/// Runs the concurrent workload in whole rounds (every engine's threads, then Stele's tasks);
/// each row the median of its rounds.
func runConcurrent(_ arguments: Arguments, _ shape: ConcurrentShape, under directory: String) throws -> [ConcurrentMeasurement] {
    let threadWorkload = Workload(records: shape.threads * shape.putsPerThread, reads: 0, batchSize: 1, valueSize: 100,
                                  seed: 0xC0C0_57E1E)
    let taskWorkload = Workload(records: shape.tasks * shape.putsPerTask, reads: 0, batchSize: 1, valueSize: 100,
                                seed: 0x7A5C_57E1E)
    var runs: [ConcurrentMeasurement] = []
    let engines: [any ConcurrentEngine] = [SteleEngine(), SQLiteEngine(), LMDBEngine(), RocksDBEngine(), LevelDBEngine()]
    let chosen = arguments.concurrentEngines ?? arguments.engines
    for round in 1 ... arguments.rounds {
        for engine in engines where chosen.contains(engine.name.lowercased()) {
            progress("round \(round) of \(arguments.rounds): \(engine.name), \(shape.threads) threads x \(shape.putsPerThread) durable puts ...")
            runs.append(try measureThreads(engine, shape, threadWorkload, under: directory))
        }
        if chosen.contains("stele") {
            progress("round \(round) of \(arguments.rounds): Stele, \(shape.tasks) tasks x \(shape.putsPerTask) durable puts (async) ...")
            runs.append(try measureTasks(shape, taskWorkload, under: directory))
        }
    }
    var results: [ConcurrentMeasurement] = []
    for run in runs where !results.contains(where: { $0.engine == run.engine && $0.writers == run.writers }) {
        if let median = ConcurrentMeasurement.median(runs.filter { $0.engine == run.engine && $0.writers == run.writers }) {
            results.append(median)
        }
    }
    return results
}

/// The peers the issue measures the threads target against: the two whose writers share syncs.
private let groupCommitPeers: Set = ["LevelDB", "RocksDB"]

/// The issue's absolute targets for the async workload (1,024 tasks): records/s and p99.
enum TaskTarget {
    static let recordsPerSecond = 200_000.0
    static let p99Seconds = 0.020
}

/// The CI gates of the concurrent workload, on same-run ratios (see ``Gate`` for why ratios).
enum ConcurrentGate {
    /// Stele's threads over the better of LevelDB and RocksDB (target 1.5×).
    static let threads = 1.0
    /// The better peer's p99 over Stele's threads' p99 (target 1×: no worse).
    static let threadsP99 = 0.5
    /// Stele's tasks over the better peer's threads (the target, 200,000/s, is about 3.5× of
    /// what the peers managed when the issue was filed). 1×, not more: on the EPYC machine the
    /// ratio was 4.05-4.33×, on the Intel Xeon CI machine of 2026-12-06 the same code measured
    /// 1.47-1.58× (Stele's tasks 130-172 K/s there against 218-338 K/s, the peers faster). What
    /// the gate must catch, an async write that blocks a thread of the cooperative pool, drops
    /// the tasks to 8-9 K/s (0.1×).
    static let tasks = 1.0
}

/// Stele's concurrent figures against the better of LevelDB and RocksDB, per round.
func concurrentComparisons(_ results: [ConcurrentMeasurement]) -> [Comparison] {
    let peers = results.filter { groupCommitPeers.contains($0.engine) && $0.writers.jsonName == "threads" }
    guard let best = peers.max(by: { $0.recordsPerSecond < $1.recordsPerSecond }) else { return [] }
    let steleName = SteleEngine().name
    var out: [Comparison] = []
    if let threads = results.first(where: { $0.engine == steleName && $0.writers.jsonName == "threads" }) {
        out.append(Comparison(workload: "\(threads.writers.label), durable puts", jsonName: "concurrent_threads",
                              stele: threads.recordsPerSecond, bestPeer: best.engine, bestPeerValue: best.recordsPerSecond,
                              target: 1.5, minimum: ConcurrentGate.threads,
                              pairedRatio: pairedRatio(stele: threads.recordsPerSecondByRun, peers: peers.map(\.recordsPerSecondByRun))))
        // Lower is better for latency: the ratio is the peer's p99 over Stele's.
        out.append(Comparison(workload: "\(threads.writers.label), put p99 (peer p99 / Stele p99)", jsonName: "concurrent_threads_p99",
                              stele: 1 / threads.putP99Seconds, bestPeer: best.engine, bestPeerValue: 1 / best.putP99Seconds,
                              target: 1.0, minimum: ConcurrentGate.threadsP99,
                              pairedRatio: medianOf(zip(threads.p99ByRun, best.p99ByRun).map { $1 / $0 })))
    }
    if let tasks = results.first(where: { $0.engine == steleName && $0.writers.jsonName == "tasks" }) {
        out.append(Comparison(workload: "\(tasks.writers.label) (async), durable puts, against the peers' threads",
                              jsonName: "concurrent_tasks", stele: tasks.recordsPerSecond, bestPeer: best.engine,
                              bestPeerValue: best.recordsPerSecond, target: TaskTarget.recordsPerSecond / best.recordsPerSecond,
                              minimum: ConcurrentGate.tasks,
                              pairedRatio: pairedRatio(stele: tasks.recordsPerSecondByRun, peers: peers.map(\.recordsPerSecondByRun))))
    }
    return out
}

func concurrentTable(_ results: [ConcurrentMeasurement], check: Bool) -> String {
    let steleThreads = results.first { $0.engine == SteleEngine().name && $0.writers.jsonName == "threads" }
    var lines = [[cell("engine", 8, right: false), cell("writers", 13, right: false), cell("records/s", 10),
                  cell("put p50", 9), cell("put p99", 9), cell("Stele × records/s", 18)].joined(separator: "  ")]
    for row in results {
        var ratio = ""
        if row.engine != SteleEngine().name, let mine = steleThreads { ratio = String(format: "%.2f×", mine.recordsPerSecond / row.recordsPerSecond) }
        lines.append([cell(row.engine, 8, right: false), cell(row.writers.label, 13, right: false),
                      cell(formatRate(row.recordsPerSecond), 10), cell(formatSeconds(row.putP50Seconds), 9),
                      cell(formatSeconds(row.putP99Seconds), 9), cell(ratio, 18)].joined(separator: "  "))
    }
    lines.append("")
    for comparison in concurrentComparisons(results) {
        var line = String(format: "%@: Stele %.2f×, best peer %@ (target %.2f×: %@)", comparison.workload, comparison.ratio,
                          comparison.bestPeer, comparison.target, comparison.targetMet ? "met" : "not met")
        if check {
            line += String(format: "; CI gate: paired ratio %.2f× ≥ %.2f×: %@", comparison.pairedRatio, comparison.minimum,
                           comparison.gatePassed ? "pass" : "FAIL")
        }
        lines.append(line)
    }
    if let tasks = results.first(where: { $0.engine == SteleEngine().name && $0.writers.jsonName == "tasks" }) {
        lines.append(String(format: "%@ (async): %@/s (target ≥ %@/s: %@), put p99 %@ (target ≤ %@: %@)", tasks.writers.label,
                            formatRate(tasks.recordsPerSecond), formatRate(TaskTarget.recordsPerSecond),
                            tasks.recordsPerSecond >= TaskTarget.recordsPerSecond ? "met" : "not met",
                            formatSeconds(tasks.putP99Seconds), formatSeconds(TaskTarget.p99Seconds),
                            tasks.putP99Seconds <= TaskTarget.p99Seconds ? "met" : "not met"))
    }
    return lines.joined(separator: "\n")
}

func concurrentJSONObject(_ results: [ConcurrentMeasurement], shape: ConcurrentShape, rounds: Int) -> String {
    func number(_ value: Double) -> String { String(format: "%.1f", value) }
    let rows = results.map { row in
        "{\"engine\":\"\(row.engine)\",\"writers\":\"\(row.writers.jsonName)\",\"count\":\(row.writers.count),"
            + "\"records_per_sec\":\(number(row.recordsPerSecond)),\"put_p50_us\":\(number(row.putP50Seconds * 1e6)),"
            + "\"put_p99_us\":\(number(row.putP99Seconds * 1e6)),"
            + "\"records_per_sec_by_run\":[" + row.recordsPerSecondByRun.map(number).joined(separator: ",") + "]}"
    }
    let checks = concurrentComparisons(results).map { c in
        String(format: "{\"workload\":\"%@\",\"ratio\":%.3f,\"paired_ratio\":%.3f,\"best_peer\":\"%@\",\"target\":%.2f,\"target_met\":%@,\"gate_minimum\":%.2f,\"gate_passed\":%@}",
               c.jsonName, c.ratio, c.pairedRatio, c.bestPeer, c.target, c.targetMet ? "true" : "false", c.minimum,
               c.gatePassed ? "true" : "false")
    }
    return "{\"threads\":\(shape.threads),\"puts_per_thread\":\(shape.putsPerThread),\"tasks\":\(shape.tasks),"
        + "\"puts_per_task\":\(shape.putsPerTask),\"rounds\":\(rounds),\"value_size\":100,\"key_size\":16,"
        + "\"results\":[" + rows.joined(separator: ",") + "],\"comparisons\":[" + checks.joined(separator: ",") + "]}"
}

/// Stele's async API under `shape.tasks` concurrent tasks, each `try await store.put` durable
/// (`.everyBatch`) before the task's next put.
func measureTasks(_ shape: ConcurrentShape, _ workload: Workload, under parent: String) throws -> ConcurrentMeasurement {
    let directory = parent + "/stele-tasks"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
    defer {
        removeTree(directory)
        settle()
    }
    let engine = SteleEngine()
    guard let input = try engine.openConcurrent(directory: directory, workload: workload) as? SteleEngine.Concurrent else {
        throw EngineError("Stele", "unexpected store type")
    }
    let latencies = LatencyBuffer(count: shape.tasks * shape.putsPerTask)
    let outcome = Outcome()
    let finished = DispatchSemaphore(value: 0)
    let clock = ContinuousClock()
    let began = clock.now
    Task {
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for task in 0 ..< shape.tasks {
                    group.addTask {
                        for put in 0 ..< shape.putsPerTask {
                            let index = task * shape.putsPerTask + put
                            let start = clock.now
                            try await input.store.put(namespace: SteleEngine.namespace, key: input.keys[index], value: input.values[index])
                            latencies.set(index, (clock.now - start).seconds)
                        }
                    }
                }
                try await group.waitForAll()
            }
        } catch {
            outcome.fail(error)
        }
        finished.signal()
    }
    finished.wait()
    let elapsed = (clock.now - began).seconds
    try input.close()
    if let failure = outcome.failure { throw failure }
    try checkAllWritten(engine, directory: directory, workload: workload)
    let sorted = latencies.sorted()
    let rate = Double(workload.records) / elapsed
    return ConcurrentMeasurement(engine: engine.name, writers: .tasks(shape.tasks), recordsPerSecond: rate,
                                 putP50Seconds: percentile(sorted, 0.50), putP99Seconds: percentile(sorted, 0.99),
                                 recordsPerSecondByRun: [rate], p99ByRun: [percentile(sorted, 0.99)])
}

