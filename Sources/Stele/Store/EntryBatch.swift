import SteleNative

/// Many puts gathered in one buffer, for ``Store/putBatch(_:)-87d25``: the way to append
/// large batches without an array per namespace, key and value.
///
/// An `[Entry]` costs three heap arrays per record to build, and the store copies them into one
/// buffer before writing anyway; an `EntryBatch` is that buffer, filled by the caller. Reuse one
/// across batches (``removeAll()``) and appending allocates nothing per record.
///
/// Nothing is checked as records are added: ``Store/putBatch(_:)-87d25`` checks the whole
/// batch before writing any of it.
public struct EntryBatch: Sendable {
    package private(set) var packed = PackedBatch()

    /// An empty batch.
    public init() {}

    /// An empty batch with room for `records` records of `bytes` bytes of namespaces, keys and
    /// values in all.
    public init(reservingCapacity records: Int, bytes: Int) {
        packed.reserve(records: records, bytes: bytes)
    }

    /// The number of records added.
    public var count: Int { packed.items.count }

    /// Whether no record has been added.
    public var isEmpty: Bool { packed.items.isEmpty }

    /// Adds a put of `value` under `namespace`/`key` (both copied).
    /// Cost: one copy of the three fields and an XXH3 of the key (its index hash, needed when
    /// the batch is written); no allocation once the batch has grown to its size.
    public mutating func put(namespace: String, key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        var namespace = namespace
        namespace.withUTF8 { packed.append(type: .put, namespace: UnsafeRawBufferPointer($0), key: key, value: value) }
    }

    /// Adds a put of `value` under `namespace`/`key` (both copied).
    public mutating func put(namespace: String, key: [UInt8], value: [UInt8]) {
        key.withUnsafeBytes { key in value.withUnsafeBytes { put(namespace: namespace, key: key, value: $0) } }
    }

    /// Removes every record, keeping the storage for the next batch.
    public mutating func removeAll() {
        packed.removeAll()
    }
}

extension Store {
    /// Writes the puts of `batch` as consecutive records, like ``putBatch(_:)-9yjd2`` but
    /// without an array per field (see ``EntryBatch``).
    ///
    /// Durability follows the store's ``CommitPolicy`` and is stated in the receipt, as for
    /// ``append(contentsOf:)-3q6im``: under ``CommitPolicy/everyBatch`` every record is synced
    /// before this returns. A batch is not atomic across a crash: if the call does not return,
    /// any prefix of it may survive.
    /// - Throws: ``SteleError/invalidArgument(_:)`` if the batch is empty or any record is
    ///   invalid (namespace not 1-255 bytes or containing NUL, key not 1-4096 bytes, value too
    ///   large for a segment), before anything is written; otherwise as ``append(contentsOf:)-3q6im``.
    /// - Cost: as ``append(contentsOf:)-3q6im`` less the packing of the entries into one buffer.
    @discardableResult
    public func putBatch(_ batch: EntryBatch) throws -> Receipt {
        try appendPacked(batch.packed)
    }
}
