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
        try withStore(directory, .readOnly) { store in
            if let torn = store.recovery.tornTail {
                Console.error("stele: warning: \(torn.bytes) bytes at \(torn.file):\(torn.offset) are not a complete record (\(torn.reason)); a writer's open will discard them into lost+found/")
            }
            var out = ""
            try store.forEachRecord(from: from, count: count) { record in
                out += (json ? try jsonLine(RecordJSON(record)) : Self.line(record)) + "\n"
                if out.utf8.count > 1 << 16 {
                    FileHandle.standardOutput.write(Data(out.utf8))
                    out = ""
                }
            }
            FileHandle.standardOutput.write(Data(out.utf8))
        }
    }

    /// A record as a tab-separated line; bytes that are not printable text as `b64:...` (see ``KeyText``).
    private static func line(_ record: Record) -> String {
        "\(record.sequence)\t\(record.type)\t\(rfc3339(nanoseconds: record.timestamp))\t"
            + "\(KeyText.display(record.namespace))\t\(KeyText.display(record.key))\t"
            + (record.redactedLeafHash == nil ? KeyText.display(record.value) : "(redacted)")
    }
}

/// A record as a JSON object. A purged payload is gone: `redacted_leaf_hash` (the leaf hash its
/// stub keeps) stands instead of a value, rather than an empty one.
private struct RecordJSON: Encodable {
    let seq: UInt64
    let type: String
    let time: String
    let timeNs: Int64
    let ns: String?
    let nsB64: String?
    let key: String?
    let keyB64: String?
    let value: String?
    let valueB64: String?
    let redactedLeafHash: String?


    init(_ record: Record) {
        seq = record.sequence
        type = "\(record.type)"
        time = rfc3339(nanoseconds: record.timestamp)
        timeNs = record.timestamp
        let namespace = TextOrBase64(record.namespace), key = TextOrBase64(record.key)
        (ns, nsB64) = (namespace.text, namespace.base64)
        (self.key, keyB64) = (key.text, key.base64)
        let payload = record.redactedLeafHash == nil ? TextOrBase64(record.value) : nil
        (value, valueB64) = (payload?.text, payload?.base64)
        redactedLeafHash = record.redactedLeafHash?.hex
    }
}
