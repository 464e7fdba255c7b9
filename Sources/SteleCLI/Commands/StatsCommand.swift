import ArgumentParser
import Stele

struct StatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Show a store's counters, Merkle root and chain head.",
        discussion: "Opens the store read-only; sealed segments are checked cheaply (header, footer, chain link) and the active one fully.")

    @OptionGroup var directory: StoreDirectory

    @Flag(help: "Print one JSON object.")
    var json = false

    func run() throws {
        try withStore(directory, .readOnly) { store in
            let s = try store.stats()
            if json {
                print(try jsonLine(StatsJSON(config: store.config, stats: s, tornTail: store.recovery.tornTail)))
                return
            }
            print("""
            store          \(store.config.storeIDHex)
            origin         \(store.config.origin)
            records        \(s.records)
            segments       \(s.sealedSegments) sealed, active \(s.activeSegment.map { "#\($0)" } ?? "none") (\(s.activeBytesUsed) of \(s.activeCapacity) bytes used)
            bytes on disk  \(s.bytesOnDisk)
            tree size      \(s.treeSize)
            root           \(s.treeRoot.hex)
            last seal      \(s.lastSealHash.hex)
            last write     \(rfc3339(nanoseconds: s.lastTimestamp))
            """)
            if let torn = store.recovery.tornTail {
                print("torn tail      \(torn.bytes) bytes at \(torn.file):\(torn.offset) (not repaired: read-only; a writer's open will discard it)")
            }
        }
    }
}

/// The counters as one JSON object; `active_segment` is null when there is none, `torn_tail`
/// appears only when the open found one (read-only: left for a writer to discard).
private struct StatsJSON: Encodable {
    struct TornTail: Encodable {
        let file: String
        let offset: Int
        let bytes: Int
    }

    let store: String
    let origin: String
    let records: UInt64
    let sealedSegments: Int
    let activeSegment: NullWhenAbsent<Int>
    let activeBytesUsed: Int
    let activeCapacity: Int
    let bytesOnDisk: Int
    let segmentSize: Int
    let treeSize: UInt64
    let root: String
    let lastSeal: String
    let lastTime: String
    let tornTail: TornTail?


    init(config: StoreConfig, stats: StoreStats, tornTail: RecoveryReport.TornTail?) {
        store = config.storeIDHex
        origin = config.origin
        records = stats.records
        sealedSegments = stats.sealedSegments
        activeSegment = NullWhenAbsent(stats.activeSegment)
        activeBytesUsed = stats.activeBytesUsed
        activeCapacity = stats.activeCapacity
        bytesOnDisk = stats.bytesOnDisk
        segmentSize = config.segmentSize
        treeSize = stats.treeSize
        root = stats.treeRoot.hex
        lastSeal = stats.lastSealHash.hex
        lastTime = rfc3339(nanoseconds: stats.lastTimestamp)
        self.tornTail = tornTail.map { TornTail(file: $0.file, offset: $0.offset, bytes: $0.bytes) }
    }
}
