import ArgumentParser
import Foundation
import Stele

struct AppendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "append",
        abstract: "Append records from a JSON Lines file.",
        discussion: """
        Each line is an object {"ns": "...", "key": "...", "value": "..."}; use "value_b64" (and \
        "key_b64") for bytes that are not text, and an optional "lock": {"mode": "compliance", \
        "until": "2027-01-31T00:00:00Z"} (or "for": "30d") to lock the version. Empty lines are \
        skipped. Prints the last sequence number appended. With --sync batch, every batch is \
        durable before the next is read. If it fails part-way it says exactly what was committed \
        (records, the last input line, the last sequence number) and how to resume without \
        duplicates: --skip-lines N skips the first N input lines.
        """)

    @OptionGroup var directory: StoreDirectory

    @Option(help: "JSON Lines input file, or - for standard input.")
    var jsonl: String

    @OptionGroup var commitPolicy: CommitPolicyOption

    @Option(help: "Records per append call.")
    var batch: Int = 1000

    @Option(help: "Skip the first N input lines (to resume after a failure).")
    var skipLines: Int = 0

    func validate() throws {
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        guard skipLines >= 0 else { throw ValidationError("--skip-lines must be 0 or more") }
        _ = try commitPolicy.policy()
    }

    /// What went in so far: each batch appended, and the input line of every entry handed to
    /// the store or pending for it, in order (record k of this run came from line `lines[k]`).
    private struct Progress {
        var batches: [ClosedRange<UInt64>] = []
        var lines: [Int] = []
    }

    func run() throws {
        let policy = try commitPolicy.policy()
        let reader = try LineReader(path: jsonl)
        let last = try withStore(directory, .writable(policy)) { store in try append(from: reader, to: store) }
        if let last { print(last) } else { Console.error("stele: no records in input") }
    }

    /// Appends the input in batches of `--batch`; returns the last sequence number appended (nil
    /// when the input held no record). After a failure it says on stderr exactly what is in the
    /// store and how to resume, then throws the error, which keeps its exit code.
    private func append(from reader: LineReader, to store: Store) throws -> UInt64? {
        let before = store.recordCount
        var pending: [Entry] = []
        var locks: [RetentionLock?] = []
        var progress = Progress()
        var lineNumber = 0
        do {
            while let line = try reader.nextLine() {
                lineNumber += 1
                if lineNumber <= skipLines { continue }
                if line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") || $0 == UInt8(ascii: "\r") }) { continue }
                let (entry, lock) = try Self.parse(line, lineNumber: lineNumber)
                pending.append(entry)
                locks.append(lock)
                progress.lines.append(lineNumber)
                if pending.count >= batch {
                    try flush(store, &pending, &locks, &progress)
                }
            }
            if !pending.isEmpty { try flush(store, &pending, &locks, &progress) }
            // Closed here, not left to withStore: a failed final sync is reported with what was committed.
            try store.close()
        } catch {
            Console.error(committed(store, before: before, progress))
            throw error
        }
        return progress.batches.last?.upperBound
    }

    private func flush(_ store: Store, _ pending: inout [Entry], _ locks: inout [RetentionLock?], _ progress: inout Progress) throws {
        let receipt = try store.putBatch(pending, locks: locks)
        progress.batches.append(receipt.sequences)
        pending.removeAll(keepingCapacity: true)
        locks.removeAll(keepingCapacity: true)
    }

    /// Exactly what is in the store after a failure, and how to resume. What a batch cut short
    /// left (a prefix of it, each record whole) counts; so do records whose sync failed, which the
    /// page cache still holds and the next open finds: what counts is what a reopen reads back,
    /// and the records it reads that no sync covered are named as such.
    private func committed(_ store: Store, before: UInt64, _ progress: Progress) -> String {
        _ = try? store.sync()
        let durable = store.durableRecordCount
        try? store.close()
        let present = (try? withStore(directory, .readOnly) { $0.recordCount }) ?? durable
        let count = Int(min(UInt64(progress.lines.count), present - min(present, before)))
        guard count > 0 else {
            return "committed: nothing (the store is as it was); run the same command again once the cause is fixed"
        }
        let lastLine = progress.lines[count - 1]
        var text = "committed: \(count) records from input lines \(skipLines + 1)-\(lastLine), the last at sequence \(before + UInt64(count) - 1)"
        text += durable >= present ? ", durable" : "; the last \(present - durable) of them were not made durable (a sync failed): a reopen finds them, a power cut may not"
        return text + "; nothing after line \(lastLine) was written\n"
            + "resume with: stele append \(directory.path) --jsonl \(jsonl) --sync \(commitPolicy.sync) --skip-lines \(lastLine)"
    }

    /// One input line, parsed by the library (``ImportLine``) so that the fuzz target runs the same code.
    static func parse(_ bytes: [UInt8], lineNumber: Int) throws -> (Entry, RetentionLock?) {
        do throws(SteleError) {
            let line = try ImportLine(parsing: bytes, lineNumber: lineNumber, now: Int64(Date().timeIntervalSince1970 * 1e9))
            return (line.entry, line.lock)
        } catch {
            throw InputError(message: error.description)
        }
    }
}
