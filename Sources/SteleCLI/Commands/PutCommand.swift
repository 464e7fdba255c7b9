import ArgumentParser
import Foundation
import Stele

struct PutCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "put", abstract: "Write a new version of a key; prints its sequence number.",
        discussion: "Durable (msync) before the command returns. Nothing is overwritten: the previous versions stay in the history.")

    @OptionGroup var directory: StoreDirectory
    @Argument(help: "Namespace (1-255 bytes, no NUL), e.g. merchant-42/orders.") var namespace: String
    @OptionGroup var key: KeyArgument
    @Argument(help: "Value (or use --file).") var value: String?
    @Option(help: "Read the value from this file (- for standard input).") var file: String?

    func validate() throws {
        guard (value == nil) != (file == nil) else { throw ValidationError("give a VALUE or --file, not both") }
    }

    func run() throws {
        let bytes: [UInt8]
        if let file {
            let data = file == "-" ? FileHandle.standardInput.readDataToEndOfFile() : FileManager.default.contents(atPath: file)
            guard let data else { throw InputError(message: "cannot read \(file)") }
            bytes = Array(data)
        } else {
            bytes = Array((value ?? "").utf8)
        }
        let receipt = try withStore(directory, .writable(.everyBatch)) { store in
            try store.put(namespace: namespace, key: try key.bytes(), value: bytes)
        }
        print(receipt.sequences.lowerBound)
    }
}
