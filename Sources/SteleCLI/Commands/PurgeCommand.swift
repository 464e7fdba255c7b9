import ArgumentParser
import Stele

struct PurgeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "purge", abstract: "Reclaim space: purge payloads of superseded or deleted versions whose locks have all expired.",
        discussion: """
        Seals the active segment first, writes a redaction record, then rewrites each affected \
        sealed segment with redaction stubs that keep every leaf hash (every proof and checkpoint \
        still verifies). Versions under a lock, a legal hold or the store minimum are left alone \
        and counted. --dry-run only reports.
        """)

    @OptionGroup var directory: StoreDirectory
    @Flag(help: "Report what would be purged; change nothing.") var dryRun = false
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        let report = try withStore(directory, .writable(.everyBatch)) { store in
            if !dryRun { try store.seal() }
            return try store.purge(dryRun: dryRun)
        }
        // A dry run counts what the real run purges after sealing the active segment first.
        let items = report.purged + (dryRun ? report.inActiveSegment : [])
        let payload = items.reduce(0) { $0 + $1.storedBytes }
        let stubs = 32 * items.count
        let (freed, added) = dryRun ? (max(0, payload - stubs), max(0, stubs - payload)) : (report.bytesReclaimed, report.bytesAdded)
        if json {
            print(try jsonLine(PurgeJSON(
                dryRun: report.dryRun, purged: items.count, payloadBytes: payload, stubBytes: stubs, bytesReclaimed: freed, bytesAdded: added,
                stillProtected: report.stillProtected, inActiveSegment: report.inActiveSegment.count,
                segmentsRewritten: report.segmentsRewritten, redactionRecords: report.redactionRecords)))
        } else {
            let size = freed > 0 || added == 0 ? "\(freed) bytes of disk \(dryRun ? "would be " : "")reclaimed"
                : "the stubs \(dryRun ? "would take" : "took") \(added) bytes more than the payloads they replace"
            print("\(dryRun ? "would purge" : "purged") \(items.count) versions (\(payload) payload bytes, each replaced by a 32-byte stub); "
                + "\(report.stillProtected) still protected; "
                + (dryRun ? "\(report.inActiveSegment.count) of them in the active segment, which purge seals first; "
                          : "\(report.segmentsRewritten) segments rewritten, ") + size)
        }
    }
}

/// What the purge did, or would do with --dry-run, as one JSON object.
private struct PurgeJSON: Encodable {
    let dryRun: Bool
    let purged: Int
    let payloadBytes: Int
    let stubBytes: Int
    let bytesReclaimed: Int
    let bytesAdded: Int
    let stillProtected: Int
    let inActiveSegment: Int
    let segmentsRewritten: Int
    /// The sequence numbers of the redaction records written (none for a dry run).
    let redactionRecords: [UInt64]

}
