import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The one workload every engine runs: `records` records with 16-byte sequential keys and
/// `valueSize`-byte random (incompressible) values, written in batches of `batchSize`, then
/// `readOrder.count` point reads at random.
///
/// Keys and values are generated once, before any clock starts, into two flat buffers: the C
/// engines take pointers into them (their APIs copy what they keep), and Stele's batches of
/// `Entry` are built from them before its clock starts too, so no engine pays for making up its
/// input.
final class Workload {
    let records: Int
    let batchSize: Int
    let keySize = 16
    let valueSize: Int
    /// Record indices to read, drawn uniformly at random (with repetition) from `0 ..< records`.
    let readOrder: [Int]
    private let keyBytes: UnsafeMutableRawBufferPointer
    private let valueBytes: UnsafeMutableRawBufferPointer

    init(records: Int, reads: Int, batchSize: Int, valueSize: Int, seed: UInt64) {
        self.records = records
        self.batchSize = batchSize
        self.valueSize = valueSize
        keyBytes = .allocate(byteCount: records * keySize, alignment: 8)
        valueBytes = .allocate(byteCount: records * valueSize, alignment: 8)
        // Sequential keys that also sort in insertion order as bytes: zero-padded decimal,
        // "0000000000000000", "0000000000000001", ... (what an order or event number looks like).
        for index in 0 ..< records {
            var remaining = index
            for position in stride(from: keySize - 1, through: 0, by: -1) {
                keyBytes[index * keySize + position] = UInt8(ascii: "0") + UInt8(remaining % 10)
                remaining /= 10
            }
        }
        var generator = SplitMix64(seed: seed)
        let words = valueBytes.bindMemory(to: UInt64.self)
        let wholeWords = records * valueSize / 8
        for offset in 0 ..< wholeWords { words[offset] = generator.next() }
        // A value size that is not a multiple of 8 leaves a tail of bytes to fill.
        for offset in (wholeWords * 8) ..< valueBytes.count { valueBytes[offset] = UInt8(truncatingIfNeeded: generator.next()) }
        readOrder = (0 ..< reads).map { _ in Int(generator.next() % UInt64(max(records, 1))) }
    }

    deinit {
        keyBytes.deallocate()
        valueBytes.deallocate()
    }

    var batchCount: Int { (records + batchSize - 1) / batchSize }

    /// The record indices of batch `batch`.
    func recordRange(ofBatch batch: Int) -> Range<Int> {
        batch * batchSize ..< min(records, (batch + 1) * batchSize)
    }

    /// Record `index`'s key; valid as long as the workload lives.
    func key(_ index: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: keyBytes[index * keySize ..< (index + 1) * keySize])
    }

    /// Record `index`'s value; valid as long as the workload lives.
    func value(_ index: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: valueBytes[index * valueSize ..< (index + 1) * valueSize])
    }

    /// Whether `bytes` are exactly record `index`'s value: every read is checked, so that an
    /// engine that returned nothing or the wrong record could not look fast.
    func isValue(_ index: Int, _ bytes: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count == valueSize, let found = bytes.baseAddress, let values = valueBytes.baseAddress else {
            return bytes.count == valueSize && valueSize == 0
        }
        return memcmp(found, values + index * valueSize, valueSize) == 0
    }

    /// User bytes (key and value) per record, for MB/s.
    var payloadBytesPerRecord: Int { keySize + valueSize }
}

/// A small, fast, seeded generator (SplitMix64): the values must be incompressible and the same
/// on every run, not cryptographically random.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// When the written records become durable.
enum Durability: CaseIterable {
    /// Every batch is synced before the next one starts (mode a).
    case everyBatch
    /// Nothing is synced until one final sync after the last batch (mode b).
    case atEnd

    var label: String {
        switch self {
        case .everyBatch: "durable/batch"
        case .atEnd: "durable at end"
        }
    }

    var jsonName: String {
        switch self {
        case .everyBatch: "every_batch"
        case .atEnd: "at_end"
        }
    }
}

/// An engine's store opened for the write pass.
protocol WriteSession {
    /// Writes batch `batch` of the workload as one unit (a transaction, a write batch, one
    /// append call); under ``Durability/everyBatch`` it is durable when this returns.
    mutating func writeBatch(_ batch: Int, isLast: Bool) throws
    /// Makes everything durable (the final sync under ``Durability/atEnd``) and closes the store.
    mutating func finish() throws
}

/// An engine's store reopened for the read pass.
protocol ReadSession {
    /// Reads record `index` by its key; whether the value found is the one written.
    mutating func read(_ index: Int) throws -> Bool
    mutating func close() throws
}

/// One storage engine under test.
protocol Engine {
    associatedtype Writer: WriteSession
    associatedtype Reader: ReadSession
    /// The name in the table.
    var name: String { get }
    /// Creates a fresh store in the empty directory `directory`, configured for `durability`.
    func openWriter(directory: String, durability: Durability, workload: Workload) throws -> Writer
    /// Opens the store the write pass left in `directory` for reading.
    func openReader(directory: String, durability: Durability, workload: Workload) throws -> Reader
}

/// A failure of an engine's API, with the engine's own message.
struct EngineError: Error, CustomStringConvertible {
    let description: String

    init(_ engine: String, _ detail: String) { description = "\(engine): \(detail)" }
}
