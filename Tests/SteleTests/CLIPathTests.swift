import Foundation
import Testing
@testable import Stele

/// No CLI path misleads: each case once misled an operator (issue 15, item 5), through the real
/// `stele` binary.
@Suite struct CLIPathTests {
    static func stele(_ arguments: [String], stdin: String? = nil, in directory: String? = nil) throws -> CLITests.Run {
        try CLITests.stele(arguments, stdin: stdin, in: directory)
    }

    static func lines(_ range: Range<Int>, namespace: String = "m/orders") -> [String] {
        range.map { #"{"ns":"\#(namespace)","key":"o-\#($0)","value":"v\#($0)"}"# }
    }

    @Test func theDemoNeverWritesIntoAnExistingDirectory() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = dir.child("s")
        #expect(try Self.stele(["init", store, "--segment-size", "65536"]).status == 0)
        let refused = try Self.stele(["demo", store, "--records", "20"])
        #expect(refused.status == 1 && refused.stderr.contains("not empty") && refused.stderr.contains("never writes into an existing"))
        #expect(try CLITests.recordCount(store) == 1, "untouched: only its genesis")
        try FileManager.default.createDirectory(atPath: dir.child("empty"), withIntermediateDirectories: false)
        let demo = try Self.stele(["demo", dir.child("empty"), "--records", "20", "--batch", "5"])
        #expect(demo.status == 0 && demo.stdout.contains("Stele demo: created"), "\(demo.stderr)")
        #expect(try Self.stele(["demo", dir.child("empty"), "--records", "20"]).status == 1, "not twice into the same store")
    }

    /// README: the demo reads every record back and proves one against a checkpoint it signed.
    /// Its "ok" lines are the outcome (a failed check exits 3, the code of a failed verification,
    /// since `DemoCommand` checks it; before, it printed FAILED and exited 0), and the root it
    /// printed is the store's.
    @Test func theDemoReadsBackAndProvesOneRecordAndSaysOk() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = dir.child("demo")
        let demo = try Self.stele(["demo", store, "--records", "300", "--batch", "50"])
        #expect(demo.status == 0 && demo.stderr.isEmpty, "\(demo.status) \(demo.stderr)")
        #expect(demo.stdout.contains("\n  verified   300 records read back, every XXH3 checksum checked\n"), "\(demo.stdout)")
        let proven = try #require(demo.stdout.split(separator: "\n").first { $0.hasPrefix("  checkpoint ") }, "\(demo.stdout)")
        #expect(proven.hasPrefix("  checkpoint signed (Ed25519, C2SP signed note) and verified; record #151 proven included with ")
            && proven.hasSuffix(" hashes: ok"), "\(proven)")
        let stats = try #require(try JSONSerialization.jsonObject(with: Data(try Self.stele(["stats", store, "--json"]).stdout.utf8)) as? [String: Any])
        let root = try #require(stats["root"] as? String)
        #expect(stats["tree_size"] as? Int == 301 && demo.stdout.contains("  merkle     tree size 301, root \(root)\n"), "\(stats)")
        #expect(try Self.stele(["fsck", store]).status == 0)
    }

    @Test func anAppendThatFailsPartWaySaysWhatWasCommittedAndResumesWithoutDuplicates() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = dir.child("s")
        #expect(try Self.stele(["init", store, "--segment-size", "65536"]).status == 0)
        for (name, bad) in [("syntax", #"{"ns":"m/orders","key":"o-56","value":"#),
                            ("oversized", #"{"ns":"m/orders","key":"o-56","value":"\#(String(repeating: "x", count: 70_000))"}"#)] {
            let path = dir.child("s-\(name)")
            try FileManager.default.copyItem(atPath: store, toPath: path)
            var input = Self.lines(0 ..< 100)
            input[56] = bad  // line 57
            for sync in ["batch", "none"] {
                let copy = path + "-" + sync
                try FileManager.default.copyItem(atPath: path, toPath: copy)
                let run = try Self.stele(["append", copy, "--jsonl", "-", "--batch", "10", "--sync", sync], stdin: input.joined(separator: "\n") + "\n")
                #expect(run.status != 0)
                // Batches of lines 1-10 ... 41-50 went in; the one holding line 57 was refused whole
                // (syntax: never appended; oversized: validated before anything is written).
                #expect(run.stderr.contains("committed: 50 records from input lines 1-50, the last at sequence 50, durable"), "\(name) \(sync): \(run.stderr)")
                #expect(run.stderr.contains("--skip-lines 50"))
                input[56] = Self.lines(56 ..< 57)[0]
                let resumed = try Self.stele(["append", copy, "--jsonl", "-", "--batch", "10", "--skip-lines", "50", "--sync", sync],
                                             stdin: input.joined(separator: "\n") + "\n")
                #expect(resumed.status == 0 && resumed.stdout == "100\n", "\(resumed.stderr)")
                let history = try Self.stele(["history", copy, "m/orders", "o-40"])
                #expect(history.stdout.split(separator: "\n").count == 1, "no duplicates")
                #expect(try CLITests.recordCount(copy) == 101)
                input[56] = bad
            }
        }
    }

    @Test func purgeDryRunReportsWhatPurgeDoesAndNeverNegativeBytes() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = dir.child("s")
        #expect(try Self.stele(["init", store, "--segment-size", "65536"]).status == 0)
        // Small values (stubs are bigger than them) and large ones, each superseded once; every
        // superseded version is in the active segment, which only a real purge seals first.
        for (key, size) in [("small", 5), ("large", 300)] {
            for round in 0 ..< 2 {
                let lines = (0 ..< 20).map { #"{"ns":"n","key":"\#(key)-\#($0)","value":"\#(String(repeating: "\(round)", count: size))"}"# }
                #expect(try Self.stele(["append", store, "--jsonl", "-"], stdin: lines.joined(separator: "\n") + "\n").status == 0)
            }
        }
        let dry = try Self.stele(["purge", store, "--dry-run", "--json"])
        let planned = try #require(try JSONSerialization.jsonObject(with: Data(dry.stdout.utf8)) as? [String: Any])
        #expect(planned["purged"] as? Int == 40 && planned["in_active_segment"] as? Int == 40, "\(dry.stdout)")
        #expect(planned["payload_bytes"] as? Int == 20 * 5 + 20 * 300 && (planned["bytes_reclaimed"] as? Int ?? -1) >= 0
            && (planned["bytes_added"] as? Int ?? -1) >= 0)
        let text = try Self.stele(["purge", store, "--dry-run"])
        #expect(text.stdout.hasPrefix("would purge 40 versions") && !text.stdout.contains(" -"), "\(text.stdout)")
        let real = try Self.stele(["purge", store, "--json"])
        let done = try #require(try JSONSerialization.jsonObject(with: Data(real.stdout.utf8)) as? [String: Any])
        #expect(done["purged"] as? Int == 40 && done["payload_bytes"] as? Int == planned["payload_bytes"] as? Int, "\(real.stdout)")
        // The dry run's estimate of the change in the segments' size is what the rewrite did.
        let net = { (r: [String: Any]) in (r["bytes_reclaimed"] as? Int ?? 0) - (r["bytes_added"] as? Int ?? 0) }
        #expect(net(done) == net(planned) && net(done) == 20 * (300 - 32) - 20 * (32 - 5), "\(planned) \(done)")

        // Only small payloads: the stubs take more than they free, said as such.
        let small = dir.child("small")
        #expect(try Self.stele(["init", small, "--segment-size", "65536"]).status == 0)
        for round in 0 ..< 2 {
            #expect(try Self.stele(["append", small, "--jsonl", "-"], stdin: #"{"ns":"n","key":"k","value":"\#(round)"}"# + "\n").status == 0)
        }
        let smallDry = try Self.stele(["purge", small, "--dry-run"])
        #expect(smallDry.stdout.contains("would take 31 bytes more"), "\(smallDry.stdout)")
    }

    /// Every path a bare name in the working directory: Foundation's `deletingLastPathComponent`
    /// crashes on such a name (Swift 6 on Linux), which a restore once used for its parent.
    @Test func bareRelativeNamesWorkForEveryStepOfACopyAndRestore() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let steps: [[String]] = [
            ["init", "store"], ["put", "store", "ns", "k", "v"], ["keygen", "--name", "names.test/log", "--out", "log"],
            ["checkpoint", "store", "--key", "log.key", "--seal", "--out", "trusted"], ["mirror", "store", "--to", "copy"],
            ["restore", "--from", "copy", "--to", "restored", "--checkpoint", "trusted", "--verifier-key", "log.pub"],
            ["fsck", "restored"], ["get", "restored", "ns", "k"],
        ]
        for step in steps {
            let run = try Self.stele(step, in: dir.path)
            #expect(run.status == 0, "stele \(step.joined(separator: " ")): \(run.stderr)")
        }
        #expect(try Self.stele(["get", "restored", "ns", "k"], in: dir.path).stdout.contains("v"))
    }

    @Test func mirrorAndRestoreRefuseTargetsInsideAStore() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = dir.child("s")
        #expect(try Self.stele(["init", store, "--segment-size", "65536"]).status == 0)
        #expect(try Self.stele(["keygen", "--name", "t/log", "--out", dir.child("k")]).status == 0)
        #expect(try Self.stele(["checkpoint", store, "--key", dir.child("k.key"), "--seal", "--out", dir.child("cp")]).status == 0)
        let inside = try Self.stele(["mirror", store, "--to", store + "/segments/copy"])
        #expect(inside.status == 1 && inside.stderr.contains("inside"), "\(inside.stderr)")
        #expect(try Self.stele(["mirror", store, "--to", store + "/../s/copy"]).status == 1, "the same place, another spelling")
        #expect(!FileManager.default.fileExists(atPath: store + "/segments/copy"))
        #expect(try Self.stele(["mirror", store, "--to", dir.child("copy")]).status == 0)
        let restore = { (to: String) in
            try Self.stele(["restore", "--from", dir.child("copy"), "--to", to, "--checkpoint", dir.child("cp"), "--verifier-key", dir.child("k.pub")])
        }
        #expect(try restore(store + "/restored").status == 1)
        #expect(try restore(dir.child("copy") + "/restored").status == 1)
        #expect(try restore(dir.child("restored")).status == 0)
    }

    @Test func aFollowingMirrorWhosePassesFailExitsNonZero() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = dir.child("s")
        #expect(try Self.stele(["init", store]).status == 0)
        try Data("[default]\naws_access_key_id = x\naws_secret_access_key = y\n".utf8).write(to: URL(fileURLWithPath: dir.child("creds")))
        // Nothing listens on port 9 of 127.0.0.1: every pass fails as unreachable (transient).
        let unreachable = ["mirror", store, "--to", "s3://bucket/p", "--endpoint", "http://127.0.0.1:9", "--credentials", dir.child("creds"),
                           "--follow", "--interval", "0.02", "--attempts", "1"]
        let givingUp = try Self.stele(unreachable + ["--max-failures", "2"])
        #expect(givingUp.status == 4 && givingUp.stderr.contains("2 in a row") && givingUp.stderr.contains("giving up after 2 failed passes"),
                "\(givingUp.status) \(givingUp.stderr)")
        #expect(!givingUp.stderr.contains("pass 3"), "it stops at the limit")
        // Between failed passes it backs off: twice the pause each time.
        let backingOff = try Self.stele(unreachable + ["--max-failures", "4"])
        for (pass, pause) in [(1, "0.04"), (2, "0.08"), (3, "0.16")] {
            #expect(backingOff.stderr.contains("pass \(pass) failed: ") && backingOff.stderr.contains("\(pass) in a row; next pass in \(pause) s"),
                    "\(backingOff.stderr)")
        }
        // A bounded follow reports its last pass's failure in its exit status.
        let bounded = try Self.stele(unreachable + ["--passes", "1"])
        #expect(bounded.status == 4 && bounded.stderr.contains("unreachable"), "\(bounded.status) \(bounded.stderr)")
        #expect(try Self.stele(unreachable + ["--max-failures", "0"]).status == 2)
    }

    @Test func impossibleAndAbsurdDatesAreRefused() throws {
        // The parser, against the calendar.
        #expect(RetentionText.date("2027-02-30T00:00:00Z") == nil)
        #expect(RetentionText.date("2027-02-29T00:00:00Z") == nil)
        #expect(RetentionText.date("2028-02-29T00:00:00Z") == 1_835_395_200_000_000_000)
        #expect(RetentionText.date("2027-04-31T12:00:00Z") == nil)
        #expect(RetentionText.date("2027-01-31T24:00:00Z") == nil)
        #expect(RetentionText.date("2027-01-31T23:59:60Z") == nil)
        #expect(RetentionText.date("2027-13-01T00:00:00Z") == nil)
        #expect(RetentionText.date("2027-01-31T08:00:00+08:00") == RetentionText.date("2027-01-31T00:00:00Z"))
        #expect(RetentionText.date("2027-01-31T00:00:00.5Z") == 1_801_353_600_500_000_000)
        // More than nine fraction digits: the rest are dropped, not a crash (a fuzzer finding).
        #expect(RetentionText.date("2027-01-31T00:00:00.1234567891234Z") == 1_801_353_600_123_456_789)
        for valid in ["2027-01-31T00:00:00Z", "1999-12-31T23:59:59Z", "2024-02-29T10:20:30.123456789Z"] {
            let expected = try #require(try? Date(valid, strategy: .iso8601))
            #expect(RetentionText.date(valid).map { $0 / 1_000_000 } == Int64((expected.timeIntervalSince1970 * 1000).rounded(.down)), "\(valid)")
        }

        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = dir.child("s")
        #expect(try Self.stele(["init", store, "--segment-size", "65536"]).status == 0)
        #expect(try Self.stele(["put", store, "n", "k", "v"]).status == 0)
        let lock = try Self.stele(["lock", store, "n", "k", "--mode", "compliance", "--until", "2027-02-30T00:00:00Z"])
        #expect(lock.status == 2 && lock.stderr.contains("February 30th"), "\(lock.stderr)")
        let line = #"{"ns":"n","key":"k2","value":"v","lock":{"mode":"compliance","until":"2027-02-30T00:00:00Z"}}"#
        #expect(try Self.stele(["append", store, "--jsonl", "-"], stdin: line + "\n").status == 1)
        // A date over a century ahead is a typing error, not a lock (a copy would follow it).
        let far = try Self.stele(["lock", store, "n", "k", "--mode", "compliance", "--for", "40000d"])
        #expect(far.status == 1 && far.stderr.contains("more than 100 years"), "\(far.stderr)")
        #expect(try Self.stele(["retention", store, "n", "--default-mode", "governance", "--default-for", "40000d"]).status == 1)
        #expect(try Self.stele(["init", dir.child("t"), "--min-retention", "40000d"]).status == 1)
    }

    /// docs/fuzzing.md: durations and dates that overflow a 64-bit nanosecond timestamp (they
    /// trapped once) are usage errors (exit 2) that say what is allowed, and nothing is written.
    @Test func overflowingDurationsAndDatesAreUsageErrors() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = dir.child("s")
        #expect(try Self.stele(["init", store, "--segment-size", "65536", "--origin", "example.com/s"]).status == 0)
        #expect(try Self.stele(["put", store, "n", "k", "v"]).status == 0)
        #expect(try Self.stele(["keygen", "--name", "gov/key", "--out", dir.child("gov")]).status == 0)
        let before = try Self.stele(["stats", store, "--json"]).stdout
        let tooLong = "durations are written 90s, 15m, 12h or 30d, at most 292 years (got "
        let tooLate = "from now is past the year 2262"
        let badDate = "between the years 1678 and 2261, e.g. 2027-01-31T00:00:00Z (got 4054-01-31T00:00:00Z)"
        let lock = ["lock", store, "n", "k", "--mode", "compliance"]
        let authorize = ["authorize", "--signer", dir.child("gov.key"), "--origin", "example.com/s", "n", "k", "--as-of", "2"]
        let cases: [([String], String)] = [
            (lock + ["--for", "999999999999999d"], tooLong + "999999999999999d)"),  // days × 86,400 overflows
            (lock + ["--for", "9999999999s"], tooLong + "9999999999s)"),             // seconds × 10⁹ overflows
            (lock + ["--for", "106000d"], "106000d " + tooLate),                      // now + duration overflows
            (lock + ["--until", "4054-01-31T00:00:00Z"], badDate),
            (authorize + ["--until", "2020-01-01T00:00:00Z", "--valid-for", "999999999999999d"], tooLong + "999999999999999d)"),
            (authorize + ["--until", "2020-01-01T00:00:00Z", "--valid-for", "106000d"], "106000d " + tooLate),
            (authorize + ["--until", "4054-01-31T00:00:00Z"], badDate),
            (["authorize-key", "--signer", dir.child("gov.key"), "--origin", "example.com/s", "--to", "none", "--as-of", "2",
              "--valid-for", "9999999999s"], tooLong + "9999999999s)"),
            (["retention", store, "n", "--default-mode", "governance", "--default-for", "999999999999999d"], tooLong + "999999999999999d)"),
            (["init", dir.child("t"), "--min-retention", "999999999999999d"], tooLong + "999999999999999d)"),
        ]
        for (arguments, message) in cases {
            let run = try Self.stele(arguments)
            #expect(run.status == 2 && run.stderr.contains(message) && run.stdout.isEmpty, "\(arguments): \(run.status) \(run.stderr)")
        }
        #expect(try Self.stele(["stats", store, "--json"]).stdout == before, "nothing was written")
        #expect(!FileManager.default.fileExists(atPath: dir.child("t")), "no store was created")
    }

    @Test func keysThatAreNotPrintableTextAreShownAndNamedUnambiguously() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = dir.child("s")
        #expect(try Self.stele(["init", store, "--segment-size", "65536"]).status == 0)
        let input = [#"{"ns":"bin","key_b64":"/w==","value":"binary"}"#, #"{"ns":"bin","key":"b64:/w==","value":"text"}"#,
                     #"{"ns":"bin","key":"tab\there","value":"tab"}"#]
        #expect(try Self.stele(["append", store, "--jsonl", "-"], stdin: input.joined(separator: "\n") + "\n").status == 0)
        let scan = try Self.stele(["scan", store, "bin"]).stdout
        // 0xff, the text "b64:/w==" and a key with a tab: three different, unambiguous names.
        let textKey = "b64:" + Data("b64:/w==".utf8).base64EncodedString()
        let tabKey = "b64:" + Data("tab\there".utf8).base64EncodedString()
        #expect(scan.contains("\tb64:/w==\t") && scan.contains("\t\(textKey)\t") && scan.contains("\t\(tabKey)\t"), "\(scan)")
        // Each name shown works as an argument.
        #expect(try Self.stele(["get", store, "bin", "b64:/w=="]).stdout == "binary")
        #expect(try Self.stele(["get", store, "bin", textKey]).stdout == "text")
        #expect(try Self.stele(["get", store, "bin", tabKey]).stdout == "tab")
        #expect(try Self.stele(["history", store, "bin", textKey]).status == 0)
        #expect(try Self.stele(["delete", store, "bin", "b64:/w=="]).status == 0)
        #expect(try Self.stele(["get", store, "bin", "b64:/w=="]).status == 1, "deleted")
        let invalid = try Self.stele(["get", store, "bin", "b64:not base64!"])
        #expect(invalid.status == 1 && invalid.stderr.contains("not valid base64"), "\(invalid.stderr)")
    }

    @Test func aDirectoryAsInputAndNegativeNumbersGetPlainMessages() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = dir.child("s")
        #expect(try Self.stele(["init", store, "--segment-size", "65536"]).status == 0)
        let directory = try Self.stele(["append", store, "--jsonl", dir.path])
        #expect(directory.status == 1 && directory.stderr.contains("is a directory"), "\(directory.stderr)")
        let from = try Self.stele(["read", store, "--from", "-1"])
        #expect(from.status == 2 && from.stderr.contains("'-1' is invalid for '--from"), "\(from.stderr)")
        let count = try Self.stele(["read", store, "--from", "0", "--count", "-3"])
        #expect(count.status == 2 && count.stderr.contains("--count must not be negative"), "\(count.stderr)")
        let records = try Self.stele(["bench", dir.child("b"), "--records", "-5"])
        #expect(records.status == 2 && records.stderr.contains("--records and --batch must be at least 1"), "\(records.stderr)")
        let skip = try Self.stele(["append", store, "--jsonl", "-", "--skip-lines", "-2"], stdin: "")
        #expect(skip.status == 2 && skip.stderr.contains("--skip-lines must be 0 or more"), "\(skip.stderr)")
    }
}
