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
        try withStore(at: directory.path, .readOnly) { store in
            let s = try store.stats()
            let recovery = store.recovery
            if json {
                var fields = [
                    "\"store\":\"\(store.config.storeIDHex)\"", "\"origin\":\(jsonString(store.config.origin))",
                    "\"records\":\(s.records)", "\"sealed_segments\":\(s.sealedSegments)",
                    "\"active_segment\":\(s.activeSegment.map(String.init) ?? "null")",
                    "\"active_bytes_used\":\(s.activeBytesUsed)", "\"active_capacity\":\(s.activeCapacity)",
                    "\"bytes_on_disk\":\(s.bytesOnDisk)", "\"segment_size\":\(store.config.segmentSize)",
                    "\"tree_size\":\(s.treeSize)", "\"root\":\"\(s.treeRoot.hex)\"", "\"last_seal\":\"\(s.lastSealHash.hex)\"",
                    "\"last_time\":\"\(rfc3339(nanoseconds: s.lastTimestamp))\"",
                ]
                if let torn = recovery.tornTail {
                    fields.append("\"torn_tail\":{\"file\":\(jsonString(torn.file)),\"offset\":\(torn.offset),\"bytes\":\(torn.bytes)}")
                }
                print("{" + fields.joined(separator: ",") + "}")
            } else {
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
                if let torn = recovery.tornTail {
                    print("torn tail      \(torn.bytes) bytes at \(torn.file):\(torn.offset) (not repaired: read-only; a writer's open will discard it)")
                }
            }
        }
    }
}
