import Foundation
import Glibc
import Testing
@testable import Stele
import SteleNative

/// The tamper suite: build a store with every kind of file, apply one tampering to a copy,
/// run fsck, and check it is detected with the right category and place.
@Suite struct FsckTests {
    static let signer = try! NoteSigner.generate(name: "fsck.test/log")

    /// A store with sealed segments, an active one, tiles, an index snapshot, checkpoints and a
    /// purge behind it. Returns the path, the external checkpoint and a compliance-locked version.
    static func build(_ dir: TemporaryDirectory) throws -> (path: String, checkpoint: String, locked: UInt64) {
        let path = dir.child("store")
        try Store.create(at: path, segmentSize: 64 * 1024, origin: "fsck.test/log")
        let clock = TestClock()
        var options = Store.Options()
        options.clock = clock
        options.indexSnapshotInterval = 300
        options.checkpointSigner = signer
        let store = try Store(path: path, options: options)
        let t0 = clock.nanosecondsSinceEpoch()
        let locked = try store.put(namespace: "vault", key: Array("locked".utf8), value: [UInt8](repeating: 9, count: 300),
                                   lock: RetentionLock(mode: .compliance, retainUntil: t0 + 1000 * RetentionTests.day)).sequences.lowerBound
        for i in 0 ..< 900 { try store.put(namespace: "t", key: Array("k\(i % 200)".utf8), value: testEntry(i, valueLength: 60).value) }
        try store.put(namespace: "vault", key: Array("locked".utf8), value: Array("newer".utf8))
        try store.seal()
        clock.advance(.seconds(1))
        _ = try store.purge()
        let checkpoint = try store.checkpoint(signer: signer)
        for i in 900 ..< 960 { try store.put(namespace: "t", key: Array("k\(i % 200)".utf8), value: testEntry(i, valueLength: 60).value) }
        try store.close()
        return (path, checkpoint, locked)
    }

    static func copy(_ path: String, _ dir: TemporaryDirectory, _ name: String) throws -> String {
        let target = dir.child(name)
        try FileManager.default.copyItem(atPath: path, toPath: target)
        return target
    }

    static func fsck(_ path: String, _ checkpoint: String? = nil) throws -> FsckReport {
        try Fsck.check(path: path, externalCheckpoints: checkpoint.map { [Fsck.ExternalCheckpoint(note: $0, verifier: signer.verifier)] } ?? [])
    }

    @Test func aCleanStoreIsCleanAndAnExternalCheckpointVerifies() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let (path, checkpoint, _) = try Self.build(dir)
        let report = try Self.fsck(path)
        #expect(report.problems.isEmpty, "\(report.problems)")
        #expect(report.exitCode == 0 && report.caveat != nil && report.records > 900)
        let withExternal = try Self.fsck(path, checkpoint)
        #expect(withExternal.problems.isEmpty && withExternal.externalCheckpointsVerified == 1 && withExternal.caveat == nil)
    }

    @Test func aFlippedBitAnywhereIsDetected() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let (path, checkpoint, _) = try Self.build(dir)
        let seed = UInt64.random(in: 1 ... 1 << 40)
        print("fsck bit-flip test: seed \(seed)")
        var random = SplitMix64(seed: seed)
        let clean = try Self.copy(path, dir, "pristine")
        var files: [(String, Range<Int>)] = []
        for sub in try FileManager.default.subpathsOfDirectory(atPath: clean) {
            let full = clean + "/" + sub
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: full, isDirectory: &isDirectory), !isDirectory.boolValue,
                  sub != "LOCK", !sub.hasPrefix("lost+found") else { continue }
            let bytes = try readFile(full)
            // In the active segment, only the written part (and a little zero tail) matters.
            var end = bytes.count
            if sub.hasSuffix(".seg"), let status = try PosixFileSystem().status(full), status.permissions & 0o222 != 0 {
                end = min(bytes.count, (bytes.lastIndex { $0 != 0 } ?? 0) + 64)
            }
            files.append((sub, 0 ..< end))
        }
        var trials = 0
        for (sub, range) in files {
            for _ in 0 ..< 24 {
                let target = try Self.copy(clean, dir, "t\(trials)")
                defer { try? chmodAll(target); try? FileManager.default.removeItem(atPath: target) }
                var bytes = try readFile(target + "/" + sub)
                let position = range.lowerBound + random.next(below: range.count)
                bytes[position] ^= UInt8(1 << random.next(below: 8))
                try writeFile(target + "/" + sub, bytes)
                trials += 1
                let report: FsckReport
                do {
                    report = try Self.fsck(target, checkpoint)
                } catch {
                    #expect(sub == "stele.conf", "\(sub): fsck failed to run: \(error)")  // a damaged config is an operational error (exit 8)
                    continue
                }
                #expect(!report.problems.isEmpty, "flip at \(sub):\(position) went unnoticed")
            }
        }
        print("fsck bit-flip test: \(trials) flips in \(files.count) files, all detected")
    }

    @Test func structuralTampering() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let (path, checkpoint, locked) = try Self.build(dir)
        func tampered(_ name: String, _ change: (String) throws -> Void) throws -> FsckReport {
            let target = try Self.copy(path, dir, name)
            try change(target)
            return try Self.fsck(target, checkpoint)
        }
        func has(_ report: FsckReport, _ category: FsckProblem.Category, file: String? = nil) -> Bool {
            report.problems.contains { problem in problem.category == category && (file.map { problem.file.hasSuffix($0) } ?? true) }
        }
        let seg2 = "/segments/000000000002.seg"
        #expect(has(try tampered("truncated") { p in
            let bytes = try readFile(p + seg2)
            try writeFile(p + seg2, Array(bytes.prefix(bytes.count - 100)))
        }, .chain, file: "000000000002.seg"))
        #expect(has(try tampered("deleted") { p in try FileManager.default.removeItem(atPath: p + seg2) }, .chain))
        #expect(has(try tampered("swapped") { p in
            let a = try readFile(p + seg2), b = try readFile(p + "/segments/000000000003.seg")
            try writeFile(p + seg2, b)
            try writeFile(p + "/segments/000000000003.seg", a)
        }, .chain, file: "000000000002.seg"))
        #expect(has(try tampered("foreign") { p in
            let other = dir.child("other")
            try Store.create(at: other, segmentSize: 64 * 1024, origin: "fsck.test/log")
            let store = try Store(path: other)
            for i in 0 ..< 900 { try store.put(namespace: "t", key: Array("k\(i % 200)".utf8), value: testEntry(i, valueLength: 60).value) }
            try store.close()
            try writeFile(p + seg2, try readFile(other + seg2))
        }, .chain, file: "000000000002.seg"))
        // A frame whose value changed and whose XXH3 was recomputed: the leaf, digest and root no longer match.
        #expect(has(try tampered("reforged") { p in
            var bytes = try readFile(p + seg2)
            let first = SegmentHeader.size
            let length = Int(UInt32(bytes[first]) | UInt32(bytes[first + 1]) << 8)
            bytes[first + length - 9] ^= 0x20
            let sum = xxh3(Array(bytes[first ..< first + length - 8]))
            withUnsafeBytes(of: sum.littleEndian) { bytes.replaceSubrange(first + length - 8 ..< first + length, with: $0) }
            try writeFile(p + seg2, bytes)
        }, .tree, file: "000000000002.seg"))
        // A frame removed and the rest shifted.
        #expect(has(try tampered("removed") { p in
            var bytes = try readFile(p + seg2)
            let first = SegmentHeader.size
            let length = Int(UInt32(bytes[first]) | UInt32(bytes[first + 1]) << 8)
            bytes.removeSubrange(first ..< first + length)
            try writeFile(p + seg2, bytes)
        }, .sequence))
        #expect(has(try tampered("tile") { p in
            let tile = p + "/tiles/pack/0/000000"
            var bytes = try readFile(tile)
            bytes[40] ^= 1
            try writeFile(tile, bytes)
        }, .tile))
        #expect(has(try tampered("checkpoint") { p in
            let file = p + "/checkpoints/checkpoint"
            let text = try String(contentsOfFile: file, encoding: .utf8)
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            try writeFile(file, Array(text.replacingOccurrences(of: "\n" + lines[1] + "\n", with: "\n\(Int(lines[1])! - 1)\n").utf8))
        }, .checkpoint, file: "checkpoint"))
        #expect(has(try tampered("snapshot") { p in
            let file = p + "/index/snapshot"
            var bytes = try readFile(file)
            bytes[80] ^= 1
            try writeFile(file, bytes)
        }, .index))
        // A redaction stub over a compliance-locked version, made with the engine's own rewrite.
        #expect(has(try tampered("stub") { p in
            let config = try Store.readConfig(fs: PosixFileSystem(), layout: StoreLayout(root: p))
            let log = try SegmentLog.open(fs: PosixFileSystem(), directory: p + "/segments", storeID: config.storeID,
                                          segmentSize: config.segmentSize, writable: true, lostAndFound: p + "/lost+found",
                                          tilesDirectory: p + "/tiles", unclean: false)
            _ = try log.rewriteWithStubs(position: 0, sequences: [locked])
            log.close()
        }, .retention, file: "000000000001.seg"))
        // The same with a forged redaction record that claims the purge: the lock still shows.
        let forgedRecord = try tampered("stubWithRecord") { p in
            let config = try Store.readConfig(fs: PosixFileSystem(), layout: StoreLayout(root: p))
            let log = try SegmentLog.open(fs: PosixFileSystem(), directory: p + "/segments", storeID: config.storeID,
                                          segmentSize: config.segmentSize, writable: true, lostAndFound: p + "/lost+found",
                                          tilesDirectory: p + "/tiles", unclean: false)
            let value = RedactionRecord(sequences: [locked]).encoded
            _ = try value.withUnsafeBytes { v in
                try [UInt8]().withUnsafeBytes { empty in
                    try log.append(type: .redaction, flags: 0, timestamp: log.nextTimestamp(clock: 0), namespace: empty, key: empty, value: v, stored: v)
                }
            }
            try log.syncActive()
            _ = try log.rewriteWithStubs(position: 0, sequences: [locked])
            log.close()
        }
        #expect(forgedRecord.problems.contains { $0.category == .retention && $0.found.contains("compliance lock") }, "\(forgedRecord.problems)")
    }

    /// A history rewritten with every hash, seal, tile and checkpoint recomputed looks clean;
    /// only a checkpoint held elsewhere catches it.
    @Test func aRewrittenHistoryIsCaughtOnlyByAnExternalCheckpoint() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let original = dir.child("original")
        try Store.create(at: original, segmentSize: 64 * 1024, origin: "fsck.test/log")
        let forged = try Self.copy(original, dir, "forged")  // same store UUID and origin
        let honest = try Store(path: original)
        for i in 0 ..< 600 { try honest.put(namespace: "ledger", key: "acct-\(i % 50)", value: "amount \(i)") }
        let external = try honest.checkpoint(signer: Self.signer)
        try honest.close()
        let attacker = try Store(path: forged)
        for i in 0 ..< 600 { try attacker.put(namespace: "ledger", key: "acct-\(i % 50)", value: i == 17 ? "amount 1000000" : "amount \(i)") }
        try attacker.checkpoint(signer: Self.signer)
        try attacker.close()

        let blind = try Self.fsck(forged)
        #expect(blind.problems.isEmpty && blind.caveat != nil, "undetectable without an external checkpoint, and fsck says so")
        let informed = try Self.fsck(forged, external)
        #expect(informed.problems.contains { $0.category == .checkpoint && $0.found.contains("HISTORY WAS REWRITTEN") })
        #expect(informed.exitCode == 4)
    }

    @Test func repairDiscardsATornTailAndTheStoreReopensClean() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let (path, _, _) = try Self.build(dir)
        let store = try Store(path: path)
        let used = try store.stats().activeBytesUsed
        let segment = segmentPath(path, UInt64(try #require(try store.stats().activeSegment)))
        try store.close()
        try patchFile(segment, at: used, [0x55, 0, 0, 0, 9, 9, 9])  // half a frame after the last one
        let before = try Fsck.check(path: path)
        #expect(before.exitCode == 4 && before.problems.contains { $0.category == .checksum })
        let repaired = try Fsck.check(path: path, repair: true)
        #expect(repaired.exitCode == 1 && repaired.problems.isEmpty && !repaired.repairs.isEmpty)
        #expect(try Fsck.check(path: path).exitCode == 0)
        try Store(path: path).close()
    }
}

func chmodAll(_ path: String) throws {
    for sub in try FileManager.default.subpathsOfDirectory(atPath: path) { chmod(path + "/" + sub, 0o755) }
}

/// Regressions from the fsck review: crash states recovery accepts are not errors, and what a
/// damaged store hides is still found.
@Suite struct FsckRecoveryStateTests {
    @Test func crashStatesThatRecoveryAcceptsAreNotErrors() throws {
        try withStore { dir, path in
            let store = try Store(path: path)
            for i in 0 ..< 30 { try store.put(namespace: "n", key: "k\(i)", value: "v\(i)") }
            try store.seal()
            try store.close()
            // A leftover temporary segment, and a seal interrupted after its footer was written.
            try writeFile(path + "/segments/000000000009.seg.tmp", [1, 2, 3])
            let sealedBytes = try readFile(segmentPath(path, 1))
            try FileManager.default.removeItem(atPath: segmentPath(path, 2))
            try markCrashed(path)  // the crash came before the writer created segment 2
            try writeFile(segmentPath(path, 1), sealedBytes + [UInt8](repeating: 0, count: 64 * 1024 - sealedBytes.count))
            let report = try Fsck.check(path: path)
            #expect(report.problems.allSatisfy { $0.category == .tile || $0.category == .layout }, "\(report.problems)")
            #expect(!report.problems.contains { $0.category == .checksum || $0.category == .chain })
            _ = dir
        }
    }

    @Test func syncedRecordsMissingFromTheActiveSegmentAreFound() throws {
        try withStore { _, path in
            let store = try Store(path: path)
            var ends: [Int] = []
            for i in 0 ..< 20 {
                try store.put(namespace: "n", key: "k\(i)", value: "v\(i)")
                ends.append(try store.stats().activeBytesUsed)
            }
            try store.close()  // a clean close: the durable end covers every frame
            var bytes = try readFile(segmentPath(path, 1))
            for i in ends[16] ..< ends[19] { bytes[i] = 0 }
            try writeFile(segmentPath(path, 1), bytes)
            let report = try Fsck.check(path: path)
            #expect(report.problems.contains { $0.category == .checksum && $0.found.contains("synced records are missing") })
            #expect(report.exitCode == 4)
        }
    }

    @Test func besideAWriterLayoutFindingsAreInFlightAndRepairIsRefused() throws {
        try withStore { _, path in
            let store = try Store(path: path)
            for i in 0 ..< 30 { try store.put(namespace: "n", key: "k\(i)", value: "v\(i)") }
            try writeFile(path + "/segments/stray", [1, 2, 3])
            let beside = try Fsck.check(path: path)
            #expect(beside.writerActive && beside.problems.isEmpty && beside.exitCode == 0)
            #expect(beside.inFlight.map(\.category) == [.layout] && beside.inFlight[0].file.hasSuffix("segments/stray"))
            #expect(throws: SteleError.locked(path: path)) { try Fsck.check(path: path, repair: true) }
            // A record problem counts beside a writer too.
            try store.seal()
            chmod(segmentPath(path, 1), 0o644)
            try patchFile(segmentPath(path, 1), at: 200, [0xff ^ (try readFile(segmentPath(path, 1))[200])])
            let damaged = try Fsck.check(path: path)
            #expect(damaged.writerActive && damaged.exitCode == 4 && damaged.problems.contains { $0.category == .checksum })
            try store.close()
            let closed = try Fsck.check(path: path)
            #expect(!closed.writerActive && closed.inFlight.isEmpty && closed.problems.contains { $0.category == .layout })
        }
    }

    @Test func aSnapshotThatClaimsMoreKeysThanItHoldsIsRejected() {
        var bytes = [UInt8](repeating: 0, count: 200)
        bytes.withUnsafeMutableBytes { raw in
            let w = ByteWriter(base: raw.baseAddress!, count: raw.count)
            w.put(UInt64.max / 2, at: 56)
        }
        #expect(ByteView.of(bytes) { KeyIndex.decode($0, at: 72, count: UInt64.max / 2, end: 192) } == nil)
    }
}
