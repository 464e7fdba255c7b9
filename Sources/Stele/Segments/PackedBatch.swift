/// A large batch's entries laid out for the two-thread append path (`SegmentLog+Batch.swift`):
/// every namespace, key, value and stored (compressed) value in one byte buffer, and per entry
/// its type, where its fields are, and its key's table hash.
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
/// Invariant: every span lies inside `bytes`; `frameLength` is the sum of the entries' frame
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
        /// What the frame stores: `value`, or its LZ4 form.
        package var stored: Range<Int>
        /// ``KeyIndex/hash(namespace:key:)`` of a put or tombstone, once prepared (0 for other
        /// records).
        package var keyHash: UInt64
    }

    package private(set) var bytes: [UInt8] = []
    package private(set) var items: [Item] = []
    package private(set) var frameLength = 0

    package init() {}

    /// Packs `entries` (call ``prepare(compressionThreshold:)`` before appending them).
    /// Cost: one copy of every entry's bytes.
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

    /// Adds a record (not validated here: the store validates a whole batch before writing).
    /// Cost: one copy of its bytes.
    package mutating func append(type: RecordType, namespace: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer,
                                 value: UnsafeRawBufferPointer) {
        func copy(_ field: UnsafeRawBufferPointer) -> Range<Int> {
            let start = bytes.count
            bytes.append(contentsOf: field)
            return start ..< bytes.count
        }
        let namespaceSpan = copy(namespace), keySpan = copy(key), valueSpan = copy(value)
        items.append(Item(type: type, flags: 0, namespace: namespaceSpan, key: keySpan, value: valueSpan, stored: valueSpan,
                          keyHash: 0))
        frameLength += Frame.length(namespace: namespace.count, key: key.count, stored: value.count)
    }

    /// Empties the batch, keeping its storage for the next one.
    package mutating func removeAll() {
        bytes.removeAll(keepingCapacity: true)
        items.removeAll(keepingCapacity: true)
        frameLength = 0
    }

    /// Readies the batch for appending: computes every put's and tombstone's key hash, and
    /// stores each value of at least `compressionThreshold` bytes in its LZ4 form when that
    /// saves space (added to `bytes`; the value as put stays, for the leaf hash).
    /// Cost: one XXH3 per key; LZ4 over the large values.
    package mutating func prepare(compressionThreshold: Int) {
        var hashes = [UInt64](repeating: 0, count: items.count)
        var compressed: [(position: Int, bytes: [UInt8])] = []
        withFields { fields in
            for (position, item) in fields.items.enumerated() {
                if item.type == .put || item.type == .tombstone {
                    hashes[position] = KeyIndex.hash(namespace: fields[item.namespace], key: fields[item.key])
                }
                if item.value.count >= compressionThreshold, item.flags == 0,
                   let lz4 = LZ4.compressIfWorthIt(fields[item.value]) {
                    compressed.append((position, lz4))
                }
            }
        }
        for position in items.indices { items[position].keyHash = hashes[position] }
        for (position, lz4) in compressed {
            let start = bytes.count
            bytes.append(contentsOf: lz4)
            frameLength += lz4.count - items[position].stored.count
            items[position].stored = start ..< bytes.count
            items[position].flags = Frame.flagLZ4
        }
    }

    /// Calls `body` with the packed bytes and items in place: valid only during `body`.
    package func withFields<R>(_ body: (RawFields) throws -> R) rethrows -> R {
        try bytes.withUnsafeBytes { bytes in
            try items.withUnsafeBufferPointer { items in try body(RawFields(bytes: bytes, items: items)) }
        }
    }

    /// The packed batch as raw memory, for the two threads of a parallel append; whoever makes
    /// one (``withFields(_:)``) keeps it valid until both threads are done with it.
    package struct RawFields: @unchecked Sendable {
        let bytes: UnsafeRawBufferPointer
        package let items: UnsafeBufferPointer<Item>

        /// The bytes of `span`.
        @inline(__always)
        package subscript(_ span: Range<Int>) -> UnsafeRawBufferPointer {
            UnsafeRawBufferPointer(rebasing: bytes[span])
        }
    }
}
