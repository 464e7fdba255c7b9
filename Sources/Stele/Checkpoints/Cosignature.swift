import SteleNative

/// Ed25519 cosignatures (c2sp.org/tlog-cosignature, `cosignature/v1`): a witness's statement
/// that, as of a time, the checkpoint is the largest consistent tree it has seen for the log.
///
/// A cosignature is a signed-note signature line by the cosigner's key (key type 0x04), whose
/// blob is the key ID, then `timestamped_signature`: the time (u64, big-endian, POSIX seconds)
/// and an Ed25519 signature over
///
///     cosignature/v1\n
///     time <decimal time>\n
///     <the checkpoint's text: origin, size, root and any extension lines, each ending in \n>
///
/// Key ID = SHA-256(name ‖ 0x0A ‖ 0x04 ‖ public key)[0..<4].
public enum Cosignature {
    static let algorithm: UInt8 = 0x04

    /// The message a cosignature at `time` signs for checkpoint text `text`.
    static func message(_ text: String, time: UInt64) -> [UInt8] {
        Array("cosignature/v1\ntime \(time)\n".utf8) + Array(text.utf8)
    }
}

/// A cosigner's public key: `name+hexid+base64(0x04 ‖ 32-byte Ed25519 public key)`, the
/// signed-note verifier key form with the cosignature key type.
public struct CosignatureVerifier: Sendable, Equatable, CustomStringConvertible {
    public let name: String
    public let keyID: UInt32
    public let publicKey: [UInt8]

    /// Parses `name+hexid+base64key`.
    /// - Throws: ``SteleError/checkpoint(_:)`` (``CheckpointError/malformedKey(_:)``) for a bad name,
    ///   key type (a checkpoint key, type 0x01, is not a cosigner key), length or key ID.
    public init(parsing text: String) throws {
        let parts = text.trimmingSuffixNewlines.split(separator: "+", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, NoteVerifier.isValidName(String(parts[0])) else {
            throw SteleError.checkpoint(.malformedKey("expected name+keyid+key"))
        }
        guard parts[1].count == 8, let id = UInt32(parts[1], radix: 16) else { throw SteleError.checkpoint(.malformedKey("bad key id")) }
        guard let raw = Base64.decode(parts[2]), raw.count == 33, raw[0] == Cosignature.algorithm else {
            throw SteleError.checkpoint(.malformedKey("not an Ed25519 cosigner key (type 0x04, 32 bytes)"))
        }
        self.init(name: String(parts[0]), publicKey: Array(raw[1...]))
        guard keyID == id else { throw SteleError.checkpoint(.malformedKey("key id does not match the key")) }
    }

    init(name: String, publicKey: [UInt8]) {
        self.name = name
        self.publicKey = publicKey
        let digest = SHA256Hasher.hash(Array(name.utf8) + [0x0a, Cosignature.algorithm] + publicKey).bytes
        keyID = digest[0 ..< 4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
    }

    /// The `name+hexid+base64key` text.
    public var encoded: String {
        "\(name)+\(NoteVerifier.hex(keyID))+\(Base64.encode([Cosignature.algorithm] + publicKey))"
    }

    public var description: String { encoded }

    /// The time of this key's valid cosignature on `note` (a signed checkpoint with its signature
    /// lines); nil if the note carries none by this key.
    /// - Throws: ``SteleError/checkpoint(_:)``: ``CheckpointError/malformedNote(_:)``, or
    ///   ``CheckpointError/badSignature(key:)`` when a line by this key does not verify.
    public func cosignatureTime(in note: String) throws -> UInt64? {
        let (text, lines) = try SignedNote.split(note)
        var newest: UInt64?
        for (name, blob) in lines where blob.count == 4 + 8 + 64 {
            let id = blob[0 ..< 4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            guard name == self.name, id == keyID else { continue }
            let time = blob[4 ..< 12].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            guard time < 1 << 63, Ed25519.verify(Array(blob[12...]), message: Cosignature.message(text, time: time), publicKey: publicKey) else {
                throw SteleError.checkpoint(.badSignature(key: self.name))
            }
            newest = max(newest ?? 0, time)
        }
        return newest
    }
}

/// A cosigner's private key: `PRIVATE+KEY+name+hexid+base64(0x04 ‖ 32-byte seed)`. Keep it
/// secret (files mode 0600, never logged), and on the witness's host only.
public struct Cosigner: Sendable {
    public let verifier: CosignatureVerifier
    private let seed: [UInt8]

    public var name: String { verifier.name }

    /// A new random key.
    /// - Throws: ``SteleError/checkpoint(_:)`` for an invalid name.
    public static func generate(name: String) throws -> Cosigner {
        try Cosigner(name: name, seed: Ed25519.randomSeed())
    }

    init(name: String, seed: [UInt8]) throws {
        guard NoteVerifier.isValidName(name) else { throw SteleError.checkpoint(.malformedKey("bad key name")) }
        guard let key = Ed25519.publicKey(seed: seed) else { throw SteleError.checkpoint(.malformedKey("not an Ed25519 private key")) }
        self.seed = seed
        verifier = CosignatureVerifier(name: name, publicKey: key)
    }

    /// Parses `PRIVATE+KEY+name+hexid+base64(0x04 ‖ seed)`.
    /// - Throws: ``SteleError/checkpoint(_:)`` (``CheckpointError/malformedKey(_:)``).
    public init(parsing text: String) throws {
        let parts = text.trimmingSuffixNewlines.split(separator: "+", maxSplits: 4, omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0] == "PRIVATE", parts[1] == "KEY" else {
            throw SteleError.checkpoint(.malformedKey("expected PRIVATE+KEY+name+keyid+key"))
        }
        guard let raw = Base64.decode(parts[4]), raw.count == 33, raw[0] == Cosignature.algorithm else {
            throw SteleError.checkpoint(.malformedKey("not an Ed25519 cosigner private key (type 0x04)"))
        }
        try self.init(name: String(parts[2]), seed: Array(raw[1...]))
        guard parts[3].count == 8, UInt32(parts[3], radix: 16) == verifier.keyID else {
            throw SteleError.checkpoint(.malformedKey("key id does not match the key"))
        }
    }

    /// The secret text form.
    public var encoded: String {
        "PRIVATE+KEY+\(name)+\(NoteVerifier.hex(verifier.keyID))+\(Base64.encode([Cosignature.algorithm] + seed))"
    }

    /// The cosignature line (`— name base64(...)\n`) on checkpoint text `text` (the note's text:
    /// origin, size, root, extensions, each ending in a newline) at `time`, in POSIX seconds.
    /// - Throws: ``SteleError/checkpoint(_:)`` if signing fails or `time` is 2^63 or later.
    public func cosign(_ text: String, time: UInt64) throws -> String {
        guard time < 1 << 63, let signature = Ed25519.sign(Cosignature.message(text, time: time), seed: seed) else {
            throw SteleError.checkpoint(.malformedKey("cosigning failed"))
        }
        let id = verifier.keyID
        let blob = [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: id >> $0) }
            + (0 ..< 8).reversed().map { UInt8(truncatingIfNeeded: time >> (8 * $0)) } + signature
        return "\u{2014} \(name) \(Base64.encode(blob))\n"
    }
}
