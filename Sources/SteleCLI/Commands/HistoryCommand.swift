import ArgumentParser
import Stele

struct HistoryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history", abstract: "Print every version and tombstone of a key, oldest first.")

    @Argument(help: "The store directory.") var dir: String
    @Argument(help: "Namespace.") var namespace: String
    @Argument(help: "Key (b64:BASE64 for bytes that are not printable UTF-8).") var key: String
    @Flag(help: "One JSON object per line.") var json = false

    func run() throws {
        let store = try Store(path: dir, options: .init(readOnly: true))
        defer { try? store.close() }
        let history = try store.history(namespace: namespace, key: try KeyText.parse(key))
        guard !history.isEmpty else { throw InputError(message: "\(namespace) \(key): never written") }
        for version in history { print(describe(version, json: json)) }
    }
}
