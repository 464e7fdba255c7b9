import ArgumentParser
import Stele

struct HistoryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history", abstract: "Print every version and tombstone of a key, oldest first.")

    @OptionGroup var directory: StoreDirectory
    @OptionGroup var namespace: NamespaceArgument
    @OptionGroup var key: KeyArgument
    @Flag(help: "One JSON object per line.") var json = false

    func run() throws {
        try withStore(directory, .readOnly) { store in
            let history = try store.history(namespace: namespace.name, key: try key.bytes())
            guard !history.isEmpty else { throw InputError(message: "\(namespace.name) \(key.text): never written") }
            for version in history { print(try describe(version, json: json)) }
        }
    }
}
