import ArgumentParser
import Stele

struct MigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Anchor the stele.conf of a store created before config records in its log.",
        discussion: """
        Stores created by earlier versions keep their identity and governance key only in \
        stele.conf, which anyone who can edit the file could change. This appends an adoption \
        record with the file's identity, governance key and the minimum retention in force, so \
        that seals, checkpoints and proofs cover them and the file becomes a cache checked \
        against the log. It trusts the file as it stands: run `stele fsck`, and `stele verify` \
        against a checkpoint held elsewhere, first, and compare the governance key it prints \
        with the one your governance authority holds. Until migrated, such a store opens \
        read-only. Prints the adoption record's sequence number.
        """)

    @OptionGroup var directory: StoreDirectory

    func run() throws {
        let sequence = try Store.migrate(at: directory.path)
        let config = try withStore(directory, .readOnly) { $0.config }
        Console.error("adopted into the log: origin \(config.origin), governance key \(config.governanceKey?.encoded ?? "none")")
        print(sequence)
    }
}
