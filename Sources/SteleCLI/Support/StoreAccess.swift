import Stele

/// How a command opens its store.
enum StoreAccess {
    /// Without the writer lock, so that the command works beside a running writer; nothing is
    /// repaired (a torn tail is reported and left for the writer).
    case readOnly
    /// Read-only, reading records by sequence number only: no key index is built, which a
    /// command that never looks a key up (`verify`) need not pay for on a large store.
    case readOnlyWithoutKeyIndex
    /// With the writer lock; appends are durable as the policy says.
    case writable(CommitPolicy)

    var options: Store.Options {
        switch self {
        case .readOnly:
            return Store.Options(readOnly: true)
        case .readOnlyWithoutKeyIndex:
            var options = Store.Options(readOnly: true)
            options.keyIndex = false
            return options
        case .writable(let policy):
            return Store.Options(commitPolicy: policy)
        }
    }
}

/// Opens the store at `path`, runs `body` with it and closes it, on every way out of `body`.
///
/// A writer's close is its final sync, so on success a failed close is thrown: the command must
/// not report writes that may not be durable. When `body` throws, its error is the one reported
/// and the close only releases the lock and the mappings. Closing twice is harmless, so a body
/// may close the store itself when it must see the close's outcome first (`append` reports what
/// was committed, `bench` times the final sync).
func withStore<Value>(at path: String, _ access: StoreAccess, encryptionKey: EncryptionKey? = nil,
                      _ body: (Store) throws -> Value) throws -> Value {
    var options = access.options
    options.encryptionKey = encryptionKey
    let store = try Store(path: path, options: options)
    let result: Value
    do {
        result = try body(store)
    } catch {
        try? store.close()
        throw error
    }
    try store.close()
    return result
}

/// ``withStore(at:_:encryptionKey:_:)`` for a command's store directory, with the master key
/// its `--encryption-key` (or `STELE_ENCRYPTION_KEY_FILE`) names.
func withStore<Value>(_ directory: StoreDirectory, _ access: StoreAccess, _ body: (Store) throws -> Value) throws -> Value {
    try withStore(at: directory.path, access, encryptionKey: try directory.encryptionKey(), body)
}
