import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What one engine did in one durability mode.
struct Measurement {
    let engine: String
    let durability: Durability
    let records: Int
    let payloadBytesPerRecord: Int
    /// From the first batch to the end of `finish()` (final sync and close included).
    let writeSeconds: Double
    /// The final sync and close alone.
    let finishSeconds: Double
    /// Each batch call's duration, sorted.
    let batchSeconds: [Double]
    let reads: Int
    let readSeconds: Double
    /// Allocated blocks under the store directory after the write pass (sparse or preallocated
    /// files count for what they occupy, not their length).
    let bytesOnDisk: Int

    var recordsPerSecond: Double { Double(records) / writeSeconds }
    /// User bytes (key and value) written per second, in MB (10^6 bytes).
    var megabytesPerSecond: Double { recordsPerSecond * Double(payloadBytesPerRecord) / 1e6 }
    var readsPerSecond: Double { Double(reads) / readSeconds }
    var commitP50Seconds: Double { percentile(batchSeconds, 0.50) }
    var commitP99Seconds: Double { percentile(batchSeconds, 0.99) }
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
    defer { removeTree(directory) }
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
    return Measurement(engine: engine.name, durability: durability, records: workload.records,
                       payloadBytesPerRecord: workload.payloadBytesPerRecord,
                       writeSeconds: (end - start).seconds, finishSeconds: (end - finishStart).seconds,
                       batchSeconds: batchSeconds.sorted(), reads: workload.readOrder.count,
                       readSeconds: (readEnd - readStart).seconds, bytesOnDisk: bytesOnDisk)
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
