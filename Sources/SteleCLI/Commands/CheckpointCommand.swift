import ArgumentParser
import Stele

struct CheckpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint",
        abstract: "Sign a checkpoint of the log now, or print the latest one.",
        discussion: """
        With --key, makes every record and the tiles durable, checks the new checkpoint extends \
        the latest signed one, signs it (C2SP tlog-checkpoint in a signed note) and stores it \
        under checkpoints/. Without --key, prints the latest stored checkpoint. With --seal,         seals the active segment first, so that the checkpoint covers sealed records only: the         ones `stele mirror` copies off-host.
        """)

    @OptionGroup var directory: StoreDirectory

    @Option(help: "Private key file from `stele keygen`.")
    var key: String?

    @Flag(help: "Seal the active segment before signing (with --key).")
    var seal = false

    @Option(help: "Write the signed note to this file instead of standard output.")
    var out: String?

    func run() throws {
        let note: String
        if let key {
            let signer = try NoteSigner(parsing: try readText(key))
            note = try withStore(at: directory.path, .writable(.everyBatch)) { store in
                if seal { try store.seal() }
                return try store.checkpoint(signer: signer)
            }
        } else {
            note = try withStore(at: directory.path, .readOnly) { store in
                guard let latest = try store.latestCheckpoint() else {
                    throw InputError(message: "no checkpoint has been signed yet (use --key)")
                }
                return latest
            }
        }
        if let out {
            try replaceFile(out, note)
        } else {
            print(note, terminator: "")
        }
    }
}
