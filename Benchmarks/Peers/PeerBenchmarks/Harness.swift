import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What one engine did in one durability mode (one run, or the median of several).
struct Measurement {
    let engine: String
    let durability: Durability
    /// Records over the time from the first batch to the end of the final sync and close.
    let recordsPerSecond: Double
    /// User bytes (key and value) written per second, in MB (10^6 bytes).
    let megabytesPerSecond: Double
    /// Percentiles of one batch call's duration.
    let commitP50Seconds: Double
    let commitP99Seconds: Double
    /// The final sync and close alone (included in `recordsPerSecond`).
    let finishSeconds: Double
    let readsPerSecond: Double
    /// Allocated blocks under the store directory after the write pass (sparse or preallocated
    /// files count for what they occupy, not their length).
    let bytesOnDisk: Int
    /// Each run's records/s and reads/s, in the order measured (one entry for a single run).
    let recordsPerSecondByRun: [Double]
    let readsPerSecondByRun: [Double]

    /// How many runs this row summarises.
    var runs: Int { recordsPerSecondByRun.count }

    /// Each figure's median over `runs` of the same engine and mode (figures taken separately:
    /// the median reads/s need not come from the run with the median records/s).
    static func median(_ runs: [Measurement]) -> Measurement? {
        guard let first = runs.first else { return nil }
        func middle(_ figure: (Measurement) -> Double) -> Double {
            let sorted = runs.map(figure).sorted()
            return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        }
        return Measurement(engine: first.engine, durability: first.durability,
                           recordsPerSecond: middle(\.recordsPerSecond), megabytesPerSecond: middle(\.megabytesPerSecond),
                           commitP50Seconds: middle(\.commitP50Seconds), commitP99Seconds: middle(\.commitP99Seconds),
                           finishSeconds: middle(\.finishSeconds), readsPerSecond: middle(\.readsPerSecond),
                           bytesOnDisk: Int(middle { Double($0.bytesOnDisk) }),
                           recordsPerSecondByRun: runs.flatMap(\.recordsPerSecondByRun),
                           readsPerSecondByRun: runs.flatMap(\.readsPerSecondByRun))
    }
}

/// Nearest-rank percentile of sorted values (0 for none).
func percentile(_ sorted: [Double], _ fraction: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    let rank = Int((Double(sorted.count) * fraction).rounded(.up)) - 1
    return sorted[min(max(rank, 0), sorted.count - 1)]
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}

/// Runs the write pass, then the read pass, of `engine` in a fresh directory under `parent`, and
/// removes the directory afterwards.
func measure<E: Engine>(_ engine: E, _ durability: Durability, _ workload: Workload, under parent: String) throws -> Measurement {
    let directory = parent + "/" + engine.name.lowercased() + "-" + durability.jsonName
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
    defer {
        removeTree(directory)
        settle()
    }
    let clock = ContinuousClock()

    var writer = try engine.openWriter(directory: directory, durability: durability, workload: workload)
    var batchSeconds: [Double] = []
    batchSeconds.reserveCapacity(workload.batchCount)
    let start = clock.now
    for batch in 0 ..< workload.batchCount {
        let batchStart = clock.now
        try writer.writeBatch(batch, isLast: batch == workload.batchCount - 1)
        batchSeconds.append((clock.now - batchStart).seconds)
    }
    let finishStart = clock.now
    try writer.finish()
    let end = clock.now
    let bytesOnDisk = diskUsage(directory)

    var reader = try engine.openReader(directory: directory, durability: durability, workload: workload)
    var wrong = 0
    let readStart = clock.now
    for index in workload.readOrder where try !reader.read(index) { wrong += 1 }
    let readEnd = clock.now
    try reader.close()
    guard wrong == 0 else {
        throw EngineError(engine.name, "\(wrong) of \(workload.readOrder.count) reads did not return the value written")
    }
    batchSeconds.sort()
    let recordsPerSecond = Double(workload.records) / (end - start).seconds
    let readsPerSecond = Double(workload.readOrder.count) / (readEnd - readStart).seconds
    return Measurement(engine: engine.name, durability: durability, recordsPerSecond: recordsPerSecond,
                       megabytesPerSecond: recordsPerSecond * Double(workload.payloadBytesPerRecord) / 1e6,
                       commitP50Seconds: percentile(batchSeconds, 0.50), commitP99Seconds: percentile(batchSeconds, 0.99),
                       finishSeconds: (end - finishStart).seconds, readsPerSecond: readsPerSecond,
                       bytesOnDisk: bytesOnDisk, recordsPerSecondByRun: [recordsPerSecond], readsPerSecondByRun: [readsPerSecond])
}

/// Lets the disk settle before the next engine: writes back whatever is still dirty (the removed
/// store's metadata, discards) and pauses, so that one engine's leftovers do not land in the
/// next one's sync latencies.
func settle() {
    sync()
    usleep(500_000)
}

/// Bytes allocated to `path` and everything under it (as `du`), from `lstat`'s block counts.
func diskUsage(_ path: String) -> Int {
    var info = stat()
    guard lstat(path, &info) == 0 else { return 0 }
    var total = Int(info.st_blocks) * 512
    if (info.st_mode & S_IFMT) == S_IFDIR, let children = try? FileManager.default.contentsOfDirectory(atPath: path) {
        for child in children { total += diskUsage(path + "/" + child) }
    }
    return total
}

/// Removes a directory tree; sealed Stele segments are read-only, so directories are made
/// writable first where needed (a non-root user cannot unlink otherwise).
func removeTree(_ path: String) {
    if (try? FileManager.default.removeItem(atPath: path)) != nil { return }
    if let children = FileManager.default.enumerator(atPath: path) {
        for case let child as String in children { chmod(path + "/" + child, 0o755) }
    }
    chmod(path, 0o755)
    try? FileManager.default.removeItem(atPath: path)
}

/// Creates a fresh, uniquely named directory under `parent`.
func makeTemporaryDirectory(under parent: String) throws -> String {
    let trimmed = parent.count > 1 && parent.hasSuffix("/") ? String(parent.dropLast()) : parent
    var template = Array((trimmed + "/stele-peers-XXXXXX").utf8CString)
    let created = template.withUnsafeMutableBufferPointer { buffer in buffer.baseAddress.flatMap { mkdtemp($0) } }
    guard created != nil else {
        throw EngineError("harness", "cannot create a directory under \(parent): \(String(cString: strerror(errno)))")
    }
    return String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
