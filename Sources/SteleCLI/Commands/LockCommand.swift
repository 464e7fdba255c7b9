import ArgumentParser
import Stele

struct LockCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lock", abstract: "Lock a version (--version) or every version of a key so far.",
        discussion: """
        Compliance locks can only ever be extended; governance locks cannot be shortened without \
        a governance authorization. The lock is a record in the log. Prints its sequence number.
        """)

    @OptionGroup var directory: StoreDirectory
    @OptionGroup var namespace: NamespaceArgument
    @OptionGroup var key: KeyArgument
    @Option(help: "governance or compliance.") var mode: String
    @Option(help: "Retain until this ISO 8601 date.") var until: String?
    @Option(name: .customLong("for"), help: "Retain for this long from now (90s, 15m, 12h, 30d).") var duration: String?
    @Option(help: "Lock only this version (sequence number).") var version: UInt64?
    @Option(help: "Governance authorization file (from `stele authorize`): shorten or remove governance locks to --until.")
    var authorization: String?

    func run() throws {
        guard let mode = RetentionMode(name: self.mode) else { throw ValidationError("--mode is governance or compliance") }
        let receipt = try withStore(directory, .writable(.everyBatch)) { store in
            if let authorization {
                guard mode == .governance, let until else { throw ValidationError("a bypass takes --mode governance and --until") }
                return try store.shortenGovernanceLock(namespace: namespace.name, key: try key.bytes(), version: version,
                                                       retainUntil: try parseDate(until), authorization: try readText(authorization))
            }
            let lock = RetentionLock(mode: mode, retainUntil: try retainUntil(until: until, for: duration))
            return try store.lock(namespace: namespace.name, key: try key.bytes(), version: version, lock: lock)
        }
        print(receipt.sequences.lowerBound)
    }
}
