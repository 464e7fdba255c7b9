import Crypto
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing
@testable import Stele
@testable import SteleServe

/// `stele serve` (c2sp.org/tlog-tiles), run as a real process on 127.0.0.1 beside a writer: what
/// it serves is checked with swift-crypto's SHA-256 and the RFC 6962 tree hash written here from
/// the RFC, not with Stele's own reader.
@Suite(.serialized) struct ServeTests {
    static let signer = try! NoteSigner(name: "serve.example/log", seed: [UInt8](repeating: 9, count: 32))

    /// The checkpoint's root is the tree hash of the level-0 tiles; every level-1 hash is the
    /// hash of its level-0 tile; every entry hashes to its leaf; the server follows the writer
    /// (a new checkpoint appears without a restart, and tiles served before are the same bytes
    /// after); paths that are not canonical are 400, resources past the checkpoint 404.
    @Test func servesWhatTheCheckpointCoversAndFollowsTheWriter() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.child("store")
        try Store.create(at: path, segmentSize: 1 << 20)
        let store = try Store(path: path)
        defer { try? store.close() }
        try store.putBatch((0 ..< 700).map { Entry(namespace: "n", key: Array("k\($0)".utf8), value: Array("value \($0)".utf8)) })
        let first = try store.checkpoint(signer: Self.signer)

        let server = try ListeningProcess(ListeningProcess.stele, ["serve", path, "--listen", "127.0.0.1:0",
                                                                   "--verifier-key", Self.signer.verifier.encoded, "--poll", "0.2"])
        defer { server.stop() }
        #expect(try server.get("checkpoint").body == Array(first.utf8))
        let size701 = try Self.checkTree(server)
        #expect(size701 == 701)
        let tileBefore = try server.get("tile/0/001").body

        // The writer goes on; the server publishes the next checkpoint within its poll.
        try store.putBatch((700 ..< 1_100).map { Entry(namespace: "n", key: Array("k\($0)".utf8), value: [UInt8]($0.description.utf8)) })
        let second = try store.checkpoint(signer: Self.signer)
        let deadline = Date().addingTimeInterval(20)
        while try server.get("checkpoint").body != Array(second.utf8), Date() < deadline { usleep(100_000) }
        #expect(try server.get("checkpoint").body == Array(second.utf8), "the server did not follow the writer")
        #expect(try Self.checkTree(server) == 1_101)
        #expect(try server.get("tile/0/001").body == tileBefore)

        for (resource, status) in [("tile/0/004", 404), ("tile/0/004.p/77", 200), ("tile/0/004.p/78", 404), ("tile/0/004.p/76", 200), ("tile/1/000.p/4", 200),
                                   ("tile/1/000.p/5", 404), ("tile/entries/005", 404), ("tile/2/000", 404),
                                   ("tile/0/x000/001", 400), ("tile/0/1", 400), ("tile/00/001", 400), ("tile/0/001.p/0", 400),
                                   ("tile/0/001.p/256", 400), ("tile/0/001.p/", 400), ("tile/64/000", 400), ("tile/0/x999/x999/x999/x999/x999/x999/x999/999", 400),
                                   ("tile/entries/x001", 400), ("tile/0/abc", 400)] {
            let got = try server.get(resource).status
            #expect(got == status, "\(resource): \(got)")
        }
    }

    /// Fetches the checkpoint and every tile and bundle it needs, and checks them against each
    /// other with an RFC 6962 tree hash of its own; returns the checkpoint's size.
    static func checkTree(_ server: ListeningProcess) throws -> UInt64 {
        let lines = String(decoding: try server.get("checkpoint").body, as: UTF8.self).split(separator: "\n")
        let size = UInt64(lines[1]) ?? 0
        let root = Data(base64Encoded: String(lines[2])).map(Array.init) ?? []
        var leaves: [[UInt8]] = []
        for n in 0 ..< size / 256 { leaves += hashes(try server.get(TileResource.tile(level: 0, index: n, width: nil).path).body) }
        if size % 256 > 0 {
            leaves += hashes(try server.get(TileResource.tile(level: 0, index: size / 256, width: Int(size % 256)).path).body)
        }
        #expect(UInt64(leaves.count) == size)
        #expect(treeHash(leaves[...]) == root, "the tiles do not hash to the checkpoint's root")
        let level1 = hashes(try server.get(TileResource.tile(level: 1, index: 0, width: Int(size / 256)).path).body)
        for (n, hash) in level1.enumerated() { #expect(hash == treeHash(leaves[(256 * n) ..< (256 * n + 256)])) }
        for n in 0 ..< (size + 255) / 256 {
            let width = n < size / 256 ? nil : Int(size % 256)
            let entries = bundle(try server.get(TileResource.entries(index: n, width: width).path).body)
            #expect(entries.count == (width ?? 256))
            for (i, entry) in entries.enumerated() {
                #expect(Array(SHA256.hash(data: [0] + entry)) == leaves[Int(n) * 256 + i])
            }
        }
        return size
    }

    static func hashes(_ bytes: [UInt8]) -> [[UInt8]] {
        stride(from: 0, to: bytes.count, by: 32).map { Array(bytes[$0 ..< min($0 + 32, bytes.count)]) }
    }

    /// RFC 6962 section 2.1: MTH of n > 1 leaves splits at the largest power of two below n.
    static func treeHash(_ leaves: ArraySlice<[UInt8]>) -> [UInt8] {
        if leaves.count == 1, let only = leaves.first { return only }
        var split = 1
        while split * 2 < leaves.count { split *= 2 }
        let left = treeHash(leaves.prefix(split)), right = treeHash(leaves.dropFirst(split))
        return Array(SHA256.hash(data: [1] + left + right))
    }

    /// An entry bundle's entries: big-endian uint16 length, then the entry.
    static func bundle(_ bytes: [UInt8]) -> [[UInt8]] {
        var entries: [[UInt8]] = []
        var at = 0
        while at + 2 <= bytes.count {
            let length = Int(bytes[at]) << 8 | Int(bytes[at + 1])
            guard at + 2 + length <= bytes.count else { break }
            entries.append(Array(bytes[(at + 2) ..< (at + 2 + length)]))
            at += 2 + length
        }
        #expect(at == bytes.count, "a bundle with trailing bytes")
        return entries
    }

    /// The canonical form of tile paths (c2sp.org/tlog-tiles): each index one spelling.
    @Test func tilePathsParseOnlyInCanonicalForm() {
        let cases: [(String, TileResource?)] = [
            ("checkpoint", .checkpoint),
            ("tile/0/000", .tile(level: 0, index: 0, width: nil)),
            ("tile/0/x001/x234/067", .tile(level: 0, index: 1_234_067, width: nil)),
            ("tile/2/x001/x234/067.p/255", .tile(level: 2, index: 1_234_067, width: 255)),
            ("tile/entries/x018/x446/x744/x073/x709/x551/615", .entries(index: UInt64.max, width: nil)),
            ("tile/entries/001.p/1", .entries(index: 1, width: 1)),
            ("tile/63/000", .tile(level: 63, index: 0, width: nil)),
            ("tile/entries/x018/x446/x744/x073/x709/x551/616", nil),  // 2^64
            ("tile/0/x000/001", nil), ("tile/0/01", nil), ("tile/0/0001", nil), ("tile/0/x001", nil), ("tile/0/001/002", nil),
            ("tile/01/000", nil), ("tile/64/000", nil), ("tile/-1/000", nil), ("tile/0/000.p/0", nil), ("tile/0/000.p/256", nil),
            ("tile/0/000.p/01", nil), ("tile/0/000.p", nil), ("tile/0/000.p/", nil), ("tile/0/x001.p/3/004", nil),
            ("/checkpoint", nil), ("tile//000", nil), ("tile/0/", nil), ("tile/0/٠٠١", nil), ("tile/entries", nil),
        ]
        for (path, expected) in cases {
            #expect(TileResource(path: path) == expected, "\(path)")
            if let expected { #expect(expected.path == path) }
        }
    }

    /// A checkpoint whose root the store's tree does not reproduce (signed by the log's own key:
    /// a forgery by someone holding it) is never published; the last good one stays.
    @Test func aCheckpointTheTreeDoesNotReproduceIsNotPublished() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.child("store")
        try Store.create(at: path, segmentSize: 1 << 20)
        let store = try Store(path: path)
        try store.putBatch((0 ..< 10).map { Entry(namespace: "n", key: [UInt8($0)], value: [1]) })
        let good = try store.checkpoint(signer: Self.signer)
        let log = try TileLog(directory: path, verifier: Self.signer.verifier)
        #expect(log.current?.note == good)
        // Five more records, and a checkpoint of them with a root the tree does not have.
        try store.putBatch((10 ..< 15).map { Entry(namespace: "n", key: [UInt8($0)], value: [1]) })
        try store.close()
        let forged = try SignedNote.sign(Checkpoint(origin: try TileLog.parse(good).origin, treeSize: 16,
                                                    root: Digest(bytes: [UInt8](repeating: 7, count: 32))!).text, with: Self.signer)
        try forged.write(toFile: path + "/checkpoints/checkpoint", atomically: true, encoding: .utf8)
        #expect(try log.refresh() == false)
        #expect(log.current?.note == good)
        #expect(log.answer(.checkpoint).body == Array(good.utf8))
        #expect(log.answer(.tile(level: 0, index: 0, width: 12)).status == 404, "a tile past the published checkpoint")
        #expect(log.answer(.tile(level: 0, index: 0, width: 11)).status == 200)
    }
}
