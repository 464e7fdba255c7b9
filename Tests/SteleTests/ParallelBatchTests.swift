import Foundation
import Testing
@testable import Stele
import SteleNative

/// A large batch is appended on two threads (frames, their `pwrite` and keys on the caller's;
/// the tree, tiles and content digest on a second; leaves and aligned subtrees hashed by both;
/// see `SegmentLog+Batch.swift`). It must leave exactly what
/// appending the same records one at a time leaves: the same records, the same tree at every
/// size, the same tile files, a clean fsck, and the same state after a reopen.
@Suite struct ParallelBatchTests {
    /// Puts with repeated keys, tombstones, compressible values (LZ4) and values of every size
    /// up to 3 KB, in batches of 1 to 1,500 records (the smallest stay on one thread, the
    /// largest do not fit in a segment's remaining room and rotate first), and a few batches of
    /// four 20 KB values.
    static func workload() -> [[Entry]] {
        var entries: [Entry] = []
        for n in 0 ..< 7000 {
            var entry = testEntry(n % 2600, valueLength: n % 13 == 0 ? 3000 : nil)
            if n % 17 == 0 { entry.value = [UInt8](repeating: UInt8(n & 0xff), count: 2500) }
            if n % 29 == 0 { entry = Entry(type: .tombstone, namespace: entry.namespace, key: entry.key, value: []) }
            entries.append(entry)
        }
        let sizes = [1, 63, 64, 65, 1000, 7, 1500, 200, 999, 64, 2]
        var batches: [[Entry]] = []
        var start = 0
        var turn = 0
        while start < entries.count {
            let end = min(entries.count, start + sizes[turn % sizes.count])
            batches.append(Array(entries[start ..< end]))
            start = end
            turn += 1
        }
        // A few batches of few but large records: two threads by their bytes, not their count.
        for k in 0 ..< 5 {
            batches.insert((0 ..< 4).map { testEntry(9000 + 4 * k + $0, valueLength: 20_000) }, at: 3 + 4 * k)
        }
        return batches
    }

    static func files(under directory: String) throws -> [String: [UInt8]] {
        var out: [String: [UInt8]] = [:]
        guard let walker = FileManager.default.enumerator(atPath: directory) else { return out }
        for case let name as String in walker {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: directory + "/" + name, isDirectory: &isDirectory), !isDirectory.boolValue {
                out[name] = try readFile(directory + "/" + name)
            }
        }
        return out
    }

    /// A new store of 256 KiB segments (the workload spans dozens) with a test clock, so that
    /// two stores given the same records get the same timestamps and so the same tree. Each is a
    /// copy of one new store (`template`, created on first use beside it), so that they share
    /// their genesis record too.
    static func freshStore(_ path: String, segmentSize: Int = 256 * 1024) throws -> Store {
        try copyOfNewStore(at: path, segmentSize: segmentSize)
        var options = Store.Options()
        options.clock = TestClock()
        options.commitPolicy = .none
        return try Store(path: path, options: options)
    }

    @Test func batchesOnTwoThreadsLeaveWhatOneThreadLeaves() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let batches = Self.workload()
        var roots: [String: [UInt64: Digest]] = [:]
        for name in ["batched", "single"] {
            let store = try Self.freshStore(dir.child(name))
            var sizes: [UInt64: Digest] = [:]
            for batch in batches {
                if name == "batched" {
                    try store.append(contentsOf: batch)
                } else {
                    for entry in batch { try store.append(entry) }
                }
                sizes[store.treeSize] = try store.rootHash()
            }
            try store.close()
            roots[name] = sizes
        }
        let batched = dir.child("batched"), single = dir.child("single")
        #expect(roots["batched"] == roots["single"])
        // Full tiles must match; partial ones are written at each seal, and the two stores seal
        // at different sizes (a batch rotates before it starts, a single record when it is full).
        let full = { (path: String) in try Self.files(under: path + "/tiles").filter { !$0.key.contains(".p/") && $0.key != "state" } }
        let tiles = try full(batched)
        #expect(tiles.count == 1 && tiles.values.allSatisfy { $0.count >= 27 * 256 * 32 })  // one pack: 27 full level-0 tiles or more
        #expect(try tiles == full(single))
        let report = try Fsck.check(path: batched)
        #expect(report.problems.isEmpty, "\(report.problems)")

        let a = try Store(path: batched, options: .init(readOnly: true))
        let b = try Store(path: single, options: .init(readOnly: true))
        defer { try? a.close(); try? b.close() }
        let count = batches.reduce(0) { $0 + $1.count }
        #expect(a.treeSize == firstRecord + UInt64(count))
        #expect(try a.rootHash() == b.rootHash())
        #expect(try a.records(from: 0, count: count + 1) == b.records(from: 0, count: count + 1))
        for n in stride(from: 0, to: 2600, by: 37) {
            let key = testEntry(n).key
            for namespace in ["tenant-0/events", "tenant-1/events", "tenant-2/events"] {
                #expect(try a.get(namespace: namespace, key: key) == b.get(namespace: namespace, key: key))
                #expect(try a.history(namespace: namespace, key: key) == b.history(namespace: namespace, key: key))
            }
        }
    }

    /// The hashing thread takes job after job: back to back (it is still watching), after a
    /// pause longer than it watches (it sleeps and must be woken), and jobs longer than a caller
    /// watches (the caller sleeps and must be woken). Each job's effects are visible after
    /// `wait()`, and `stop()` ends the thread.
    @Test func theHashingThreadRunsEveryJobWhetherItOrTheCallerSlept() throws {
        let helper = try HelperThread(name: "test")
        final class Box: @unchecked Sendable { var values: [Int] = [] }
        let box = Box()
        for n in 0 ..< 2000 {
            helper.post { box.values.append(n) }
            helper.wait()
        }
        #expect(box.values == Array(0 ..< 2000))
        for n in 0 ..< 3 {
            usleep(5_000)  // longer than HelperThread.idleSpin: the thread is asleep
            helper.post { box.values.append(-n) }
            helper.wait()
        }
        helper.post { usleep(5_000); box.values.append(42) }  // longer than HelperThread.waitSpin
        helper.wait()
        #expect(box.values.suffix(4) == [0, -1, -2, 42])
        helper.stop()
    }

    /// `stop()` ends the thread whether it is watching, asleep, or still running a job (then
    /// after the job): the thread drops the reference it holds to itself as it returns.
    @Test func stoppingTheHashingThreadEndsItWhateverItIsDoing() throws {
        final class Box: @unchecked Sendable { var values: [Int] = [] }
        for (n, pauseBeforeStop) in [(0, 0), (1, 5_000), (2, -1)].map({ ($0.0, $0.1) }) {
            let box = Box()
            var helper: HelperThread? = try HelperThread(name: "test-stop")
            weak let observed = helper
            if pauseBeforeStop >= 0 {
                helper?.post { box.values.append(n) }
                helper?.wait()
                usleep(UInt32(pauseBeforeStop))  // 0: still watching; 5 ms: asleep
            } else {
                helper?.post { usleep(5_000); box.values.append(n) }  // stopped mid-job
            }
            helper?.stop()
            #expect(box.values == [n])
            helper = nil
            var waited = 0
            while observed != nil && waited < 2_000 { usleep(1_000); waited += 1 }
            #expect(observed == nil, "case \(n): the thread did not end")
        }
    }

    /// Should `pwrite` of staged frames fail, the frames go through the mapping instead: the
    /// batch succeeds, and the records read back, verify and survive a reopen.
    @Test func stagedFramesFallBackToTheMappingWhenPwriteFails() throws {
        try withStore(segmentSize: 8 << 20) { _, path in
            let fs = FaultyFileSystem()
            var options = Store.Options()
            options.fileSystem = fs
            options.commitPolicy = .none
            let store = try Store(path: path, options: options)
            try store.append(testEntry(0))  // the segment exists; only frame writes fail from here
            fs.fail("write", path: ".seg", errno: EIO)
            let batch = (1 ..< 3001).map { testEntry($0, valueLength: 600) }  // ~2 MB: flushed mid-batch too
            try store.append(contentsOf: batch)
            #expect(fs.fired("write") > 0, "the staged writes failed (and went through the mapping instead)")
            fs.clear()
            try store.close()
            let report = try Fsck.check(path: path)
            #expect(report.problems.isEmpty, "\(report.problems)")
            let reopened = try Store(path: path)
            defer { try? reopened.close() }
            #expect(reopened.recordCount == firstRecord + 3001)
            try reopened.forEachRecord(from: firstRecord, count: 3001) { record in
                let n = Int(record.sequence - firstRecord)
                #expect(record.value == testEntry(n, valueLength: n == 0 ? nil : 600).value)
            }
        }
    }

    /// A batch stages its frames in a 1 MiB buffer written with `pwrite`: a batch of more frames
    /// than that (flushed mid-batch), and one whose frames are in turn small and larger than the
    /// buffer (those go through the mapping, between staged ones), must leave the records, roots
    /// and files one thread leaves, and stay readable after a reopen.
    @Test func batchesLargerThanTheStagingBufferLeaveWhatOneThreadLeaves() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let batches: [[Entry]] = [
            (0 ..< 3000).map { testEntry($0, valueLength: 600) },
            [3000, 3001, 3002, 3003, 3004].map { testEntry($0, valueLength: [100, 1_300_000, 100, 1_200_000, 700][$0 - 3000]) },
            (0 ..< 400).map { testEntry(4000 + $0, valueLength: 5000) },
        ]
        for name in ["batched", "single"] {
            let store = try Self.freshStore(dir.child(name), segmentSize: 8 << 20)
            for batch in batches {
                if name == "batched" {
                    try store.append(contentsOf: batch)
                } else {
                    for entry in batch { try store.append(entry) }
                }
            }
            try store.close()
        }
        let batched = dir.child("batched"), single = dir.child("single")
        // Frame for frame (the headers differ: each store has its own ID).
        let frames = { (path: String) in try Self.files(under: path + "/segments").mapValues { Array($0.dropFirst(SegmentHeader.size)) } }
        let batchedFrames = try frames(batched)
        #expect(batchedFrames.count == 1 && batchedFrames.values.allSatisfy { $0.count > 6 << 20 })
        let singleFrames = try frames(single)
        // Names only on failure: the segments run to megabytes.
        let differing = Set(batchedFrames.keys).union(singleFrames.keys).filter { batchedFrames[$0] != singleFrames[$0] }
        #expect(differing.isEmpty, "segments whose frames differ: \(differing.sorted())")
        let report = try Fsck.check(path: batched)
        #expect(report.problems.isEmpty, "\(report.problems)")
        let store = try Store(path: batched, options: .init(readOnly: true))
        defer { try? store.close() }
        let all = batches.flatMap { $0 }
        #expect(store.treeSize == firstRecord + UInt64(all.count))
        for entry in all where entry.value.count > 1000 || entry.key.last == UInt8(ascii: "7") {
            #expect(try store.get(namespace: String(decoding: entry.namespace, as: UTF8.self), key: entry.key)?.value == entry.value)
        }
    }

    /// `putBatch(EntryBatch)` (the caller's own buffer, no array per field) must write what
    /// `putBatch([Entry])` writes for the same puts: small batches (one thread), large ones (two),
    /// compressible values, batches that rotate first, and a batch reused after `removeAll()`.
    @Test func anEntryBatchWritesWhatTheSameEntriesWrite() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let batches = Self.workload().map { $0.filter { $0.type == .put } }.filter { !$0.isEmpty }
        var roots: [String: [UInt64: Digest]] = [:]
        for name in ["entries", "entryBatch"] {
            let store = try Self.freshStore(dir.child(name))
            var sizes: [UInt64: Digest] = [:]
            var reused = EntryBatch()
            var latest: [[UInt8]: (namespace: String, value: [UInt8])] = [:]
            for batch in batches {
                for entry in batch { latest[entry.namespace + [0] + entry.key] = (String(decoding: entry.namespace, as: UTF8.self), entry.value) }
                if name == "entries" {
                    try store.putBatch(batch)
                } else {
                    reused.removeAll()
                    for entry in batch { reused.put(namespace: String(decoding: entry.namespace, as: UTF8.self), key: entry.key, value: entry.value) }
                    #expect(reused.count == batch.count)
                    try store.putBatch(reused)
                }
                sizes[store.treeSize] = try store.rootHash()
            }
            // The live index (built as the batches went in, with the hashes computed for them)
            // finds every key's latest value, before any reopen rebuilds it.
            for (composite, expected) in latest {
                let key = Array(composite.drop { $0 != 0 }.dropFirst())
                #expect(try store.get(namespace: expected.namespace, key: key)?.value == expected.value)
            }
            try store.close()
            roots[name] = sizes
        }
        #expect(roots["entries"] == roots["entryBatch"])
        let report = try Fsck.check(path: dir.child("entryBatch"))
        #expect(report.problems.isEmpty, "\(report.problems)")
        let a = try Store(path: dir.child("entries"), options: .init(readOnly: true))
        let b = try Store(path: dir.child("entryBatch"), options: .init(readOnly: true))
        defer { try? a.close(); try? b.close() }
        let count = batches.reduce(0) { $0 + $1.count }
        #expect(b.treeSize == firstRecord + UInt64(count))
        #expect(try a.records(from: 0, count: count + 1) == b.records(from: 0, count: count + 1))
        #expect(try b.get(namespace: "tenant-1/events", key: testEntry(1).key)?.value == a.get(namespace: "tenant-1/events", key: testEntry(1).key)?.value)
    }

    /// A bad record anywhere in an `EntryBatch` refuses the whole batch before anything is
    /// written; so does an empty one.
    @Test func anEntryBatchWithABadRecordWritesNothing() throws {
        try withStore { _, path in
            let store = try Store(path: path)
            defer { try? store.close() }
            for bad in [(namespace: "ns", key: [UInt8](), value: [UInt8]([1]), error: SteleError.invalidArgument("key must be 1-4096 bytes (got 0)")),
                        (namespace: "", key: [UInt8]([1]), value: [UInt8]([1]),
                         error: SteleError.invalidArgument("namespace must be 1-255 bytes without NUL (got 0 bytes)")),
                        (namespace: "n\u{0}s", key: [UInt8]([1]), value: [UInt8]([1]),
                         error: SteleError.invalidArgument("namespace must be 1-255 bytes without NUL (got 3 bytes)")),
                        (namespace: "ns", key: [UInt8](repeating: 7, count: Limits.maxKeyLength + 1), value: [UInt8]([1]),
                         error: SteleError.invalidArgument("key must be 1-4096 bytes (got 4097)"))] {
                var batch = EntryBatch(reservingCapacity: 200, bytes: 4096)
                for n in 0 ..< 100 { batch.put(namespace: "ns", key: Array("k\(n)".utf8), value: [UInt8(n)]) }
                batch.put(namespace: bad.namespace, key: bad.key, value: bad.value)
                for n in 100 ..< 150 { batch.put(namespace: "ns", key: Array("k\(n)".utf8), value: [UInt8(n)]) }
                #expect(throws: bad.error) { try store.putBatch(batch) }
                #expect(store.recordCount == firstRecord)
            }
            #expect(throws: SteleError.invalidArgument("empty batch")) { try store.putBatch(EntryBatch()) }
            var good = EntryBatch()
            good.put(namespace: "ns", key: Array("k".utf8), value: Array("v".utf8))
            #expect(try store.putBatch(good).sequences == firstRecord ... firstRecord)
            #expect(try store.get(namespace: "ns", key: Array("k".utf8))?.value == Array("v".utf8))
        }
    }
}
