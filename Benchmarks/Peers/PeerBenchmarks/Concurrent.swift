import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The server's request pattern (issue 18): many writers at once, each putting single records,
/// each put durable before it returns. Threads for every engine (`threads` of them, `puts` each);
/// for Stele also `tasks` concurrent Swift tasks through its async API.
///
/// A put's latency is its call's duration; records/s is all puts over the time from the start
/// (every writer released at once) to the last put's return. Record `w * puts + i` is writer
/// w's i-th put: every key distinct, the same keys and values for every engine.
struct ConcurrentShape {
    let threads: Int
    let tasks: Int
    let putsPerThread: Int
    let putsPerTask: Int
}

/// One engine's store, written by many threads at once.
protocol ConcurrentStore: AnyObject {
    /// A writer for one thread (engines whose handles are per thread make one here).
    func writer() throws -> any ConcurrentWriter
    func close() throws
}

/// One thread's writer: `put` returns once record `index` is durable.
protocol ConcurrentWriter {
    mutating func put(_ index: Int) throws
}

/// An engine that can take the concurrent workload.
protocol ConcurrentEngine {
    var name: String { get }
    /// A fresh store in the empty `directory`, every put synced (each engine's strictest
    /// setting that its writers still share: see each engine's `ConcurrentStore`).
    func openConcurrent(directory: String, workload: Workload) throws -> any ConcurrentStore
}

/// How the writers of one run were driven: OS threads, or Swift tasks (Stele's async API).
enum Writers: Equatable {
    case threads(Int)
    case tasks(Int)

    var label: String {
        switch self {
        case .threads(let count): "\(count) threads"
        case .tasks(let count): "\(count) tasks"
        }
    }

    var jsonName: String {
        switch self {
        case .threads: "threads"
        case .tasks: "tasks"
        }
    }

    var count: Int {
        switch self {
        case .threads(let count), .tasks(let count): count
        }
    }
}

/// What one engine did under one kind of writers (one run, or the median of several).
struct ConcurrentMeasurement {
    let engine: String
    let writers: Writers
    let recordsPerSecond: Double
    let putP50Seconds: Double
    let putP99Seconds: Double
    let recordsPerSecondByRun: [Double]
    let p99ByRun: [Double]

    static func median(_ runs: [ConcurrentMeasurement]) -> ConcurrentMeasurement? {
        guard let first = runs.first else { return nil }
        let middle = { (figure: (ConcurrentMeasurement) -> Double) in medianOf(runs.map(figure)) }
        return ConcurrentMeasurement(engine: first.engine, writers: first.writers,
                                     recordsPerSecond: middle(\.recordsPerSecond), putP50Seconds: middle(\.putP50Seconds),
                                     putP99Seconds: middle(\.putP99Seconds),
                                     recordsPerSecondByRun: runs.flatMap(\.recordsPerSecondByRun),
                                     p99ByRun: runs.flatMap(\.p99ByRun))
    }
}

/// The median of `values` (0 for none).
func medianOf(_ values: [Double]) -> Double { median(values) }

/// A start line for threads: each waits until all have arrived, then all go at once.
private final class StartLine: @unchecked Sendable {
    private let lock = NSCondition()
    private var arrived = 0
    private let expected: Int

    init(expected: Int) { self.expected = expected }

    func arriveAndWait() {
        lock.lock()
        arrived += 1
        if arrived == expected { lock.broadcast() }
        while arrived < expected { lock.wait() }
        lock.unlock()
    }
}

/// Runs `shape.threads` threads against `engine` in a fresh directory under `parent`.
func measureThreads(_ engine: any ConcurrentEngine, _ shape: ConcurrentShape, _ workload: Workload,
                    under parent: String) throws -> ConcurrentMeasurement {
    let directory = parent + "/" + engine.name.lowercased() + "-threads"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
    defer {
        removeTree(directory)
        settle()
    }
    let store = try engine.openConcurrent(directory: directory, workload: workload)
    let writers = try (0 ..< shape.threads).map { _ in WriterBox(try store.writer()) }
    let latencies = LatencyBuffer(count: shape.threads * shape.putsPerThread)
    let outcome = Outcome()
    let start = StartLine(expected: shape.threads + 1)
    let done = DispatchGroup()
    let clock = ContinuousClock()
    for thread in 0 ..< shape.threads {
        done.enter()
        let writer = writers[thread]
        let worker = Thread {
            start.arriveAndWait()
            do {
                for put in 0 ..< shape.putsPerThread {
                    let index = thread * shape.putsPerThread + put
                    let began = clock.now
                    try writer.writer.put(index)
                    latencies.set(index, (clock.now - began).seconds)
                }
            } catch {
                outcome.fail(error)
            }
            done.leave()
        }
        worker.stackSize = 1 << 20
        worker.start()
    }
    start.arriveAndWait()
    let began = clock.now
    done.wait()
    let elapsed = (clock.now - began).seconds
    try store.close()
    if let failure = outcome.failure { throw failure }
    try checkAllWritten(engine, directory: directory, workload: workload)
    let sorted = latencies.sorted()
    let rate = Double(shape.threads * shape.putsPerThread) / elapsed
    return ConcurrentMeasurement(engine: engine.name, writers: .threads(shape.threads), recordsPerSecond: rate,
                                 putP50Seconds: percentile(sorted, 0.50), putP99Seconds: percentile(sorted, 0.99),
                                 recordsPerSecondByRun: [rate], p99ByRun: [percentile(sorted, 0.99)])
}

/// Reopens the store the writers left and checks every record they were told was durable is
/// there with its value: a run whose puts returned without writing could not look fast.
func checkAllWritten(_ engine: any ConcurrentEngine, directory: String, workload: Workload) throws {
    var reader: any ReadSession
    switch engine {
    case let stele as SteleEngine: reader = try stele.openReader(directory: directory, durability: .everyBatch, workload: workload)
    case let leveldb as LevelDBEngine: reader = try leveldb.openReader(directory: directory, durability: .everyBatch, workload: workload)
    case let rocksdb as RocksDBEngine: reader = try rocksdb.openReader(directory: directory, durability: .everyBatch, workload: workload)
    case let sqlite as SQLiteEngine: reader = try sqlite.openReader(directory: directory, durability: .everyBatch, workload: workload)
    case let lmdb as LMDBEngine: reader = try lmdb.openReader(directory: directory, durability: .everyBatch, workload: workload)
    default: return
    }
    defer { try? reader.close() }
    var missing = 0
    for index in 0 ..< workload.records where try !reader.read(index) { missing += 1 }
    guard missing == 0 else {
        throw EngineError(engine.name, "\(missing) of \(workload.records) records acknowledged by concurrent writers are missing or wrong")
    }
}

/// One thread's writer, handed to that thread alone.
final class WriterBox: @unchecked Sendable {
    var writer: any ConcurrentWriter

    init(_ writer: any ConcurrentWriter) { self.writer = writer }
}

/// Per-put latencies written by many writers, each to its own slots.
final class LatencyBuffer: @unchecked Sendable {
    private let values: UnsafeMutableBufferPointer<Double>

    init(count: Int) { values = .allocate(capacity: count) }
    deinit { values.deallocate() }

    func set(_ index: Int, _ value: Double) { values[index] = value }
    func sorted() -> [Double] { Array(values).sorted() }
}

/// The first error any writer hit.
final class Outcome: @unchecked Sendable {
    private let lock = NSLock()
    private var first: (any Error)?

    var failure: (any Error)? {
        lock.lock()
        defer { lock.unlock() }
        return first
    }

    func fail(_ error: any Error) {
        lock.lock()
        first = first ?? error
        lock.unlock()
    }
}
