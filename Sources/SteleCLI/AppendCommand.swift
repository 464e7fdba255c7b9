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

    @Argument(help: "The store directory.")
    var dir: String

    @Option(help: "JSON Lines input file, or - for standard input.")
    var jsonl: String

    @Option(help: "Commit policy: none, batch, or interval:MS.")
    var sync: String = "batch"

    @Option(help: "Records per append call.")
    var batch: Int = 1000

    @Option(help: "Skip the first N input lines (to resume after a failure).")
    var skipLines: Int = 0

    func validate() throws {
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        guard skipLines >= 0 else { throw ValidationError("--skip-lines must be 0 or more") }
        _ = try parseCommitPolicy(sync)
    }

    /// What went in so far: each batch appended, with its last input line and last sequence.
    private struct Progress {
        var batches: [(lastLine: Int, sequences: ClosedRange<UInt64>)] = []
        /// The input line of each entry pending in the batch being built.
        var pendingLines: [Int] = []
    }

    func run() throws {
        let policy = try parseCommitPolicy(sync)
        let reader = try LineReader(path: jsonl)
        let store = try Store(path: dir, options: .init(commitPolicy: policy))
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
                progress.pendingLines.append(lineNumber)
                if pending.count >= batch {
                    try flush(store, &pending, &locks, &progress)
                }
            }
            if !pending.isEmpty { try flush(store, &pending, &locks, &progress) }
            try store.close()
        } catch {
            // What is in the store, then the error itself (which keeps its exit code).
            Console.error(committed(store, before: before, progress))
            throw error
        }
        if let last = progress.batches.last { print(last.sequences.upperBound) } else { Console.error("stele: no records in input") }
    }

    private func flush(_ store: Store, _ pending: inout [Entry], _ locks: inout [RetentionLock?], _ progress: inout Progress) throws {
        let receipt = try store.putBatch(pending, locks: locks)
        progress.batches.append((progress.pendingLines.last ?? 0, receipt.sequences))
        pending.removeAll(keepingCapacity: true)
        locks.removeAll(keepingCapacity: true)
        progress.pendingLines.removeAll(keepingCapacity: true)
    }

    /// Exactly what is in the store after a failure, and how to resume: appended batches are
    /// made durable first if they can be; records of a batch cut short count as far as they went.
    private func committed(_ store: Store, before: UInt64, _ progress: Progress) -> String {
        _ = try? store.sync()
        let durable = store.durableRecordCount
        var lastLine = skipLines
        var lastSequence: UInt64?
        for batch in progress.batches where batch.sequences.upperBound < durable {
            (lastLine, lastSequence) = (batch.lastLine, batch.sequences.upperBound)
        }
        // A batch that failed may have left a prefix of its records (each checksummed, whole).
        let appended = progress.batches.last.map { $0.sequences.upperBound + 1 } ?? before
        let extra = Int(min(durable, store.recordCount) - min(appended, durable))
        if extra > 0, extra <= progress.pendingLines.count, progress.batches.allSatisfy({ $0.sequences.upperBound < durable }) {
            lastLine = progress.pendingLines[extra - 1]
            lastSequence = appended + UInt64(extra) - 1
        }
        let count = (lastSequence.map { $0 + 1 } ?? before) - before
        try? store.close()
        guard let lastSequence else {
            return "committed: nothing (the store is as it was); run the same command again once the cause is fixed"
        }
        return "committed: \(count) records from input lines \(skipLines + 1)-\(lastLine), the last at sequence \(lastSequence), durable; "
            + "nothing after line \(lastLine) was written\n"
            + "resume with: stele append \(dir) --jsonl \(jsonl) --sync \(sync) --skip-lines \(lastLine)"
    }

    /// One input line, parsed by the library (``ImportLine``) so that the fuzz target runs the same code.
    static func parse(_ bytes: [UInt8], lineNumber: Int) throws -> (Entry, RetentionLock?) {
        do throws(ImportLineError) {
            let line = try ImportLine(parsing: bytes, lineNumber: lineNumber, now: Int64(Date().timeIntervalSince1970 * 1e9))
            return (line.entry, line.lock)
        } catch {
            throw InputError(message: error.description)
        }
    }
}

/// Reads a file or standard input line by line, in 64 KiB chunks, so that input is consumed
/// only as fast as it is appended.
final class LineReader {
    private let handle: FileHandle
    private var buffer: [UInt8] = []
    private var start = 0
    private var finished = false

    init(path: String) throws {
        var isDirectory: ObjCBool = false
        if path != "-", FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw InputError(message: "\(path) is a directory: give a JSON Lines file, or - for standard input")
        }
        if path == "-" {
            handle = FileHandle.standardInput
        } else {
            guard let handle = FileHandle(forReadingAtPath: path) else {
                throw InputError(message: "cannot open \(path)")
            }
            self.handle = handle
        }
    }

    func nextLine() throws -> [UInt8]? {
        while true {
            if let newline = buffer[start...].firstIndex(of: UInt8(ascii: "\n")) {
                let line = Array(buffer[start ..< newline])
                start = newline + 1
                return line
            }
            if finished {
                guard start < buffer.count else { return nil }
                let line = Array(buffer[start...])
                start = buffer.count
                return line
            }
            buffer.removeFirst(start)
            start = 0
            let chunk: Data
            do {
                chunk = try handle.read(upToCount: 65_536) ?? Data()
            } catch {
                throw InputError(message: "cannot read the input: \((error as NSError).localizedDescription)")
            }
            if chunk.isEmpty { finished = true } else { buffer.append(contentsOf: chunk) }
        }
    }
}
