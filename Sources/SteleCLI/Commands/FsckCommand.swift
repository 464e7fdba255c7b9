import ArgumentParser
import Foundation
import Stele
import SteleNative

struct FsckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fsck",
        abstract: "Check a store for corruption and tampering; say exactly where.",
        discussion: """
        Checks every frame's checksum, sequence numbers and timestamps, every leaf hash, content \
        digest, Merkle root and seal, the segment chain, every tile, every stored checkpoint, the \
        index snapshot, and every redaction stub against the redaction records and locks. \
        Read-only unless --repair, which only discards a torn tail of the active segment, \
        rebuilds tiles from the verified log, removes a damaged index snapshot (the next seal \
        writes a new one) and rewrites stele.conf from the log. With --checkpoint and \
        --verifier-key (repeatable, paired in order; one key serves all), also checks the store \
        against checkpoints held elsewhere: the only way to catch a history rewritten with every \
        hash recomputed; with --witness-key (repeatable), each such checkpoint must also carry \
        valid cosignatures of at least --quorum of those witnesses (default all), or it is \
        refused before the store is read (exit 8). Exit codes as e2fsck: 0 clean, 1 errors corrected, 4 errors left, 8 \
        operational error. Beside a running writer, layout and tile findings are printed as \
        "in flight?" and not counted (a seal or a tile write in progress looks the same); record, \
        chain, tree, checkpoint and retention findings always count. --repair needs the store closed.
        """)

    @OptionGroup var directory: StoreDirectory
    @Flag(help: "Repair what is provably safe, then check again.") var repair = false
    @Flag(help: "Print one JSON object.") var json = false
    @Option(help: "An external signed checkpoint file (repeatable).") var checkpoint: [String] = []
    @Option(help: "Verifier key (or file) for the checkpoints (repeatable).") var verifierKey: [String] = []
    @Option(name: .customLong("witness-key"), help: "A witness's cosigner key, or a file holding it; repeatable: each --checkpoint must carry their cosignatures.")
    var witnessKeys: [String] = []
    @Option(help: "How many of the --witness-key witnesses must have cosigned (default: all).")
    var quorum: Int?

    func validate() throws {
        guard checkpoint.isEmpty || verifierKey.count == 1 || verifierKey.count == checkpoint.count else {
            throw ValidationError("give one --verifier-key, or one per --checkpoint")
        }
        guard witnessKeys.isEmpty && quorum == nil || !checkpoint.isEmpty else {
            throw ValidationError("--witness-key and --quorum apply to the --checkpoint files: give them")
        }
    }

    func run() throws {
        let report: FsckReport
        do {
            let keys = try verifierKey.map(loadVerifier)
            let external = try checkpoint.enumerated().map { i, path in
                Fsck.ExternalCheckpoint(note: try readText(path), verifier: keys.count == 1 ? keys[0] : keys[i])
            }
            // A checkpoint without its witnesses' quorum is refused before anything is read.
            for (path, held) in zip(checkpoint, external) {
                do {
                    try requireCosignatures(held.note, keys: witnessKeys, quorum: quorum, logKey: held.verifier)
                } catch let error as InputError {
                    throw InputError(message: "\(path): \(error.message)")
                }
            }
            // A progress line on a terminal (stderr), nothing on a pipe.
            let tty = Terminal.standardErrorIsTerminal
            report = try Fsck.check(path: directory.path, externalCheckpoints: external, repair: repair, progress: tty ? { done, total in
                FileHandle.standardError.write(Data("\rchecking segments: \(done)/\(total) \(String(repeating: "#", count: 30 * done / max(1, total)))".utf8))
                if done == total { FileHandle.standardError.write(Data("\n".utf8)) }
            } : nil)
        } catch let error as InputError {
            Console.error("stele fsck: \(error.message)")
            throw ExitCode(8)
        } catch {
            Console.error("stele fsck: \(error)")
            throw ExitCode(8)
        }
        let rate = report.seconds > 0 ? Int(Double(report.records) / report.seconds) : 0
        if json {
            print(try jsonLine(FsckJSON(report, recordsPerSecond: rate)))
        } else {
            for problem in report.problems { print(problem) }
            for repair in report.repairs { print("repaired\t\(repair)") }
            for loss in report.recordedLosses { print("note\t\(loss)") }
            for finding in report.inFlight { print("in flight?\t\(finding)") }
            let summary = report.problems.isEmpty ? (report.repairs.isEmpty ? "clean" : "repaired, now clean") : "\(report.problems.count) problem(s)"
            print("\(summary): \(report.records) records in \(report.segments) segments (\(report.bytes) bytes), "
                + "\(report.externalCheckpointsVerified) external checkpoint(s) verified, \(String(format: "%.2f", report.seconds)) s, \(rate) records/s")
            if let caveat = report.caveat { Console.error("note: \(caveat)") }
            if report.writerActive {
                Console.error("note: a writer had the store open: layout and tile findings may be files in flight and are "
                    + "not counted (\(report.inFlight.count) above); check again once it is closed for a verdict on them")
            }
        }
        if report.exitCode != 0 { throw ExitCode(report.exitCode) }
    }
}

/// The report as one JSON object; `caveat` appears only when there is one.
private struct FsckJSON: Encodable {
    /// A finding; `offset` and `sequence` are null when it has none (a whole file, a tile).
    struct Problem: Encodable {
        let category: String
        let file: String
        let offset: NullWhenAbsent<Int>
        let sequence: NullWhenAbsent<UInt64>
        let expected: String
        let found: String

        init(_ problem: FsckProblem) {
            category = problem.category.rawValue
            file = problem.file
            offset = NullWhenAbsent(problem.offset)
            sequence = NullWhenAbsent(problem.sequence)
            expected = problem.expected
            found = problem.found
        }
    }

    let exit: Int32
    let records: UInt64
    let segments: Int
    let bytes: Int
    let seconds: Double
    let recordsPerSec: Int
    let externalCheckpointsVerified: Int
    let problems: [Problem]
    let repairs: [String]
    let recordedLosses: [String]
    let writerActive: Bool
    /// Findings that may be files a running writer has in flight, as their text lines.
    let inFlight: [String]
    let caveat: String?


    init(_ report: FsckReport, recordsPerSecond: Int) {
        exit = report.exitCode
        records = report.records
        segments = report.segments
        bytes = report.bytes
        seconds = report.seconds
        recordsPerSec = recordsPerSecond
        externalCheckpointsVerified = report.externalCheckpointsVerified
        problems = report.problems.map(Problem.init)
        repairs = report.repairs
        recordedLosses = report.recordedLosses
        writerActive = report.writerActive
        inFlight = report.inFlight.map { "\($0)" }
        caveat = report.caveat
    }
}
