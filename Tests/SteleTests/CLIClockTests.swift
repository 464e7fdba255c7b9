import Foundation
import Testing
@testable import Stele
import SteleNative

/// README: "There is no way to set the store's clock from the CLI or the environment." Records
/// written by real `stele` processes carry the real time whatever the environment says, no
/// subcommand has an option that names a clock or a time to write at, and an input line's own
/// time fields are not taken.
@Suite struct CLIClockTests {
    static func stele(_ arguments: [String], environment: [String: String], stdin: String? = nil) throws -> CLITests.Run {
        try CLITests.stele(arguments, stdin: stdin, environment: environment)
    }

    /// 2001-01-01T00:00:00Z, in the forms clock overrides take.
    static let past = [
        "FAKETIME": "@2001-01-01 00:00:00", "FAKETIME_DONT_RESET": "1", "SOURCE_DATE_EPOCH": "978307200",
        "STELE_CLOCK": "2001-01-01T00:00:00Z", "STELE_NOW": "978307200", "STELE_TIME": "978307200", "NOW": "978307200",
        "TZ": "Pacific/Kiritimati",
    ]

    static func now() -> Int64 { SystemClock().nanosecondsSinceEpoch() }

    @Test func recordsCarryTheRealTimeWhateverTheEnvironmentSays() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = dir.child("s")
        #expect(try Self.stele(["init", store, "--segment-size", "65536"], environment: Self.past).status == 0)
        let genesis = try Store(path: store, options: .init(readOnly: true))
        let created = try genesis.record(at: 0).timestamp
        try genesis.close()

        let before = Self.now()
        let put = try Self.stele(["put", store, "n", "k", "v"], environment: Self.past)
        #expect(put.status == 0 && put.stdout == "1\n", "\(put.status) \(put.stdout) \(put.stderr)")
        // Time fields in an input line are not read either (unknown fields are ignored).
        let line = #"{"ns":"n","key":"k2","value":"v","time":"2001-01-01T00:00:00Z","timestamp":978307200000000000,"seq":99}"#
        let append = try Self.stele(["append", store, "--jsonl", "-"], environment: Self.past, stdin: line + "\n")
        #expect(append.status == 0 && append.stdout == "2\n", "\(append.status) \(append.stdout) \(append.stderr)")
        let after = Self.now()

        let reader = try Store(path: store, options: .init(readOnly: true))
        defer { try? reader.close() }
        #expect(created <= before, "the genesis was written by the real clock too")
        for sequence: UInt64 in [1, 2] {
            let timestamp = try reader.record(at: sequence).timestamp
            #expect(timestamp >= before && timestamp <= after, "record \(sequence) at \(timestamp), real time \(before)...\(after)")
        }
        #expect(try reader.records(from: 0, count: 3).allSatisfy { $0.type != .policy }, "no clock step was logged")
    }

    /// Every option of every subcommand, from its `--help`: none names a clock, a time or a date
    /// to write at (`--until`, `--for`, `--valid-for` are lock and authorization dates, judged
    /// against the store's own clock; `--interval` is a pause between mirror passes).
    @Test func noSubcommandHasAClockOption() throws {
        let top = try CLITests.stele(["--help"])
        #expect(top.status == 0)
        let section = try #require(top.stdout.components(separatedBy: "SUBCOMMANDS:").last)
        let subcommands = section.split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("  "), !line.hasPrefix("   "), let name = line.split(separator: " ").first else { return nil }
            return name.allSatisfy { $0.isLowercase || $0 == "-" } ? String(name) : nil
        }
        #expect(subcommands.count == 34 && subcommands.contains("put") && subcommands.contains("append") && subcommands.contains("lock"),
                "\(subcommands)")
        let forbidden = ["clock", "now", "time", "timestamp", "date", "epoch", "fake"]
        let optionPattern = try NSRegularExpression(pattern: "--[a-z0-9][a-z0-9-]*")
        var all: Set<String> = []
        for name in subcommands + [""] {
            let help = try CLITests.stele(name.isEmpty ? ["--help"] : [name, "--help"])
            #expect(help.status == 0, "\(name)")
            let text = help.stdout as NSString
            let options = optionPattern.matches(in: help.stdout, range: NSRange(location: 0, length: text.length))
                .map { String(text.substring(with: $0.range).dropFirst(2)) }
            all.formUnion(options)
            for option in options {
                let words = option.split(separator: "-").map(String.init)
                #expect(!words.contains { forbidden.contains($0) } && !option.contains("clock") && !option.contains("time"),
                        "\(name.isEmpty ? "stele" : name): --\(option)")
            }
        }
        // The parse found the options (not an empty list that passes vacuously).
        #expect(all.isSuperset(of: ["help", "until", "for", "valid-for", "interval", "segment-size", "sync", "as-of"]), "\(all.sorted())")
    }
}
