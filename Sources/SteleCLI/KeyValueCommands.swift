import ArgumentParser
import Foundation
import Stele

struct PutCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "put", abstract: "Write a new version of a key; prints its sequence number.",
        discussion: "Durable (msync) before the command returns. Nothing is overwritten: the previous versions stay in the history.")

    @Argument(help: "The store directory.") var dir: String
    @Argument(help: "Namespace (1-255 bytes, no NUL), e.g. merchant-42/orders.") var namespace: String
    @Argument(help: "Key (b64:BASE64 for bytes that are not printable UTF-8).") var key: String
    @Argument(help: "Value (or use --file).") var value: String?
    @Option(help: "Read the value from this file (- for standard input).") var file: String?

    func validate() throws {
        guard (value == nil) != (file == nil) else { throw ValidationError("give a VALUE or --file, not both") }
    }

    func run() throws {
        let bytes: [UInt8]
        if let file {
            let data = file == "-" ? FileHandle.standardInput.readDataToEndOfFile() : FileManager.default.contents(atPath: file)
            guard let data else { throw InputError(message: "cannot read \(file)") }
            bytes = Array(data)
        } else {
            bytes = Array((value ?? "").utf8)
        }
        let store = try Store(path: dir)
        let receipt = try store.put(namespace: namespace, key: try KeyText.parse(key), value: bytes)
        try store.close()
        print(receipt.sequences.lowerBound)
    }
}

struct GetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get", abstract: "Print the raw value of a key's latest live version.",
        discussion: "Exit 1 when the key has no live version (never written, or deleted) or its value was purged. --at SEQ reads the key as of that sequence number.")

    @Argument(help: "The store directory.") var dir: String
    @Argument(help: "Namespace.") var namespace: String
    @Argument(help: "Key (b64:BASE64 for bytes that are not printable UTF-8).") var key: String
    @Option(help: "Read as of this sequence number.") var at: UInt64?
    @Flag(help: "Prove the value is in the tree of --checkpoint (the proof is checked; a summary goes to stderr).") var verified = false
    @Option(help: "Signed checkpoint file, with --verified.") var checkpoint: String?
    @Option(help: "Verifier key (or file) to check the checkpoint's signature, with --verified.") var verifierKey: String?

    func validate() throws {
        guard verified == (checkpoint != nil) else { throw ValidationError("--verified and --checkpoint go together") }
        guard !(verified && at != nil) else { throw ValidationError("--verified reads as of the checkpoint; drop --at") }
    }

    func run() throws {
        let store = try Store(path: dir, options: .init(readOnly: true))
        defer { try? store.close() }
        let value: [UInt8]
        if let checkpointFile = checkpoint {
            let note = try readText(checkpointFile)
            let body: Checkpoint
            if let verifierKey {
                // The signature and the tree's consistency; the value itself is proven below, from its record.
                body = try store.verifyTiles(checkpoint: note, verifier: try loadVerifier(verifierKey))
            } else {
                guard let split = note.range(of: "\n\n", options: .backwards) else { throw InputError(message: "not a signed note") }
                body = try Checkpoint(parsing: String(note[..<split.lowerBound]) + "\n")
            }
            guard let result = try store.getVerified(namespace: namespace, key: try KeyText.parse(key), checkpoint: body),
                  let bytes = result.version.value else {
                throw InputError(message: "\(namespace) \(key): no live version at tree size \(body.treeSize)")
            }
            guard result.isValid else { throw SteleError.checkpoint(.rootMismatch(size: body.treeSize, checkpointRoot: body.root, storeRoot: result.proof.root)) }
            if result.version.redactedLeafHash != nil {
                throw InputError(message: "\(namespace) \(key): version \(result.version.sequence) is in the tree but was purged after its "
                    + "locks expired (its record and leaf hash remain; the value does not)")
            }
            Console.error("verified: version \(result.version.sequence) is leaf \(result.version.sequence) of tree size \(body.treeSize), root \(body.root.hex)\(verifierKey == nil ? " (checkpoint signature not checked: no --verifier-key)" : "")")
            value = bytes
        } else {
            guard let version = try store.get(namespace: namespace, key: try KeyText.parse(key), asOf: at), let bytes = version.value else {
                throw InputError(message: "\(namespace) \(key): no live version")
            }
            // An empty output would pass for an empty value.
            if version.redactedLeafHash != nil {
                throw InputError(message: "\(namespace) \(key): version \(version.sequence) was purged after its locks expired "
                    + "(its record and leaf hash remain; the value does not)")
            }
            value = bytes
        }
        FileHandle.standardOutput.write(Data(value))
    }
}

struct DeleteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete", abstract: "Delete a key logically (append a tombstone); prints its sequence number.",
        discussion: "History keeps every earlier version; `stele history` shows them.")

    @Argument(help: "The store directory.") var dir: String
    @Argument(help: "Namespace.") var namespace: String
    @Argument(help: "Key (b64:BASE64 for bytes that are not printable UTF-8).") var key: String

    func run() throws {
        let store = try Store(path: dir)
        let receipt = try store.delete(namespace: namespace, key: try KeyText.parse(key))
        try store.close()
        print(receipt.sequences.lowerBound)
    }
}

/// One version as a JSON object or a text line.
func describe(_ version: Version, json: Bool) -> String {
    if json {
        var fields = ["\"seq\":\(version.sequence)", "\"time\":\"\(rfc3339(nanoseconds: version.timestamp))\"",
                      "\"ns\":\(jsonString(version.namespace))", jsonBytesField("key", version.key)]
        if let value = version.value {
            fields.append(version.redactedLeafHash == nil ? jsonBytesField("value", value) : "\"redacted\":true")
        } else {
            fields.append("\"deleted\":true")
        }
        if let protection = version.protection {
            let locks = protection.locks.map {
                "{\"mode\":\"\($0.mode)\",\"until\":\"\(rfc3339(nanoseconds: $0.retainUntil))\",\"scope\":\"\($0.scope.rawValue)\",\"set_by\":\($0.setBy)}"
            }
            fields.append("\"locks\":[" + locks.joined(separator: ",") + "]")
            if let hold = protection.legalHold { fields.append("\"legal_hold\":\(jsonString(hold.reason))") }
        }
        return "{" + fields.joined(separator: ",") + "}"
    }
    let body = version.value.map { version.redactedLeafHash == nil ? ReadCommand.text($0) : "(redacted)" } ?? "(deleted)"
    var line = "\(version.sequence)\t\(rfc3339(nanoseconds: version.timestamp))\t\(ReadCommand.text(version.key))\t\(body)"
    if let protection = version.protection {
        for lock in protection.locks { line += "\t[\(lock.mode) until \(rfc3339(nanoseconds: lock.retainUntil)), \(lock.scope.rawValue)]" }
        if let hold = protection.legalHold { line += "\t[legal hold: \(hold.reason)]" }
    }
    return line
}

struct HistoryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history", abstract: "Print every version and tombstone of a key, oldest first.")

    @Argument(help: "The store directory.") var dir: String
    @Argument(help: "Namespace.") var namespace: String
    @Argument(help: "Key (b64:BASE64 for bytes that are not printable UTF-8).") var key: String
    @Flag(help: "One JSON object per line.") var json = false

    func run() throws {
        let store = try Store(path: dir, options: .init(readOnly: true))
        defer { try? store.close() }
        let history = try store.history(namespace: namespace, key: try KeyText.parse(key))
        guard !history.isEmpty else { throw InputError(message: "\(namespace) \(key): never written") }
        for version in history { print(describe(version, json: json)) }
    }
}

struct ScanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scan", abstract: "List a namespace's keys in byte order with their latest versions.")

    @Argument(help: "The store directory.") var dir: String
    @Argument(help: "Namespace.") var namespace: String
    @Option(help: "Only keys starting with this prefix.") var prefix: String = ""
    @Option(help: "Start after this key (paging).") var after: String?
    @Option(help: "At most this many keys.") var limit: Int = 1000
    @Flag(help: "Include keys whose latest version is a tombstone.") var includeDeleted = false
    @Flag(help: "One JSON object per line.") var json = false

    func run() throws {
        let store = try Store(path: dir, options: .init(readOnly: true))
        defer { try? store.close() }
        for version in try store.scan(namespace: namespace, prefix: try KeyText.parse(prefix), after: try after.map(KeyText.parse),
                                      limit: limit, includeDeleted: includeDeleted) {
            print(describe(version, json: json))
        }
    }
}
