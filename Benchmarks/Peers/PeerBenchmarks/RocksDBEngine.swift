import CRocksDB

/// RocksDB with its default options (plus `create_if_missing`), one `WriteBatch` per batch.
///
/// Mode (a): every batch written with `sync=true`. Mode (b): `sync=false`, except the last batch,
/// written with `sync=true`: a synced write syncs every WAL file not yet synced, so after it all
/// the records are durable (the C API of this RocksDB, 7.8, has no `FlushWAL`).
struct RocksDBEngine: Engine {
    let name = "RocksDB"

    /// Turns RocksDB's `char** errptr` convention into a thrown error.
    static func check(_ what: String, _ body: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Void) throws {
        var message: UnsafeMutablePointer<CChar>?
        body(&message)
        if let message {
            defer { rocksdb_free(message) }
            throw EngineError("RocksDB", "\(what): \(String(cString: message))")
        }
    }

    static func open(_ directory: String) throws -> (OpaquePointer, OpaquePointer) {
        guard let options = rocksdb_options_create() else { throw EngineError("RocksDB", "options_create failed") }
        rocksdb_options_set_create_if_missing(options, 1)
        var db: OpaquePointer?
        do {
            try check("open \(directory)") { db = rocksdb_open(options, directory, $0) }
        } catch {
            rocksdb_options_destroy(options)
            throw error
        }
        guard let db else {
            rocksdb_options_destroy(options)
            throw EngineError("RocksDB", "open \(directory) returned nothing")
        }
        return (db, options)
    }

    struct Writer: WriteSession {
        let db: OpaquePointer
        let options: OpaquePointer
        let batch: OpaquePointer
        let ordinaryWrite: OpaquePointer
        let syncedWrite: OpaquePointer
        let durability: Durability
        let workload: Workload

        mutating func writeBatch(_ number: Int, isLast: Bool) throws {
            rocksdb_writebatch_clear(batch)
            for index in workload.recordRange(ofBatch: number) {
                let key = workload.key(index), value = workload.value(index)
                rocksdb_writebatch_put(batch, chars(key), key.count, chars(value), value.count)
            }
            let writeOptions = durability == .everyBatch || isLast ? syncedWrite : ordinaryWrite
            try RocksDBEngine.check("write") { rocksdb_write(db, writeOptions, batch, $0) }
        }

        mutating func finish() throws {
            rocksdb_writebatch_destroy(batch)
            rocksdb_writeoptions_destroy(ordinaryWrite)
            rocksdb_writeoptions_destroy(syncedWrite)
            rocksdb_close(db)
            rocksdb_options_destroy(options)
        }
    }

    struct Reader: ReadSession {
        let db: OpaquePointer
        let options: OpaquePointer
        let readOptions: OpaquePointer
        let workload: Workload

        mutating func read(_ index: Int) throws -> Bool {
            let key = workload.key(index)
            var slice: OpaquePointer?
            try RocksDBEngine.check("get") { slice = rocksdb_get_pinned(db, readOptions, chars(key), key.count, $0) }
            // A pinned slice points into the block cache or memtable: no copy, as LMDB's reads.
            guard let slice else { return false }
            defer { rocksdb_pinnableslice_destroy(slice) }
            var length = 0
            let bytes = rocksdb_pinnableslice_value(slice, &length)
            return workload.isValue(index, UnsafeRawBufferPointer(start: bytes, count: length))
        }

        mutating func close() throws {
            rocksdb_readoptions_destroy(readOptions)
            rocksdb_close(db)
            rocksdb_options_destroy(options)
        }
    }

    func openWriter(directory: String, durability: Durability, workload: Workload) throws -> Writer {
        let (db, options) = try Self.open(directory)
        guard let batch = rocksdb_writebatch_create(), let ordinaryWrite = rocksdb_writeoptions_create(),
              let syncedWrite = rocksdb_writeoptions_create() else {
            rocksdb_close(db)
            throw EngineError("RocksDB", "could not allocate a write batch or write options")
        }
        rocksdb_writeoptions_set_sync(syncedWrite, 1)
        return Writer(db: db, options: options, batch: batch, ordinaryWrite: ordinaryWrite, syncedWrite: syncedWrite,
                      durability: durability, workload: workload)
    }

    func openReader(directory: String, durability: Durability, workload: Workload) throws -> Reader {
        let (db, options) = try Self.open(directory)
        guard let readOptions = rocksdb_readoptions_create() else {
            rocksdb_close(db)
            throw EngineError("RocksDB", "could not allocate read options")
        }
        return Reader(db: db, options: options, readOptions: readOptions, workload: workload)
    }
}

/// A byte buffer as the `const char*` the C APIs of RocksDB and LevelDB take.
func chars(_ bytes: UnsafeRawBufferPointer) -> UnsafePointer<CChar>? {
    bytes.baseAddress?.assumingMemoryBound(to: CChar.self)
}
