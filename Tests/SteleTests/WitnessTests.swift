import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing
@testable import Stele
import SteleMirror

/// The witness (c2sp.org/tlog-witness add-checkpoint) and Ed25519 cosignatures
/// (c2sp.org/tlog-cosignature), with request bodies written from the spec.
@Suite(.serialized) struct WitnessTests {
    static let logKey = try! NoteSigner(name: "witness-test.example/log", seed: [UInt8](repeating: 5, count: 32))
    static let otherKey = try! NoteSigner(name: "witness-test.example/log", seed: [UInt8](repeating: 6, count: 32))
    static let cosigner = try! Cosigner(name: "witness.example/w1", seed: [UInt8](repeating: 8, count: 32))

    /// A store of `count` records whose checkpoints name the test log's origin.
    static func store(_ dir: TemporaryDirectory, records count: Int) throws -> Store {
        let path = dir.child("store")
        try Store.create(at: path, segmentSize: 1 << 20, origin: logKey.name)
        let store = try Store(path: path)
        try store.putBatch((0 ..< count).map { Entry(namespace: "n", key: Array("k\($0)".utf8), value: [UInt8(truncatingIfNeeded: $0)]) })
        return store
    }

    static func body(old: UInt64, proof: [Digest] = [], note: String) -> [UInt8] {
        Array(("old \(old)\n" + proof.map { Base64.encode($0.bytes) + "\n" }.joined() + "\n" + note).utf8)
    }

    @Test func cosignsOnlyAlongConsistencyProofs() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = try Self.store(dir, records: 100)
        defer { try? store.close() }
        let witness = try Witness(cosigner: Self.cosigner, logs: [Self.logKey.verifier], stateDirectory: dir.directory("state"))

        let first = try store.checkpoint(signer: Self.logKey)
        let size1 = store.treeSize
        let before = UInt64(Date().timeIntervalSince1970)
        let answer = witness.addCheckpoint(Self.body(old: 0, note: first))
        #expect(answer.status == 200, "\(answer)")
        #expect(answer.body.hasPrefix("\u{2014} witness.example/w1 ") && answer.body.hasSuffix("\n"))
        // The cosignature verifies on the checkpoint, with a time of now.
        let time = try Self.cosigner.verifier.cosignatureTime(in: first + answer.body)
        #expect(time.map { $0 >= before && $0 <= UInt64(Date().timeIntervalSince1970) } == true)
        // The log's own signature still verifies beside it.
        #expect(throws: Never.self) { try SignedNote.open(first + answer.body, verifier: Self.logKey.verifier) }

        // The same old size again: 409 with the latest cosigned size.
        let stale = witness.addCheckpoint(Self.body(old: 0, note: first))
        #expect(stale == Witness.Answer(status: 409, contentType: "text/x.tlog.size", body: "\(size1)\n"))

        // The log grows: cosigned with the consistency proof from the size the witness holds.
        try store.putBatch((100 ..< 180).map { Entry(namespace: "n", key: Array("k\($0)".utf8), value: [1]) })
        let second = try store.checkpoint(signer: Self.logKey)
        let proof = try store.consistencyProof(from: size1, to: store.treeSize).hashes
        #expect(!proof.isEmpty)
        var wrong = proof
        wrong[0] = Digest(bytes: [UInt8](repeating: 1, count: 32))!
        #expect(witness.addCheckpoint(Self.body(old: size1, proof: wrong, note: second)).status == 422)
        #expect(witness.addCheckpoint(Self.body(old: size1, proof: [], note: second)).status == 422)
        #expect(witness.addCheckpoint(Self.body(old: size1, proof: proof, note: second)).status == 200)
        #expect(try witness.latest(origin: Self.logKey.name).size == store.treeSize)

        // A fork: another root at a larger size, signed by the log's key (an insider with the
        // key): no proof from the cosigned size verifies, so it is never cosigned.
        let forked = try SignedNote.sign(Checkpoint(origin: Self.logKey.name, treeSize: store.treeSize + 5,
                                                    root: Digest(bytes: [UInt8](repeating: 2, count: 32))!).text, with: Self.logKey)
        #expect(witness.addCheckpoint(Self.body(old: store.treeSize, proof: proof, note: forked)).status == 422)
        // The same size with another root: 409.
        let sameSize = try SignedNote.sign(Checkpoint(origin: Self.logKey.name, treeSize: store.treeSize,
                                                      root: Digest(bytes: [UInt8](repeating: 3, count: 32))!).text, with: Self.logKey)
        #expect(witness.addCheckpoint(Self.body(old: store.treeSize, note: sameSize)).status == 409)
        // The same checkpoint again, old size equal: cosigned again (nothing new to check), but
        // not with a proof (between equal sizes a proof is empty).
        #expect(witness.addCheckpoint(Self.body(old: store.treeSize, proof: proof, note: second)).status == 422)
        #expect(witness.addCheckpoint(Self.body(old: store.treeSize, note: second)).status == 200)
        #expect(try witness.latest(origin: Self.logKey.name).size == store.treeSize)
    }

    @Test func refusesWhatTheSpecRefuses() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = try Self.store(dir, records: 10)
        defer { try? store.close() }
        let witness = try Witness(cosigner: Self.cosigner, logs: [Self.logKey.verifier], stateDirectory: dir.directory("state"))
        let note = try store.checkpoint(signer: Self.logKey)
        let size = store.treeSize
        // Unknown origin: 404. Signed by a key the witness does not trust for the origin: 403.
        let unknown = try SignedNote.sign(Checkpoint(origin: "other.example/log", treeSize: 1, root: Digest(bytes: [UInt8](repeating: 0, count: 32))!).text,
                                          with: NoteSigner(name: "other.example/log", seed: [UInt8](repeating: 1, count: 32)))
        #expect(witness.addCheckpoint(Self.body(old: 0, note: unknown)).status == 404)
        let text = try SignedNote.split(note).text
        #expect(witness.addCheckpoint(Self.body(old: 0, note: try SignedNote.sign(text, with: Self.otherKey))).status == 403)
        // A signature by the trusted key over other text: 403.
        let tampered = note.replacingOccurrences(of: "\n\(size)\n", with: "\n\(size + 1)\n")
        #expect(witness.addCheckpoint(Self.body(old: 0, note: tampered)).status == 403)
        // Old size above the checkpoint's: 400.
        #expect(witness.addCheckpoint(Self.body(old: size + 1, note: note)).status == 400)
        // Malformed bodies: 400.
        for body in ["", "old 0\n", "old 00\n\n" + note, "old -1\n\n" + note, "old 0\nnot-base64!\n\n" + note, "old 0\n" + note,
                     "old 0\n" + String(repeating: Base64.encode([UInt8](repeating: 0, count: 32)) + "\n", count: 64) + "\n" + note,
                     "old 0\n\n" + "not a checkpoint\n"] {
            #expect(witness.addCheckpoint(Array(body.utf8)).status == 400, "\(body.prefix(40))")
        }
        // The empty tree has one root: a checkpoint of size 0 with another is not cosigned.
        let emptyLie = try SignedNote.sign(Checkpoint(origin: Self.logKey.name, treeSize: 0, root: Digest(bytes: [UInt8](repeating: 9, count: 32))!).text,
                                           with: Self.logKey)
        #expect(witness.addCheckpoint(Self.body(old: 0, note: emptyLie)).status == 422)
        // A proof from size 0 must be empty.
        #expect(witness.addCheckpoint(Self.body(old: 0, proof: [Digest(bytes: [UInt8](repeating: 0, count: 32))!], note: note)).status == 422)
        // Nothing above was cosigned.
        #expect(try witness.latest(origin: Self.logKey.name).size == 0)
        // One witness process per state directory.
        #expect(throws: SteleError.self) { try Witness(cosigner: Self.cosigner, logs: [Self.logKey.verifier], stateDirectory: dir.directory("state")) }
    }

    /// A missing state directory is refused (a mistyped path would start the witness from
    /// nothing, and it would cosign any history once); cosignature times never go back for a log,
    /// across a backward clock step and a restart; a version 1 state file (no time) is read.
    @Test func theStateMustExistAndCosignatureTimesNeverGoBack() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        #expect { try Witness(cosigner: Self.cosigner, logs: [Self.logKey.verifier], stateDirectory: dir.child("missing")) } throws: { error in
            "\(error)".contains("does not exist")
        }
        try (Self.cosigner.encoded + "\n").write(toFile: dir.child("w.key"), atomically: true, encoding: .utf8)
        let refused = try CLITests.stele(["witness", "--listen", "127.0.0.1:0", "--key", dir.child("w.key"), "--state", dir.child("missing"),
                                          "--log", Self.logKey.verifier.encoded])
        #expect(refused.status != 0 && refused.stderr.contains("does not exist"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.child("missing")))

        let store = try Self.store(dir, records: 20)
        defer { try? store.close() }
        let clock = TestClock()
        func witness() throws -> Witness {
            try Witness(cosigner: Self.cosigner, logs: [Self.logKey.verifier], stateDirectory: dir.directory("state"),
                        fileSystem: PosixFileSystem(), clock: clock)
        }
        var current: Witness? = try witness()
        let first = try store.checkpoint(signer: Self.logKey)
        let firstLine = try #require(current?.addCheckpoint(Self.body(old: 0, note: first))).body
        let firstTime = try #require(try Self.cosigner.verifier.cosignatureTime(in: first + firstLine))
        #expect(firstTime == UInt64(clock.nanosecondsSinceEpoch() / 1_000_000_000))
        // The clock steps back an hour; the log grows; the witness restarts.
        let start = clock.nanosecondsSinceEpoch()
        clock.now.store(start - 3_600 * 1_000_000_000, ordering: .relaxed)
        current = nil
        current = try witness()
        let size1 = store.treeSize
        try store.putBatch((20 ..< 40).map { Entry(namespace: "n", key: Array("k\($0)".utf8), value: [1]) })
        let second = try store.checkpoint(signer: Self.logKey)
        let proof = try store.consistencyProof(from: size1, to: store.treeSize).hashes
        let answer = try #require(current?.addCheckpoint(Self.body(old: size1, proof: proof, note: second)))
        #expect(answer.status == 200)
        #expect(try Self.cosigner.verifier.cosignatureTime(in: second + answer.body) == firstTime, "not an hour before the smaller tree's")
        // A last time more than a day ahead of the clock (a jump to 2100 once) is refused, not
        // carried into every later cosignature.
        clock.now.store(start - 3 * 86_400 * 1_000_000_000, ordering: .relaxed)
        try store.putBatch((40 ..< 45).map { Entry(namespace: "n", key: Array("k\($0)".utf8), value: [1]) })
        let size2 = try Checkpoint(parsing: SignedNote.split(second).text).treeSize
        let third = try store.checkpoint(signer: Self.logKey)
        let ahead = try #require(current?.addCheckpoint(Self.body(old: size2, proof: try store.consistencyProof(from: size2, to: store.treeSize).hashes, note: third)))
        #expect(ahead.status == 500 && ahead.body.contains("more than a day ahead"), "\(ahead)")
        // A version 1 state file is read (size and root; no time).
        current = nil
        let statePath = try #require(try FileManager.default.contentsOfDirectory(atPath: dir.child("state")).first { $0.count == 64 })
        let root = try Checkpoint(parsing: SignedNote.split(second).text).root
        try "stele-witness 1\n\(Self.logKey.name)\n\(size2)\n\(Base64.encode(root.bytes))\n"
            .write(toFile: dir.child("state/" + statePath), atomically: true, encoding: .utf8)
        #expect(try witness().latest(origin: Self.logKey.name).size == size2)
    }

    /// The state survives a restart: a new witness on the same directory holds the cosigned size.
    @Test func theCosignedSizeSurvivesARestart() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = try Self.store(dir, records: 20)
        defer { try? store.close() }
        let note = try store.checkpoint(signer: Self.logKey)
        do {
            let witness = try Witness(cosigner: Self.cosigner, logs: [Self.logKey.verifier], stateDirectory: dir.directory("state"))
            #expect(witness.addCheckpoint(Self.body(old: 0, note: note)).status == 200)
        }
        let again = try Witness(cosigner: Self.cosigner, logs: [Self.logKey.verifier], stateDirectory: dir.directory("state"))
        #expect(try again.latest(origin: Self.logKey.name).size == store.treeSize)
        #expect(again.addCheckpoint(Self.body(old: 0, note: note)).status == 409)
    }

    /// Cosigner keys: the text forms round-trip, a checkpoint key (type 0x01) is not a cosigner
    /// key, and a cosignature by another key or over other text does not verify.
    @Test func cosignerKeysAndCosignatures() throws {
        let generated = try Cosigner.generate(name: "w.example/x")
        #expect(try Cosigner(parsing: generated.encoded).verifier == generated.verifier)
        #expect(try CosignatureVerifier(parsing: generated.verifier.encoded) == generated.verifier)
        #expect(throws: SteleError.self) { try CosignatureVerifier(parsing: Self.logKey.verifier.encoded) }
        #expect(throws: SteleError.self) { try NoteVerifier(parsing: generated.verifier.encoded) }
        let note = try SignedNote.sign("o.example/log\n5\n\(Base64.encode([UInt8](repeating: 4, count: 32)))\n", with: Self.logKey)
        let text = try SignedNote.split(note).text
        let line = try generated.cosign(text, time: 1_700_000_000)
        #expect(try generated.verifier.cosignatureTime(in: note + line) == 1_700_000_000)
        #expect(try Self.cosigner.verifier.cosignatureTime(in: note + line) == nil)
        let otherText = try SignedNote.sign("o.example/log\n6\n\(Base64.encode([UInt8](repeating: 4, count: 32)))\n", with: Self.logKey)
        #expect(throws: SteleError.self) { try generated.verifier.cosignatureTime(in: otherText + line) }
        // One key under two names is one witness: its cosignature copied under the second name
        // (the message does not commit to the name) does not make a quorum of two.
        let twin = try Cosigner(name: "w.example/twin", seed: [UInt8](repeating: 8, count: 32))
        let original = try Self.cosigner.cosign(text, time: 1_700_000_000)
        let blob = Base64.decode(original.split(separator: " ")[2].dropLast()) ?? []
        let copied = "\u{2014} w.example/twin " + Base64.encode([24, 16, 8, 0].map { UInt8(truncatingIfNeeded: twin.verifier.keyID >> $0) } + blob.dropFirst(4)) + "\n"
        let doubled = note + original + copied
        #expect(try twin.verifier.cosignatureTime(in: doubled) == 1_700_000_000, "the copy verifies under the second name")
        #expect(try CosignatureQuorum.count(in: doubled, keys: [Self.cosigner.verifier, twin.verifier]) == 1)
    }

    /// `stele witness` over HTTP on 127.0.0.1: the cosignature comes back as the body of a 200,
    /// a stale old size as a 409 with `text/x.tlog.size`, and a GET or an unknown path is not a
    /// cosignature.
    @Test func theWitnessCommandAnswersOverHTTP() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = try Self.store(dir, records: 30)
        defer { try? store.close() }
        let note = try store.checkpoint(signer: Self.logKey)
        try (Self.cosigner.encoded + "\n").write(toFile: dir.child("w.key"), atomically: true, encoding: .utf8)
        let server = try ListeningProcess(ListeningProcess.stele, ["witness", "--listen", "127.0.0.1:0", "--key", dir.child("w.key"),
                                                   "--state", dir.directory("state"), "--log", Self.logKey.verifier.encoded])
        defer { server.stop() }
        let ok = try server.request("POST", "add-checkpoint", body: Self.body(old: 0, note: note))
        #expect(ok.status == 200)
        #expect(try Self.cosigner.verifier.cosignatureTime(in: note + String(decoding: ok.body, as: UTF8.self)) != nil)
        let stale = try server.request("POST", "add-checkpoint", body: Self.body(old: 0, note: note))
        #expect(stale.status == 409 && stale.contentType == "text/x.tlog.size")
        #expect(String(decoding: stale.body, as: UTF8.self) == "\(store.treeSize)\n")
        #expect(try server.request("GET", "add-checkpoint", body: nil).status == 404)
        #expect(try server.request("POST", "add-checkpoint", body: Array("old 0\n".utf8)).status == 400)
    }

    /// The whole loop through the CLI: two witnesses cosign each checkpoint `stele checkpoint
    /// --witness` asks for (the second time after a 409 and with a consistency proof); `verify
    /// --witness-key` accepts the cosigned checkpoint and refuses one without the quorum; with a
    /// witness down and a quorum of all, the command exits 1 and stores no cosignature.
    @Test func checkpointsGatherAQuorumOfCosignatures() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = dir.child("store"), origin = "quorum.example/log"
        #expect(try CLITests.stele(["init", store, "--origin", origin]).status == 0)
        #expect(try CLITests.stele(["keygen", "--name", origin, "--out", dir.child("log")]).status == 0)
        var witnesses: [ListeningProcess] = []
        defer { witnesses.forEach { $0.stop() } }
        var endpoints: [String] = []
        for n in 1 ... 2 {
            #expect(try CLITests.stele(["keygen", "--witness", "--name", "w\(n).example", "--out", dir.child("w\(n)")]).status == 0)
            let witness = try ListeningProcess(ListeningProcess.stele, ["witness", "--listen", "127.0.0.1:0", "--key", dir.child("w\(n).key"),
                                                                        "--state", dir.directory("w\(n)-state"), "--log", dir.child("log.pub")])
            witnesses.append(witness)
            endpoints += ["--witness", "http://127.0.0.1:\(witness.port)=" + (try Self.readText(dir.child("w\(n).pub")))]
        }
        let witnessKeys = ["--witness-key", dir.child("w1.pub"), "--witness-key", dir.child("w2.pub")]
        for round in 0 ..< 2 {
            #expect(try CLITests.stele(["put", store, "n", "k\(round)", "v"]).status == 0)
            let signed = try CLITests.stele(["checkpoint", store, "--key", dir.child("log.key"), "--out", dir.child("cp")] + endpoints)
            #expect(signed.status == 0, "\(signed.stderr)")
            let note = try Self.readText(dir.child("cp"))
            #expect(note.components(separatedBy: "\n\u{2014} ").count == 4, "the log's signature and two cosignatures: \(note)")
            #expect(try Self.readText(store + "/checkpoints/checkpoint") == note)
            let verified = try CLITests.stele(["verify", store, "--checkpoint", dir.child("cp"), "--verifier-key", dir.child("log.pub")] + witnessKeys)
            #expect(verified.status == 0, "\(verified.stderr)")
            let checked = try CLITests.stele(["fsck", store, "--checkpoint", dir.child("cp"), "--verifier-key", dir.child("log.pub")] + witnessKeys)
            #expect(checked.status == 0 && checked.stdout.contains("1 external checkpoint(s) verified"), "\(checked.stdout) \(checked.stderr)")
        }
        // Signing the same tree again keeps its cosignatures (nothing is published without them).
        let cosigned = try Self.readText(dir.child("cp"))
        #expect(try CLITests.stele(["checkpoint", store, "--key", dir.child("log.key"), "--out", dir.child("same")]).status == 0)
        #expect(try Self.readText(dir.child("same")) == cosigned && Self.readText(store + "/checkpoints/checkpoint") == cosigned)
        // A checkpoint signed by the log alone does not pass a verify that asks for witnesses.
        #expect(try CLITests.stele(["put", store, "n", "k8", "v"]).status == 0)
        #expect(try CLITests.stele(["checkpoint", store, "--key", dir.child("log.key"), "--out", dir.child("alone")]).status == 0)
        let refused = try CLITests.stele(["verify", store, "--checkpoint", dir.child("alone"), "--verifier-key", dir.child("log.pub"),
                                          "--witness-key", dir.child("w1.pub"), "--quorum", "1"])
        #expect(refused.status == 1 && refused.stderr.contains("0 valid cosignatures"), "\(refused.stderr)")
        let unwitnessed = try CLITests.stele(["fsck", store, "--checkpoint", dir.child("alone"), "--verifier-key", dir.child("log.pub")] + witnessKeys)
        #expect(unwitnessed.status == 8 && unwitnessed.stderr.contains("alone: the checkpoint carries 0 valid cosignatures"), "\(unwitnessed.stderr)")
        #expect(try CLITests.stele(["fsck", store, "--witness-key", dir.child("w1.pub")]).status != 0, "witness keys without a checkpoint are a usage error")
        // One witness down, a quorum of both: exit 1, no cosignature stored.
        witnesses[1].stop()
        #expect(try CLITests.stele(["put", store, "n", "k9", "v"]).status == 0)
        let short = try CLITests.stele(["checkpoint", store, "--key", dir.child("log.key"), "--out", dir.child("short")] + endpoints)
        #expect(short.status == 1 && short.stderr.contains("1 of 2 witnesses cosigned"), "\(short.stderr)")
        // Nothing was published: the latest is still the one before.
        let stored = try Self.readText(store + "/checkpoints/checkpoint")
        #expect(stored.components(separatedBy: "\n\u{2014} ").count == 2, "only the log's signature: \(stored)")
    }

    /// `Store.Options.checkpointWitnesses`: each seal's checkpoint is published once a quorum of
    /// real `stele witness` processes cosigned it, and not before; below the quorum the published
    /// checkpoint stays the previous one and the stats say why; close waits for the witnesses.
    @Test func sealsPublishTheirCheckpointsOnceAQuorumCosigned() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.child("store")
        try Store.create(at: path, segmentSize: 1 << 20, origin: Self.logKey.name)
        try Data((Self.logKey.verifier.encoded + "\n").utf8).write(to: URL(fileURLWithPath: dir.child("log.pub")))
        var witnesses: [ListeningProcess] = [], endpoints: [WitnessEndpoint] = []
        defer { witnesses.forEach { $0.stop() } }
        for n in 1 ... 2 {
            #expect(try CLITests.stele(["keygen", "--witness", "--name", "w\(n).example", "--out", dir.child("w\(n)")]).status == 0)
            witnesses.append(try ListeningProcess(ListeningProcess.stele, ["witness", "--listen", "127.0.0.1:0", "--key", dir.child("w\(n).key"),
                                                                           "--state", dir.directory("w\(n)-state"), "--log", dir.child("log.pub")]))
            endpoints.append(try WitnessEndpoint(parsing: "http://127.0.0.1:\(witnesses[n - 1].port)=" + Self.readText(dir.child("w\(n).pub"))))
        }
        let keys = endpoints.map(\.key)
        func published() throws -> (size: UInt64, cosigned: Int)? {
            guard let note = try Self.readIfPresent(path + "/checkpoints/checkpoint") else { return nil }
            return (try Checkpoint(parsing: SignedNote.split(note).text).treeSize, try CosignatureQuorum.count(in: note, keys: keys))
        }
        func waitFor(_ what: String, _ condition: () throws -> Bool) throws {
            let deadline = Date().addingTimeInterval(20)
            while try !condition() {
                guard Date() < deadline else { Issue.record("never: \(what)"); return }
                usleep(20_000)
            }
        }

        var options = Store.Options(checkpointSigner: Self.logKey)
        options.checkpointWitnesses = try WitnessQuorum(endpoints, quorum: 2)
        var store = try Store(path: path, options: options)
        for round in 0 ..< 2 {
            try store.putBatch((0 ..< 50).map { Entry(namespace: "n", key: Array("k\(round)-\($0)".utf8), value: [1]) })
            try store.seal()
            let size = store.treeSize
            try waitFor("a checkpoint of size \(size) cosigned by both") { try published().map { $0.size == size && $0.cosigned == 2 } ?? false }
            #expect(try store.stats().checkpointWitnessingFailure == nil)
        }
        let cosignedSize = try #require(try published()).size

        // One witness down, a quorum of two: the seal stands, its checkpoint is not published.
        witnesses[1].stop()
        try store.putBatch((0 ..< 50).map { Entry(namespace: "n", key: Array("down-\($0)".utf8), value: [2]) })
        try store.seal()
        try waitFor("the stats name the missing quorum") { try store.stats().checkpointWitnessingFailure != nil }
        let failure = try store.stats().checkpointWitnessingFailure ?? ""
        #expect(failure.contains("1 of the witnesses cosigned") && failure.contains("w2.example"), "\(failure)")
        #expect(try published()?.size == cosignedSize, "the previous checkpoint stays the published one")
        let unpublishedSize = store.treeSize
        let unpublished = try #require(try Self.readIfPresent(path + "/checkpoints/history/" + String(format: "%020d", unpublishedSize)))
        try store.close()
        // A closed store publishes nothing (its writer lock may be another process's now).
        #expect(throws: SteleError.closed) { try store.publishCheckpoint(unpublished, cosignatures: []) }

        // Reopened with the one witness left and a quorum of one: the checkpoint left unpublished
        // is asked for again at the open; the next seal's checkpoint (a consistency proof from
        // what that witness holds) is published, and close waits for it.
        options.checkpointWitnesses = try WitnessQuorum([endpoints[0]], quorum: 1)
        store = try Store(path: path, options: options)
        try waitFor("the unpublished checkpoint published after the reopen") { try published().map { $0.size == unpublishedSize && $0.cosigned == 1 } ?? false }
        try store.putBatch((0 ..< 50).map { Entry(namespace: "n", key: Array("up-\($0)".utf8), value: [3]) })
        try store.seal()
        let size = store.treeSize
        try store.close()
        let final = try published()
        #expect(final.map { $0.size == size && $0.cosigned == 1 } == true, "\(String(describing: final))")
        #expect(throws: SteleError.self) { try WitnessQuorum([endpoints[0], endpoints[0]], quorum: 1) }
        var unsigned = Store.Options()
        unsigned.checkpointWitnesses = try WitnessQuorum([endpoints[0]], quorum: 1)
        #expect(throws: SteleError.self, "witnesses without a checkpoint key") { try Store(path: path, options: unsigned) }
        #expect(throws: SteleError.self) { try WitnessQuorum(endpoints, quorum: 3) }
    }

    /// A witness that accepts the connection and never answers is given up after the timeout,
    /// and the witness that answers still cosigns.
    /// (A client that waited forever would fail the time limit rather than hang CI.)
    @Test(.timeLimit(.minutes(1))) func aWitnessThatNeverAnswersIsGivenUpAfterTheTimeout() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = try Self.store(dir, records: 10)
        defer { try? store.close() }
        let note = try store.signUnpublishedCheckpoint(signer: Self.logKey)
        let silent = try ListeningProcess("/usr/bin/env", ["python3", "-c", """
            import signal, socket
            # The test process blocks SIGTERM in the thread that spawns us; stop() sends it.
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
            s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16)
            print("listening on 127.0.0.1:%d" % s.getsockname()[1], flush=True)
            held = []
            while True:
                c, _ = s.accept(); held.append(c)
            """])
        defer { silent.stop() }
        try (Self.cosigner.encoded + "\n").write(toFile: dir.child("w.key"), atomically: true, encoding: .utf8)
        let answering = try ListeningProcess(ListeningProcess.stele, ["witness", "--listen", "127.0.0.1:0", "--key", dir.child("w.key"),
                                                                      "--state", dir.directory("state"), "--log", Self.logKey.verifier.encoded])
        defer { answering.stop() }
        let other = try Cosigner(name: "silent.example", seed: [UInt8](repeating: 9, count: 32))
        let outcomes = WitnessClient.cosign(note, of: store, witnesses: [
            WitnessEndpoint(url: URL(string: "http://127.0.0.1:\(silent.port)")!, key: other.verifier),
            WitnessEndpoint(url: URL(string: "http://127.0.0.1:\(answering.port)")!, key: Self.cosigner.verifier),
        ], timeout: 1)
        #expect(outcomes.count == 2)
        if case .failure = outcomes[0].result {} else { Issue.record("the silent witness cosigned? \(outcomes[0].result)") }
        let line = try outcomes[1].result.get()
        #expect(try Self.cosigner.verifier.cosignatureTime(in: note + line) != nil)
    }

    static func readIfPresent(_ path: String) throws -> String? {
        FileManager.default.fileExists(atPath: path) ? try readText(path) : nil
    }

    static func readText(_ path: String) throws -> String {
        String(decoding: try Data(contentsOf: URL(fileURLWithPath: path)), as: UTF8.self)
    }
}
