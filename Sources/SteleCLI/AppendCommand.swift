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
        durable before the next is read.
        """)

    @Argument(help: "The store directory.")
    var dir: String

    @Option(help: "JSON Lines input file, or - for standard input.")
    var jsonl: String

    @Option(help: "Commit policy: none, batch, or interval:MS.")
    var sync: String = "batch"

    @Option(help: "Records per append call.")
    var batch: Int = 1000

    func validate() throws {
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        _ = try parseCommitPolicy(sync)
    }

    func run() throws {
        let policy = try parseCommitPolicy(sync)
        let store = try Store(path: dir, options: .init(commitPolicy: policy))
        let reader = try LineReader(path: jsonl)
        var pending: [Entry] = []
        var locks: [RetentionLock?] = []
        var last: UInt64?
        var lineNumber = 0
        while let line = try reader.nextLine() {
            lineNumber += 1
            if line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") || $0 == UInt8(ascii: "\r") }) { continue }
            let (entry, lock) = try Self.parse(line, lineNumber: lineNumber)
            pending.append(entry)
            locks.append(lock)
            if pending.count >= batch {
                last = try store.putBatch(pending, locks: locks).sequences.upperBound
                pending.removeAll(keepingCapacity: true)
                locks.removeAll(keepingCapacity: true)
            }
        }
        if !pending.isEmpty { last = try store.putBatch(pending, locks: locks).sequences.upperBound }
        try store.close()
        if let last { print(last) } else { Console.error("stele: no records in input") }
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
            let chunk = try handle.read(upToCount: 65_536) ?? Data()
            if chunk.isEmpty { finished = true } else { buffer.append(contentsOf: chunk) }
        }
    }
}
