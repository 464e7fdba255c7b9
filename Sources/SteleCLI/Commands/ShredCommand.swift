import ArgumentParser
import Stele

struct ShredCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shred", abstract: "Destroy an encrypted namespace's data key: its keys and values become unreadable for ever.",
        discussion: """
            Crypto-shredding, for erasure a law asks for. Refused (exit 1, nothing written) while any version in the namespace \
            is protected: a compliance lock, an unexpired governance lock, a legal hold, the namespace's default or the store's \
            minimum retention. Otherwise a shred record (time, namespace, reason, the key's fingerprint) is appended and made \
            durable, then the data key is overwritten in the keyring and synced. Records, proofs and checkpoints stay as they \
            were and keep verifying; every later read of the namespace says when it was shredded. Needs the master key \
            (--encryption-key or STELE_ENCRYPTION_KEY_FILE).
            """)

    @OptionGroup var directory: StoreDirectory
    @OptionGroup var namespace: NamespaceArgument
    @Option(help: "Why, recorded in the log (1-1024 bytes).") var reason: String

    func run() throws {
        let report = try withStore(directory, .writable(.everyBatch)) { store in
            try store.shred(namespace: namespace.name, reason: reason)
        }
        print("shredded namespace \(report.namespace) at \(rfc3339(nanoseconds: report.shreddedAt)) (record \(report.sequence), "
            + "data key \(report.keyFingerprint) destroyed, \(report.versions) versions unreadable)")
    }
}
