import CLMDB

/// LMDB, one unnamed database, one write transaction per batch, `MDB_APPEND` (the keys arrive in
/// sorted order, and a user writing a log into LMDB would say so).
///
/// Mode (a): default flags (the commit syncs). Mode (b): `MDB_NOSYNC | MDB_WRITEMAP` (the
/// configuration behind the fastest figures quoted for LMDB), then `mdb_env_sync(force: 1)`.
struct LMDBEngine: Engine {
    let name = "LMDB"

    static func check(_ code: Int32, _ what: String) throws {
        guard code == MDB_SUCCESS else { throw EngineError("LMDB", "\(what): \(String(cString: mdb_strerror(code)))") }
    }

    /// Opens (or creates) the environment in `directory` with `flags`; the map is sized for the
    /// workload with room to spare (it is address space; only pages written take disk).
    static func open(_ directory: String, flags: UInt32, workload: Workload) throws -> (OpaquePointer, MDB_dbi) {
        var environment: OpaquePointer?
        try check(mdb_env_create(&environment), "env_create")
        guard let environment else { throw EngineError("LMDB", "env_create returned nothing") }
        let mapSize = max(256 << 20, workload.records * (workload.payloadBytesPerRecord + 64) * 4)
        do {
            try check(mdb_env_set_mapsize(environment, mapSize), "set_mapsize")
            try check(mdb_env_open(environment, directory, flags, 0o644), "env_open \(directory)")
            var transaction: OpaquePointer?
            try check(mdb_txn_begin(environment, nil, 0, &transaction), "txn_begin")
            var database: MDB_dbi = 0
            try check(mdb_dbi_open(transaction, nil, 0, &database), "dbi_open")
            try check(mdb_txn_commit(transaction), "commit")
            return (environment, database)
        } catch {
            mdb_env_close(environment)
            throw error
        }
    }

    struct Writer: WriteSession {
        let environment: OpaquePointer
        let database: MDB_dbi
        let durability: Durability
        let workload: Workload

        mutating func writeBatch(_ batch: Int, isLast: Bool) throws {
            var transaction: OpaquePointer?
            try LMDBEngine.check(mdb_txn_begin(environment, nil, 0, &transaction), "txn_begin")
            for index in workload.recordRange(ofBatch: batch) {
                let key = workload.key(index), value = workload.value(index)
                var keyValue = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
                var dataValue = MDB_val(mv_size: value.count, mv_data: UnsafeMutableRawPointer(mutating: value.baseAddress))
                let code = mdb_put(transaction, database, &keyValue, &dataValue, UInt32(MDB_APPEND))
                if code != MDB_SUCCESS {
                    mdb_txn_abort(transaction)
                    try LMDBEngine.check(code, "put")
                }
            }
            try LMDBEngine.check(mdb_txn_commit(transaction), "commit")
        }

        mutating func finish() throws {
            if durability == .atEnd { try LMDBEngine.check(mdb_env_sync(environment, 1), "env_sync") }
            mdb_env_close(environment)
        }
    }

    struct Reader: ReadSession {
        let environment: OpaquePointer
        let database: MDB_dbi
        let transaction: OpaquePointer
        let workload: Workload

        mutating func read(_ index: Int) throws -> Bool {
            let key = workload.key(index)
            var keyValue = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
            var dataValue = MDB_val()
            let code = mdb_get(transaction, database, &keyValue, &dataValue)
            if code == MDB_NOTFOUND { return false }
            try LMDBEngine.check(code, "get")
            return workload.isValue(index, UnsafeRawBufferPointer(start: dataValue.mv_data, count: dataValue.mv_size))
        }

        mutating func close() throws {
            mdb_txn_abort(transaction)
            mdb_env_close(environment)
        }
    }

    private static func flags(_ durability: Durability) -> UInt32 {
        durability == .everyBatch ? 0 : UInt32(MDB_NOSYNC | MDB_WRITEMAP)
    }

    func openWriter(directory: String, durability: Durability, workload: Workload) throws -> Writer {
        let (environment, database) = try Self.open(directory, flags: Self.flags(durability), workload: workload)
        return Writer(environment: environment, database: database, durability: durability, workload: workload)
    }

    func openReader(directory: String, durability: Durability, workload: Workload) throws -> Reader {
        let (environment, database) = try Self.open(directory, flags: Self.flags(durability), workload: workload)
        // One read transaction for the whole pass: LMDB's reads are snapshot reads, and the
        // store does not change.
        var transaction: OpaquePointer?
        do {
            try Self.check(mdb_txn_begin(environment, nil, UInt32(MDB_RDONLY), &transaction), "txn_begin")
        } catch {
            mdb_env_close(environment)
            throw error
        }
        guard let transaction else { throw EngineError("LMDB", "txn_begin returned nothing") }
        return Reader(environment: environment, database: database, transaction: transaction, workload: workload)
    }
}
