import Foundation
import Glibc
import Testing
@testable import Stele

/// README's `stele fsck` claims, through the real binary: timestamps that go backwards and a
/// sealed segment left writable are reported, and `--repair` rebuilds tiles and the index
/// snapshot and keeps a torn tail in `lost+found/`.
extension FsckTests {
    static func stele(_ arguments: [String]) throws -> CLITests.Run { try CLITests.stele(arguments) }

    /// A record whose timestamp is earlier than the one before it, written by the engine itself
    /// (so its checksum, leaf, tiles, seal and root are all consistent with it): only the order of
    /// the timestamps is wrong, and fsck says so, naming the record.
    @Test func aTimestampGoingBackwardsIsReported() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.child("store")
        try Store.create(at: path, segmentSize: 64 * 1024)
        let store = try Store(path: path)
        for i in 0 ..< 50 { try store.put(namespace: "n", key: "k\(i)", value: "v\(i)") }
        try store.close()
        let config = try Store.readConfig(fs: PosixFileSystem(), layout: StoreLayout(root: path))
        let log = try SegmentLog.open(fs: PosixFileSystem(), directory: path + "/segments", storeID: config.storeID,
                                      segmentSize: config.segmentSize, writable: true, lostAndFound: path + "/lost+found",
                                      tilesDirectory: path + "/tiles", unclean: false)
        let previous = log.lastTimestamp
        let earlier = previous - 5_000_000_000
        let forged = try [UInt8]("n".utf8).withUnsafeBytes { ns in
            try [UInt8]("late".utf8).withUnsafeBytes { key in
                try [UInt8]("back in time".utf8).withUnsafeBytes { value in
                    try log.append(type: .put, flags: 0, timestamp: earlier, namespace: ns, key: key, value: value, stored: value)
                }
            }
        }
        _ = try log.rotate()  // sealed: footer, root and tiles over the backwards record
        log.close()
        let segment = segmentPath(path, 1)
        let frame = try #require(HostileOperatorTests.frames(try readFile(segment)).first { $0.sequence == forged })

        let fsck = try Self.stele(["fsck", path])
        #expect(fsck.status == 4, "\(fsck.stdout)")
        let lines = fsck.stdout.split(separator: "\n").filter { !$0.hasPrefix("1 problem") }
        #expect(lines == ["sequence\t\(segment):\(frame.offset) seq=\(forged)\texpected timestamp ≥ \(previous), found \(earlier)"], "\(fsck.stdout)")
    }

    /// A sealed segment made writable again (not the last one, which a crash between truncation
    /// and mode change can leave so, and which `--repair` finishes): reported, and not repaired.
    @Test func aSealedSegmentLeftWritableIsReported() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let (path, _, _) = try Self.build(dir)
        let segment = segmentPath(path, 2)
        #expect(try PosixFileSystem().status(segment)?.permissions == 0o444)
        #expect(try Self.stele(["fsck", path]).status == 0)
        chmod(segment, 0o644)
        let fsck = try Self.stele(["fsck", path])
        #expect(fsck.status == 4 && fsck.stdout.hasPrefix("layout\t\(segment)\texpected a read-only sealed segment (0444), found 644\n1 problem(s)"),
                "\(fsck.stdout)")
        #expect(try Self.stele(["fsck", path, "--repair"]).status == 4, "a mode change on an earlier segment is not a crash state: left to the operator")
    }

    /// Tiles and the index snapshot damaged, and a torn tail after the active segment's durable
    /// end: `--repair` rebuilds the tiles from the verified log (the same bytes as before the
    /// damage), saves the torn bytes to `lost+found/`, removes the damaged snapshot (a snapshot is
    /// only valid at a seal's tree size, so none is written until the next seal; meanwhile each
    /// open rebuilds the index from the log), and the store is clean.
    @Test func repairRebuildsTilesRemovesADamagedSnapshotAndSavesATornTail() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let (path, _, _) = try Self.build(dir)
        let tile = path + "/tiles/pack/0/000000", snapshot = path + "/index/snapshot"
        let (goodTile, goodSnapshot) = (try readFile(tile), try readFile(snapshot))  // the snapshot: at a seal, when due
        let reader = try Store(path: path, options: .init(readOnly: true))
        #expect(reader.recovery.indexReplayed != nil, "an open loads the snapshot")
        try reader.close()
        let store = try Store(path: path)
        let used = try store.stats().activeBytesUsed
        let active = segmentPath(path, UInt64(try #require(try store.stats().activeSegment)))
        try store.close()
        var damaged = goodTile
        damaged[40] ^= 1
        try writeFile(tile, damaged)
        damaged = goodSnapshot
        damaged[80] ^= 1
        try writeFile(snapshot, damaged)
        let torn: [UInt8] = [0x55, 0, 0, 0, 9, 9, 9]  // the start of a frame that never finished
        try patchFile(active, at: used, torn)

        let before = try Self.stele(["fsck", path])
        #expect(before.status == 4 && before.stdout.contains("tile\t\(path)/tiles") && before.stdout.contains("index\t\(snapshot)")
            && before.stdout.contains("checksum\t\(active):\(used)"), "\(before.stdout)")
        let repair = try Self.stele(["fsck", path, "--repair"])
        #expect(repair.status == 1, "\(repair.stdout)")
        let saved = "\(path)/lost+found/\((active as NSString).lastPathComponent)-\(used).torn"
        #expect(repair.stdout.contains("repaired\tremoved tiles/state") && repair.stdout.contains("repaired\tremoved index/snapshot")
            && repair.stdout.contains("repaired\tdiscarded a torn tail of \(torn.count) bytes at \(active):\(used) (saved to \(saved))")
            && repair.stdout.contains("repaired\trebuilt tiles for leaves")
            && repair.stdout.contains("repaired, now clean"), "\(repair.stdout)")
        #expect(try readFile(saved) == torn, "lost+found holds exactly the discarded bytes")
        #expect(try readFile(tile) == goodTile, "the tile was rebuilt from the records")
        #expect(try readFile(active)[used ..< used + torn.count].allSatisfy { $0 == 0 }, "the torn tail was cut off")
        #expect(try Self.stele(["fsck", path]).status == 0)
        #expect(!FileManager.default.fileExists(atPath: snapshot), "the damaged snapshot was removed")
        let reopened = try Store(path: path, options: .init(readOnly: true))
        #expect(reopened.recovery.indexReplayed == nil, "the next open rebuilds the index from the log")
        try reopened.close()
    }
}
