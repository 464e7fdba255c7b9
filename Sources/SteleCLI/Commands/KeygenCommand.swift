import ArgumentParser
import Stele

struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Create an Ed25519 key for signing checkpoints, a witness's cosigning key, or an encryption master key.",
        discussion: """
        Writes PREFIX.key (the private key, mode 0600, never printed) and PREFIX.pub (the \
        verifier key, name+keyid+base64, the form transparency-log tools use), and prints the \
        verifier key. Keep the private key off the store's host if you can; give the verifier \
        key to whoever checks your checkpoints. With --witness, the key is a cosigner key \
        (c2sp.org/tlog-cosignature, signed-note key type 0x04) for `stele witness`; by \
        convention its name is the witness's URL without the scheme. With --encryption, writes \
        the 256-bit master key of an encrypted store to the file --out names (mode 0600; no \
        --name, no .pub) and prints its fingerprint: it wraps every namespace's data key, so \
        keep it off the store's host, like a governance key.
        """)

    @Option(help: "Key name; by convention the log's origin, e.g. example.com/orders.")
    var name: String?

    @Option(help: "Path prefix for the .key and .pub files (neither may exist); with --encryption, the key file itself.")
    var out: String

    @Flag(help: "Make a witness's cosigner key (cosignature/v1) instead of a checkpoint key.")
    var witness = false

    @Flag(help: "Make an encryption master key (AES-256) for an encrypted store.")
    var encryption = false

    func validate() throws {
        guard !(witness && encryption) else { throw ValidationError("--witness and --encryption make different keys: give one") }
        guard encryption || name != nil else { throw ValidationError("--name is needed for a checkpoint or witness key") }
        guard !encryption || name == nil else { throw ValidationError("an encryption key has no name: leave out --name") }
    }

    func run() throws {
        if encryption {
            let key = try EncryptionKey.generate()
            try writeNewFile(out, key.encoded, permissions: 0o600)
            print(key.fingerprint)
            return
        }
        guard let name else { throw ValidationError("--name is needed") }
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
