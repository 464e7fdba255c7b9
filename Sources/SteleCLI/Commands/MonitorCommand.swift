import ArgumentParser
import Foundation
import Stele
import SteleMirror

struct MonitorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "monitor",
        abstract: "Check a log served as tlog-tiles: signed, cosigned, its tiles, consistent with the last look.",
        discussion: """
        Fetches URL/checkpoint, checks the log's signature (--verifier-key) and, with \
        --witness-key, that at least --quorum witnesses (default all) cosigned it; recomputes its \
        root from the served tiles; and checks that the tree is consistent with the checkpoint the \
        monitor kept from its last run (--state), by a consistency proof from the served tiles. \
        Then keeps the new checkpoint. Exit 0: healthy; 3: the log forked, rolled back, or served \
        a checkpoint that is unsigned, not cosigned, or that its tiles contradict (nothing is kept); \
        5: consistent, but the newest cosignature is older than --max-age (a writer that stopped \
        checkpointing, or witnesses that stopped answering); 4: the log could not be reached. \
        --json prints one object for alerting systems.
        """)

    @Argument(help: "The log's URL prefix (where /checkpoint and /tile/ are).")
    var url: String

    @Option(help: "The log's verifier key (name+keyid+key), or a file holding it.")
    var verifierKey: String

    @Option(name: .customLong("witness-key"), help: "A witness's cosigner key, or a file holding it; repeatable.")
    var witnessKeys: [String] = []

    @Option(help: "How many of the witnesses must have cosigned (default: all).")
    var quorum: Int?

    @Option(help: "Directory where the monitor keeps the last checkpoint it verified.")
    var state: String

    @Option(help: "Largest age of the newest cosignature, as 90s, 15m, 1h or 1d (with --witness-key).")
    var maxAge: String?

    @Flag(help: "Print one JSON object.")
    var json = false

    func run() throws {
        guard let base = URL(string: url), base.scheme == "http" || base.scheme == "https" else {
            throw ValidationError("the URL must be http(s)://")
        }
        let witnesses = try witnessKeys.map(loadCosignatureVerifier)
        let needed = quorum ?? witnesses.count
        guard (0 ... witnesses.count).contains(needed) else { throw ValidationError("--quorum must be 0-\(witnesses.count)") }
        let age = try maxAge.map(Self.duration)
        if age != nil, witnesses.isEmpty { throw ValidationError("--max-age needs --witness-key: it is the age of their newest cosignature") }
        let monitor = LogMonitor(url: base, verifier: try loadVerifier(verifierKey), witnesses: witnesses, quorum: needed,
                                 stateDirectory: state, maxAge: age)
        let report: LogMonitor.Report
        do {
            report = try monitor.check()
        } catch {
            print(json ? #"{"status":"unreachable","error":"\#(Self.escaped("\(error)"))"}"# : "unreachable: \(error)")
            throw ExitCode(4)
        }
        let (status, detail, code): (String, String, Int32) = switch report.verdict {
        case .healthy: ("healthy", "", 0)
        case .inconsistent(let reason): ("inconsistent", reason, 3)
        case .stale(let seconds): ("stale", "the newest cosignature is \(seconds) s old", 5)
        }
        if json {
            var fields = [#""status":"\#(status)""#, #""tree_size":\#(report.treeSize.map(String.init) ?? "null")"#,
                          #""root":\#(report.root.map { "\"\($0.hex)\"" } ?? "null")"#,
                          #""previous_size":\#(report.previousSize.map(String.init) ?? "null")"#,
                          #""cosignatures":\#(report.cosignatures)"#,
                          #""newest_cosignature_age_s":\#(report.newestCosignatureAge.map(String.init) ?? "null")"#]
            if !detail.isEmpty { fields.append(#""detail":"\#(Self.escaped(detail))""#) }
            print("{" + fields.joined(separator: ",") + "}")
        } else {
            print(status + (report.treeSize.map { ": tree size \($0)" } ?? "") + (detail.isEmpty ? "" : ": " + detail))
        }
        if code != 0 { throw ExitCode(code) }
    }

    static func duration(_ text: String) throws -> Duration {
        let units: [Character: Int64] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
        guard let unit = text.last.flatMap({ units[$0] }), let value = Int64(text.dropLast()), value > 0, value < 1 << 40 else {
            throw ValidationError("--max-age takes a number and s, m, h or d, as 15m")
        }
        return .seconds(value * unit)
    }

    static func escaped(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: " ")
    }
}
