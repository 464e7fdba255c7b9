/// Why encrypted data could not be read or a key could not be used. The store's files are never
/// changed by any of these: a wrong key is refused before anything is written.
public enum EncryptionError: Sendable, Equatable, CustomStringConvertible {
    /// A key file that is not a Stele encryption key (the reason says what is wrong).
    case malformedKey(String)
    /// The key given is not the one the store's keyring was made with (fingerprints, hex).
    case wrongKey(expected: String, given: String)
    /// The keyring cannot be read: a bad header, a slot whose checksum fails, a slot no key
    /// opens (altered), or it is missing while the store is encrypted.
    case keyringDamaged(path: String, detail: String)
    /// The namespace's data key was destroyed (crypto-shredded) at `at` (ns since the epoch):
    /// its keys and values can never be read again.
    case shredded(namespace: String, at: Int64)
    /// The store is encrypted and this operation needs its master key (`--encryption-key` or
    /// `STELE_ENCRYPTION_KEY_FILE`).
    case keyRequired
    /// libcrypto failed to encrypt or to make a key (out of memory, say); nothing was written.
    case libcryptoFailed(String)
    /// The namespace's data key has sealed as many records as one key may (`limit`, 2^31: two
    /// AES-GCM messages with random nonces per record, and NIST SP 800-38D's bound of 2^32
    /// messages per key); the batch was refused and nothing written. Moving a namespace to a new
    /// key (a new generation) is not built yet.
    case keyExhausted(namespace: String, limit: UInt64)

    public var description: String {
        switch self {
        case .malformedKey(let why): "not a Stele encryption key: \(why)"
        case .wrongKey(let expected, let given):
            "wrong encryption key: the store's keyring was made with key \(expected), this is key \(given)"
        case .keyringDamaged(let path, let detail): "keyring \(path) is damaged: \(detail)"
        case .shredded(let namespace, let at): "namespace \(namespace) was shredded at \(at) ns since the epoch: its data key is destroyed"
        case .libcryptoFailed(let what): "libcrypto failed: \(what)"
        case .keyExhausted(let namespace, let limit):
            "namespace \(namespace)'s data key has sealed \(limit) records, as many as one key may (random 96-bit nonces); writes to it are refused"
        case .keyRequired: "the store is encrypted: give its master key (--encryption-key FILE or STELE_ENCRYPTION_KEY_FILE)"
        }
    }
}
