import ArgumentParser
import Stele

struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create a new, empty store.",
        discussion: """
            DIR must not exist or be empty. Creates segments/, tiles/, checkpoints/, index/, LOCK, stele.conf and the first segment. \
            With --encryption-key (a key from `stele keygen --encryption`), the store is encrypted: record keys and values under \
            a data key per namespace, kept in DIR/keyring wrapped by the master key; every command that writes or reads values \
            then needs the key (--encryption-key or STELE_ENCRYPTION_KEY_FILE).
            """)

    @OptionGroup var directory: StoreDirectory

    @Option(help: "Bytes per segment file (a multiple of 4096, at least 65536).")
    var segmentSize: Int = Limits.defaultSegmentSize

    @Option(help: "Log identity for signed checkpoints (default stele.local/<store uuid>).")
    var origin: String?

    @Option(help: "Store-wide minimum retention (90s, 15m, 12h, 30d); can be raised later, never lowered.")
    var minRetention: String?

    @Option(help: "Verifier key (or file) of the governance authority, whose authorizations alone can shorten governance locks.")
    var governanceKey: String?

    func run() throws {
        // Only the option makes a store encrypted, never the environment: a variable left set
        // must not turn every new store into one that needs a key.
        let encryptionKey = try directory.encryptionKeyFile.map(loadEncryptionKey)
        let config = try Store.create(at: directory.path, segmentSize: segmentSize, origin: origin,
                                      minimumRetention: try minRetention.map(parseDuration),
                                      governanceKey: try governanceKey.map(loadVerifier), encryptionKey: encryptionKey)
        let encrypted = config.encryptionKey.map { ", encrypted under master key \($0)" } ?? ""
        print("created store \(config.storeIDHex) at \(directory.path) (segment size \(config.segmentSize), origin \(config.origin)\(encrypted))")
    }
}
