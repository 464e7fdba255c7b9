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
        let receipt = try withStore(directory, .writable(.everyBatch)) { store in
            try store.delete(namespace: namespace.name, key: try key.bytes())
        }
        print(receipt.sequences.lowerBound)
    }
}
