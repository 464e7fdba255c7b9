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
        /// Invariant: no namespace here is in `shredded` (a cipher is added only after that
        /// check, and removed when the namespace is marked shredded, under the same lock), so a
        /// lookup that finds a cipher need not look further.
        var ciphers: [[UInt8]: RecordCipher] = [:]
        /// Namespaces the log records as shredded, and when: refused whatever the keyring says
        /// (a crash may have come between the shred record and the key's destruction).
        var shredded: [[UInt8]: Int64] = [:]
    }

    /// The keyring file, for errors.
    package let keyringPath: String
    private let state: Mutex<State>

    /// Opens the keyring at `path` with `master` (see ``Keyring/init(fs:path:storeID:master:)``).
    /// - Throws: ``SteleError/encryption(_:)`` (a wrong key, a damaged or missing keyring),
    ///   ``SteleError/io(_:)``.
    /// Records one data key may seal (``RecordCipher/recordLimit``).
    private let recordLimit: UInt64

    package init(fs: any FileSystem, path: String, storeID: [UInt8], master: EncryptionKey,
                 recordLimit: UInt64 = RecordCipher.defaultRecordLimit) throws {
        keyringPath = path
        self.recordLimit = recordLimit
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
            if let at = state.shredded[namespace] { throw Self.shredded(namespace, at) }
            let key = try state.keyring.addKey(forNamespace: namespace)
            guard let cipher = RecordCipher(dataKey: key, generation: 1, recordLimit: recordLimit) else {
                throw SteleError.encryption(.keyringDamaged(path: keyringPath, detail: "a data key is not 32 bytes"))
            }
            state.ciphers[namespace] = cipher
            return cipher
        }
    }

    /// The fingerprint of `namespace`'s live data key (``ShredRecord/fingerprint(ofDataKey:)``).
    /// - Throws: ``SteleError/encryption(_:)``: shredded, or no key (nothing was ever written).
    package func liveKeyFingerprint(_ namespace: [UInt8]) throws -> [UInt8] {
        try state.withLock { state in
            if let at = state.shredded[namespace] { throw Self.shredded(namespace, at) }
            switch state.keyring.entry(forNamespace: namespace) {
            case .live(_, let key)?: return ShredRecord.fingerprint(ofDataKey: key)
            case .shredded(let at)?: throw Self.shredded(namespace, at)
            case nil: throw SteleError.invalidArgument("namespace \(String(decoding: namespace, as: UTF8.self)) has no data key: nothing was written to it")
            }
        }
    }

    /// Refuses `namespace` from now on, as shredded at `at` (the log's shred record says so);
    /// with `destroy`, also destroys its data key in the keyring (overwritten in place, synced),
    /// if it is still there.
    /// - Throws: ``SteleError/io(_:)`` if the keyring cannot be written: the namespace is
    ///   refused anyway, and the next writable open destroys the key.
    package func markShredded(_ namespace: [UInt8], at: Int64, destroy: Bool) throws {
        try state.withLock { state in
            state.shredded[namespace] = at
            state.ciphers[namespace] = nil
            if destroy, case .live? = state.keyring.entry(forNamespace: namespace) {
                try state.keyring.shred(namespace: namespace, at: at)
            }
        }
    }

    /// The cipher of `namespace` if it has a live data key, nil if it has none yet (never made
    /// here: a lookup on a read path must not write the keyring).
    /// - Throws: ``SteleError/encryption(_:)`` if the namespace was shredded.
    package func existingCipher(_ namespace: [UInt8]) throws -> RecordCipher? {
        switch readingCipher(namespace) {
        case .success(let cipher): return cipher
        case .failure(.encryption(.keyringDamaged)): return nil
        case .failure(let error): throw error
        }
    }

    /// When `namespace` was shredded, if the log says it was.
    package func shreddedAt(_ namespace: [UInt8]) -> Int64? {
        state.withLock { $0.shredded[namespace] }
    }

    private static func shredded(_ namespace: [UInt8], _ at: Int64) -> SteleError {
        .encryption(.shredded(namespace: String(decoding: namespace, as: UTF8.self), at: at))
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
            if let at = state.shredded[namespace] { return .failure(Self.shredded(namespace, at)) }
            switch state.keyring.entry(forNamespace: namespace) {
            case .live(let generation, let key)?:
                guard let cipher = RecordCipher(dataKey: key, generation: generation, recordLimit: recordLimit) else {
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
