import Synchronization

/// The data keys of an open encrypted store: its keyring, opened with the master key, and a
/// ``RecordCipher`` per namespace made from it.
///
/// Shared by the writer (under the store's writer lock) and by readers (outside it), so the
/// keyring and the ciphers sit behind a lock of their own, held only to look a namespace up or
/// to add its key (a slot appended and synced, once per namespace).
package final class LogEncryption: Sendable {
    private struct State {
        let keyring: Keyring
        var ciphers: [[UInt8]: RecordCipher] = [:]
    }

    /// The keyring file, for errors.
    package let keyringPath: String
    private let state: Mutex<State>

    /// Opens the keyring at `path` with `master` (see ``Keyring/init(fs:path:storeID:master:)``).
    /// - Throws: ``SteleError/encryption(_:)`` (a wrong key, a damaged or missing keyring),
    ///   ``SteleError/io(_:)``.
    package init(fs: any FileSystem, path: String, storeID: [UInt8], master: EncryptionKey) throws {
        keyringPath = path
        let keyring = try Keyring(fs: fs, path: path, storeID: storeID, master: master)
        state = Mutex(State(keyring: keyring))
    }

    /// The cipher to write `namespace`'s records with; its data key is made (and synced in the
    /// keyring) on the namespace's first write.
    /// - Throws: ``SteleError/encryption(_:)`` ``EncryptionError/shredded(namespace:at:)``: a
    ///   shredded namespace is never written again; ``SteleError/io(_:)`` if the keyring cannot
    ///   take the new key (nothing was written under it).
    package func cipherForWriting(_ namespace: [UInt8]) throws -> RecordCipher {
        try state.withLock { state in
            if let cipher = state.ciphers[namespace] { return cipher }
            let key = try state.keyring.addKey(forNamespace: namespace)
            guard let cipher = RecordCipher(dataKey: key, generation: 1) else {
                throw SteleError.encryption(.keyringDamaged(path: keyringPath, detail: "a data key is not 32 bytes"))
            }
            state.ciphers[namespace] = cipher
            return cipher
        }
    }

    /// The cipher to read `namespace`'s records with.
    /// - Throws: ``SteleError/encryption(_:)``: ``EncryptionError/shredded(namespace:at:)``, or
    ///   ``EncryptionError/keyringDamaged(path:detail:)`` if the keyring has no key for a
    ///   namespace the log holds encrypted records of (a slot lost).
    package func cipherForReading(_ namespace: [UInt8]) throws(SteleError) -> RecordCipher {
        try readingCipher(namespace).get()
    }

    /// ``cipherForReading(_:)`` as a result.
    package func readingCipher(_ namespace: [UInt8]) -> Result<RecordCipher, SteleError> {
        state.withLock { state -> Result<RecordCipher, SteleError> in
            if let cipher = state.ciphers[namespace] { return .success(cipher) }
            switch state.keyring.entry(forNamespace: namespace) {
            case .live(let generation, let key)?:
                guard let cipher = RecordCipher(dataKey: key, generation: generation) else {
                    return .failure(.encryption(.keyringDamaged(path: keyringPath, detail: "a data key is not 32 bytes")))
                }
                state.ciphers[namespace] = cipher
                return .success(cipher)
            case .shredded(let at)?:
                return .failure(.encryption(.shredded(namespace: String(decoding: namespace, as: UTF8.self), at: at)))
            case nil:
                return .failure(.encryption(.keyringDamaged(
                    path: keyringPath, detail: "no key for namespace \(String(decoding: namespace, as: UTF8.self)), which has encrypted records")))
            }
        }
    }
}
