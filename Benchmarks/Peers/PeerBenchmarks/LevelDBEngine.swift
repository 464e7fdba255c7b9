import CLevelDB

/// LevelDB with its default options (plus `create_if_missing`), one `WriteBatch` per batch.
///
/// Mode (a): every batch written with `sync=true`. Mode (b): `sync=false`, except the last batch,
/// written with `sync=true`, which syncs the current log; the C API has no flush call. Records in
/// an older log (left when the memtable filled) rest on that memtable's compaction into a synced
/// table, which LevelDB runs in the background: if anything, this is generous to LevelDB.
struct LevelDBEngine: Engine {
    let name = "LevelDB"

    /// Turns LevelDB's `char** errptr` convention into a thrown error.
    static func check(_ what: String, _ body: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Void) throws {
        var message: UnsafeMutablePointer<CChar>?
        body(&message)
        if let message {
            defer { leveldb_free(message) }
            throw EngineError("LevelDB", "\(what): \(String(cString: message))")
        }
    }

    static func open(_ directory: String) throws -> (OpaquePointer, OpaquePointer) {
        guard let options = leveldb_options_create() else { throw EngineError("LevelDB", "options_create failed") }
        leveldb_options_set_create_if_missing(options, 1)
        var db: OpaquePointer?
        do {
            try check("open \(directory)") { db = leveldb_open(options, directory, $0) }
        } catch {
            leveldb_options_destroy(options)
            throw error
        }
        guard let db else {
            leveldb_options_destroy(options)
            throw EngineError("LevelDB", "open \(directory) returned nothing")
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
            leveldb_writebatch_clear(batch)
            for index in workload.recordRange(ofBatch: number) {
                let key = workload.key(index), value = workload.value(index)
                leveldb_writebatch_put(batch, chars(key), key.count, chars(value), value.count)
            }
            let writeOptions = durability == .everyBatch || isLast ? syncedWrite : ordinaryWrite
            try LevelDBEngine.check("write") { leveldb_write(db, writeOptions, batch, $0) }
        }

        mutating func finish() throws {
            leveldb_writebatch_destroy(batch)
            leveldb_writeoptions_destroy(ordinaryWrite)
            leveldb_writeoptions_destroy(syncedWrite)
            leveldb_close(db)
            leveldb_options_destroy(options)
        }
    }

    struct Reader: ReadSession {
        let db: OpaquePointer
        let options: OpaquePointer
        let readOptions: OpaquePointer
        let workload: Workload

        mutating func read(_ index: Int) throws -> Bool {
            let key = workload.key(index)
            var length = 0
            var bytes: UnsafeMutablePointer<CChar>?
            try LevelDBEngine.check("get") { bytes = leveldb_get(db, readOptions, chars(key), key.count, &length, $0) }
            // LevelDB's C API returns a malloc'd copy (it has no pinned reads); that copy is its cost.
            guard let bytes else { return false }
            defer { leveldb_free(bytes) }
            return workload.isValue(index, UnsafeRawBufferPointer(start: bytes, count: length))
        }

        mutating func close() throws {
            leveldb_readoptions_destroy(readOptions)
            leveldb_close(db)
            leveldb_options_destroy(options)
        }
    }

    func openWriter(directory: String, durability: Durability, workload: Workload) throws -> Writer {
        let (db, options) = try Self.open(directory)
        guard let batch = leveldb_writebatch_create(), let ordinaryWrite = leveldb_writeoptions_create(),
              let syncedWrite = leveldb_writeoptions_create() else {
            leveldb_close(db)
            throw EngineError("LevelDB", "could not allocate a write batch or write options")
        }
        leveldb_writeoptions_set_sync(syncedWrite, 1)
        return Writer(db: db, options: options, batch: batch, ordinaryWrite: ordinaryWrite, syncedWrite: syncedWrite,
                      durability: durability, workload: workload)
    }

    func openReader(directory: String, durability: Durability, workload: Workload) throws -> Reader {
        let (db, options) = try Self.open(directory)
        guard let readOptions = leveldb_readoptions_create() else {
            leveldb_close(db)
            throw EngineError("LevelDB", "could not allocate read options")
        }
        return Reader(db: db, options: options, readOptions: readOptions, workload: workload)
    }
}
