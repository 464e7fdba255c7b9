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

    static func stele(_ arguments: [String], stdin: String? = nil) throws -> Run {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ProcessCrashTests.childPath)
            .deletingLastPathComponent().appendingPathComponent("stele")
        process.arguments = arguments
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

    @Test func initAppendReadStats() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = dir.child("s")
        #expect(try Self.stele(["init", store, "--segment-size", "65536"]).status == 0)
        let lines = (0 ..< 300).map { #"{"ns":"m-1/orders","key":"o-\#($0)","value":"{\"n\":\#($0)}"}"# }
            + [#"{"ns":"m-1/blobs","key":"bin","value_b64":"AP8Q"}"#]
        let append = try Self.stele(["append", store, "--jsonl", "-", "--batch", "64"], stdin: lines.joined(separator: "\n") + "\n")
        #expect(append.status == 0)
        #expect(append.stdout == "300\n")

        let read = try Self.stele(["read", store, "--from", "299", "--count", "5", "--json"])
        #expect(read.status == 0)
        let objects = read.stdout.split(separator: "\n")
        #expect(objects.count == 2)
        #expect(objects[0].hasPrefix(#"{"seq":299,"type":"put","time":""#))
        #expect(objects[0].hasSuffix(#""ns":"m-1/orders","key":"o-299","value":"{\"n\":299}"}"#))
        #expect(objects[1].hasSuffix(#""key":"bin","value_b64":"AP8Q"}"#))

        let stats = try Self.stele(["stats", store, "--json"])
        #expect(stats.status == 0)
        let json = try JSONSerialization.jsonObject(with: Data(stats.stdout.utf8)) as? [String: Any]
        #expect(json?["records"] as? Int == 301)
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
