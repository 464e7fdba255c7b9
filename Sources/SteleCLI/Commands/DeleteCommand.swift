import ArgumentParser
import Stele

struct DeleteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete", abstract: "Delete a key logically (append a tombstone); prints its sequence number.",
        discussion: "History keeps every earlier version; `stele history` shows them.")

    @Argument(help: "The store directory.") var dir: String
    @Argument(help: "Namespace.") var namespace: String
    @Argument(help: "Key (b64:BASE64 for bytes that are not printable UTF-8).") var key: String

    func run() throws {
        let store = try Store(path: dir)
        let receipt = try store.delete(namespace: namespace, key: try KeyText.parse(key))
        try store.close()
        print(receipt.sequences.lowerBound)
    }
}
