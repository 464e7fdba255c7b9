import ArgumentParser
import Stele

struct GovernanceKeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "governance-key",
        abstract: "Replace or retire the governance key, under an authorization signed by the current one.",
        discussion: """
        The governance key is a record in the log (set at `init`); only a note signed with the \
        key in force (`stele authorize-key`) can change it, and the change, with the note, is a \
        config record. --to none retires it: no governance lock can be shortened afterwards. \
        Prints the change record's sequence number.
        """)

    @OptionGroup var directory: StoreDirectory
    @Option(help: "The new governance verifier key (inline or a file), or none.") var to: String
    @Option(help: "The authorization file from `stele authorize-key`.") var authorization: String

    func run() throws {
        let newKey = to == "none" ? nil : try loadVerifier(to)
        let receipt = try withStore(directory, .writable(.everyBatch)) { store in
            try store.changeGovernanceKey(to: newKey, authorization: try readText(authorization))
        }
        print(receipt.sequences.lowerBound)
    }
}
