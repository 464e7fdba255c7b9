import Foundation
import Testing
@testable import Stele
import SteleNative

/// Power cuts where the main power-cut test cannot put them: during `Store.create`, and during
/// the recovery an open runs after a crash (which rewrites the active segment's tail and the
/// header, and replays tiles). Same model (`PowerLossFileSystem`): an image before every call
/// that changes the disk, with any subset of what was not yet synced lost or torn.
@Suite struct PowerLossCreateRecoveryTests {
    /// Collects crash images (`perCall` of them, each drawn afresh) at every call the model sees.
    final class Images: @unchecked Sendable {
        let lock = NSLock()
        var random: SplitMix64
        var images: [PowerLossFileSystem.CrashImage] = []
        var failure: Error?
        let perCall: Int
        init(seed: UInt64, perCall: Int = 1) {
            random = SplitMix64(seed: seed)
            self.perCall = perCall
        }

        func watch(_ fs: PowerLossFileSystem) {
            fs.onCall = { [unowned self, unowned fs] _ in
                lock.withLock {
                    do {
                        for _ in 0 ..< perCall { images.append(try fs.crashImage(&random)) }
                    } catch {
                        failure = error
                    }
                }
            }
        }
    }

    /// Regression, found by the power-cut model once its syncs could fail: a seal raises the
    /// header's durable end in the mapping, then writes the tiles and syncs the file system. When
    /// that `syncfs` fails, the header's page is marked clean unwritten, and the seal still writes
    /// its footer (its own `msync` then reports the failure and writes stop). A cut there can leave
    /// the footer on disk without the raised durable end; recovery finished the seal with the old
    /// one and the open then refused the segment ("durable end … differs from the frames end").
    /// Every image of such a seal, 16 drawn at each of its calls, must open with every synced
    /// record, and fsck must find nothing.
    @Test func aSealWhoseTilesSyncFailedLeavesAStoreThatOpens() throws {
        let dir = TemporaryDirectory(inMemory: true)
        defer { dir.remove() }
        let path = dir.child("store")
        let (store, fs) = try PowerLossFileSystem.openNewStore(at: path, policy: .none)
        let entries = (0 ..< 40).map { testEntry($0) }
        try store.append(contentsOf: entries)
        try store.sync()
        let images = Images(seed: 11, perCall: 16)
        images.watch(fs)
        fs.failSync = { _, operation in operation == "syncfs" }
        #expect {
            try store.seal()
        } throws: { error in
            guard case SteleError.writesDisabled(let cause) = error else { return false }
            return cause.errno == EIO
        }
        fs.onCall = nil
        fs.failSync = nil
        #expect(fs.syncsFailed == 1)
        #expect(images.failure == nil, "\(String(describing: images.failure))")
        _ = try? store.close()
        var problems: [String] = []
        for (i, image) in images.images.enumerated() {
            let copy = dir.child("image")
            try image.materialize(at: copy)
            defer { removeTree(copy) }
            do {
                let reopened = try Store(path: copy)
                if reopened.recordCount != UInt64(entries.count) + firstRecord { problems.append("image \(i): \(reopened.recordCount) records") }
                for (n, entry) in entries.enumerated() where try reopened.record(at: firstRecord + UInt64(n)).value != entry.value {
                    problems.append("image \(i): record \(n) changed")
                }
                try reopened.close()
                let report = try Fsck.check(path: copy)
                if !report.problems.isEmpty { problems.append("image \(i): fsck \(report.problems)") }
            } catch {
                problems.append("image \(i): \(error)")
            }
        }
        #expect(images.images.count >= 48, "\(images.images.count) images")
        #expect(problems.isEmpty, "\(problems.count) of \(images.images.count) images: \(problems.prefix(3))")
    }

    /// A cut anywhere in `create` leaves either no store (no `stele.conf`: opening says so, and
    /// nothing is taken for one) or a whole one: it opens, holds its genesis record, and fsck
    /// finds nothing.
    @Test func aPowerCutDuringCreateLeavesNoStoreOrAWholeOne() throws {
        let dir = TemporaryDirectory(inMemory: true)
        defer { dir.remove() }
        var whole = 0, none = 0, problems: [String] = []
        for seed in UInt64(1) ... 25 {
            let path = dir.child("create-\(seed)")
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
            let fs = try PowerLossFileSystem(root: path)
            let images = Images(seed: seed)
            images.watch(fs)
            try Store.create(at: path, segmentSize: 64 * 1024, origin: "create.test/log", fileSystem: fs, clock: SystemClock())
            fs.onCall = nil
            #expect(images.failure == nil, "\(String(describing: images.failure))")
            for (i, image) in images.images.enumerated() {
                let copy = dir.child("image")
                try image.materialize(at: copy)
                defer { removeTree(copy) }
                if FileManager.default.fileExists(atPath: copy + "/stele.conf") {
                    do {
                        let store = try Store(path: copy)
                        if store.recordCount != 1 { problems.append("seed \(seed) call \(i): \(store.recordCount) records") }
                        try store.close()
                        let report = try Fsck.check(path: copy)
                        if !report.problems.isEmpty { problems.append("seed \(seed) call \(i): fsck \(report.problems)") }
                        whole += 1
                    } catch {
                        problems.append("seed \(seed) call \(i): stele.conf present, open failed: \(error)")
                    }
                } else {
                    do {
                        _ = try Store(path: copy)
                        problems.append("seed \(seed) call \(i): opened without stele.conf")
                    } catch SteleError.notAStore {
                        none += 1
                    } catch {
                        problems.append("seed \(seed) call \(i): \(error)")
                    }
                }
            }
            removeTree(path)
        }
        print("power cuts during create: \(whole + none) images, \(whole) whole stores, \(none) not yet stores")
        #expect(problems.isEmpty, "\(problems.count) problems: \(problems.prefix(5))")
        #expect(whole > 0 && none > 0, "images of both kinds: \(whole) whole stores, \(none) not yet stores")
    }

    /// A store left by a crash (the last writer never closed, a torn frame after the last synced
    /// one, no tiles state) is opened under the model, and the power is cut again at every call
    /// its recovery makes: each image opens, keeps every record the crashed writer had synced,
    /// byte for byte, and fsck finds nothing.
    @Test func aPowerCutDuringRecoveryKeepsEverySyncedRecord() throws {
        let dir = TemporaryDirectory(inMemory: true)
        defer { dir.remove() }
        var checked = 0, problems: [String] = []
        for seed in UInt64(1) ... 6 {
            var random = SplitMix64(seed: seed &* 7919)
            let path = dir.child("crashed-\(seed)")
            try Store.create(at: path, segmentSize: 64 * 1024)
            let writer = try Store(path: path, options: .init(commitPolicy: .everyBatch))
            var written: [(UInt64, Entry)] = []
            // Enough to seal a segment or two: the tiles replayed on open span sealed ones too.
            for i in 0 ..< 150 + Int(random.next(below: 150)) {
                let entry = testEntry(i, valueLength: Int(random.next(below: 900)))
                written.append((try writer.append(entry).sequences.lowerBound, entry))
            }
            let active = try #require(try writer.stats().activeSegment)
            let end = try writer.stats().activeBytesUsed
            try writer.close()
            // Now as a crash would have left it.
            try writeFile(path + "/LOCK", Array("open\n".utf8))
            try markCrashed(path, segment: UInt64(active), first: try Self.firstSequence(path, segment: active),
                            records: UInt64(written.count) + firstRecord)
            try patchFile(segmentPath(path, UInt64(active)), at: end, [0x90, 0, 0, 0, 5, 0, 0, 0, 9, 9])

            let fs = try PowerLossFileSystem(root: path)
            let images = Images(seed: seed)
            images.watch(fs)
            var options = Store.Options()
            options.fileSystem = fs
            let recovered = try Store(path: path, options: options)
            try recovered.close()
            fs.onCall = nil
            #expect(images.failure == nil, "\(String(describing: images.failure))")
            #expect(images.images.count >= 3, "recovery made \(images.images.count) calls")
            for (i, image) in images.images.enumerated() {
                let copy = dir.child("image")
                try image.materialize(at: copy)
                defer { removeTree(copy) }
                do {
                    let store = try Store(path: copy)
                    if store.recordCount != UInt64(written.count) + firstRecord {
                        problems.append("seed \(seed) call \(i): \(store.recordCount) records, \(written.count + Int(firstRecord)) synced")
                    }
                    for (sequence, entry) in written where try store.record(at: sequence).value != entry.value {
                        problems.append("seed \(seed) call \(i): record \(sequence) changed")
                    }
                    try store.close()
                    let report = try Fsck.check(path: copy)
                    if !report.problems.isEmpty { problems.append("seed \(seed) call \(i): fsck \(report.problems)") }
                } catch {
                    problems.append("seed \(seed) call \(i): \(error)")
                }
                checked += 1
            }
            removeTree(path)
        }
        print("power cuts during recovery: \(checked) images of 6 crashed stores")
        #expect(problems.isEmpty, "\(problems.count) problems in \(checked) images: \(problems.prefix(5))")
        #expect(checked >= 30)
    }

    static func firstSequence(_ path: String, segment: Int) throws -> UInt64 {
        let bytes = try readFile(segmentPath(path, UInt64(segment)))
        return try ByteView.of(bytes) { try SegmentHeader.decode($0).get().firstSequence }
    }
}
