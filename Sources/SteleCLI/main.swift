import ArgumentParser
import Foundation
import Stele
import SteleMirror

/// `stele`: create, fill, read and inspect Stele stores.
///
/// Exit codes: 0 ok, 1 not found or refused, 2 usage, 3 corruption detected, 4 I/O error.
struct SteleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stele",
        abstract: "An immutable, append-only, verifiable storage engine.",
        discussion: """
        Exit codes: 0 ok, 1 not found or refused, 2 usage error, 3 corruption detected, 4 I/O error.
        """,
        subcommands: [InitCommand.self, PutCommand.self, GetCommand.self, DeleteCommand.self, HistoryCommand.self, ScanCommand.self,
                      LockCommand.self, HoldCommand.self, RetentionCommand.self, PurgeCommand.self, AuthorizeCommand.self,
                      GovernanceKeyCommand.self, AuthorizeKeyCommand.self, FsckCommand.self, RecordLossCommand.self, MigrateCommand.self,
                      AppendCommand.self, ReadCommand.self, StatsCommand.self, BenchCommand.self, KeygenCommand.self,
                      CheckpointCommand.self, ProveCommand.self, VerifyCommand.self, LeafCommand.self, MirrorCommand.self,
                      RestoreCommand.self, StandbyCommand.self, PromoteCommand.self, ServeCommand.self, WitnessCommand.self, MonitorCommand.self, ShredCommand.self, DemoCommand.self])
}

do {
    var command = try SteleCommand.parseAsRoot(joiningNegativeValues(Array(CommandLine.arguments.dropFirst())))
    try command.run()
} catch let error as SteleError {
    Console.error("stele: \(error)")
    exit(error.exitCode)
} catch let error as InputError {
    Console.error("stele: \(error.message)")
    exit(1)
} catch let code as ExitCode {
    exit(code.rawValue)
} catch {
    if SteleCommand.exitCode(for: error) == .success { SteleCommand.exit(withError: error) }
    Console.error(SteleCommand.fullMessage(for: error))
    exit(2)
}
