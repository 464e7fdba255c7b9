import ArgumentParser
import Stele

struct DeleteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete", abstract: "Delete a key logically (append a tombstone); prints its sequence number.",
        discussion: "History keeps every earlier version; `stele history` shows them.")

    @OptionGroup var directory: StoreDirectory
    @OptionGroup var namespace: NamespaceArgument
    @OptionGroup var key: KeyArgument

    func run() throws {
        let store = try Store(path: directory.path)
        let receipt = try store.delete(namespace: namespace.name, key: try key.bytes())
        try store.close()
        print(receipt.sequences.lowerBound)
    }
}
