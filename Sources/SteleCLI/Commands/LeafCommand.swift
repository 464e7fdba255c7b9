import ArgumentParser
import Foundation
import Stele

struct LeafCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "leaf",
        abstract: "Print a record's canonical entry bytes and leaf hash.",
        discussion: "The leaf hash is SHA-256(0x00 || canonical entry bytes), as docs/format.md defines. JSON: {\"index\",\"entry_hex\",\"leaf_hash\"}.")

    @OptionGroup var directory: StoreDirectory

    @Option(help: "Leaf index (record sequence number).")
    var index: UInt64

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        try withStore(directory, .readOnly) { store in
            guard let entry = try store.canonicalEntry(at: index) else {
                throw InputError(message: "record \(index) was purged: its leaf hash stays in the tree, its entry is gone")
            }
            let leaf = try store.leafHash(at: index)
            let hex = entry.map { String(format: "%02x", $0) }.joined()
            if json {
                print(try jsonLine(LeafJSON(index: index, entryHex: hex, leafHash: leaf.hex)))
            } else {
                print("index      \(index)\nentry hex  \(hex)\nentry b64  \(Data(entry).base64EncodedString())\nleaf hash  \(leaf.hex)")
            }
        }
    }
}

/// `{"index","entry_hex","leaf_hash"}`, as the help says.
private struct LeafJSON: Encodable {
    let index: UInt64
    let entryHex: String
    let leafHash: String

}
