import ArgumentParser
import Stele

struct RetentionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retention", abstract: "Set a namespace's default retention for new versions.",
        discussion: "Only a stronger default is accepted (longer, or governance to compliance). Prints the policy record's sequence number.")

    @OptionGroup var directory: StoreDirectory
    @OptionGroup var namespace: NamespaceArgument
    @Option(help: "governance or compliance.") var defaultMode: String
    @Option(help: "How long each new version is kept (90s, 15m, 12h, 30d).") var defaultFor: String

    func run() throws {
        guard let mode = RetentionMode(name: defaultMode) else { throw ValidationError("--default-mode is governance or compliance") }
        let receipt = try withStore(directory, .writable(.everyBatch)) { store in
            try store.setDefaultRetention(namespace: namespace.name, mode: mode, duration: try parseDuration(defaultFor))
        }
        print(receipt.sequences.lowerBound)
    }
}
