import SteleNative

/// Ed25519 keys for C2SP signed notes, in the text forms the Go `note` package and the
/// transparency-log tools use:
/// - verifier key: `<name>+<key id, 8 hex digits>+<base64(0x01 ‖ 32-byte public key)>`
/// - signer key:   `PRIVATE+KEY+<name>+<key id>+<base64(0x01 ‖ 32-byte seed)>`
/// with key ID = SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[0..<4], big-endian (c2sp.org/signed-note).

/// Why a key, note or checkpoint is not acceptable (in ``SteleError/checkpoint(_:)``).
public enum CheckpointError: Sendable, Equatable, CustomStringConvertible {
    /// A key's text is not a valid Ed25519 note key (name, key ID, algorithm or length).
    case malformedKey(String)
    /// A signed note is not well formed (size, control characters, signature lines).
    case malformedNote(String)
    /// A note's text is not a C2SP checkpoint (origin, decimal tree size, base64 root).
    case malformedCheckpoint(String)
    /// The note carries no signature by the given key (unsigned, or signed only by others).
    case noTrustedSignature(key: String)
    /// A signature by the given key does not verify: the note was altered.
    case badSignature(key: String)
    /// The checkpoint is for another log.
    case wrongOrigin(expected: String, found: String)
    /// The checkpoint covers more records than the store holds: the store lost data.
    case storeBehindCheckpoint(checkpointSize: UInt64, storeSize: UInt64)
    /// The store's tree at the checkpoint's size has another root: history was rewritten.
    case rootMismatch(size: UInt64, checkpointRoot: Digest, storeRoot: Digest)
    /// Signing would contradict a checkpoint the store signed before.
    case inconsistentWithPrevious(previousSize: UInt64, detail: String)

    /// What is wrong, in one line; the two history cases start in capitals, as the CLI prints them.
    public var description: String {
        switch self {
        case .malformedKey(let m): "malformed key: \(m)"
        case .malformedNote(let m): "malformed signed note: \(m)"
        case .malformedCheckpoint(let m): "malformed checkpoint: \(m)"
        case .noTrustedSignature(let k): "the note has no signature by \(k)"
        case .badSignature(let k): "the signature by \(k) does not verify: the note was altered"
        case .wrongOrigin(let e, let f): "checkpoint is for log \"\(f)\", this store is \"\(e)\""
        case .storeBehindCheckpoint(let c, let s):
            "THE STORE HAS LOST DATA: the checkpoint covers \(c) records, the store holds only \(s)"
        case .rootMismatch(let size, let c, let s):
            "HISTORY WAS REWRITTEN: at tree size \(size) the checkpoint's root is \(c.hex), the store's is \(s.hex)"
        case .inconsistentWithPrevious(let size, let d): "refusing to sign: inconsistent with the checkpoint at size \(size) (\(d))"
        }
    }
}

/// A key that can verify signed notes.
public struct NoteVerifier: Sendable, Equatable {
    /// The key's name: for a checkpoint key, by convention the log's origin.
    public let name: String
    /// The first four bytes of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key), big-endian: tells which
    /// key a signature line claims to be by.
    public let keyID: UInt32
    /// The 32-byte Ed25519 public key.
    public let publicKey: [UInt8]

    /// Parses `name+hexid+base64key`.
    /// - Throws: ``SteleError/checkpoint(_:)`` (``CheckpointError/malformedKey(_:)``) for a bad name, algorithm, length or key ID.
    public init(parsing text: String) throws {
        let parts = text.trimmingSuffixNewlines.split(separator: "+", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw SteleError.checkpoint(.malformedKey("expected name+keyid+key")) }
        let name = String(parts[0])
        guard NoteVerifier.isValidName(name) else { throw SteleError.checkpoint(.malformedKey("bad key name")) }
        guard parts[1].count == 8, let id = UInt32(parts[1], radix: 16) else { throw SteleError.checkpoint(.malformedKey("bad key id")) }
        guard let raw = Base64.decode(parts[2]), raw.count == 33, raw[0] == 0x01 else {
            throw SteleError.checkpoint(.malformedKey("not an Ed25519 key (algorithm 0x01, 32 bytes)"))
        }
        let key = Array(raw[1...])
        guard NoteVerifier.keyID(name: name, publicKey: key) == id else { throw SteleError.checkpoint(.malformedKey("key id does not match the key")) }
        self.name = name
        self.keyID = id
        self.publicKey = key
    }

    init(name: String, publicKey: [UInt8]) {
        self.name = name
        self.publicKey = publicKey
        self.keyID = NoteVerifier.keyID(name: name, publicKey: publicKey)
    }

    /// The `name+hexid+base64key` text.
    public var encoded: String {
        "\(name)+\(NoteVerifier.hex(keyID))+\(Base64.encode([0x01] + publicKey))"
    }

    /// Key names are non-empty and contain no Unicode spaces or plus signs.
    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && !name.unicodeScalars.contains { $0 == "+" || $0.properties.isWhitespace || $0.value < 0x20 }
    }

    static func keyID(name: String, publicKey: [UInt8]) -> UInt32 {
        let digest = SHA256Hasher.hash(Array(name.utf8) + [0x0a, 0x01] + publicKey).bytes
        return digest[0 ..< 4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
    }

    static func hex(_ id: UInt32) -> String {
        let digits = String(id, radix: 16)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }
}

/// A key that signs notes. Keep its text form secret (files mode 0600, never logged).
public struct NoteSigner: Sendable {
    /// The public half: what to publish, and what ``SignedNote/open(_:verifier:)`` checks with.
    public let verifier: NoteVerifier
    private let seed: [UInt8]

    /// The key's name (the verifier's).
    public var name: String { verifier.name }

    /// A new random key.
    /// - Throws: ``SteleError/checkpoint(_:)`` (``CheckpointError/malformedKey(_:)``) for an invalid name.
    public static func generate(name: String) throws -> NoteSigner {
        try NoteSigner(name: name, seed: Ed25519.randomSeed())
    }

    init(name: String, seed: [UInt8]) throws {
        guard NoteVerifier.isValidName(name) else { throw SteleError.checkpoint(.malformedKey("bad key name")) }
        guard let key = Ed25519.publicKey(seed: seed) else { throw SteleError.checkpoint(.malformedKey("not an Ed25519 private key")) }
        self.seed = seed
        self.verifier = NoteVerifier(name: name, publicKey: key)
    }

    /// Parses `PRIVATE+KEY+name+hexid+base64seed`.
    /// - Throws: ``SteleError/checkpoint(_:)`` (``CheckpointError/malformedKey(_:)``) for a bad form, name, algorithm or length,
    ///   or a key ID that does not match the key.
    public init(parsing text: String) throws {
        let parts = text.trimmingSuffixNewlines.split(separator: "+", maxSplits: 4, omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0] == "PRIVATE", parts[1] == "KEY" else {
            throw SteleError.checkpoint(.malformedKey("expected PRIVATE+KEY+name+keyid+key"))
        }
        guard let raw = Base64.decode(parts[4]), raw.count == 33, raw[0] == 0x01 else {
            throw SteleError.checkpoint(.malformedKey("not an Ed25519 private key"))
        }
        try self.init(name: String(parts[2]), seed: Array(raw[1...]))
        guard parts[3].count == 8, UInt32(parts[3], radix: 16) == verifier.keyID else {
            throw SteleError.checkpoint(.malformedKey("key id does not match the key"))
        }
    }

    /// The secret text form.
    public var encoded: String {
        "PRIVATE+KEY+\(name)+\(NoteVerifier.hex(verifier.keyID))+\(Base64.encode([0x01] + seed))"
    }

    func sign(_ message: [UInt8]) throws -> [UInt8] {
        guard let signature = Ed25519.sign(message, seed: seed) else { throw SteleError.checkpoint(.malformedKey("signing failed")) }
        return signature
    }
}

extension String {
    var trimmingSuffixNewlines: String {
        var s = self
        while s.hasSuffix("\n") || s.hasSuffix("\r") { s.removeLast() }
        return s
    }
}
