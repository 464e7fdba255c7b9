import ArgumentParser
import Stele

struct HoldCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hold", abstract: "Set or release a legal hold on every version of a key.",
        discussion: "A held version is never purged, whatever its dates. Both setting and releasing are logged with the reason.")

    @Argument(help: "The store directory.") var dir: String
    @Argument(help: "Namespace.") var namespace: String
    @Argument(help: "Key (b64:BASE64 for bytes that are not printable UTF-8).") var key: String
    @Flag(name: .customLong("on"), help: "Set the hold.") var on = false
    @Flag(name: .customLong("off"), help: "Release the hold.") var off = false
    @Option(help: "Why (required).") var reason: String

    func validate() throws {
        guard on != off else { throw ValidationError("give exactly one of --on and --off") }
    }

    func run() throws {
        let store = try Store(path: dir)
        let receipt = try store.setLegalHold(namespace: namespace, key: try KeyText.parse(key), on: on, reason: reason)
        try store.close()
        print(receipt.sequences.lowerBound)
    }
}
