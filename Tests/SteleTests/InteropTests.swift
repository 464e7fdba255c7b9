import Foundation
import Testing
@testable import Stele

/// Stele's log checked by code that is not Stele's: `Tests/Interop/tlogclient`, a Go program on
/// Go's own transparency-log packages (golang.org/x/mod/sumdb/tlog and sumdb/note, which the go
/// command uses on the Go checksum database) and crypto/ed25519, run against real `stele serve`
/// and `stele witness` processes on 127.0.0.1. It needs Debian's golang-go and
/// golang-golang-x-mod-dev (tools/install-deps.sh installs them); without them the test fails.
@Suite(.serialized) struct InteropTests {
    static let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Interop/tlogclient/main.go").path

    /// Builds the Go client in GOPATH mode from Debian's packaged x/mod (no network).
    static func buildClient(into dir: TemporaryDirectory) throws -> String? {
        let go = ["/usr/bin/go", "/usr/lib/go/bin/go", "/usr/local/go/bin/go"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let go else {
            Issue.record("no go command: install golang-go and golang-golang-x-mod-dev (tools/install-deps.sh does)")
            return nil
        }
        let binary = dir.child("tlogclient")
        let built = try CLITests.run(go, ["build", "-o", binary, source],
                                     environment: ["GO111MODULE": "off", "GOPATH": "/usr/share/gocode", "GOCACHE": dir.child("gocache"), "GOFLAGS": ""])
        #expect(built.status == 0, "go build: \(built.stderr)")
        return built.status == 0 ? binary : nil
    }

    /// A key file's one line, without its newline.
    static func key(_ path: String) throws -> String {
        try WitnessTests.readText(path).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func waitForSize(_ port: Int, _ size: Int) throws {
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            let note = String(decoding: try ListeningProcess.get(port, "checkpoint").body, as: UTF8.self)
            if note.split(separator: "\n").dropFirst().first == "\(size)" { return }
            usleep(50_000)
        }
        Issue.record("the server never published size \(size)")
    }

    /// Tiles, entry bundles, inclusion and consistency proofs (x/mod's own, from the served
    /// tiles, and Stele's, from `stele prove`), the log's signed note and a witness's
    /// cosignatures, all checked by the Go client; the witness answering the Go
    /// client's add-checkpoint requests (refusals first) and then Stele's own client; a fork
    /// signed with the log's key and a rolled-back log refused by the Go client too.
    @Test func goTransparencyLogPackagesCheckWhatSteleServesAndCosigns() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        guard let client = try Self.buildClient(into: dir) else { return }
        let origin = "interop.example/log"
        let store = dir.child("store"), fork = dir.child("fork")
        #expect(try CLITests.stele(["keygen", "--name", origin, "--out", dir.child("log")]).status == 0)
        #expect(try CLITests.stele(["keygen", "--witness", "--name", "w.example", "--out", dir.child("w")]).status == 0)
        #expect(try CLITests.stele(["keygen", "--witness", "--name", "w.example", "--out", dir.child("stranger")]).status == 0)
        for path in [store, fork] { #expect(try CLITests.stele(["init", path, "--origin", origin]).status == 0) }
        let logKey = try Self.key(dir.child("log.pub")), witnessKey = try Self.key(dir.child("w.pub"))
        let witness = try ListeningProcess(ListeningProcess.stele, ["witness", "--listen", "127.0.0.1:0", "--key", dir.child("w.key"),
                                                                    "--state", dir.directory("w-state"), "--log", dir.child("log.pub")])
        defer { witness.stop() }
        /// Records of many sizes, so bundles vary; the fork's values differ from the store's.
        func grow(_ path: String, _ keys: Range<Int>, witnessed: Bool) throws {
            let letter = path == fork ? "f" : "v"
            let lines = keys.map { #"{"ns":"n","key":"k\#($0)","value":"\#(String(repeating: letter, count: 1 + ($0 * 37) % 900))"}"# }
            #expect(try CLITests.stele(["append", path, "--jsonl", "-"], stdin: lines.joined(separator: "\n") + "\n").status == 0)
            let witnesses = witnessed ? ["--witness", "http://127.0.0.1:\(witness.port)=\(witnessKey)"] : []
            let signed = try CLITests.stele(["checkpoint", path, "--key", dir.child("log.key"), "--out", dir.child("cp")] + witnesses)
            #expect(signed.status == 0, "\(signed.stderr)")
        }
        func go(_ arguments: [String]) throws -> CLITests.Run { try CLITests.run(client, arguments) }

        try grow(store, 0 ..< 700, witnessed: false)
        let server = try ListeningProcess(ListeningProcess.stele, ["serve", store, "--listen", "127.0.0.1:0", "--poll", "0.1"])
        defer { server.stop() }
        let log = "http://127.0.0.1:\(server.port)"
        let firstSize = try #require(try CLITests.recordCount(store))
        try Self.waitForSize(server.port, firstSize)

        let first = try go(["check", "-log", log, "-key", logKey, "-save", dir.child("first.cp")])
        #expect(first.status == 0 && first.stdout.contains("\(firstSize) entries hashed"), "\(first.stdout) \(first.stderr)")
        // The Go client asks the witness first, from size 0, with requests it must refuse before.
        let asked = try go(["witness", "-log", log, "-key", logKey, "-witness", "http://127.0.0.1:\(witness.port)", "-witness-key", witnessKey, "-old", "0"])
        #expect(asked.status == 0 && asked.stdout.contains("after refusing 5 bad requests"), "\(asked.stdout) \(asked.stderr)")

        // Stele's own client then finds the witness at that size (409) and proves from it.
        try grow(store, 700 ..< 1_300, witnessed: true)
        let secondSize = try #require(try CLITests.recordCount(store))
        try Self.waitForSize(server.port, secondSize)
        let second = try go(["check", "-log", log, "-key", logKey, "-witness-key", witnessKey, "-old", dir.child("first.cp")])
        #expect(second.status == 0 && second.stdout.contains("1 cosignatures") && second.stdout.contains("consistent with size \(firstSize)"),
                "\(second.stdout) \(second.stderr)")
        // Proofs that Stele made (what it sends witnesses and clients), checked by x/mod.
        let inclusion = try CLITests.stele(["prove", store, "--index", "777", "--tree-size", "\(secondSize)", "--json"])
        let consistency = try CLITests.stele(["prove", store, "--consistency", "\(firstSize)", "--to", "\(secondSize)", "--json"])
        try inclusion.stdout.write(toFile: dir.child("inclusion.json"), atomically: true, encoding: .utf8)
        try consistency.stdout.write(toFile: dir.child("consistency.json"), atomically: true, encoding: .utf8)
        let proved = try go(["proofs", "-log", log, "-key", logKey, "-inclusion", dir.child("inclusion.json"),
                             "-consistency", dir.child("consistency.json"), "-old", dir.child("first.cp")])
        #expect(proved.status == 0 && proved.stdout.contains("2 proofs made by Stele verified"), "\(proved.stdout) \(proved.stderr)")

        // A checkpoint the log signed alone, which the Go client takes to the witness from the
        // size it cosigned last: now a wrong old size (409) and an altered proof (422) too.
        try grow(store, 1_300 ..< 1_310, witnessed: false)
        try Self.waitForSize(server.port, secondSize + 10)
        let again = try go(["witness", "-log", log, "-key", logKey, "-witness", "http://127.0.0.1:\(witness.port)", "-witness-key", witnessKey,
                            "-old", "\(secondSize)"])
        #expect(again.status == 0 && again.stdout.contains("after refusing 6 bad requests"), "\(again.stdout) \(again.stderr)")

        for run in [first, asked, second, proved, again] { print("go tlog client: \(run.stdout)", terminator: "") }
        // Each check can fail: a key the checkpoint was not cosigned by, another log key.
        let stranger = try go(["check", "-log", log, "-key", logKey, "-witness-key", try Self.key(dir.child("stranger.pub"))])
        #expect(stranger.status == 1 && stranger.stderr.contains("0 of 1 witnesses cosigned"), "\(stranger.stderr)")
        #expect(try CLITests.stele(["keygen", "--name", origin, "--out", dir.child("impostor")]).status == 0)
        let impostor = try go(["check", "-log", log, "-key", try Self.key(dir.child("impostor.pub"))])
        #expect(impostor.status == 1 && impostor.stderr.contains("checkpoint signature"), "\(impostor.stderr)")

        // An insider's fork: the same origin and key, other records, a smaller tree.
        try grow(fork, 0 ..< 400, witnessed: false)
        let forkSize = try #require(try CLITests.recordCount(fork))
        let forkServer = try ListeningProcess(ListeningProcess.stele, ["serve", fork, "--listen", "127.0.0.1:0", "--poll", "0.1"])
        defer { forkServer.stop() }
        try Self.waitForSize(forkServer.port, forkSize)
        let forkLog = "http://127.0.0.1:\(forkServer.port)"
        #expect(try go(["check", "-log", forkLog, "-key", logKey, "-save", dir.child("fork.cp")]).status == 0, "signed by the log's key, alone it checks")
        let forked = try go(["check", "-log", log, "-key", logKey, "-old", dir.child("fork.cp")])
        #expect(forked.status == 1 && forked.stderr.contains("not consistent with the checkpoint of size \(forkSize)"), "\(forked.stderr)")
        let rolledBack = try go(["check", "-log", forkLog, "-key", logKey, "-old", dir.child("first.cp")])
        #expect(rolledBack.status == 1 && rolledBack.stderr.contains("rolled back"), "\(rolledBack.stderr)")
        let uncosigned = try go(["check", "-log", forkLog, "-key", logKey, "-witness-key", witnessKey])
        #expect(uncosigned.status == 1 && uncosigned.stderr.contains("0 of 1 witnesses cosigned"), "\(uncosigned.stderr)")
    }

    /// `stele serve` under load from another process: 20,000 requests from 1,000 connections at
    /// once (tiles, entry bundles, paths past the tree, malformed paths) while 200 clients hold
    /// connections open with half-sent requests; every answer is the right one, byte for byte,
    /// and the server answers afterwards.
    @Test func serveKeepsAnsweringThousandsOfConcurrentRequests() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        guard let client = try Self.buildClient(into: dir) else { return }
        let store = dir.child("store")
        #expect(try CLITests.stele(["keygen", "--name", "load.example/log", "--out", dir.child("log")]).status == 0)
        #expect(try CLITests.stele(["init", store, "--origin", "load.example/log"]).status == 0)
        let lines = (0 ..< 1_000).map { #"{"ns":"n","key":"k\#($0)","value":"v\#($0)"}"# }.joined(separator: "\n") + "\n"
        #expect(try CLITests.stele(["append", store, "--jsonl", "-"], stdin: lines).status == 0)
        #expect(try CLITests.stele(["checkpoint", store, "--key", dir.child("log.key"), "--out", dir.child("cp")]).status == 0)
        let server = try ListeningProcess(ListeningProcess.stele, ["serve", store, "--listen", "127.0.0.1:0", "--poll", "0.1"])
        defer { server.stop() }
        try Self.waitForSize(server.port, try #require(try CLITests.recordCount(store)))
        let load = try CLITests.run(client, ["load", "-log", "http://127.0.0.1:\(server.port)", "-key", try Self.key(dir.child("log.pub")),
                                             "-requests", "20000", "-concurrency", "1000", "-slow", "200"])
        #expect(load.status == 0 && load.stdout.contains("every answer right"), "\(load.stdout) \(load.stderr)")
        print("serve under load: \(load.stdout)", terminator: "")
    }
}
