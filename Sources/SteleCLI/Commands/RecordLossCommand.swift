import ArgumentParser
import Stele

struct RecordLossCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "record-loss",
        abstract: "Record in the log that records were lost from the files, and continue past them.",
        discussion: """
        When the store's evidence (reach, its checkpoints, tiles/state, the index snapshot) \
        shows records lost from its files, a writer refuses to append, so that their sequence \
        numbers are never handed out again. Prefer `stele restore` from an off-host copy. When \
        the records are gone everywhere, this appends a loss record (when, which range, the \
        evidence, --reason) and placeholders for every sequence number that may have been handed \
        out, then writing resumes after them. Checkpoints of the lost history are moved to \
        checkpoints/superseded-<first>/. --continue-at sets the next sequence number when the \
        evidence cannot bound it (reach missing), never below what it bounds.
        """)

    @OptionGroup var directory: StoreDirectory
    @Option(help: "Why (required): kept in the loss record.") var reason: String
    @Option(help: "The sequence number to continue at (at least what the evidence bounds).") var continueAt: UInt64?

    func run() throws {
        let report = try Store.recordLoss(at: directory.path, reason: reason, continuingAt: continueAt)
        print("recorded the loss of records \(report.first)..<\(report.end) (the log held \(report.lost.held); evidence: "
            + report.lost.findings.joined(separator: "; ") + ")")
        if report.end > report.first + 1 {
            print("\(report.end - report.first - 1) placeholders keep those sequence numbers from being handed out again; the next record is \(report.end)")
        }
        for path in report.supersededCheckpoints { print("set aside (it signs the lost history): \(path)") }
    }
}
