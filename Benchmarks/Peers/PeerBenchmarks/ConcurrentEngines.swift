import CLMDB
import CLevelDB
import CRocksDB
import CSQLite
import Foundation
import Stele

// Each engine under the concurrent workload, with every put durable before it returns, in the
// engine's own way of sharing syncs among concurrent writers (or not having one).

/// Stele, `.everyBatch`: each `put` returns after the group commit's sync that covers it.
extension SteleEngine: ConcurrentEngine {
    final class Concurrent: ConcurrentStore, ConcurrentWriter, @unchecked Sendable {
        let store: Store
        /// Built before the clock starts, as the C engines get pointers into ready buffers.
        let keys: [[UInt8]]
        let values: [[UInt8]]

        init(store: Store, workload: Workload) {
            self.store = store
            keys = (0 ..< workload.records).map { Array(workload.key($0)) }
            values = (0 ..< workload.records).map { Array(workload.value($0)) }
        }

        func writer() throws -> any ConcurrentWriter { self }
        func put(_ index: Int) throws { _ = try store.put(namespace: SteleEngine.namespace, key: keys[index], value: values[index]) }
        func close() throws { try store.close() }
    }

    func openConcurrent(directory: String, workload: Workload) throws -> any ConcurrentStore {
        try Store.create(at: directory)
        return Concurrent(store: try Store(path: directory, options: .init(commitPolicy: .everyBatch)), workload: workload)
    }
}

/// LevelDB, one shared handle, `sync=true` on every put: its writers queue, and the one at the
/// front writes and syncs the log for all queued behind it.
extension LevelDBEngine: ConcurrentEngine {
    final class Concurrent: ConcurrentStore, ConcurrentWriter {
        let db: OpaquePointer
        let options: OpaquePointer
        let syncedWrite: OpaquePointer
        let workload: Workload

        init(db: OpaquePointer, options: OpaquePointer, syncedWrite: OpaquePointer, workload: Workload) {
            (self.db, self.options, self.syncedWrite, self.workload) = (db, options, syncedWrite, workload)
        }

        func writer() throws -> any ConcurrentWriter { self }

        func put(_ index: Int) throws {
            let key = workload.key(index), value = workload.value(index)
            try LevelDBEngine.check("put") { leveldb_put(db, syncedWrite, chars(key), key.count, chars(value), value.count, $0) }
        }

        func close() throws {
            leveldb_writeoptions_destroy(syncedWrite)
            leveldb_close(db)
            leveldb_options_destroy(options)
        }
    }

    func openConcurrent(directory: String, workload: Workload) throws -> any ConcurrentStore {
        let (db, options) = try Self.open(directory)
        guard let syncedWrite = leveldb_writeoptions_create() else {
            leveldb_close(db)
            throw EngineError(name, "could not allocate write options")
        }
        leveldb_writeoptions_set_sync(syncedWrite, 1)
        return Concurrent(db: db, options: options, syncedWrite: syncedWrite, workload: workload)
    }
}

/// RocksDB, one shared handle, `sync=true` on every put (its write groups share the WAL sync).
extension RocksDBEngine: ConcurrentEngine {
    final class Concurrent: ConcurrentStore, ConcurrentWriter {
        let db: OpaquePointer
        let options: OpaquePointer
        let syncedWrite: OpaquePointer
        let workload: Workload

        init(db: OpaquePointer, options: OpaquePointer, syncedWrite: OpaquePointer, workload: Workload) {
            (self.db, self.options, self.syncedWrite, self.workload) = (db, options, syncedWrite, workload)
        }

        func writer() throws -> any ConcurrentWriter { self }

        func put(_ index: Int) throws {
            let key = workload.key(index), value = workload.value(index)
            try RocksDBEngine.check("put") { rocksdb_put(db, syncedWrite, chars(key), key.count, chars(value), value.count, $0) }
        }

        func close() throws {
            rocksdb_writeoptions_destroy(syncedWrite)
            rocksdb_close(db)
            rocksdb_options_destroy(options)
        }
    }

    func openConcurrent(directory: String, workload: Workload) throws -> any ConcurrentStore {
        let (db, options) = try Self.open(directory)
        guard let syncedWrite = rocksdb_writeoptions_create() else {
            rocksdb_close(db)
            throw EngineError(name, "could not allocate write options")
        }
        rocksdb_writeoptions_set_sync(syncedWrite, 1)
        return Concurrent(db: db, options: options, syncedWrite: syncedWrite, workload: workload)
    }
}

/// SQLite in WAL mode with `synchronous=FULL`, one connection per thread (a connection is not
/// shared between threads), one autocommit INSERT per put; writers wait for the write lock
/// (`busy_timeout`). SQLite has no group commit: every commit syncs the WAL on its own.
extension SQLiteEngine: ConcurrentEngine {
    final class Concurrent: ConcurrentStore {
        let directory: String
        let workload: Workload
        private let lock = NSLock()
        private var connections: [OpaquePointer] = []

        init(directory: String, workload: Workload) {
            self.directory = directory
            self.workload = workload
        }

        func writer() throws -> any ConcurrentWriter {
            let db = try SQLiteEngine.open(directory)
            lock.lock()
            connections.append(db)
            lock.unlock()
            try SQLiteEngine.execute(db, "PRAGMA busy_timeout=60000")
            try SQLiteEngine.execute(db, "PRAGMA synchronous=FULL")
            return Writer(db: db, insert: try SQLiteEngine.prepare(db, "INSERT INTO kv(k, v) VALUES(?, ?)"), workload: workload)
        }

        struct Writer: ConcurrentWriter {
            let db: OpaquePointer
            let insert: OpaquePointer
            let workload: Workload

            mutating func put(_ index: Int) throws {
                let key = workload.key(index), value = workload.value(index)
                try SQLiteEngine.check(db, sqlite3_bind_blob(insert, 1, key.baseAddress, Int32(key.count), nil), "bind")
                try SQLiteEngine.check(db, sqlite3_bind_blob(insert, 2, value.baseAddress, Int32(value.count), nil), "bind")
                defer { sqlite3_reset(insert) }
                try SQLiteEngine.check(db, sqlite3_step(insert), "insert")
            }
        }

        func close() throws {
            for db in connections {
                var statement = sqlite3_next_stmt(db, nil)
                while let current = statement {
                    statement = sqlite3_next_stmt(db, current)
                    sqlite3_finalize(current)
                }
                try SQLiteEngine.check(db, sqlite3_close_v2(db), "close")
            }
            connections = []
        }
    }

    func openConcurrent(directory: String, workload: Workload) throws -> any ConcurrentStore {
        let db = try Self.open(directory)
        defer { sqlite3_close_v2(db) }
        try Self.execute(db, "PRAGMA journal_mode=WAL")
        try Self.execute(db, "CREATE TABLE kv(k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID")
        return Concurrent(directory: directory, workload: workload)
    }
}

/// LMDB with synced commits, one write transaction per put: LMDB runs one writer at a time (a
/// mutex around the write transaction), so each put waits for the syncs of those before it.
extension LMDBEngine: ConcurrentEngine {
    final class Concurrent: ConcurrentStore, ConcurrentWriter {
        let environment: OpaquePointer
        let database: MDB_dbi
        let workload: Workload

        init(environment: OpaquePointer, database: MDB_dbi, workload: Workload) {
            (self.environment, self.database, self.workload) = (environment, database, workload)
        }

        func writer() throws -> any ConcurrentWriter { self }

        func put(_ index: Int) throws {
            var transaction: OpaquePointer?
            try LMDBEngine.check(mdb_txn_begin(environment, nil, 0, &transaction), "txn_begin")
            let key = workload.key(index), value = workload.value(index)
            var keyValue = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
            var dataValue = MDB_val(mv_size: value.count, mv_data: UnsafeMutableRawPointer(mutating: value.baseAddress))
            let code = mdb_put(transaction, database, &keyValue, &dataValue, 0)
            if code != MDB_SUCCESS {
                mdb_txn_abort(transaction)
                try LMDBEngine.check(code, "put")
            }
            try LMDBEngine.check(mdb_txn_commit(transaction), "commit")
        }

        func close() throws { mdb_env_close(environment) }
    }

    func openConcurrent(directory: String, workload: Workload) throws -> any ConcurrentStore {
        let (environment, database) = try Self.open(directory, flags: 0, workload: workload)
        return Concurrent(environment: environment, database: database, workload: workload)
    }
}
