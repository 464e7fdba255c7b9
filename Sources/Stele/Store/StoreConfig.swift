import SteleNative

/// The store's identity and fixed parameters, in `stele.conf`: a short text file whose last line
/// is a checksum of everything before it.
///
/// ```
/// stele-store 1
/// uuid 6f1c0e4b9a2d4c8e8f3b5a7d9c1e2f30
/// created 1763761234000000000
/// segment-size 67108864
/// origin stele.local/6f1c0e4b9a2d4c8e8f3b5a7d9c1e2f30
/// governance-key ops.example/governance+1a2b3c4d+AZ...   (optional)
/// encryption-key 3f6c2a9b1d0e4f57                      (an encrypted store's master key fingerprint)
/// xxh3 0123456789abcdef
/// ```
/// Written once at `init` (temporary file, fsync, rename, directory fsync). A reader rejects a
/// newer version, an unknown or missing key and a checksum mismatch, each with a clear error.
public struct StoreConfig: Sendable, Equatable {
    /// The config file's name in the store directory.
    public static let fileName = "stele.conf"
    /// The version of the config file's format that this build reads and writes.
    public static let formatVersion = 1

    /// 16 random bytes identifying the store; every segment header repeats them.
    public var storeID: [UInt8]
    /// Creation time, ns since the Unix epoch.
    public var createdAt: Int64
    /// Size of each new segment file in bytes.
    public var segmentSize: Int
    /// The log's identity for signed checkpoints (C2SP tlog-checkpoint origin line).
    public var origin: String
    /// The Ed25519 verifier key whose signature authorizes shortening or removing governance
    /// locks (its private half is meant to live off the host). Nil: no bypass is possible.
    public var governanceKey: NoteVerifier?
    /// For an encrypted store, the fingerprint of its master key (16 hex digits,
    /// ``EncryptionKey/fingerprint``); nil: the store is not encrypted.
    public var encryptionKey: String?

    /// ``storeID`` as 32 lowercase hexadecimal digits, as `stele.conf` writes it.
    public var storeIDHex: String { hexString(storeID) }

    package var encoded: String {
        var body = "stele-store \(StoreConfig.formatVersion)\n"
        body += "uuid \(storeIDHex)\n"
        body += "created \(createdAt)\n"
        body += "segment-size \(segmentSize)\n"
        body += "origin \(origin)\n"
        if let governanceKey { body += "governance-key \(governanceKey.encoded)\n" }
        if let encryptionKey { body += "encryption-key \(encryptionKey)\n" }
        return body + "xxh3 \(StoreConfig.checksumText(body))\n"
    }

    private static func checksumText(_ body: String) -> String {
        let value = xxh3(Array(body.utf8))
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// Parses the file's text; `path` is used in errors.
    package static func decode(_ text: String, path: String) throws -> StoreConfig {
        func bad(_ detail: String) -> SteleError { .corruption(Corruption(file: path, detail: detail)) }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard lines.last == "" else { throw bad("config does not end with a newline") }
        lines.removeLast()
        guard let first = lines.first, first.hasPrefix("stele-store ") else { throw bad("not a Stele config (first line)") }
        guard let version = Int(first.dropFirst("stele-store ".count)) else { throw bad("unreadable format version") }
        guard version == formatVersion else {
            throw SteleError.unsupportedVersion(file: path, found: version, supported: formatVersion)
        }
        guard let last = lines.last, last.hasPrefix("xxh3 ") else { throw bad("config checksum line missing") }
        let body = lines.dropLast().map { $0 + "\n" }.joined()
        guard String(last.dropFirst(5)) == checksumText(body) else { throw bad("config checksum mismatch") }
        var fields: [String: String] = [:]
        for line in lines.dropFirst().dropLast() {
            guard let space = line.firstIndex(of: " ") else { throw bad("malformed line: \(line)") }
            let key = String(line[..<space])
            guard ["uuid", "created", "segment-size", "origin", "governance-key", "encryption-key"].contains(key), fields[key] == nil else {
                throw bad("unknown or repeated key: \(key)")
            }
            fields[key] = String(line[line.index(after: space)...])
        }
        guard let uuidText = fields["uuid"], let uuid = bytesFromHex(uuidText), uuid.count == 16, hexString(uuid) == uuidText else {
            throw bad("bad or missing uuid")
        }
        guard let created = fields["created"].flatMap({ Int64($0) }) else { throw bad("bad or missing created") }
        guard let size = fields["segment-size"].flatMap({ Int($0) }),
              size >= Limits.minSegmentSize, size <= Limits.maxSegmentSize, size % 4096 == 0 else { throw bad("bad or missing segment-size") }
        guard let origin = fields["origin"], isValidOrigin(origin) else { throw bad("bad or missing origin") }
        var governanceKey: NoteVerifier?
        if let text = fields["governance-key"] {
            guard let key = try? NoteVerifier(parsing: text) else { throw bad("bad governance-key") }
            governanceKey = key
        }
        if let fingerprint = fields["encryption-key"] {
            guard fingerprint.count == 16, let bytes = bytesFromHex(fingerprint), hexString(bytes) == fingerprint else {
                throw bad("bad encryption-key")
            }
        }
        return StoreConfig(storeID: uuid, createdAt: created, segmentSize: size, origin: origin, governanceKey: governanceKey,
                           encryptionKey: fields["encryption-key"])
    }

    /// An origin is one line of printable ASCII without spaces at either end (C2SP tlog-checkpoint).
    package static func isValidOrigin(_ origin: String) -> Bool {
        !origin.isEmpty && origin.utf8.count <= 255 && origin.utf8.allSatisfy { $0 >= 0x21 && $0 <= 0x7e }
    }

    /// A random (version 4) UUID.
    package static func randomStoreID() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        var bytes = (0 ..< 16).map { _ in UInt8.random(in: 0 ... 255, using: &generator) }
        bytes[6] = (bytes[6] & 0x0f) | 0x40
        bytes[8] = (bytes[8] & 0x3f) | 0x80
        return bytes
    }
}
