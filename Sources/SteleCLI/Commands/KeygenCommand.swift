import ArgumentParser
import Stele

struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Create an Ed25519 key for signing checkpoints.",
        discussion: """
        Writes PREFIX.key (the private key, mode 0600, never printed) and PREFIX.pub (the \
        verifier key, name+keyid+base64, the form transparency-log tools use), and prints the \
        verifier key. Keep the private key off the store's host if you can; give the verifier \
        key to whoever checks your checkpoints.
        """)

    @Option(help: "Key name; by convention the log's origin, e.g. example.com/orders.")
    var name: String

    @Option(help: "Path prefix for the .key and .pub files (neither may exist).")
    var out: String

    func run() throws {
        let signer = try NoteSigner.generate(name: name)
        try writeNewFile(out + ".key", signer.encoded + "\n", permissions: 0o600)
        try writeNewFile(out + ".pub", signer.verifier.encoded + "\n", permissions: 0o644)
        print(signer.verifier.encoded)
    }
}
