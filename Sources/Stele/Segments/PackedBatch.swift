import SteleNative

/// A large batch's entries laid out for the two-thread append path (`SegmentLog+Batch.swift`):
/// every namespace, key and value in one byte buffer (LZ4 forms in a second), and per entry its
/// type, where its fields are, and its key's table hash.
///
/// Why: both threads of a parallel batch read every entry, the writer for the frame and the
/// index, the hasher for the leaf. Read from `[Entry]`, each of an entry's three arrays was
/// retained and released by both threads (on the same reference counts), and once more by each
/// pass over the batch (validation, sizes, key hashes). Packed once, before the writer lock is
/// taken, the entries are plain bytes that both threads read with no reference counting. In the
/// 1 M-put harness (100-byte values, batches of 1,000) this cut CPU time by about 8% and raised
/// throughput by about as much.
///
/// Also what ``EntryBatch``, the public way to append many records without an array per field,
/// is made of.
///
/// Invariant: every span lies inside `bytes` (`stored` of a compressed entry: inside
/// `compressedBytes`); `frameLength` is the sum of the entries' frame
/// lengths (what ``SegmentLog/appendInParallel(_:timestamp:)`` needs room for).
package struct PackedBatch: Sendable {
    package struct Item: Sendable {
        package var type: RecordType
        /// ``Frame/flagLZ4`` when `stored` holds the value compressed, else 0.
        package var flags: UInt8
        package var namespace: Range<Int>
        package var key: Range<Int>
        /// The value as put (what the leaf hash covers).
        package var value: Range<Int>
        /// What the frame stores: `value` in `bytes`, or (with ``Frame/flagLZ4``) its LZ4 form in
        /// `compressedBytes`; read it through ``RawFields/stored(_:)``.
        package var stored: Range<Int>
        /// ``KeyIndex/hash(namespace:key:)`` of a put or tombstone (0 for other records).
        package var keyHash: UInt64
        /// The key the key index files: `key` itself, or in a sealed batch (``Frame/flagEncrypted``)
        /// the plaintext of the key blob that `key` holds.
        package var plainKey: Range<Int>

        /// Whether `key` and `value` are an encrypted record's blobs (a sealed batch's entry).
        package var isEncrypted: Bool { flags & Frame.flagEncrypted != 0 }
    }

    package private(set) var bytes: [UInt8] = []
    /// The LZ4 forms of the values that ``compress(threshold:)`` compressed.
    package private(set) var compressedBytes: [UInt8] = []
    package private(set) var items: [Item] = []
    package private(set) var frameLength = 0

    package init() {}

    /// Packs `entries` (``compress(threshold:)`` before appending them).
    /// Cost: one copy of every entry's bytes, one XXH3 per key.
    package init(_ entries: some Collection<Entry>) {
        var size = 0
        for entry in entries { size += entry.namespace.count + entry.key.count + entry.value.count }
        reserve(records: entries.count, bytes: size)
        for entry in entries {
            // Each field is copied from its own storage in place (no array passed by value).
            entry.namespace.withUnsafeBytes { ns in
                entry.key.withUnsafeBytes { key in
                    entry.value.withUnsafeBytes { append(type: entry.type, namespace: ns, key: key, value: $0) }
                }
            }
        }
    }

    package mutating func reserve(records: Int, bytes count: Int) {
        items.reserveCapacity(records)
        bytes.reserveCapacity(count)
    }

    /// Adds a record (not validated here: the store validates a whole batch before writing),
    /// with its key's table hash, computed while the bytes are at hand.
    /// Cost: one copy of its bytes and, for a put or tombstone, one XXH3 of its key.
    package mutating func append(type: RecordType, namespace: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer,
                                 value: UnsafeRawBufferPointer) {
        func copy(_ field: UnsafeRawBufferPointer) -> Range<Int> {
            let start = bytes.count
            bytes.append(contentsOf: field)
            return start ..< bytes.count
        }
        let namespaceSpan = copy(namespace), keySpan = copy(key), valueSpan = copy(value)
        let keyHash = type == .put || type == .tombstone ? KeyIndex.hash(namespace: namespace, key: key) : 0
        items.append(Item(type: type, flags: 0, namespace: namespaceSpan, key: keySpan, value: valueSpan, stored: valueSpan,
                          keyHash: keyHash, plainKey: keySpan))
        frameLength += Frame.length(namespace: namespace.count, key: key.count, stored: value.count)
    }

    /// Empties the batch, keeping its storage for the next one.
    package mutating func removeAll() {
        bytes.removeAll(keepingCapacity: true)
        compressedBytes.removeAll(keepingCapacity: true)
        items.removeAll(keepingCapacity: true)
        frameLength = 0
    }

    /// Stores each value of at least `threshold` bytes in its LZ4 form when that saves space.
    /// The forms go to `compressedBytes`, so that `bytes`, shared with the caller's batch, is
    /// never copied; the value as put stays, for the leaf hash.
    /// Cost: LZ4 over the large values; nothing when there are none.
    package mutating func compress(threshold: Int) {
        guard items.contains(where: { $0.value.count >= threshold && $0.flags == 0 }) else { return }
        var compressed: [(position: Int, bytes: [UInt8])] = []
        withFields { fields in
            for (position, item) in fields.items.enumerated() where item.value.count >= threshold && item.flags == 0 {
                if let lz4 = LZ4.compressIfWorthIt(fields[item.value]) { compressed.append((position, lz4)) }
            }
        }
        for (position, lz4) in compressed { store(position, compressedAs: lz4) }
    }

    /// Adds `entries`, entry i stored as `compressed[i]` (its LZ4 form) where given.
    package mutating func append(_ entries: some Collection<Entry>, compressed: [[UInt8]?]?) {
        let start = items.count
        for entry in entries {
            entry.namespace.withUnsafeBytes { ns in
                entry.key.withUnsafeBytes { key in
                    entry.value.withUnsafeBytes { append(type: entry.type, namespace: ns, key: key, value: $0) }
                }
            }
        }
        for (position, lz4) in (compressed ?? []).enumerated() where start + position < items.count {
            if let lz4 { store(start + position, compressedAs: lz4) }
        }
    }

    private mutating func store(_ position: Int, compressedAs lz4: [UInt8]) {
        let start = compressedBytes.count
        compressedBytes.append(contentsOf: lz4)
        frameLength += lz4.count - items[position].stored.count
        items[position].stored = start ..< compressedBytes.count
        items[position].flags = Frame.flagLZ4
    }

    /// Adds an entry of a sealed batch (docs/format.md, "Encrypted records"), whose bytes are
    /// written later (``withSealedBytes(count:_:)``): `bytes` holds every record's namespace, key
    /// blob, value blob and plaintext key where its item says; each item's `key` is the key blob,
    /// its `value` and `stored` the value blob, its `plainKey` the plaintext key, and its flags
    /// have ``Frame/flagEncrypted`` (and ``Frame/flagLZ4`` if the blob holds an LZ4 form).
    package mutating func appendSealed(_ item: Item) {
        items.append(item)
        frameLength += Frame.length(namespace: item.namespace.count, key: item.key.count, stored: item.value.count)
    }

    /// Sets a sealed batch's `bytes` to `count` zeros (in the storage it already has) and calls
    /// `body` with them, to be written where the items (its second argument) say.
    package mutating func withSealedBytes<R>(count: Int, _ body: (UnsafeMutableRawBufferPointer, UnsafeBufferPointer<Item>) throws -> R) rethrows -> R {
        bytes.removeAll(keepingCapacity: true)
        bytes.append(contentsOf: repeatElement(0, count: count))
        return try items.withUnsafeBufferPointer { items in try bytes.withUnsafeMutableBytes { try body($0, items) } }
    }

    /// Bytes of storage kept (for reuse by the next batch).
    package var capacity: Int { bytes.capacity + compressedBytes.capacity + items.capacity * MemoryLayout<Item>.stride }

    /// Calls `body` with the packed bytes and items in place: valid only during `body`.
    package func withFields<R>(_ body: (RawFields) throws -> R) rethrows -> R {
        try bytes.withUnsafeBytes { bytes in
            try compressedBytes.withUnsafeBytes { compressed in
                try items.withUnsafeBufferPointer { items in
                    try body(RawFields(bytes: bytes, compressed: compressed, items: items))
                }
            }
        }
    }

    /// The packed batch as raw memory, for the two threads of a parallel append; whoever makes
    /// one (``withFields(_:)``) keeps it valid until both threads are done with it.
    package struct RawFields: @unchecked Sendable {
        let bytes: UnsafeRawBufferPointer
        let compressed: UnsafeRawBufferPointer
        package let items: UnsafeBufferPointer<Item>

        /// The bytes of `span` (a namespace, key or value).
        @inline(__always)
        package subscript(_ span: Range<Int>) -> UnsafeRawBufferPointer {
            UnsafeRawBufferPointer(rebasing: bytes[span])
        }

        /// What `item`'s frame stores: its value, or the value's LZ4 form.
        @inline(__always)
        package func stored(_ item: Item) -> UnsafeRawBufferPointer {
            UnsafeRawBufferPointer(rebasing: (item.flags == Frame.flagLZ4 ? compressed : bytes)[item.stored])
        }
    }
}
