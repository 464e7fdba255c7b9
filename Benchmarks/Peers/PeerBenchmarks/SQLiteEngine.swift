import CSQLite

/// SQLite in WAL mode, one `WITHOUT ROWID` table keyed by the 16-byte key, one prepared INSERT,
/// one transaction per batch.
///
/// Mode (a): `synchronous=FULL` (the WAL is synced at every commit). Mode (b):
/// `synchronous=NORMAL` (commits are not synced; the WAL is synced at a checkpoint), then a final
/// `wal_checkpoint(TRUNCATE)`, which syncs the WAL and the database file. Everything else is
/// SQLite's default (page cache, page size).
struct SQLiteEngine: Engine {
    let name = "SQLite"

    static func check(_ db: OpaquePointer?, _ code: Int32, _ what: String) throws {
        guard code == SQLITE_OK || code == SQLITE_DONE || code == SQLITE_ROW else {
            let message = db.flatMap { sqlite3_errmsg($0) }.map { String(cString: $0) } ?? "code \(code)"
            throw EngineError("SQLite", "\(what): \(message)")
        }
    }

    static func execute(_ db: OpaquePointer, _ sql: String) throws {
        try check(db, sqlite3_exec(db, sql, nil, nil, nil), sql)
    }

    static func open(_ directory: String) throws -> OpaquePointer {
        var db: OpaquePointer?
        let code = sqlite3_open_v2(directory + "/bench.sqlite", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nil)
        guard code == SQLITE_OK, let db else {
            sqlite3_close_v2(db)
            throw EngineError("SQLite", "open \(directory): code \(code)")
        }
        return db
    }

    static func prepare(_ db: OpaquePointer, _ sql: String) throws -> OpaquePointer {
        var statement: OpaquePointer?
        try check(db, sqlite3_prepare_v2(db, sql, -1, &statement, nil), sql)
        guard let statement else { throw EngineError("SQLite", "empty statement: \(sql)") }
        return statement
    }

    struct Writer: WriteSession {
        let db: OpaquePointer
        let insert: OpaquePointer
        let durability: Durability
        let workload: Workload

        mutating func writeBatch(_ batch: Int, isLast: Bool) throws {
            try SQLiteEngine.execute(db, "BEGIN")
            for index in workload.recordRange(ofBatch: batch) {
                let key = workload.key(index), value = workload.value(index)
                // A nil destructor is SQLITE_STATIC: the buffers outlive the statement's use.
                try SQLiteEngine.check(db, sqlite3_bind_blob(insert, 1, key.baseAddress, Int32(key.count), nil), "bind")
                try SQLiteEngine.check(db, sqlite3_bind_blob(insert, 2, value.baseAddress, Int32(value.count), nil), "bind")
                try SQLiteEngine.check(db, sqlite3_step(insert), "insert")
                try SQLiteEngine.check(db, sqlite3_reset(insert), "reset")
            }
            try SQLiteEngine.execute(db, "COMMIT")
        }

        mutating func finish() throws {
            sqlite3_finalize(insert)
            if durability == .atEnd { try SQLiteEngine.execute(db, "PRAGMA wal_checkpoint(TRUNCATE)") }
            try SQLiteEngine.check(db, sqlite3_close_v2(db), "close")
        }
    }

    struct Reader: ReadSession {
        let db: OpaquePointer
        let select: OpaquePointer
        let workload: Workload

        mutating func read(_ index: Int) throws -> Bool {
            let key = workload.key(index)
            try SQLiteEngine.check(db, sqlite3_bind_blob(select, 1, key.baseAddress, Int32(key.count), nil), "bind")
            defer { sqlite3_reset(select) }
            guard try stepHasRow() else { return false }
            let bytes = sqlite3_column_blob(select, 0)
            let count = Int(sqlite3_column_bytes(select, 0))
            return workload.isValue(index, UnsafeRawBufferPointer(start: bytes, count: count))
        }

        private func stepHasRow() throws -> Bool {
            let code = sqlite3_step(select)
            try SQLiteEngine.check(db, code, "select")
            return code == SQLITE_ROW
        }

        mutating func close() throws {
            sqlite3_finalize(select)
            try SQLiteEngine.execute(db, "COMMIT")
            try SQLiteEngine.check(db, sqlite3_close_v2(db), "close")
        }
    }

    func openWriter(directory: String, durability: Durability, workload: Workload) throws -> Writer {
        let db = try Self.open(directory)
        try Self.execute(db, "PRAGMA journal_mode=WAL")
        try Self.execute(db, durability == .everyBatch ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL")
        try Self.execute(db, "CREATE TABLE kv(k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID")
        let insert = try Self.prepare(db, "INSERT INTO kv(k, v) VALUES(?, ?)")
        return Writer(db: db, insert: insert, durability: durability, workload: workload)
    }

    func openReader(directory: String, durability: Durability, workload: Workload) throws -> Reader {
        let db = try Self.open(directory)
        // One read transaction for the whole pass, as LMDB's single read transaction: the
        // store does not change, and a transaction per SELECT would measure locking instead.
        try Self.execute(db, "BEGIN")
        let select = try Self.prepare(db, "SELECT v FROM kv WHERE k = ?")
        return Reader(db: db, select: select, workload: workload)
    }
}
