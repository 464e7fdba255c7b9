import Foundation
import Glibc
import Testing
@testable import Stele
import SteleNative

/// An operator with shell access to the store's files, trying to change, remove or re-forge
/// history without any command noticing. Each case works on a copy of one store, through the
/// real `stele` binary: the right command must fail with the right exit code and name what it
/// found, and no write may follow a loss. (The off-host copy: `HostileCopyTests`.)
@Suite struct HostileOperatorTests {
    typealias Run = CLITests.Run

    /// A store of several sealed segments and an active one, the key that signs its checkpoints,
    /// and a checkpoint over all of it held "elsewhere" (`cp.txt` beside the store).
    struct Fixture {
        let dir: TemporaryDirectory
        let original: String
        var checkpoint: String { dir.child("cp.txt") }
        var verifierKey: String { dir.child("k.pub") }

        init() throws {
            dir = TemporaryDirectory()
            original = dir.child("original")
            #expect(try stele(["init", original, "--segment-size", "65536"]).status == 0)
            #expect(try stele(["keygen", "--name", "hostile.test/log", "--out", dir.child("k")]).status == 0)
            let lines = (0 ..< 2000).map { #"{"ns":"m/orders","key":"o-\#($0)","value":"\#(String(repeating: "x", count: 60 + $0 % 40))"}"# }
            #expect(try stele(["append", original, "--jsonl", "-"], stdin: lines.joined(separator: "\n") + "\n").status == 0)
            #expect(try stele(["checkpoint", original, "--key", dir.child("k.key"), "--out", dir.child("cp.txt")]).status == 0)
        }

        /// A fresh copy of the store to attack.
        func copy(_ name: String) throws -> String {
            let path = dir.child(name)
            try FileManager.default.copyItem(atPath: original, toPath: path)  // modes kept: sealed segments stay 0444
            return path
        }

        func verify(_ store: String) throws -> Run {
            try stele(["verify", store, "--checkpoint", checkpoint, "--verifier-key", verifierKey])
        }
    }

    static func stele(_ arguments: [String], stdin: String? = nil) throws -> Run { try CLITests.stele(arguments, stdin: stdin) }

    /// The frames of a segment file: offset, length and sequence number of each.
    static func frames(_ bytes: [UInt8]) -> [(offset: Int, length: Int, sequence: UInt64)] {
        ByteView.of(bytes) { view in
            var out: [(Int, Int, UInt64)] = []
            var offset = SegmentHeader.size
            while case .success(let frame) = Frame.decode(view, at: offset, limit: view.count) {
                out.append((offset, frame.length, frame.sequence))
                offset = frame.end
            }
            return out
        }
    }

    /// Recomputes the XXH3 of the frame at `offset` (after its bytes were edited): a re-forged
    /// frame, valid to every check that looks at the frame alone.
    static func refixChecksum(_ bytes: inout [UInt8], frameAt offset: Int, length: Int) {
        let sum = xxh3(Array(bytes[offset ..< offset + length - 8]))
        withUnsafeBytes(of: sum.littleEndian) { bytes.replaceSubrange(offset + length - 8 ..< offset + length, with: $0) }
    }

    /// The active segment's path (the last one).
    static func lastSegment(_ store: String) throws -> String {
        let names = try FileManager.default.contentsOfDirectory(atPath: store + "/segments").filter { $0.hasSuffix(".seg") }.sorted()
        return store + "/segments/" + (names.last ?? "")
    }

    // MARK: Altered records

    @Test func aByteFlippedInASealedRecordIsNamedByVerifyAndFsck() throws {
        let f = try Fixture()
        defer { f.dir.remove() }
        let store = try f.copy("flip")
        let segment = segmentPath(store, 2)
        var bytes = try readFile(segment)
        let victim = try #require(Self.frames(bytes).dropFirst(5).first)
        bytes[victim.offset + victim.length - 20] ^= 0x01  // inside the value; checksum left as it was
        try writeFile(segment, bytes)

        let verify = try f.verify(store)
        #expect(verify.status == 3)
        #expect(verify.stderr.contains(segment) && verify.stderr.contains("offset \(victim.offset)")
            && verify.stderr.contains("sequence \(victim.sequence)") && verify.stderr.contains("XXH3 mismatch"), "\(verify.stderr)")
        let fsck = try Self.stele(["fsck", store])
        #expect(fsck.status == 4 && fsck.stdout.contains("checksum\t\(segment):\(victim.offset) seq=\(victim.sequence)"), "\(fsck.stdout)")
        // The tiles alone do not see it, and say so.
        let tilesOnly = try Self.stele(["verify", store, "--checkpoint", f.checkpoint, "--verifier-key", f.verifierKey, "--tiles-only"])
        #expect(tilesOnly.status == 0 && tilesOnly.stdout.contains("not checked: the records themselves were not read"))
    }

    @Test func aReforgedSealedRecordWithAValidChecksumIsNamed() throws {
        let f = try Fixture()
        defer { f.dir.remove() }
        let store = try f.copy("reforged")
        let segment = segmentPath(store, 2)
        var bytes = try readFile(segment)
        let victim = try #require(Self.frames(bytes).dropFirst(7).first)
        bytes[victim.offset + victim.length - 20] = UInt8(ascii: "Y")
        Self.refixChecksum(&bytes, frameAt: victim.offset, length: victim.length)
        try writeFile(segment, bytes)

        let verify = try f.verify(store)
        #expect(verify.status == 3)
        #expect(verify.stderr.contains(segment) && verify.stderr.contains("offset \(victim.offset)")
            && verify.stderr.contains("sequence \(victim.sequence)") && verify.stderr.contains("altered"), "\(verify.stderr)")
        let fsck = try Self.stele(["fsck", store])
        #expect(fsck.status == 4 && fsck.stdout.contains("tree\t\(segment)"), "\(fsck.stdout)")
    }

    @Test func aReforgedActiveRecordIsNamedAndTheWriterRefuses() throws {
        let f = try Fixture()
        defer { f.dir.remove() }
        let store = try f.copy("reforged-active")
        let segment = try Self.lastSegment(store)
        var bytes = try readFile(segment)
        let victim = try #require(Self.frames(bytes).dropFirst(3).first)
        bytes[victim.offset + victim.length - 20] = UInt8(ascii: "Z")
        Self.refixChecksum(&bytes, frameAt: victim.offset, length: victim.length)
        try writeFile(segment, bytes)

        let verify = try f.verify(store)
        #expect(verify.status == 3)
        #expect(verify.stderr.contains(segment) && verify.stderr.contains("offset \(victim.offset)")
            && verify.stderr.contains("sequence \(victim.sequence)"), "\(verify.stderr)")
        let put = try Self.stele(["put", store, "m/orders", "after", "x"])
        #expect(put.status == 3 && put.stderr.contains("tiles/state"), "\(put.stderr)")
        let fsck = try Self.stele(["fsck", store])
        #expect(fsck.status == 4 && fsck.stdout.contains("A RECORD WAS ALTERED"), "\(fsck.stdout)")
        // Not damage to repair: rebuilding the tiles would erase what shows the change.
        #expect(try Self.stele(["fsck", store, "--repair"]).status == 4)
        #expect(try Self.stele(["put", store, "m/orders", "after", "x"]).status == 3)
        #expect(try f.verify(store).status == 3)
    }

    @Test func aRecordTurnedIntoARedactionStubWithoutAPurgeIsNamed() throws {
        let f = try Fixture()
        defer { f.dir.remove() }
        let store = try f.copy("stubbed")
        // The payload replaced by a stub that keeps the record's leaf hash: the tree cannot tell.
        let segment = segmentPath(store, 2)
        let bytes = try readFile(segment)
        let victim = try #require(Self.frames(bytes).dropFirst(4).first)
        let leaf = try #require(ByteView.of(bytes) { view in try Frame.decode(view, at: victim.offset, limit: view.count).get().leafHash(in: view) })
        let reader = try Store(path: store, options: .init(readOnly: true))
        let record = try reader.record(at: victim.sequence)
        try reader.close()
        let stub = ByteWriter.makeArray(count: Frame.length(namespace: record.namespace.count, key: record.key.count, stored: 32)) { w in
            record.namespace.withUnsafeBytes { ns in
                record.key.withUnsafeBytes { key in
                    leaf.bytes.withUnsafeBytes { stored in
                        _ = Frame.encode(into: w, at: 0, type: record.type, flags: Frame.flagRedacted, sequence: record.sequence,
                                         timestamp: record.timestamp, namespace: ns, key: key, stored: stored, valueLength: record.value.count)
                    }
                }
            }
        }
        // A sealed segment's frames move: rebuild the file with the stub (footer and header as they were).
        var footer = try ByteView.of(bytes) { try SegmentFooter.decodeAtEnd($0).get() }
        footer.framesEnd -= UInt64(victim.length - stub.count)
        var rewritten = Array(bytes[..<victim.offset]) + stub + Array(bytes[(victim.offset + victim.length)...])
        rewritten = Array(rewritten[..<Int(footer.framesEnd)]) + footer.encoded
        var header = try ByteView.of(bytes) { try SegmentHeader.decode($0).get() }
        header.durableEnd = footer.framesEnd
        rewritten.replaceSubrange(0 ..< SegmentHeader.size, with: header.encoded)
        try writeFile(segment, rewritten)
        let verify = try f.verify(store)
        #expect(verify.status == 3 && verify.stderr.contains("redaction stub that no redaction record names")
            && verify.stderr.contains("sequence \(victim.sequence)"), "\(verify.stderr)")
        #expect(try Self.stele(["fsck", store]).stdout.contains("a stub no redaction record allows"))
    }

    @Test func aByteFlippedInTheActiveSegmentIsCorruptionEverywhere() throws {
        let f = try Fixture()
        defer { f.dir.remove() }
        let store = try f.copy("flip-active")
        let segment = try Self.lastSegment(store)
        var bytes = try readFile(segment)
        let victim = try #require(Self.frames(bytes).dropFirst(2).first)
        bytes[victim.offset + 40] ^= 0x10
        try writeFile(segment, bytes)
        for command in [["put", store, "m/orders", "after", "x"], ["read", store, "--from", "0"], ["verify", store, "--checkpoint", f.checkpoint, "--verifier-key", f.verifierKey]] {
            let run = try Self.stele(command)
            #expect(run.status == 3 && run.stderr.contains(segment) && run.stderr.contains("offset \(victim.offset)"), "\(command[0]): \(run.stderr)")
        }
    }

    // MARK: Removed, swapped and inserted frames

    @Test func removedAndSwappedFramesAreNamed() throws {
        let f = try Fixture()
        defer { f.dir.remove() }
        // Two frames of a sealed segment swapped (lengths equal): the sequence numbers give it away.
        let swapped = try f.copy("swapped")
        let segment = segmentPath(swapped, 2)
        var bytes = try readFile(segment)
        let all = Self.frames(bytes)
        let pair = try #require(all.indices.lazy.compactMap { i in all[(i + 1)...].first { $0.length == all[i].length }.map { (all[i], $0) } }.first)
        let first = Array(bytes[pair.0.offset ..< pair.0.offset + pair.0.length])
        bytes.replaceSubrange(pair.0.offset ..< pair.0.offset + pair.0.length, with: bytes[pair.1.offset ..< pair.1.offset + pair.1.length])
        bytes.replaceSubrange(pair.1.offset ..< pair.1.offset + pair.1.length, with: first)
        try writeFile(segment, bytes)
        let verify = try f.verify(swapped)
        #expect(verify.status == 3 && verify.stderr.contains("offset \(pair.0.offset)") && verify.stderr.contains("expected sequence \(pair.0.sequence), found \(pair.1.sequence)"), "\(verify.stderr)")
        #expect(try Self.stele(["fsck", swapped]).stdout.contains("sequence\t\(segment):\(pair.0.offset)"))

        // A frame removed from the active segment (the rest moved up, the end zeroed).
        let removed = try f.copy("removed")
        let active = try Self.lastSegment(removed)
        var activeBytes = try readFile(active)
        let gone = try #require(Self.frames(activeBytes).dropFirst(4).first)
        activeBytes.removeSubrange(gone.offset ..< gone.offset + gone.length)
        activeBytes += [UInt8](repeating: 0, count: gone.length)
        try writeFile(active, activeBytes)
        for command in [["verify", removed, "--checkpoint", f.checkpoint, "--verifier-key", f.verifierKey], ["put", removed, "m/orders", "after", "x"]] {
            let run = try Self.stele(command)
            #expect(run.status == 3 && run.stderr.contains(active) && run.stderr.contains("expected sequence \(gone.sequence)"), "\(command[0]): \(run.stderr)")
        }

        // A frame inserted into a sealed segment (a copy of its neighbour): the next frame's
        // sequence number repeats.
        let inserted = try f.copy("inserted")
        let sealedPath = segmentPath(inserted, 3)
        var sealed = try readFile(sealedPath)
        let neighbour = try #require(Self.frames(sealed).dropFirst(9).first)
        sealed.insert(contentsOf: sealed[neighbour.offset ..< neighbour.offset + neighbour.length], at: neighbour.offset + neighbour.length)
        try writeFile(sealedPath, sealed)
        let insertedVerify = try f.verify(inserted)
        #expect(insertedVerify.status == 3 && insertedVerify.stderr.contains(sealedPath), "\(insertedVerify.stderr)")
    }

    // MARK: Lost files

    @Test func theActiveSegmentDeletedWithOrWithoutItsTilesStopsTheWriter() throws {
        let f = try Fixture()
        defer { f.dir.remove() }
        for withTiles in [false, true] {
            let store = try f.copy("no-active-\(withTiles)")
            let active = try Self.lastSegment(store)
            try FileManager.default.removeItem(atPath: active)
            if withTiles {
                try FileManager.default.removeItem(atPath: store + "/tiles")
                try FileManager.default.createDirectory(atPath: store + "/tiles", withIntermediateDirectories: false)
            }
            let before = try Self.stele(["stats", store, "--json"]).stdout
            let put = try Self.stele(["put", store, "m/orders", "after", "x"])
            #expect(put.status == 3 && put.stderr.contains("LOST RECORDS") && put.stderr.contains(active), "\(put.stderr)")
            #expect(try Self.stele(["stats", store, "--json"]).stdout == before, "nothing was written")
            let fsck = try Self.stele(["fsck", store])
            #expect(fsck.status == 4 && fsck.stdout.contains("loss\t") && fsck.stdout.contains(active), "\(fsck.stdout)")
            #expect(try f.verify(store).status == 3, "the checkpoint covers records that are gone")

            // Recovery is explicit: the loss is recorded, and its numbers are never handed out again.
            let record = try Self.stele(["record-loss", store, "--reason", "active segment deleted (test)"])
            #expect(record.status == 0, "\(record.stderr)")
            let put2 = try Self.stele(["put", store, "m/orders", "after", "x"])
            #expect(put2.status == 0)
            #expect(UInt64(put2.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0 >= 2001, "continues past every number handed out")
            let fsck2 = try Self.stele(["fsck", store])
            #expect(fsck2.status == 0 && fsck2.stdout.contains("recorded lost"), "\(fsck2.stdout)")
            // The old checkpoint describes a history that is gone: still refused.
            #expect(try f.verify(store).status == 3)
        }
    }

    @Test func withReachDeletedTooTheOperatorMustSayWhereToContinue() throws {
        let f = try Fixture()
        defer { f.dir.remove() }
        let store = try f.copy("no-reach")
        try FileManager.default.removeItem(atPath: try Self.lastSegment(store))
        try FileManager.default.removeItem(atPath: store + "/reach")
        try FileManager.default.removeItem(atPath: store + "/checkpoints/checkpoint")
        try FileManager.default.removeItem(atPath: store + "/checkpoints/history")
        let put = try Self.stele(["put", store, "m/orders", "after", "x"])
        #expect(put.status == 3 && put.stderr.contains("reach is missing"), "\(put.stderr)")
        let guess = try Self.stele(["record-loss", store, "--reason", "test"])
        #expect(guess.status == 1 && guess.stderr.contains("--continue-at"), "\(guess.stderr)")
        // The external checkpoint says how far the log reached: continue past it.
        #expect(try Self.stele(["record-loss", store, "--reason", "test", "--continue-at", "2001"]).status == 0)
        #expect(try Self.stele(["put", store, "m/orders", "after", "x"]).stdout == "2001\n")
    }

    @Test func theLastSealedSegmentsDeletedStopTheWriter() throws {
        let f = try Fixture()
        defer { f.dir.remove() }
        let store = try f.copy("no-tail")
        let last = try Self.lastSegment(store)
        let count = UInt64(try FileManager.default.contentsOfDirectory(atPath: store + "/segments").count)
        for index in count - 2 ... count { try FileManager.default.removeItem(atPath: segmentPath(store, index)) }
        let put = try Self.stele(["put", store, "m/orders", "after", "x"])
        #expect(put.status == 3 && put.stderr.contains("LOST RECORDS") && put.stderr.contains(last), "\(put.stderr)")
        let fsck = try Self.stele(["fsck", store])
        #expect(fsck.status == 4 && fsck.stdout.contains("loss\t"))
        #expect(try f.verify(store).stderr.contains("LOST"))
    }

    @Test func recordsAppendedAfterACheckpointThenTheTailDeletedStopTheWriter() throws {
        let f = try Fixture()
        defer { f.dir.remove() }
        let store = try f.copy("appended")
        let lines = (0 ..< 1500).map { #"{"ns":"m/orders","key":"late-\#($0)","value":"\#(String(repeating: "y", count: 80))"}"# }
        #expect(try Self.stele(["append", store, "--jsonl", "-"], stdin: lines.joined(separator: "\n") + "\n").status == 0)
        let last = try Self.lastSegment(store)
        try FileManager.default.removeItem(atPath: last)
        try FileManager.default.removeItem(atPath: try Self.lastSegment(store))
        // The checkpoint held elsewhere still verifies the records it covers, but the store's
        // evidence shows the tail gone: verify says so (exit 3), the writer refuses.
        let verify = try f.verify(store)
        #expect(verify.status == 3 && verify.stderr.contains("LOST"), "\(verify.stderr)")
        #expect(try Self.stele(["put", store, "m/orders", "after", "x"]).status == 3)
        #expect(try Self.stele(["checkpoint", store, "--key", f.dir.child("k.key")]).status == 3, "no checkpoint over a loss")
    }

    // MARK: stele.conf edited

    /// Rewrites a line of stele.conf and recomputes its checksum, as anyone with write access can.
    static func editConfig(_ store: String, _ edit: (inout [String]) -> Void) throws {
        var lines = String(decoding: try readFile(store + "/stele.conf"), as: UTF8.self).split(separator: "\n").map(String.init)
        lines.removeLast()  // xxh3
        edit(&lines)
        let body = lines.map { $0 + "\n" }.joined()
        let digits = String(xxh3(Array(body.utf8)), radix: 16)
        try writeFile(store + "/stele.conf", Array((body + "xxh3 " + String(repeating: "0", count: 16 - digits.count) + digits + "\n").utf8))
    }

    @Test func steleConfEditedWithARecomputedChecksumIsRefused() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        #expect(try Self.stele(["keygen", "--name", "gov/key", "--out", dir.child("gov")]).status == 0)
        #expect(try Self.stele(["keygen", "--name", "gov/key", "--out", dir.child("forged")]).status == 0)
        let store = dir.child("s")
        #expect(try Self.stele(["init", store, "--segment-size", "65536", "--origin", "example.com/ledger",
                                "--governance-key", dir.child("gov.pub")]).status == 0)
        #expect(try Self.stele(["put", store, "ledger", "acct", "v1"]).status == 0)
        #expect(try Self.stele(["lock", store, "ledger", "acct", "--mode", "governance", "--for", "30d"]).status == 0)
        #expect(try Self.stele(["put", store, "ledger", "acct", "v2"]).status == 0)
        let pristine = try readFile(store + "/stele.conf")
        let forgedKey = try String(contentsOfFile: dir.child("forged.pub"), encoding: .utf8).trimmingCharacters(in: .newlines)

        for (what, edit) in [("governance-key", { (lines: inout [String]) in lines = lines.map { $0.hasPrefix("governance-key ") ? "governance-key " + forgedKey : $0 } }),
                             ("origin", { (lines: inout [String]) in lines = lines.map { $0.hasPrefix("origin ") ? "origin evil.example/ledger" : $0 } })] {
            try Self.editConfig(store, edit)
            for command in [["put", store, "ledger", "x", "y"], ["get", store, "ledger", "acct"]] {
                let run = try Self.stele(command)
                #expect(run.status == 3 && run.stderr.contains("stele.conf disagrees with the log") && run.stderr.contains(what), "\(what): \(run.stderr)")
            }
            let fsck = try Self.stele(["fsck", store])
            #expect(fsck.status == 4 && fsck.stdout.contains("config\t\(store)/stele.conf") && fsck.stdout.contains(what), "\(fsck.stdout)")
            // The log is the authority: repair writes the file from it.
            #expect(try Self.stele(["fsck", store, "--repair"]).status == 1)
            #expect(try readFile(store + "/stele.conf") == pristine)
        }
        // A bypass signed by another key is refused by the store itself, with the file intact:
        // the log names the governance key.
        let foreign = try Self.stele(["authorize", "--signer", dir.child("forged.key"), "--origin", "example.com/ledger", "ledger", "acct",
                                      "--until", "2020-01-01T00:00:00Z", "--as-of", "4"])
        try writeFile(dir.child("foreign"), Array(foreign.stdout.utf8))
        let refused = try Self.stele(["lock", store, "ledger", "acct", "--mode", "governance", "--until", "2020-01-01T00:00:00Z",
                                      "--authorization", dir.child("foreign")])
        #expect(refused.status == 1 && refused.stderr.contains("no signature by gov/key"), "\(refused.stderr)")
        #expect(try Self.stele(["history", store, "ledger", "acct"]).stdout.contains("[governance until"), "the lock still holds")
        // A minimum retention cannot be slipped in through the file: it is not a setting there.
        try Self.editConfig(store) { $0.insert("min-retention 36500d", at: $0.count) }
        let run = try Self.stele(["put", store, "ledger", "x", "y"])
        #expect(run.status == 3 && run.stderr.contains("unknown or repeated key: min-retention"), "\(run.stderr)")
        try writeFile(store + "/stele.conf", pristine)

        // The attack from the issue: a bypass signed by another key, with the file edited to name
        // that key and put back afterwards, lifts nothing: the store refuses the file, and a
        // bypass record forged straight into the log is corruption that fsck names.
        try Self.editConfig(store) { lines in lines = lines.map { $0.hasPrefix("governance-key ") ? "governance-key " + forgedKey : $0 } }
        let asOf = "3"
        let authorization = try Self.stele(["authorize", "--signer", dir.child("forged.key"), "--origin", "example.com/ledger", "ledger", "acct",
                                            "--until", "2020-01-01T00:00:00Z", "--as-of", asOf])
        try writeFile(dir.child("auth"), Array(authorization.stdout.utf8))
        let bypass = try Self.stele(["lock", store, "ledger", "acct", "--mode", "governance", "--until", "2020-01-01T00:00:00Z",
                                     "--authorization", dir.child("auth")])
        #expect(bypass.status == 3, "\(bypass.stderr)")
        try writeFile(store + "/stele.conf", pristine)
        #expect(try Self.stele(["fsck", store]).status == 0)
    }

    @Test func aBypassForgedIntoTheLogIsCorruptionAndLiftsNothing() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let authority = try NoteSigner.generate(name: "gov/key")
        let impostor = try NoteSigner.generate(name: "gov/key")
        let store = dir.child("s")
        try Store.create(at: store, segmentSize: 64 * 1024, origin: "example.com/ledger", governanceKey: authority.verifier)
        let s = try Store(path: store)
        let now = Int64(Date().timeIntervalSince1970 * 1e9)
        let v1 = try s.put(namespace: "ledger", key: Array("acct".utf8), value: Array("v1".utf8),
                           lock: RetentionLock(mode: .governance, retainUntil: now + 86_400_000_000_000)).sequences.lowerBound
        try s.put(namespace: "ledger", key: Array("acct".utf8), value: Array("v2".utf8))
        // The operator writes the bypass record itself, signed by a key of their own.
        let note = try GovernanceAuthorization.sign(origin: "example.com/ledger", namespace: "ledger", key: Array("acct".utf8), version: v1,
                                                    retainUntil: now - 1, asOf: s.treeSize, notAfter: now + 3_600_000_000_000, with: impostor)
        let forged = RetentionRecord(lock: RetentionLock(mode: .governance, retainUntil: now - 1), scope: .version, target: v1, authorization: note)
        let sequence = try s.appendEntries([Entry]()) { _, _, _ in [Entry(type: .retention, namespace: Array("ledger".utf8), key: Array("acct".utf8), value: forged.encoded)] }
            .sequences.lowerBound
        try s.close()
        let fsck = try Self.stele(["fsck", store])
        #expect(fsck.status == 4 && fsck.stdout.contains("retention\t") && fsck.stdout.contains("seq=\(sequence)")
            && fsck.stdout.contains("not authorized by the governance key the log held"), "\(fsck.stdout)")
        let purge = try Self.stele(["purge", store])
        #expect(purge.status == 3 && purge.stderr.contains("not authorized"), "\(purge.stderr)")
        // A writable open refuses writes too: the retention state the bypass would change cannot be trusted.
        let put = try Self.stele(["put", store, "ledger", "other", "x"])
        #expect(put.status == 3 && put.stderr.contains("(sequence \(sequence)): governance bypass not authorized by the governance key the log held then"),
                "\(put.stderr)")
        let reader = try Store(path: store, options: .init(readOnly: true))
        #expect(try reader.record(at: v1).value == Array("v1".utf8), "nothing purged")
        #expect(reader.recordCount == sequence + 1, "nothing written after the forged record")
        try reader.close()
    }
}
