import ArgumentParser
import Stele

struct HoldCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hold", abstract: "Set or release a legal hold on every version of a key.",
        discussion: "A held version is never purged, whatever its dates. Both setting and releasing are logged with the reason.")

    @OptionGroup var directory: StoreDirectory
    @OptionGroup var namespace: NamespaceArgument
    @OptionGroup var key: KeyArgument
    @Flag(name: .customLong("on"), help: "Set the hold.") var on = false
    @Flag(name: .customLong("off"), help: "Release the hold.") var off = false
    @Option(help: "Why (required).") var reason: String

    func validate() throws {
        guard on != off else { throw ValidationError("give exactly one of --on and --off") }
    }

    func run() throws {
        let receipt = try withStore(directory, .writable(.everyBatch)) { store in
            try store.setLegalHold(namespace: namespace.name, key: try key.bytes(), on: on, reason: reason)
        }
        print(receipt.sequences.lowerBound)
    }
}
