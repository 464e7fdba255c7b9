import Foundation
import Testing
@testable import Stele

/// Runs the real `stele` binary, as an operator would.
@Suite struct CLITests {
    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func stele(_ arguments: [String], stdin: String? = nil, environment: [String: String] = [:], in directory: String? = nil) throws -> Run {
        try run(URL(fileURLWithPath: ProcessCrashTests.childPath).deletingLastPathComponent().appendingPathComponent("stele").path,
                arguments, stdin: stdin, environment: environment, in: directory)
    }

    /// Runs `executable` with `arguments` (and `stdin`, and `environment` over this process's
    /// environment, in `directory` if given), collecting its exit status and output.
    static func run(_ executable: String, _ arguments: [String], stdin: String? = nil, environment: [String: String] = [:],
                    in directory: String? = nil) throws -> Run {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let out = Pipe(), err = Pipe(), input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                   stderr: String(decoding: stderr, as: UTF8.self))
    }

    /// One JSON object as a `--json` output prints it; nil if `text` is not one. Tests decode
    /// rather than compare text: the order of the fields is not part of the output.
    static func jsonObject(_ text: some StringProtocol) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
    }

    /// `records` of `stele stats --json`; nil if it did not print the stats object.
    static func recordCount(_ store: String) throws -> Int? {
        jsonObject(try stele(["stats", store, "--json"]).stdout)?["records"] as? Int
    }

    @Test func initAppendReadStats() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = dir.child("s")
        #expect(try Self.stele(["init", store, "--segment-size", "65536"]).status == 0)
        let lines = (0 ..< 300).map { #"{"ns":"m-1/orders","key":"o-\#($0)","value":"{\"n\":\#($0)}"}"# }
            + [#"{"ns":"m-1/blobs","key":"bin","value_b64":"AP8Q"}"#]
        let append = try Self.stele(["append", store, "--jsonl", "-", "--batch", "64"], stdin: lines.joined(separator: "\n") + "\n")
        #expect(append.status == 0)
        #expect(append.stdout == "301\n", "the last sequence number: 300 records after the genesis (0)")

        let read = try Self.stele(["read", store, "--from", "300", "--count", "5", "--json"])
        #expect(read.status == 0)
        let objects = read.stdout.split(separator: "\n").map { Self.jsonObject($0) }
        try #require(objects.count == 2, "\(read.stdout)")
        let put = try #require(objects[0], "\(read.stdout)"), binary = try #require(objects[1], "\(read.stdout)")
        // Exactly these fields: a text value, no base64 and no redaction in their place.
        #expect(Set(put.keys) == ["seq", "type", "time", "time_ns", "ns", "key", "value"], "\(put)")
        #expect(put["seq"] as? Int == 300 && put["type"] as? String == "put" && put["time"] is String, "\(put)")
        #expect(put["ns"] as? String == "m-1/orders" && put["key"] as? String == "o-299" && put["value"] as? String == #"{"n":299}"#, "\(put)")
        #expect(Set(binary.keys) == ["seq", "type", "time", "time_ns", "ns", "key", "value_b64"], "\(binary)")
        #expect(binary["key"] as? String == "bin" && binary["value_b64"] as? String == "AP8Q", "\(binary)")

        let stats = try Self.stele(["stats", store, "--json"])
        #expect(stats.status == 0)
        let json = try JSONSerialization.jsonObject(with: Data(stats.stdout.utf8)) as? [String: Any]
        #expect(json?["records"] as? Int == 302)
        #expect((json?["root"] as? String)?.count == 64)
    }

    @Test func exitCodes() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = dir.child("s")
        #expect(try Self.stele(["read", dir.path, "--from", "0"]).status == 1, "not a store")
        #expect(try Self.stele(["frobnicate"]).status == 2, "usage")
        #expect(try Self.stele(["append", store, "--jsonl", "-", "--sync", "sometimes"]).status == 2, "usage")
        #expect(try Self.stele(["init", store, "--segment-size", "65536"]).status == 0)
        #expect(try Self.stele(["init", store]).status == 1, "refused: exists")
        #expect(try Self.stele(["append", store, "--jsonl", "-"], stdin: "{\"ns\":\"n\"}\n").status == 1, "bad input line")
        let two = "{\"ns\":\"n\",\"key\":\"k\",\"value\":\"v\"}\n{\"ns\":\"n\",\"key\":\"k2\",\"value\":\"v2\"}\n"
        #expect(try Self.stele(["append", store, "--jsonl", "-"], stdin: two).status == 0)
        #expect(try Self.stele(["read", store, "--from", "5"]).status == 1, "no such record")
        #expect(try Self.stele(["--help"]).status == 0)

        // Damage the first record in place: a valid record follows it, so this is corruption
        // (exit 3), not a torn tail.
        let segment = segmentPath(store, 1)
        var bytes = try readFile(segment)
        bytes[SegmentHeader.size + 38] ^= 0xff
        try writeFile(segment, bytes)
        let damaged = try Self.stele(["read", store, "--from", "0"])
        #expect(damaged.status == 3)
        #expect(damaged.stderr.contains("000000000001.seg"))
    }

    @Test func keygenCheckpointVerifyProveLeaf() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = dir.child("s")
        #expect(try Self.stele(["init", store, "--segment-size", "65536", "--origin", "example.com/orders"]).status == 0)
        let lines = (0 ..< 2000).map { #"{"ns":"m/orders","key":"o-\#($0)","value":"paid \#($0)"}"# }
        #expect(try Self.stele(["append", store, "--jsonl", "-"], stdin: lines.joined(separator: "\n") + "\n").status == 0)

        let keygen = try Self.stele(["keygen", "--name", "example.com/orders", "--out", dir.child("log")])
        #expect(keygen.status == 0)
        #expect(keygen.stdout.hasPrefix("example.com/orders+"))
        #expect(try PosixFileSystem().status(dir.child("log.key"))?.permissions == 0o600)
        #expect(!keygen.stdout.contains("PRIVATE"))
        #expect(try Self.stele(["keygen", "--name", "x", "--out", dir.child("log")]).status != 0, "never overwrites a key")

        let checkpoint = try Self.stele(["checkpoint", store, "--key", dir.child("log.key"), "--out", dir.child("cp")])
        #expect(checkpoint.status == 0)
        let note = try String(contentsOfFile: dir.child("cp"), encoding: .utf8)
        #expect(note.hasPrefix("example.com/orders\n2001\n"))
        #expect(try Self.stele(["checkpoint", store]).stdout == note)
        let verify = try Self.stele(["verify", store, "--checkpoint", dir.child("cp"), "--verifier-key", dir.child("log.pub")])
        #expect(verify.status == 0)
        #expect(verify.stdout.hasPrefix("ok:"))
        try writeFile(dir.child("bad"), Array(note.replacingOccurrences(of: "\n2001\n", with: "\n1999\n").utf8))
        #expect(try Self.stele(["verify", store, "--checkpoint", dir.child("bad"), "--verifier-key", dir.child("log.pub")]).status == 1)

        let prove = try Self.stele(["prove", store, "--index", "1234", "--tree-size", "1500", "--json"])
        #expect(prove.status == 0)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(prove.stdout.utf8)) as? [String: Any])
        let hashes = try #require(json["proof"] as? [String]).compactMap { Digest(hex: $0) }
        let root = try #require((json["root"] as? String).flatMap { Digest(hex: $0) })
        let leaf = try Self.stele(["leaf", store, "--index", "1234", "--json"])
        let leafJSON = try #require(try JSONSerialization.jsonObject(with: Data(leaf.stdout.utf8)) as? [String: Any])
        let leafHash = try #require((leafJSON["leaf_hash"] as? String).flatMap { Digest(hex: $0) })
        let entry = try #require((leafJSON["entry_hex"] as? String).flatMap { bytesFromHex($0) })
        #expect(TreeHash.leaf(entry) == leafHash)
        #expect(MerkleVerifier.verifyInclusion(leafHash: leafHash, index: 1234, treeSize: 1500, proof: hashes, root: root))
        let consistency = try Self.stele(["prove", store, "--consistency", "1000", "--json"])
        let consistencyJSON = try #require(Self.jsonObject(consistency.stdout), "\(consistency.stdout)")
        #expect(consistencyJSON["from"] as? Int == 1000 && consistencyJSON["to"] as? Int == 2001, "\(consistencyJSON)")
        #expect((consistencyJSON["proof"] as? [String]).map { !$0.isEmpty } == true, "\(consistencyJSON)")
        #expect(try Self.stele(["prove", store, "--index", "2001"]).status == 1)
        #expect(try Self.stele(["prove", store, "--index", "1", "--consistency", "1"]).status == 2)
    }

    @Test func benchReportsJSONAndCleansUp() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = dir.child("bench")
        let run = try Self.stele(["bench", store, "--records", "2500", "--batch", "1000", "--value-size", "100", "--sync", "batch", "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        for key in ["records_per_sec", "mb_per_sec", "commit_p50_us", "commit_p99_us", "bytes_on_disk"] {
            let value = try #require(json[key] as? Double, "missing \(key)")
            #expect(value > 0, "\(key)")
        }
        #expect(json["records"] as? Int == 2500)
        #expect(!FileManager.default.fileExists(atPath: store), "removed without --keep")

        let kept = try Self.stele(["bench", store, "--records", "1500", "--value-size", "3000", "--sync", "none", "--keep"])
        #expect(kept.status == 0, "\(kept.stderr)")
        #expect(kept.stdout.contains("records/s"))
        let stats = try Self.stele(["stats", store, "--json"])
        #expect((try JSONSerialization.jsonObject(with: Data(stats.stdout.utf8)) as? [String: Any])?["records"] as? Int == 1501)
        #expect(try Self.stele(["bench", store, "--records", "10"]).status == 1, "refuses a directory that is not empty")
        #expect(try Self.stele(["bench", dir.child("x"), "--sync", "sometimes"]).status == 2, "usage")
    }

    @Test func readmeEmbeddingExampleWorks() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try Store.create(at: dir.child("orders.stele"))
        let store = try Store(path: dir.child("orders.stele"), options: .init(commitPolicy: .everyBatch))
        let receipt = try store.append(contentsOf: [
            Entry(namespace: "merchant-42/orders", key: "o-1001", value: #"{"total":4200}"#),
        ])
        let record = try store.record(at: receipt.sequences.lowerBound)
        #expect(record.value == Array(#"{"total":4200}"#.utf8))
        try store.close()
    }
}
