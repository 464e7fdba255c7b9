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
        /// ``KeyIndex/hash(namespace:key:)`` of a put or tombstone (0 for other records).
        package var keyHash: UInt64
    }

    package private(set) var bytes: [UInt8] = []
    package private(set) var items: [Item] = []
    package private(set) var frameLength = 0

    /// Packs `entries`; `compressed[i]`, where present, is what is stored for entry i.
    /// Cost: one copy of every entry's bytes and one XXH3 per key.
    package init(_ entries: some Collection<Entry>, compressed: [[UInt8]?]?) {
        var size = 0
        for (position, entry) in entries.enumerated() {
            size += entry.namespace.count + entry.key.count + entry.value.count + (compressed?[position]?.count ?? 0)
        }
        bytes.reserveCapacity(size)
        items.reserveCapacity(entries.count)
        var position = 0
        for entry in entries {
            // Each field is copied from its own storage in place (no array passed by value).
            func append(_ field: UnsafeRawBufferPointer) -> Range<Int> {
                let start = bytes.count
                bytes.append(contentsOf: field)
                return start ..< bytes.count
            }
            let item = entry.namespace.withUnsafeBytes { ns in
                entry.key.withUnsafeBytes { key in
                    entry.value.withUnsafeBytes { value in
                        let namespace = append(ns), keySpan = append(key), valueSpan = append(value)
                        let lz4 = compressed?[position].map { $0.withUnsafeBytes(append) }
                        let keyHash = entry.type == .put || entry.type == .tombstone ? KeyIndex.hash(namespace: ns, key: key) : 0
                        return Item(type: entry.type, flags: lz4 == nil ? 0 : Frame.flagLZ4, namespace: namespace, key: keySpan,
                                    value: valueSpan, stored: lz4 ?? valueSpan, keyHash: keyHash)
                    }
                }
            }
            items.append(item)
            frameLength += Frame.length(namespace: item.namespace.count, key: item.key.count, stored: item.stored.count)
            position += 1
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
