import Stele

/// Stele through its public API, full write path: frame encoding, XXH3, SHA-256 leaf hashes, the
/// Merkle frontier and tiles, the key index, seals of 64 MiB segments.
///
/// Mode (a) is ``CommitPolicy/everyBatch`` (each `putBatch` returns after its `msync`); mode (b)
/// is ``CommitPolicy/none`` with the final sync done by `close()`.
struct SteleEngine: Engine {
    let name = "Stele"
    static let namespace = "bench"

    struct Writer: WriteSession {
        let store: Store
        /// Built before the clock starts: making up the input is not what is measured (the C
        /// engines get pointers into ready buffers). `EntryBatch` is Stele's bulk-write type: one
        /// buffer per batch, as a caller ingesting at this rate would use it.
        let batches: [EntryBatch]

        mutating func writeBatch(_ batch: Int, isLast: Bool) throws {
            _ = try store.putBatch(batches[batch])
        }

        mutating func finish() throws {
            try store.close()
        }
    }

    struct Reader: ReadSession {
        let store: Store
        let workload: Workload
        /// One key array, refilled for every read (the API takes `[UInt8]`; a fresh array per
        /// read would add an allocation the C engines, which take a pointer, do not pay).
        var key: [UInt8] = []

        mutating func read(_ index: Int) throws -> Bool {
            // The key is copied out of the workload's flat buffer, as the C engines read it in
            // place: an array of a million separately allocated key arrays, walked at random,
            // would cost Stele two extra cache misses per read that the peers do not pay.
            // `withValue` reads the value in place (LMDB's `mdb_get` also hands out a pointer into
            // its map; `get` would add a `Version` and a copy of the value).
            let source = workload.key(index)
            if key.count != source.count { key = [UInt8](repeating: 0, count: source.count) }
            key.withUnsafeMutableBytes { $0.copyMemory(from: source) }
            return try store.withValue(namespace: SteleEngine.namespace, key: key) { workload.isValue(index, $0) } ?? false
        }

        mutating func close() throws {
            try store.close()
        }
    }

    func openWriter(directory: String, durability: Durability, workload: Workload) throws -> Writer {
        try Store.create(at: directory)
        let policy: CommitPolicy = durability == .everyBatch ? .everyBatch : .none
        let store = try Store(path: directory, options: .init(commitPolicy: policy))
        let batches = (0 ..< workload.batchCount).map { batch in
            let records = workload.recordRange(ofBatch: batch)
            var entries = EntryBatch(reservingCapacity: records.count, bytes: records.count * workload.payloadBytesPerRecord)
            for index in records { entries.put(namespace: Self.namespace, key: workload.key(index), value: workload.value(index)) }
            return entries
        }
        return Writer(store: store, batches: batches)
    }

    func openReader(directory: String, durability: Durability, workload: Workload) throws -> Reader {
        let store = try Store(path: directory, options: .init(readOnly: true))
        return Reader(store: store, workload: workload)
    }
}
