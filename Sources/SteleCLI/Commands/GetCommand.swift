import ArgumentParser
import Foundation
import Stele

struct GetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get", abstract: "Print the raw value of a key's latest live version.",
        discussion: "Exit 1 when the key has no live version (never written, or deleted) or its value was purged. --at SEQ reads the key as of that sequence number.")

    @OptionGroup var directory: StoreDirectory
    @OptionGroup var namespace: NamespaceArgument
    @OptionGroup var key: KeyArgument
    @Option(help: "Read as of this sequence number.") var at: UInt64?
    @Flag(help: "Prove the value is in the tree of --checkpoint (the proof is checked; a summary goes to stderr).") var verified = false
    @Option(help: "Signed checkpoint file, with --verified.") var checkpoint: String?
    @Option(help: "Verifier key (or file) to check the checkpoint's signature, with --verified.") var verifierKey: String?

    func validate() throws {
        guard verified == (checkpoint != nil) else { throw ValidationError("--verified and --checkpoint go together") }
        guard !(verified && at != nil) else { throw ValidationError("--verified reads as of the checkpoint; drop --at") }
    }

    func run() throws {
        let value = try withStore(directory, .readOnly) { store in
            if let checkpoint { return try provenValue(in: store, checkpointFile: checkpoint) }
            return try liveValue(in: store)
        }
        FileHandle.standardOutput.write(Data(value))
    }

    /// The value as of the checkpoint, with its inclusion proof checked against the checkpoint's root.
    private func provenValue(in store: Store, checkpointFile: String) throws -> [UInt8] {
        let note = try readText(checkpointFile)
        let body: Checkpoint
        if let verifierKey {
            // The signature and the tree's consistency; the value itself is proven below, from its record.
            body = try store.verifyTiles(checkpoint: note, verifier: try loadVerifier(verifierKey))
        } else {
            guard let split = note.range(of: "\n\n", options: .backwards) else { throw InputError(message: "not a signed note") }
            body = try Checkpoint(parsing: String(note[..<split.lowerBound]) + "\n")
        }
        guard let result = try store.getVerified(namespace: namespace.name, key: try key.bytes(), checkpoint: body),
              let bytes = result.version.value else {
            throw InputError(message: "\(namespace.name) \(key.text): no live version at tree size \(body.treeSize)")
        }
        guard result.isValid else { throw SteleError.checkpoint(.rootMismatch(size: body.treeSize, checkpointRoot: body.root, storeRoot: result.proof.root)) }
        if result.version.redactedLeafHash != nil {
            throw InputError(message: "\(namespace.name) \(key.text): version \(result.version.sequence) is in the tree but was purged after its "
                + "locks expired (its record and leaf hash remain; the value does not)")
        }
        Console.error("verified: version \(result.version.sequence) is leaf \(result.version.sequence) of tree size \(body.treeSize), root \(body.root.hex)\(verifierKey == nil ? " (checkpoint signature not checked: no --verifier-key)" : "")")
        return bytes
    }

    /// The latest live version's value (as of `--at`).
    private func liveValue(in store: Store) throws -> [UInt8] {
        guard let version = try store.get(namespace: namespace.name, key: try key.bytes(), asOf: at), let bytes = version.value else {
            throw InputError(message: "\(namespace.name) \(key.text): no live version")
        }
        // An empty output would pass for an empty value.
        if version.redactedLeafHash != nil {
            throw InputError(message: "\(namespace.name) \(key.text): version \(version.sequence) was purged after its locks expired "
                + "(its record and leaf hash remain; the value does not)")
        }
        return bytes
    }
}
