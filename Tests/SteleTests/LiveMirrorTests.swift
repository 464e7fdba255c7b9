import Foundation
import Synchronization
import Testing
@testable import Stele
@testable import SteleMirror

/// The mirror as a follower runs it for a short recovery point (issue 21): in the writer's own
/// process, reading the writer's `Store` (no open, and no rehash of the active segment, per pass),
/// and with a seal's tiles sent a few each pass after the records rather than before the next
/// chunk. Neither may change what reaches the copy: the same objects, byte for byte, as a mirror
/// that opens the store at each pass and sends every tile at once.
@Suite struct LiveMirrorTests {
    typealias Setup = StandbyTests.Setup

    /// Every object of `target` under `prefixes`, by name, with its bytes.
    static func contents(_ target: DirectoryTarget, _ prefixes: [String]) throws -> [String: [UInt8]] {
        var out: [String: [UInt8]] = [:]
        for prefix in prefixes {
            for info in try target.list(prefix: prefix) { out[info.name] = try target.get(info.name) }
        }
        return out
    }

    @Test func aMirrorOfTheWritersStoreSeesEachPassAsItStands() throws {
        let setup = try Setup()
        defer { setup.finish() }
        var options = Mirror.Options()
        options.shipsActiveRecords = true
        let live = Mirror(store: setup.primary, target: setup.target, options: options)
        let reopened = DirectoryTarget(root: setup.dir.child("reopened"))
        let byPath = Mirror(storePath: setup.primaryPath, target: reopened, options: options)
        let standby = try setup.standby()
        defer { try? standby.close() }

        // Records appended between passes of the one mirror (no reopen) reach the copy: chunks,
        // then a seal, then chunks of the next segment.
        for (round, seals) in [(100 ..< 150, false), (150 ..< 230, false), (230 ..< 300, true), (300 ..< 340, false)] {
            try setup.primary.append(contentsOf: round.map { testEntry($0) })
            if seals { try setup.primary.seal() } else { _ = try setup.primary.checkpoint(signer: setup.signer) }
            let pass = try live.runOnce()
            #expect(pass.recordsOffHost == setup.primary.recordCount && pass.lagRecords == 0, "\(round): \(pass)")
            _ = try byPath.runOnce()
            let caughtUp = try standby.catchUp()
            #expect(caughtUp.recordsInstalled > 0)
            #expect(caughtUp.records == setup.primary.recordCount, "\(round): \(caughtUp)")
        }
        for n in [0, 120, 299, 339] { #expect(try StandbyTests.value(standby.store, n) == testEntry(n).value) }
        #expect(try standby.store.rootHash() == setup.primary.rootHash())
        // Byte for byte what a mirror that opens the store at each pass copies.
        let prefixes = ["segments/", "checkpoints/", ActiveChunk.prefix, "tiles/"]
        let copied = try Self.contents(setup.target, prefixes)
        #expect(copied.keys.contains { $0.hasPrefix(ActiveChunk.prefix) } && copied.keys.contains { $0.hasPrefix("tiles/") })
        #expect(copied == (try Self.contents(reopened, prefixes)))
    }

    @Test func aSealsTilesTrailItsRecordsBoundedPerPassAndEndTheSameAsAllAtOnce() throws {
        let setup = try Setup()
        defer { setup.finish() }
        // 1,500 more records over three seals: a few level-0 tiles, their level-1 tile, and the
        // partial tiles of each seal's checkpoint.
        for start in stride(from: 100, to: 1_600, by: 500) { try setup.write(start ..< start + 500, mirror: false) }
        let allAtOnce = DirectoryTarget(root: setup.dir.child("all-at-once"))
        let unbounded = try Mirror(storePath: setup.primaryPath, target: allAtOnce).runOnce()
        #expect(unbounded.tilesWaiting == 0)

        var options = Mirror.Options()
        options.tilesPerPass = 2
        let bounded = DirectoryTarget(root: setup.dir.child("bounded"))
        let mirror = Mirror(store: setup.primary, target: bounded, options: options)
        let first = try mirror.runOnce()
        // Every record and checkpoint in the first pass; the tiles after them, two at a time.
        let records = setup.primary.recordCount
        #expect(first.recordsOffHost == records && first.checkpointOffHost == records, "\(first)")
        #expect(first.uploaded.filter { $0.hasPrefix("tiles/") }.count == 2)
        let tiles = unbounded.uploaded.filter { $0.hasPrefix("tiles/") }.count
        #expect(tiles > 6 && first.tilesWaiting == tiles - 2, "\(tiles) tiles; \(first)")
        var passes = 1
        var waiting = first.tilesWaiting
        while waiting > 0 && passes < tiles {
            let pass = try mirror.runOnce()
            #expect(pass.uploaded.count <= 2 && pass.uploaded.allSatisfy { $0.hasPrefix("tiles/") }, "\(pass)")
            #expect(pass.tilesWaiting == max(0, waiting - 2))
            waiting = pass.tilesWaiting
            passes += 1
        }
        #expect(waiting == 0 && passes == (tiles + 1) / 2)
        let prefixes = ["segments/", "checkpoints/", "tiles/"]
        #expect(try Self.contents(bounded, prefixes) == Self.contents(allAtOnce, prefixes))
    }

    /// With chunks, which carry each checkpoint the mirror ships, the copy's `checkpoints/` keeps
    /// at most two a segment (the newest at or before its end; and, until one at or past the newest
    /// seal's end is in the copy, the store's published one once it is) however often the writer
    /// signs: a restore still proves and brings back every sealed segment, and takes the newest
    /// chunk's checkpoint as the evidence of what the writer signed beyond them.
    @Test func withChunksTheCopyKeepsTwoCheckpointsASegmentAndARestoreProvesThemAll() throws {
        let setup = try Setup()
        defer { setup.finish() }
        var options = Mirror.Options()
        options.shipsActiveRecords = true
        let mirror = Mirror(store: setup.primary, target: setup.target, options: options)
        var n = 100
        for _ in 0 ..< 3 {
            for _ in 0 ..< 8 {
                try setup.primary.append(contentsOf: (n ..< n + 15).map { testEntry($0) })
                n += 15
                _ = try setup.primary.checkpoint(signer: setup.signer)
                #expect(try mirror.runOnce().lagRecords == 0)
            }
            try setup.primary.seal()  // at the size of the last checkpoint: signs none of its own
            try setup.primary.append(contentsOf: (n ..< n + 10).map { testEntry($0) })
            n += 10
            _ = try setup.primary.checkpoint(signer: setup.signer)
            let pass = try mirror.runOnce()
            #expect(pass.lagRecords == 0 && pass.checkpointOffHost == setup.primary.recordCount, "\(pass)")
        }
        // Two more chunks after the last seal: their checkpoints stay in the chunks.
        for _ in 0 ..< 2 {
            try setup.primary.append(contentsOf: (n ..< n + 10).map { testEntry($0) })
            n += 10
            _ = try setup.primary.checkpoint(signer: setup.signer)
            #expect(try mirror.runOnce().checkpointOffHost == setup.primary.recordCount)
        }
        let kept = try FileManager.default.contentsOfDirectory(atPath: setup.primaryPath + "/checkpoints/history").compactMap { UInt64($0) }
        let sealed = try setup.primary.sealedSegments()
        let copied = try setup.target.list(prefix: "checkpoints/").compactMap { UInt64($0.name.dropFirst("checkpoints/".count)) }
        // Segment 1 was mirrored without chunks (every checkpoint, one here). Each later seal's
        // checkpoint (here the last one before it, at its end) is copied: that proves it whole, so
        // no checkpoint past it is needed. The others travel in the chunks only.
        let ends = Set(sealed.map { $0.records.upperBound + 1 })
        // The writer signed 1 + 3 * 9 + 2 checkpoints; its own history keeps those the copy has,
        // and the newest.
        #expect(Set(copied) == ends && copied.count == 4, "copied \(copied.sorted()), ends \(ends.sorted())")
        #expect(Set(kept) == ends.union([setup.primary.recordCount]) && kept.count == 5, "kept \(kept.sorted())")

        // A restore from the first checkpoint (what an auditor held) proves every sealed segment
        // with the ones in the copy.
        let trusted = String(decoding: try readFile(setup.primaryPath + "/checkpoints/history/00000000000000000101"), as: UTF8.self)
        let restored = try Restore.run(from: setup.target, to: setup.dir.child("restored"), checkpoint: trusted, verifier: setup.signer.verifier)
        #expect(restored.segments == sealed.count && restored.segmentsLeftOut == 0, "\(restored)")
        #expect(restored.treeSize == (sealed.last?.records.upperBound ?? 0) + 1)
        // The newest chunk's checkpoint is the evidence of what the writer signed beyond them.
        #expect(restored.checkpointBeyond == setup.primary.recordCount, "\(restored)")

        // A writer that seals without signing, and signs afterwards on a quiet store (`stele
        // checkpoint --seal`): the checkpoint at the seal's end is copied at the next pass.
        try setup.primary.close()
        let unsigned = try Store(path: setup.primaryPath, options: .init(commitPolicy: .none))
        defer { try? unsigned.close() }
        let quiet = Mirror(store: unsigned, target: setup.target, options: options)
        try unsigned.append(contentsOf: (n ..< n + 10).map { testEntry($0) })
        try unsigned.seal()
        let end = unsigned.recordCount
        #expect(try quiet.runOnce().lagRecords == 0)
        let copiedNow = { try setup.target.list(prefix: "checkpoints/").compactMap { UInt64($0.name.dropFirst("checkpoints/".count)) } }
        #expect(try !copiedNow().contains(end))
        _ = try unsigned.checkpoint(signer: setup.signer)
        #expect(try quiet.runOnce().checkpointOffHost == end)
        #expect(try copiedNow().contains(end))
    }

    /// A mirror in a process of its own (it opens the store at each pass) beside a writer that
    /// signs checkpoints without pause: each pass still ships a chunk, because it takes the
    /// checkpoint published before its open, whose records the open sees. (Taken after the open,
    /// the checkpoint is nearly always ahead of it, and the records would wait.)
    @Test func aMirrorThatOpensTheStoreShipsChunksBesideAWriterSigningWithoutPause() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let signer = try NoteSigner.generate(name: "live-mirror.test/log")
        let path = dir.child("primary")
        try Store.create(at: path)
        let primary = try Store(path: path, options: .init(commitPolicy: .none))
        defer { try? primary.close() }
        // An active segment that takes each open a while to read, as a busy writer's does.
        try primary.append(contentsOf: (0 ..< 20_000).map { testEntry($0) })
        _ = try primary.checkpoint(signer: signer)
        let target = DirectoryTarget(root: dir.child("copy"))
        var options = Mirror.Options()
        options.shipsActiveRecords = true
        let mirror = Mirror(storePath: path, target: target, options: options)
        let stop = Mutex(false)
        let finished = DispatchSemaphore(value: 0)
        let writer = Thread {
            defer { finished.signal() }
            var n = 20_000
            while !stop.withLock({ $0 }) {
                _ = try? primary.append(contentsOf: (n ..< n + 5).map { testEntry($0) })
                _ = try? primary.checkpoint(signer: signer)
                n += 5
            }
        }
        writer.start()
        defer {
            stop.withLock { $0 = true }
            finished.wait()
        }
        var shipped = 0
        for _ in 0 ..< 10 {
            let pass = try mirror.runOnce()
            if pass.uploaded.contains(where: { $0.hasPrefix(ActiveChunk.prefix) }) { shipped += 1 }
            Thread.sleep(forTimeInterval: 0.02)
        }
        // (Taking the checkpoint after the open, no pass of ten shipped one here.)
        #expect(shipped >= 5, "\(shipped) of 10 passes shipped a chunk")
    }
}
