import ArgumentParser
import Stele
import SteleMirror

struct CheckpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint",
        abstract: "Sign a checkpoint of the log now, or print the latest one.",
        discussion: """
        With --key, makes every record and the tiles durable, checks the new checkpoint extends \
        the latest signed one, signs it (C2SP tlog-checkpoint in a signed note) and stores it \
        under checkpoints/. Without --key, prints the latest stored checkpoint. With --seal, \
        seals the active segment first, so that the checkpoint covers sealed records only: the \
        ones `stele mirror` copies off-host. With --witness (repeatable) it then asks each \
        witness to cosign it (c2sp.org/tlog-witness, with a consistency proof from the size the \
        witness last cosigned) and publishes the checkpoint with the cosignatures once at least \
        --quorum valid ones came back; with fewer it exits 1 and publishes nothing (the \
        checkpoint stays in checkpoints/history, signed by the log alone).
        """)

    @OptionGroup var directory: StoreDirectory

    @Option(help: "Private key file from `stele keygen`.")
    var key: String?

    @Flag(help: "Seal the active segment before signing (with --key).")
    var seal = false

    @Option(help: "Write the signed note to this file instead of standard output.")
    var out: String?

    @Option(name: .customLong("witness"), help: "A witness to ask for a cosignature: URL=VERIFIER_KEY (with --key); repeatable.")
    var witnesses: [String] = []

    @Option(help: "How many witnesses must cosign (default: all given).")
    var quorum: Int?

    func run() throws {
        let note: String
        if let key {
            let signer = try NoteSigner(parsing: try readText(key))
            guard !witnesses.isEmpty || quorum == nil else { throw ValidationError("--quorum counts the --witness witnesses: give them") }
            let endpoints = try witnesses.map(WitnessEndpoint.init(parsing:))
            guard !endpoints.contains(where: { $0.key.publicKey == signer.verifier.publicKey }) else {
                throw ValidationError("a witness key is the log's own key: the log would cosign for itself")
            }
            let needed = quorum ?? endpoints.count
            guard (0 ... endpoints.count).contains(needed) else {
                throw ValidationError("--quorum must be between 0 and the number of --witness (\(endpoints.count))")
            }
            note = try withStore(directory, .writable(.everyBatch)) { store in
                if seal { try store.seal() }
                guard !endpoints.isEmpty else { return try store.checkpoint(signer: signer) }
                // Published only after the witnesses answered: nobody sees it without them.
                let signed = try store.signUnpublishedCheckpoint(signer: signer)
                let outcomes = WitnessClient.cosign(signed, of: store, witnesses: endpoints)
                var lines: [String] = []
                for outcome in outcomes {
                    switch outcome.result {
                    case .success(let line):
                        lines.append(line)
                        Console.error("witness \(outcome.witness.key.name): cosigned")
                    case .failure(let error):
                        Console.error("witness \(outcome.witness.key.name): \(error)")
                    }
                }
                guard lines.count >= needed else {
                    throw InputError(message: "\(lines.count) of \(endpoints.count) witnesses cosigned, \(needed) needed: "
                        + "the checkpoint is not published (it stays in checkpoints/history, signed by the log alone)")
                }
                return try store.publishCheckpoint(signed, cosignatures: lines)
            }
        } else {
            note = try withStore(directory, .readOnly) { store in
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
