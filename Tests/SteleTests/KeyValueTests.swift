import Foundation
import Testing
@testable import Stele

@Suite struct KeyValueTests {
    @Test func putGetOverwriteDeleteAndHistory() throws {
        try withStore { _, path in
            let store = try Store(path: path)
            try store.put(namespace: "setup", key: "first", value: "so that o-1 does not start at sequence 0")
            let v1 = try store.put(namespace: "merchant-42/orders", key: "o-1", value: "created").sequences.lowerBound
            let v2 = try store.put(namespace: "merchant-42/orders", key: "o-1", value: "paid").sequences.lowerBound
            try store.put(namespace: "merchant-42/orders", key: "o-2", value: "created")
            #expect(try store.get(namespace: "merchant-42/orders", key: "o-1")?.value == Array("paid".utf8))
            #expect(try store.get(namespace: "merchant-42/orders", key: "o-1", asOf: v1)?.value == Array("created".utf8))
            #expect(try store.get(namespace: "merchant-42/orders", key: "o-1", asOf: v1 - 1) == nil)
            #expect(try store.get(namespace: "merchant-43/orders", key: "o-1") == nil, "namespaces are separate")

            let deletion = try store.delete(namespace: "merchant-42/orders", key: Array("o-1".utf8)).sequences.lowerBound
            #expect(try store.get(namespace: "merchant-42/orders", key: "o-1") == nil)
            #expect(try store.get(namespace: "merchant-42/orders", key: "o-1", asOf: v2)?.value == Array("paid".utf8))
            let history = try store.history(namespace: "merchant-42/orders", key: Array("o-1".utf8))
            #expect(history.map(\.sequence) == [v1, v2, deletion])
            #expect(history.map(\.value) == [Array("created".utf8), Array("paid".utf8), nil])
            #expect(history.last?.isTombstone == true)
            // A put after a delete brings the key back; the history keeps everything.
            try store.put(namespace: "merchant-42/orders", key: "o-1", value: "reopened")
            #expect(try store.get(namespace: "merchant-42/orders", key: "o-1")?.value == Array("reopened".utf8))
            #expect(try store.history(namespace: "merchant-42/orders", key: Array("o-1".utf8)).count == 4)
            try store.close()

            // The index is rebuilt from the log on open.
            let reopened = try Store(path: path)
            #expect(try reopened.get(namespace: "merchant-42/orders", key: "o-1")?.value == Array("reopened".utf8))
            #expect(try reopened.history(namespace: "merchant-42/orders", key: Array("o-1".utf8)).count == 4)
            #expect(throws: SteleError.invalidArgument("namespace must be 1-255 bytes without NUL")) { try reopened.get(namespace: "", key: "k") }
            #expect(throws: SteleError.invalidArgument("key must be 1-4096 bytes")) { try reopened.get(namespace: "n", key: "") }
            try reopened.close()
        }
    }

    /// `withValue` hands out the same bytes `get` copies: in place for a plain value, through a
    /// buffer for an LZ4 one; nil for a tombstone or a key never written; older versions by `asOf`.
    @Test func withValueReadsWhatGetReadsWithoutCopying() throws {
        try withStore { _, path in
            let store = try Store(path: path)
            defer { try? store.close() }
            let plain = Array("a plain value".utf8)
            let compressible = [UInt8](repeating: 42, count: 4096)
            let first = try store.put(namespace: "t", key: Array("k".utf8), value: plain).sequences.lowerBound
            try store.put(namespace: "t", key: Array("k".utf8), value: compressible)
            try store.put(namespace: "t", key: Array("gone".utf8), value: plain)
            try store.delete(namespace: "t", key: Array("gone".utf8))
            #expect(try store.records(from: first + 1, count: 1)[0].value == compressible)

            #expect(try store.withValue(namespace: "t", key: Array("k".utf8)) { Array($0) } == compressible)
            #expect(try store.withValue(namespace: "t", key: Array("k".utf8), asOf: first) { Array($0) } == plain)
            #expect(try store.withValue(namespace: "t", key: Array("gone".utf8)) { _ in true } == nil)
            #expect(try store.withValue(namespace: "t", key: Array("never".utf8)) { _ in true } == nil)
            #expect(try store.withValue(namespace: "other", key: Array("k".utf8)) { _ in true } == nil)
            #expect(throws: SteleError.invalidArgument("namespace must be 1-255 bytes without NUL")) {
                try store.withValue(namespace: "", key: Array("k".utf8)) { _ in true }
            }
            struct Stop: Error {}
            #expect(throws: Stop.self) { try store.withValue(namespace: "t", key: Array("k".utf8)) { _ in throw Stop() } }
        }
    }

    @Test func scanIsInKeyOrderWithPrefixPagingAndDeletes() throws {
        try withStore(segmentSize: 1 << 20) { _, path in
            let store = try Store(path: path, options: .init(commitPolicy: .none))
            var random = SplitMix64(seed: 99)
            var keys = (0 ..< 3000).map { String(format: "k%05d", $0) }
            keys.shuffle(using: &random)
            for key in keys { try store.put(namespace: "t/a", key: key, value: "v-" + key) }
            try store.put(namespace: "t", key: "k00001", value: "other namespace")
            try store.put(namespace: "t/b", key: "k00001", value: "other namespace")
            for i in stride(from: 0, to: 3000, by: 10) { try store.delete(namespace: "t/a", key: Array(String(format: "k%05d", i).utf8)) }

            var seen: [String] = []
            var after: [UInt8]?
            repeat {
                let page = try store.scan(namespace: "t/a", after: after, limit: 250)
                seen += page.map { String(decoding: $0.key, as: UTF8.self) }
                after = page.last?.key
                if page.count < 250 { break }
            } while true
            let expected = (0 ..< 3000).filter { $0 % 10 != 0 }.map { String(format: "k%05d", $0) }
            #expect(seen == expected)
            let withDeleted = try store.scan(namespace: "t/a", prefix: Array("k000".utf8), limit: 1000, includeDeleted: true)
            #expect(withDeleted.count == 100 && withDeleted.first?.isTombstone == true)
            let prefixed = try store.scan(namespace: "t/a", prefix: Array("k012".utf8), limit: 1000)
            #expect(prefixed.count == 90 && prefixed.allSatisfy { $0.key.starts(with: Array("k012".utf8)) })
            #expect(try store.scan(namespace: "t/a", prefix: Array("zz".utf8)).isEmpty)
            #expect(try store.scan(namespace: "t", limit: 10).map(\.namespace) == ["t"])
            try store.close()
        }
    }

    @Test func concurrentPutsAndGets() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try Store.create(at: dir.child("s"), segmentSize: 1 << 20)
        let store = try Store(path: dir.child("s"), options: .init(commitPolicy: .none))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0 ..< 4 {
                group.addTask {
                    for i in 0 ..< 500 { try store.put(namespace: "w\(writer)", key: "k\(i % 50)", value: "\(i)") }
                }
            }
            group.addTask {
                for i in 0 ..< 2000 {
                    if let version = try store.get(namespace: "w\(i % 4)", key: "k\(i % 50)") {
                        #expect(version.key == Array("k\(i % 50)".utf8))
                    }
                }
            }
            try await group.waitForAll()
        }
        for writer in 0 ..< 4 {
            #expect(try store.get(namespace: "w\(writer)", key: "k49")?.value == Array("499".utf8))
            #expect(try store.history(namespace: "w\(writer)", key: Array("k7".utf8)).count == 10)
        }
        try store.close()
    }
}

@Suite struct IndexSnapshotTests {
    @Test func openLoadsTheSnapshotAndReplaysOnlyTheTail() throws {
        try withStore { _, path in
            var options = Store.Options()
            options.indexSnapshotInterval = 200
            let clock = TestClock()
            options.clock = clock
            let store = try Store(path: path, options: options)
            for i in 0 ..< 1500 { try store.put(namespace: "s", key: "k\(i % 300)", value: "v\(i)") }
            try store.lock(namespace: "s", key: Array("k7".utf8), lock: RetentionLock(mode: .compliance, retainUntil: clock.nanosecondsSinceEpoch() + 1_000_000_000_000))
            for i in 1500 ..< 1700 { try store.put(namespace: "s", key: "k\(i % 300)", value: "v\(i)") }
            try store.seal()
            try store.delete(namespace: "s", key: Array("k1".utf8))
            try store.close()
            #expect(FileManager.default.fileExists(atPath: path + "/index/snapshot"))

            let reopened = try Store(path: path, options: options)
            let replayed = try #require(reopened.recovery.indexReplayed)
            #expect(replayed.lowerBound > 0 && replayed.upperBound == reopened.recordCount)
            #expect(try reopened.get(namespace: "s", key: "k42")?.value == Array("v1542".utf8))
            #expect(try reopened.get(namespace: "s", key: "k1") == nil)
            #expect(try reopened.history(namespace: "s", key: Array("k7".utf8)).count == 6)
            #expect(try reopened.protection(namespace: "s", key: Array("k7".utf8), version: firstRecord + 7).locks.first?.mode == .compliance)
            #expect(try reopened.scan(namespace: "s", limit: 1000).count == 299)
            try reopened.close()

            // A damaged snapshot is never trusted: it is ignored and the index rebuilt.
            var bytes = try readFile(path + "/index/snapshot")
            bytes[100] ^= 1
            try writeFile(path + "/index/snapshot", bytes)
            let rebuilt = try Store(path: path, options: options)
            #expect(rebuilt.recovery.indexReplayed == nil && rebuilt.recovery.indexSnapshotRejected != nil)
            #expect(try rebuilt.get(namespace: "s", key: "k42")?.value == Array("v1542".utf8))
            try rebuilt.close()
        }
    }
}

extension IndexSnapshotTests {
    /// A snapshot re-forged with a valid checksum but without the retention records must not let
    /// a purge remove a locked version.
    @Test func aForgedSnapshotCannotUnlockAPurge() throws {
        try withStore { _, path in
            var options = Store.Options()
            options.indexSnapshotInterval = 10
            let clock = TestClock()
            options.clock = clock
            let store = try Store(path: path, options: options)
            let locked = try store.put(namespace: "v", key: Array("k".utf8), value: Array("keep me".utf8),
                                       lock: RetentionLock(mode: .compliance, retainUntil: clock.nanosecondsSinceEpoch() + 1_000_000_000_000_000)).sequences.lowerBound
            for i in 0 ..< 50 { try store.put(namespace: "v", key: "k", value: "v\(i)") }
            try store.seal()
            try store.close()
            let file = path + "/index/snapshot"
            let original = try #require(IndexSnapshot.decode(try readFile(file)))
            #expect(!original.retentionRecords.isEmpty)
            // Without the lock's record (the genesis kept: a snapshot without it is never used).
            let forged = IndexSnapshot(treeSize: original.treeSize, root: original.root, keys: original.keys,
                                       retentionRecords: original.retentionRecords.filter { $0 == 0 })
            try writeFile(file, forged.encoded)

            let reopened = try Store(path: path, options: options)
            #expect(throws: SteleError.corruption(Corruption(file: file, detail: "the index snapshot's retention records differ from the log's; remove it and reopen"))) {
                try reopened.purge()
            }
            #expect(try reopened.history(namespace: "v", key: Array("k".utf8)).first { $0.sequence == locked }?.value == Array("keep me".utf8))
            try reopened.close()
        }
    }
}
