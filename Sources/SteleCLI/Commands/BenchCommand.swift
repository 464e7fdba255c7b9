import ArgumentParser
import Foundation
import Stele
import SteleNative

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure append throughput on this disk through the full write path.",
        discussion: """
        Creates a fresh store in DIR (which must not exist or be an empty directory: bench never \
        writes into an existing store or other files) and appends --records records with 16-byte \
        sequential keys and --value-size bytes of random (incompressible) values, in batches of \
        --batch, with every step a real append takes: frame encoding, XXH3, SHA-256 leaf hashes, \
        the Merkle tree and its tiles, the key index, segment seals, and the syncs --sync asks for \
        (batch: every batch durable before the next; none: one sync at the end, by close). The \
        values are generated before each batch's clock starts. Prints records/s, MB/s (keys and \
        values), p50/p99 commit latency (one append call), the final sync and close, and the bytes \
        the store occupies. The store is removed afterwards unless --keep is given (a DIR that \
        existed, empty, is left empty).
        """)

    @Argument(help: "Where to create the benchmark store (must not exist, or be an empty directory).")
    var dir: String

    @Option(help: "Records to append.")
    var records: Int = 100_000

    @Option(help: "Bytes of random value per record.")
    var valueSize: Int = 100

    @Option(help: "Records per append call.")
    var batch: Int = 1000

    @OptionGroup var commitPolicy: CommitPolicyOption

    @Flag(help: "Leave the store in DIR instead of removing it.")
    var keep = false

    @Flag(help: "An encrypted store (a master key made for the run and never written): what encryption costs.")
    var encrypted = false

    @Flag(help: "Print one JSON object.")
    var json = false

    static let keySize = 16
    static let namespace = "bench"

    func validate() throws {
        guard records >= 1, batch >= 1 else { throw ValidationError("--records and --batch must be at least 1") }
        let largest = Limits.maxValueLength(segmentSize: Limits.defaultSegmentSize)
        guard (0 ... largest).contains(valueSize) else { throw ValidationError("--value-size must be between 0 and \(largest)") }
        _ = try commitPolicy.policy()
    }

    func run() throws {
        let policy = try commitPolicy.policy()
        let existed = FileManager.default.fileExists(atPath: dir)
        // Refuses anything but a missing or empty directory (SteleError.alreadyExists, exit 1).
        let master = encrypted ? try EncryptionKey.generate() : nil
        try Store.create(at: dir, encryptionKey: master)
        defer { if !keep { Self.removeStore(dir, keepDirectory: existed) } }

        let timings = try withStore(at: dir, .writable(policy), encryptionKey: master) { store in try measureAppends(to: store) }
        let closeSeconds = timings.closeSeconds
        let bytesOnDisk = Self.diskUsage(dir)
        let commitSeconds = timings.commitSeconds.sorted()

        let totalSeconds = timings.appendSeconds + closeSeconds
        let recordsPerSecond = Double(records) / totalSeconds
        let megabytesPerSecond = recordsPerSecond * Double(Self.keySize + valueSize) / 1e6
        let p50 = Self.percentile(commitSeconds, 0.50), p99 = Self.percentile(commitSeconds, 0.99)
        if json {
            print(try jsonLine(BenchJSON(
                records: records, keySize: Self.keySize, valueSize: valueSize, batch: batch, sync: commitPolicy.sync,
                seconds: totalSeconds, recordsPerSec: recordsPerSecond, mbPerSec: megabytesPerSecond, commitP50Us: p50 * 1e6,
                commitP99Us: p99 * 1e6, finalSyncAndCloseMs: closeSeconds * 1e3,
                bytesOnDisk: bytesOnDisk, kept: keep)))
        } else {
            print("""
            stele bench: \(records) records (\(Self.keySize) B sequential keys, \(valueSize) B random values), batches of \(batch), sync \(commitPolicy.sync), in \(dir)
              records/s       \(Int(recordsPerSecond.rounded()))
              MB/s            \(Self.decimal(megabytesPerSecond, 1)) (keys and values)
              commit p50      \(Self.decimal(p50 * 1e3, 3)) ms per append call
              commit p99      \(Self.decimal(p99 * 1e3, 3)) ms
              sync and close  \(Self.decimal(closeSeconds * 1e3, 2)) ms (included in records/s)
              bytes on disk   \(bytesOnDisk) (segments are preallocated)
              store           \(keep ? "kept in \(dir)" : "removed (--keep leaves it)")
            """)
        }
    }

    /// What the clock measured: each `putBatch` call, their sum, and the close.
    private struct Timings {
        var commitSeconds: [Double] = []
        var appendSeconds = 0.0
        var closeSeconds = 0.0
    }

    /// Appends `--records` records in batches, timing each `putBatch` call, then closes the store
    /// itself (withStore's close is then a no-op) so that the final sync is timed too.
    private func measureAppends(to store: Store) throws -> Timings {
        var values = RandomBytes(seed: UInt64(records) &* 0x9E37_79B9_7F4A_7C15 | 1)
        let clock = ContinuousClock()
        var timings = Timings()
        timings.commitSeconds.reserveCapacity((records + batch - 1) / batch)
        var written = 0
        // Stele's bulk-write type, refilled for each batch (only `putBatch` is timed).
        var entries = EntryBatch(reservingCapacity: min(batch, records), bytes: min(batch, records) * (Self.keySize + valueSize))
        while written < records {
            entries.removeAll()
            for index in written ..< min(records, written + batch) {
                entries.put(namespace: Self.namespace, key: Self.key(index), value: values.next(count: valueSize))
            }
            let started = clock.now
            _ = try store.putBatch(entries)
            let seconds = (clock.now - started).seconds
            timings.commitSeconds.append(seconds)
            timings.appendSeconds += seconds
            written += entries.count
        }
        let closeStarted = clock.now
        try store.close()  // the final sync under --sync none; a no-op sync under batch
        timings.closeSeconds = (clock.now - closeStarted).seconds
        return timings
    }

    /// Record `index`'s key: zero-padded decimal, so keys sort in the order they are written.
    static func key(_ index: Int) -> [UInt8] {
        var key = [UInt8](repeating: UInt8(ascii: "0"), count: keySize)
        var remaining = index
        var position = keySize - 1
        while remaining > 0, position >= 0 {
            key[position] = UInt8(ascii: "0") + UInt8(remaining % 10)
            remaining /= 10
            position -= 1
        }
        return key
    }

    static func percentile(_ sorted: [Double], _ fraction: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let rank = Int((Double(sorted.count) * fraction).rounded(.up)) - 1
        return sorted[min(max(rank, 0), sorted.count - 1)]
    }

    static func decimal(_ value: Double, _ digits: Int) -> String {
        String(format: "%.\(digits)f", value)
    }

    /// Bytes allocated to `path` and everything under it (as `du`): preallocated segments count
    /// for what they occupy. Links are not followed (`du` does not; and a link to a directory
    /// above would never end). Not Foundation's `fileAllocatedSize`: on Linux it multiplies
    /// st_blocks by the block size, eight times too much on ext4.
    static func diskUsage(_ path: String) -> Int {
        guard let status = try? Paths.status(path, followingLinks: false) else { return 0 }
        var total = status.allocatedBytes
        if status.isDirectory, let children = try? FileManager.default.contentsOfDirectory(atPath: path) {
            for child in children { total += diskUsage(path + "/" + child) }
        }
        return total
    }

    /// Removes the benchmark store: all of `path`, or only its contents when the directory was
    /// there before. Sealed segments are read-only, so write permission is restored first.
    static func removeStore(_ path: String, keepDirectory: Bool) {
        let files = FileManager.default
        if let children = files.enumerator(atPath: path) {
            for case let child as String in children {
                try? files.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path + "/" + child)
            }
        }
        if keepDirectory {
            for child in (try? files.contentsOfDirectory(atPath: path)) ?? [] {
                try? files.removeItem(atPath: path + "/" + child)
            }
        } else {
            try? files.removeItem(atPath: path)
        }
    }
}

/// The measurement as one JSON object; timings and rates unrounded (the text output rounds).
private struct BenchJSON: Encodable {
    let records: Int
    let keySize: Int
    let valueSize: Int
    let batch: Int
    let sync: String
    let seconds: Double
    let recordsPerSec: Double
    let mbPerSec: Double
    let commitP50Us: Double
    let commitP99Us: Double
    let finalSyncAndCloseMs: Double
    let bytesOnDisk: Int
    let kept: Bool

}

/// Random, incompressible bytes from a seeded SplitMix64: values must not shrink under LZ4, and
/// need not be cryptographically random.
struct RandomBytes {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func nextWord() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func next(count: Int) -> [UInt8] {
        var generator = self
        defer { self = generator }
        return ByteWriter.makeArray(count: count) { bytes in
            var offset = 0
            // Whole words first (64 KiB values are made in microseconds, not a byte at a time).
            while offset + 8 <= count {
                bytes.put(generator.nextWord(), at: offset)
                offset += 8
            }
            var tail = generator.nextWord()
            while offset < count {
                bytes.put(UInt8(truncatingIfNeeded: tail), at: offset)
                tail >>= 8
                offset += 1
            }
        }
    }
}

extension Duration {
    /// The duration in seconds, as a floating-point number.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
