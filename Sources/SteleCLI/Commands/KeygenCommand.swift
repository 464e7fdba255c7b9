import ArgumentParser
import Stele

struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Create an Ed25519 key for signing checkpoints, or a witness's cosigning key.",
        discussion: """
        Writes PREFIX.key (the private key, mode 0600, never printed) and PREFIX.pub (the \
        verifier key, name+keyid+base64, the form transparency-log tools use), and prints the \
        verifier key. Keep the private key off the store's host if you can; give the verifier \
        key to whoever checks your checkpoints. With --witness, the key is a cosigner key \
        (c2sp.org/tlog-cosignature, signed-note key type 0x04) for `stele witness`; by \
        convention its name is the witness's URL without the scheme.
        """)

    @Option(help: "Key name; by convention the log's origin, e.g. example.com/orders.")
    var name: String

    @Option(help: "Path prefix for the .key and .pub files (neither may exist).")
    var out: String

    @Flag(help: "Make a witness's cosigner key (cosignature/v1) instead of a checkpoint key.")
    var witness = false

    func run() throws {
        if witness {
            let cosigner = try Cosigner.generate(name: name)
            try writeNewFile(out + ".key", cosigner.encoded + "\n", permissions: 0o600)
            try writeNewFile(out + ".pub", cosigner.verifier.encoded + "\n", permissions: 0o644)
            print(cosigner.verifier.encoded)
            return
        }
        let signer = try NoteSigner.generate(name: name)
        try writeNewFile(out + ".key", signer.encoded + "\n", permissions: 0o600)
        try writeNewFile(out + ".pub", signer.verifier.encoded + "\n", permissions: 0o644)
        print(signer.verifier.encoded)
    }
}
