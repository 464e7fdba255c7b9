import ArgumentParser
import Foundation
import Stele

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Create a new store, append realistic order records, read them back, summarise.",
        discussion: "Appends merchant order events in durable batches, seals a segment, re-reads and verifies every record it wrote, and prints what it did.")

    @Argument(help: "The store directory: must not exist, or be empty (the demo never writes into an existing store).")
    var dir: String = "demo-store"

    @Option(help: "Records to append.")
    var records: Int = 5000

    @Option(help: "Records per durable batch.")
    var batch: Int = 100

    func validate() throws {
        guard records >= 1, batch >= 1 else { throw ValidationError("--records and --batch must be at least 1") }
    }

    func run() throws {
        // The demo only ever writes into a store it creates: never into an existing one.
        if let contents = try? FileManager.default.contentsOfDirectory(atPath: dir), !contents.isEmpty {
            throw InputError(message: "\(dir) exists and is not empty: the demo only creates a new store (it never writes into an existing one)")
        }
        if FileManager.default.fileExists(atPath: dir) && (try? FileManager.default.contentsOfDirectory(atPath: dir)) == nil {
            throw InputError(message: "\(dir) exists and is not a directory")
        }
        try Store.create(at: dir, origin: "demo.stele.local/" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))
        // The summary is printed once the store is closed: a failed final sync is an error, not a summary.
        let outcome = try withStore(at: dir, .writable(.everyBatch)) { store in try exercise(store) }
        print("""
        Stele demo: created \(dir)
          appended   \(records) order events (\(outcome.payload) bytes) in batches of \(batch), each durable (msync) before the next
          rate       \(Int(Double(records) / outcome.seconds)) records/s, \(String(format: "%.1f", Double(outcome.payload) / outcome.seconds / 1e6)) MB/s
          verified   \(outcome.verified) records read back, every XXH3 checksum checked
          log        \(outcome.stats.records) records, \(outcome.stats.sealedSegments) sealed segment(s), \(outcome.stats.bytesOnDisk) bytes on disk
          merkle     tree size \(outcome.stats.treeSize), root \(outcome.stats.treeRoot.hex)
          chain      last seal \(outcome.stats.lastSealHash.hex)
          checkpoint signed (Ed25519, C2SP signed note) and verified; record #\(outcome.probe) proven included with \(outcome.proofLength) hashes: \(outcome.proven ? "ok" : "FAILED")
          sample     #\(outcome.sample.sequence) \(outcome.sample.namespaceString) \(String(decoding: outcome.sample.key, as: UTF8.self)) \(String(decoding: outcome.sample.value, as: UTF8.self))
        Try: stele read \(dir) --from \(outcome.start) --count 3 --json; stele stats \(dir)
        """)
        // A failed check is a failed verification (exit 3, as README's exit codes say), not a summary line.
        guard outcome.verified == records, outcome.proven else {
            Console.error("stele demo: FAILED: " + (outcome.verified != records ? "\(outcome.verified) of \(records) records read back"
                : "record #\(outcome.probe)'s inclusion proof does not verify against the signed checkpoint"))
            throw ExitCode(3)
        }
    }

    /// What the demo did and found, for the summary.
    private struct Outcome {
        var start: UInt64
        var payload: Int
        var seconds: Double
        var verified: Int
        var probe: UInt64
        var proofLength: Int
        var proven: Bool
        var stats: StoreStats
        var sample: Record
    }

    /// Appends the order events, reads every one back, and proves one against a signed checkpoint.
    private func exercise(_ store: Store) throws -> Outcome {
        if !store.recovery.isClean { print("recovery: \(store.recovery)") }
        let start = store.recordCount
        var generator = OrderGenerator(seed: start &+ 42)
        var written: [Entry] = []
        written.reserveCapacity(records)
        let clock = ContinuousClock()
        let began = clock.now
        var remaining = records
        while remaining > 0 {
            let n = min(batch, remaining)
            let entries = (0 ..< n).map { _ in generator.next() }
            try store.append(contentsOf: entries)
            written += entries
            remaining -= n
        }
        let appendTime = clock.now - began
        try store.seal()
        var verified = 0
        try store.forEachRecord(from: start, count: records) { record in
            let expected = written[Int(record.sequence - start)]
            guard record.namespace == expected.namespace, record.key == expected.key, record.value == expected.value else {
                Console.error("stele demo: FAILED: record \(record.sequence) read back differs from what was written")
                throw ExitCode(3)
            }
            verified += 1
        }
        // Sign a checkpoint with a throwaway key and check one record against it, as an outsider would.
        let signer = try NoteSigner.generate(name: "demo.stele.local")
        let note = try store.checkpoint(signer: signer)
        let checkpoint = try store.verify(checkpoint: note, verifier: signer.verifier).checkpoint
        let probe = start + UInt64(records / 2)
        let proof = try store.inclusionProof(index: probe, treeSize: checkpoint.treeSize)
        let proven = MerkleVerifier.verifyInclusion(leafHash: try store.leafHash(at: probe), index: probe,
                                                    treeSize: checkpoint.treeSize, proof: proof.hashes, root: checkpoint.root)
        let stats = try store.stats()
        let payload = written.reduce(0) { $0 + $1.namespace.count + $1.key.count + $1.value.count }
        let seconds = Double(appendTime.components.seconds) + Double(appendTime.components.attoseconds) / 1e18
        let sample = try store.record(at: start)
        return Outcome(start: start, payload: payload, seconds: seconds, verified: verified, probe: probe,
                       proofLength: proof.hashes.count, proven: proven, stats: stats, sample: sample)
    }
}

/// Deterministic, realistic order events for a handful of merchants.
struct OrderGenerator {
    private var state: UInt64
    private var counter: UInt64 = 0
    private static let statuses = ["created", "paid", "shipped", "delivered", "refunded"]
    private static let currencies = ["CNY", "USD", "EUR"]
    private static let products = ["tea-oolong-250g", "porcelain-cup", "silk-scarf", "mooncake-box", "bamboo-steamer", "jade-bracelet"]

    init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }

    private mutating func random(_ bound: Int) -> Int {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return Int(state % UInt64(bound))
    }

    mutating func next() -> Entry {
        counter += 1
        let merchant = 1000 + random(40)
        let order = 100_000 + random(900_000)
        let items = (0 ..< 1 + random(3)).map { _ in
            "{\"sku\":\"\(Self.products[random(Self.products.count)])\",\"qty\":\(1 + random(4)),\"price_cents\":\(199 + random(20_000))}"
        }
        let value = """
        {"order":"o-\(order)","status":"\(Self.statuses[random(Self.statuses.count)])","amount_cents":\(500 + random(200_000)),\
        "currency":"\(Self.currencies[random(Self.currencies.count)])","items":[\(items.joined(separator: ","))],"event":\(counter)}
        """
        return Entry(namespace: "merchant-\(merchant)/orders", key: "o-\(order)", value: value)
    }
}
