import ArgumentParser
import Foundation
import Stele

struct ReadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "read",
        abstract: "Print records by sequence number (the first record is 0).",
        discussion: """
        Every record's checksum is verified; a damaged record stops the command with exit code 3. \
        Opens the store read-only, so it works while a writer holds the store. With --json, one \
        object per line: {"seq", "type", "time" (RFC 3339), "time_ns", "ns", "key", "value"}, \
        with "key_b64"/"value_b64" instead for bytes that are not UTF-8, and "redacted_leaf_hash" \
        instead of a value whose payload was purged ("(redacted)" without --json).
        """)

    @OptionGroup var directory: StoreDirectory

    @Option(help: "First sequence number.")
    var from: UInt64

    @Option(help: "How many records at most.")
    var count: Int = 1

    @Flag(help: "One JSON object per line.")
    var json = false

    func validate() throws {
        guard count >= 0 else { throw ValidationError("--count must not be negative") }
    }

    func run() throws {
        try withStore(at: directory.path, .readOnly) { store in
            if let torn = store.recovery.tornTail {
                Console.error("stele: warning: \(torn.bytes) bytes at \(torn.file):\(torn.offset) are not a complete record (\(torn.reason)); a writer's open will discard them into lost+found/")
            }
            var out = ""
            try store.forEachRecord(from: from, count: count) { record in
                if json {
                    out += "{\"seq\":\(record.sequence),\"type\":\"\(record.type)\",\"time\":\"\(rfc3339(nanoseconds: record.timestamp))\",\"time_ns\":\(record.timestamp),"
                    out += jsonBytesField("ns", record.namespace) + "," + jsonBytesField("key", record.key) + ","
                    // A purged payload is gone: say so, with the leaf hash its stub keeps, rather than print an empty value.
                    out += (record.redactedLeafHash.map { "\"redacted_leaf_hash\":\"\($0.hex)\"" } ?? jsonBytesField("value", record.value)) + "}\n"
                } else {
                    out += "\(record.sequence)\t\(record.type)\t\(rfc3339(nanoseconds: record.timestamp))\t"
                    out += "\(Self.text(record.namespace))\t\(Self.text(record.key))\t"
                    out += (record.redactedLeafHash == nil ? Self.text(record.value) : "(redacted)") + "\n"
                }
                if out.utf8.count > 1 << 16 {
                    FileHandle.standardOutput.write(Data(out.utf8))
                    out = ""
                }
            }
            FileHandle.standardOutput.write(Data(out.utf8))
        }
    }

    /// Printable text as is; anything else as `b64:...` (see ``KeyText``).
    static func text(_ bytes: [UInt8]) -> String { KeyText.display(bytes) }
}
