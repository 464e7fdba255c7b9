import Foundation
import Glibc
import Testing
@testable import Stele

/// README, caveats: Stele never truncates a sealed file or writes into one in place. A reader
/// that has a sealed segment mapped (and so would fault on a truncation) keeps its bytes through
/// further seals, a purge (which writes a new file and renames it over the old one: the old inode
/// is left as it was), a reopen and `fsck --repair`.
@Suite struct SealedFileTests {
    struct Held {
        var path: String
        var fd: Int32
        var inode: UInt64
        var bytes: [UInt8]
    }

    static func inode(_ path: String) -> UInt64? {
        var status = stat()
        return lstat(path, &status) == 0 ? UInt64(status.st_ino) : nil
    }

    /// Size and bytes of the open file `fd`, whatever name it has now.
    static func contents(_ fd: Int32) -> [UInt8] {
        var status = stat()
        guard fstat(fd, &status) == 0 else { return [] }
        var bytes = [UInt8](repeating: 0, count: Int(status.st_size))
        let read = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        return read == bytes.count ? bytes : []
    }

    static func sealedSegments(_ path: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: path + "/segments").filter { $0.hasSuffix(".seg") }.sorted()
            .map { path + "/segments/" + $0 }
            .filter { (try? PosixFileSystem().status($0))?.permissions == 0o444 }
    }

    @Test func sealedFilesAreNeverTruncatedOrRewrittenInPlace() throws {
        try withStore(segmentSize: 64 * 1024) { _, path in
            let clock = TestClock()
            let store = try RetentionTests.open(path, clock)
            // Two versions of each key: the first ones, superseded, are what a purge removes.
            for round in 0 ..< 2 {
                for i in 0 ..< 300 { try store.put(namespace: "n", key: Array("k-\(i)".utf8), value: [UInt8](repeating: UInt8(round), count: 200)) }
            }
            try store.seal()
            let held = try Self.sealedSegments(path).map { segment -> Held in
                let fd = open(segment, O_RDONLY)
                #expect(fd >= 0)
                return Held(path: segment, fd: fd, inode: try #require(Self.inode(segment)), bytes: try readFile(segment))
            }
            defer { for file in held { close(file.fd) } }
            #expect(held.count >= 3, "\(held.map(\.path))")

            // More seals, then a purge of every superseded version in those segments.
            for i in 0 ..< 200 { try store.put(namespace: "n", key: Array("later-\(i)".utf8), value: [UInt8](repeating: 7, count: 200)) }
            try store.seal()
            let report = try store.purge()
            #expect(report.purged.count == 300 && report.segmentsRewritten >= 2, "\(report)")
            try store.close()
            // A reopen, a seal and a close; then `fsck --repair` of a damaged `tiles/state`.
            let reopened = try RetentionTests.open(path, clock)
            try reopened.put(namespace: "n", key: "last", value: "v")
            try reopened.seal()
            try reopened.close()
            var state = try readFile(path + "/tiles/state")
            state[0] ^= 0x01
            try writeFile(path + "/tiles/state", state)
            let repaired = try Fsck.check(path: path, repair: true)
            #expect(repaired.problems.isEmpty && repaired.repairs.first == "removed tiles/state: tiles are rebuilt from the records", "\(repaired)")

            // Every inode held from the start still has its size and bytes: none was truncated
            // or written into in place. A name now on a new inode was replaced whole, by rename.
            var replaced = 0, kept = 0
            for file in held {
                #expect(Self.contents(file.fd) == file.bytes, "\(file.path): the sealed inode changed in place")
                if Self.inode(file.path) == file.inode {
                    kept += 1
                    #expect(try readFile(file.path) == file.bytes, "\(file.path)")
                } else {
                    replaced += 1
                    #expect(try readFile(file.path).count < file.bytes.count, "\(file.path): the purge's rewrite, with stubs")
                }
            }
            #expect(replaced == report.segmentsRewritten && kept == held.count - replaced, "replaced \(replaced), kept \(kept)")
            #expect(try Fsck.check(path: path).problems.isEmpty)
        }
    }
}
