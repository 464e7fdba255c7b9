import Foundation
import Testing
@testable import Stele
import SteleMirror

/// `stele monitor` against real `stele serve` and `stele witness` processes on 127.0.0.1.
@Suite(.serialized) struct MonitorTests {
    /// Healthy while the log grows and its witness cosigns; 5 once the newest cosignature is
    /// older than --max-age; 3 for a fork signed with the log's own key (another history of the
    /// same origin, served elsewhere), for a rollback, and for a checkpoint another key signed.
    @Test func healthyStaleForkedAndRolledBack() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let origin = "monitor.example/log"
        let store = dir.child("store"), fork = dir.child("fork")
        #expect(try CLITests.stele(["keygen", "--name", origin, "--out", dir.child("log")]).status == 0)
        #expect(try CLITests.stele(["keygen", "--name", origin, "--out", dir.child("other")]).status == 0)
        #expect(try CLITests.stele(["keygen", "--witness", "--name", "w.example", "--out", dir.child("w")]).status == 0)
        for path in [store, fork] { #expect(try CLITests.stele(["init", path, "--origin", origin]).status == 0) }
        let witness = try ListeningProcess(ListeningProcess.stele, ["witness", "--listen", "127.0.0.1:0", "--key", dir.child("w.key"),
                                                                    "--state", dir.directory("w-state"), "--log", dir.child("log.pub")])
        defer { witness.stop() }
        let witnessArgument = ["--witness", "http://127.0.0.1:\(witness.port)=" + (try WitnessTests.readText(dir.child("w.pub")))]
        func grow(_ path: String, _ keys: Range<Int>, witnessed: Bool = true) throws {
            let lines = keys.map { #"{"ns":"n","key":"k\#($0)","value":"v\#($0)"}"# }.joined(separator: "\n") + "\n"
            #expect(try CLITests.stele(["append", path, "--jsonl", "-"], stdin: lines).status == 0)
            let signed = try CLITests.stele(["checkpoint", path, "--key", dir.child("log.key"), "--out", dir.child("cp")] + (witnessed ? witnessArgument : []))
            #expect(signed.status == 0, "\(signed.stderr)")
        }
        try grow(store, 0 ..< 3)
        let server = try ListeningProcess(ListeningProcess.stele, ["serve", store, "--listen", "127.0.0.1:0", "--poll", "0.1"])
        defer { server.stop() }
        func monitor(_ port: Int, _ extra: [String] = []) throws -> CLITests.Run {
            try CLITests.stele(["monitor", "http://127.0.0.1:\(port)", "--verifier-key", dir.child("log.pub"), "--state", dir.child("m-state"),
                                "--witness-key", dir.child("w.pub"), "--json"] + extra)
        }
        func waitForSize(_ port: Int, _ size: Int) throws {
            let deadline = Date().addingTimeInterval(20)
            while Date() < deadline {
                let note = String(decoding: try ListeningProcess.get(port, "checkpoint").body, as: UTF8.self)
                if note.split(separator: "\n").dropFirst().first == "\(size)" { return }
                usleep(50_000)
            }
            Issue.record("the server never published size \(size)")
        }
        try waitForSize(server.port, 4)
        let first = try monitor(server.port)
        #expect(first.status == 0 && CLITests.jsonObject(first.stdout)?["status"] as? String == "healthy", "\(first.stdout) \(first.stderr)")
        #expect(CLITests.jsonObject(first.stdout)?["tree_size"] as? Int == 4)

        try grow(store, 3 ..< 300)
        try waitForSize(server.port, 301)
        let second = try monitor(server.port, ["--max-age", "1h"])
        #expect(second.status == 0, "\(second.stdout)")
        #expect(CLITests.jsonObject(second.stdout)?["previous_size"] as? Int == 4)

        // A cosignature dated in the future (the monitor's clock an hour behind) is refused.
        let early = try LogMonitor(url: URL(string: "http://127.0.0.1:\(server.port)")!, verifier: NoteVerifier(parsing: WitnessTests.readText(dir.child("log.pub"))),
                                   witnesses: [CosignatureVerifier(parsing: WitnessTests.readText(dir.child("w.pub")))], quorum: 1,
                                   stateDirectory: dir.child("early-state"), maxAge: nil).check(now: Date().addingTimeInterval(-3600))
        if case .inconsistent(let reason) = early.verdict { #expect(reason.contains("future")) } else { Issue.record("\(early.verdict)") }
        // The dead-man alarm: the newest cosignature is older than allowed.
        sleep(2)
        let stale = try monitor(server.port, ["--max-age", "1s"])
        #expect(stale.status == 5 && CLITests.jsonObject(stale.stdout)?["status"] as? String == "stale", "\(stale.stdout)")

        // Another history of the same log, larger, signed with the log's own key (an insider):
        // no witness vouches for it, and without witness keys the consistency check catches it.
        try grow(fork, 0 ..< 400, witnessed: false)
        let forkServer = try ListeningProcess(ListeningProcess.stele, ["serve", fork, "--listen", "127.0.0.1:0", "--poll", "0.1"])
        defer { forkServer.stop() }
        try waitForSize(forkServer.port, 401)
        let forked = try CLITests.stele(["monitor", "http://127.0.0.1:\(forkServer.port)", "--verifier-key", dir.child("log.pub"),
                                         "--state", dir.child("m-state"), "--json"])
        #expect(forked.status == 3 && (CLITests.jsonObject(forked.stdout)?["detail"] as? String)?.contains("forked") == true, "\(forked.stdout)")
        let uncosigned = try monitor(forkServer.port)
        #expect(uncosigned.status == 3, "\(uncosigned.stdout)")
        // The state still holds the last good checkpoint: the real log is healthy.
        #expect(try monitor(server.port).status == 0)

        // A smaller tree than the one seen: a rollback.
        let small = dir.child("small")
        #expect(try CLITests.stele(["init", small, "--origin", origin]).status == 0)
        try grow(small, 0 ..< 2, witnessed: false)
        let smallServer = try ListeningProcess(ListeningProcess.stele, ["serve", small, "--listen", "127.0.0.1:0", "--poll", "0.1"])
        defer { smallServer.stop() }
        try waitForSize(smallServer.port, 3)
        let rolledBack = try CLITests.stele(["monitor", "http://127.0.0.1:\(smallServer.port)", "--verifier-key", dir.child("log.pub"),
                                             "--state", dir.child("m-state"), "--json"])
        #expect(rolledBack.status == 3 && (CLITests.jsonObject(rolledBack.stdout)?["detail"] as? String)?.contains("rolled back") == true)

        // A checkpoint the monitor's key did not sign.
        let wrongKey = try CLITests.stele(["monitor", "http://127.0.0.1:\(server.port)", "--verifier-key", dir.child("other.pub"),
                                           "--state", dir.child("m2-state")])
        #expect(wrongKey.status == 3, "\(wrongKey.stdout)")
        // Nobody there: 4.
        smallServer.stop()
        #expect(try CLITests.stele(["monitor", "http://127.0.0.1:\(smallServer.port)", "--verifier-key", dir.child("log.pub"),
                                    "--state", dir.child("m3-state")]).status == 4)
    }
}
