import SteleNative

/// A store's master key: the 256-bit key-encryption key that wraps each namespace's data key in
/// the keyring. It is meant to live off the host (a secrets manager, an HSM-backed file, an
/// operator's vault), like the governance key; whoever holds it and the keyring reads the store.
///
/// File form (`stele keygen --encryption --out master.key`, mode 0600), one line:
///
///     stele-encryption-key 1 <fingerprint: 16 hex digits> <base64 of the 32-byte key>
///
/// Fingerprint = the first 8 bytes of SHA-256("stele-encryption-key 1" ‖ 0x00 ‖ key), hex: names
/// the key in the keyring's header and in errors without revealing it.
public struct EncryptionKey: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    static let header = "stele-encryption-key 1"
    package let bytes: [UInt8]

    /// A new random key.
    /// - Throws: ``SteleError/encryption(_:)`` if libcrypto's generator fails.
    public static func generate() throws -> EncryptionKey {
        guard let bytes = SecureRandom.bytes(AESGCM.keyLength) else { throw SteleError.encryption(.malformedKey("the random generator failed")) }
        return EncryptionKey(bytes: bytes)
    }

    package init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// Parses the file form.
    /// - Throws: ``SteleError/encryption(_:)`` (``EncryptionError/malformedKey(_:)``) for any other
    ///   text, a key that is not 32 bytes, or a fingerprint that does not match the key.
    public init(parsing text: String) throws {
        let fields = text.trimmingSuffixNewlines.split(separator: " ", omittingEmptySubsequences: false)
        guard fields.count == 4, "\(fields[0]) \(fields[1])" == Self.header else {
            throw SteleError.encryption(.malformedKey("expected \"\(Self.header) <fingerprint> <base64 key>\""))
        }
        guard let key = Base64.decode(fields[3]), key.count == AESGCM.keyLength else {
            throw SteleError.encryption(.malformedKey("the key is not 32 bytes of base64"))
        }
        self.init(bytes: key)
        guard fingerprint == fields[2] else { throw SteleError.encryption(.malformedKey("the fingerprint does not match the key")) }
    }

    /// The file form, with its newline.
    public var encoded: String { "\(Self.header) \(fingerprint) \(Base64.encode(bytes))\n" }

    /// 16 hex digits that name the key (not secret).
    public var fingerprint: String {
        sha256(Array(Self.header.utf8) + [0] + bytes).prefix(8).map { String($0, radix: 16).leftPadded(to: 2) }.joined()
    }

    /// The fingerprint only: a key printed, logged or dumped never shows its bytes.
    public var description: String { "EncryptionKey(\(fingerprint))" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["fingerprint": fingerprint]) }

    package var fingerprintBytes: [UInt8] { Array(sha256(Array(Self.header.utf8) + [0] + bytes).prefix(8)) }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
