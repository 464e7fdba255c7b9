import Foundation
import Glibc
import Testing
@testable import Stele

/// A restore killed at any moment (SIGKILL, the real binary) leaves either no store at the
/// target, or the whole verified one: it assembles in `DIR.restoring` and renames it into place
/// last. Run again, it completes, and nothing of the killed run is left behind.
@Suite struct RestoreCrashTests {
    static var binary: String {
        URL(fileURLWithPath: ProcessCrashTests.childPath).deletingLastPathComponent().appendingPathComponent("stele").path
    }

    @Test func aRestoreKilledAnywhereLeavesNoStoreOrTheWholeOne() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = dir.child("s"), copy = dir.child("copy")
        #expect(try CLITests.stele(["init", store, "--segment-size", "65536", "--origin", "restore.test/log"]).status == 0)
        let lines = (0 ..< 8000).map { #"{"ns":"orders","key":"o-\#($0)","value":"\#(String(repeating: "x", count: 400 + $0 % 200))"}"# }
        #expect(try CLITests.stele(["append", store, "--jsonl", "-"], stdin: lines.joined(separator: "\n") + "\n").status == 0)
        #expect(try CLITests.stele(["keygen", "--name", "restore.test/log", "--out", dir.child("k")]).status == 0)
        #expect(try CLITests.stele(["checkpoint", store, "--key", dir.child("k.key"), "--seal", "--out", dir.child("cp")]).status == 0)
        #expect(try CLITests.stele(["mirror", store, "--to", copy]).status == 0)
        func restore(_ target: String) -> [String] {
            ["restore", "--from", copy, "--to", target, "--checkpoint", dir.child("cp"), "--verifier-key", dir.child("k.pub")]
        }
        func verified(_ target: String) throws -> Bool {
            try CLITests.stele(["fsck", target, "--checkpoint", dir.child("cp"), "--verifier-key", dir.child("k.pub")]).status == 0
        }

        // How long a whole restore takes here, to spread the kills over it.
        let started = ContinuousClock.now
        #expect(try CLITests.stele(restore(dir.child("probe"))).status == 0)
        let whole = ContinuousClock.now - started
        #expect(try verified(dir.child("probe")))

        var absent = 0, complete = 0
        for i in 0 ..< 10 {
            let target = dir.child("r\(i)")
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Self.binary)
            process.arguments = restore(target)
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            // From at once to nearly twice the whole restore's time: some kills land after the rename.
            Thread.sleep(forTimeInterval: (Double(whole.components.seconds) + Double(whole.components.attoseconds) * 1e-18) * Double(i) / 5)
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            if FileManager.default.fileExists(atPath: target) {
                #expect(try verified(target), "kill \(i): a store at the target must be the whole, verified one")
                #expect(!FileManager.default.fileExists(atPath: target + ".restoring"))
                complete += 1
            } else {
                absent += 1
                let again = try CLITests.stele(restore(target))
                #expect(again.status == 0, "kill \(i): the restore run again: \(again.stderr)")
                #expect(try verified(target))
                #expect(!FileManager.default.fileExists(atPath: target + ".restoring"), "kill \(i): the killed run's work is gone")
            }
        }
        print("restore killed 10 times over \(whole): \(absent) before the rename (restored again), \(complete) after")
        #expect(absent >= 3 && complete >= 1, "\(absent) kills before the rename, \(complete) after (a whole restore took \(whole))")
    }
}
