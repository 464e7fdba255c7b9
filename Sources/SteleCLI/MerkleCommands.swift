import ArgumentParser
import Foundation
import Glibc
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
        try writeNew(out + ".key", signer.encoded + "\n", mode: 0o600)
        try writeNew(out + ".pub", signer.verifier.encoded + "\n", mode: 0o644)
        print(signer.verifier.encoded)
    }
}

/// Creates `path` with `mode` (failing if it exists) and writes `text`.
func writeNew(_ path: String, _ text: String, mode: mode_t) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
    guard fd >= 0 else { throw SteleError.io(IOError(operation: "open", path: path, errno: errno)) }
    defer { close(fd) }
    let bytes = Array(text.utf8)
    guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count, fsync(fd) == 0 else {
        throw SteleError.io(IOError(operation: "write", path: path, errno: errno))
    }
}

/// Reads a small text file, for keys and checkpoints.
func readText(_ path: String) throws -> String {
    guard let data = FileManager.default.contents(atPath: path) else { throw InputError(message: "cannot read \(path)") }
    return String(decoding: data, as: UTF8.self)
}

/// A verifier key given inline (`name+id+key`) or as a file holding one.
func loadVerifier(_ argument: String) throws -> NoteVerifier {
    if FileManager.default.fileExists(atPath: argument) {
        return try NoteVerifier(parsing: try readText(argument).trimmingCharacters(in: .whitespacesAndNewlines))
    }
    return try NoteVerifier(parsing: argument)
}

struct CheckpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint",
        abstract: "Sign a checkpoint of the log now, or print the latest one.",
        discussion: """
        With --key, makes every record and the tiles durable, checks the new checkpoint extends \
        the latest signed one, signs it (C2SP tlog-checkpoint in a signed note) and stores it \
        under checkpoints/. Without --key, prints the latest stored checkpoint. With --seal,         seals the active segment first, so that the checkpoint covers sealed records only: the         ones `stele mirror` copies off-host.
        """)

    @Argument(help: "The store directory.")
    var dir: String

    @Option(help: "Private key file from `stele keygen`.")
    var key: String?

    @Flag(help: "Seal the active segment before signing (with --key).")
    var seal = false

    @Option(help: "Write the signed note to this file instead of standard output.")
    var out: String?

    func run() throws {
        let note: String
        if let key {
            let signer = try NoteSigner(parsing: try readText(key))
            let store = try Store(path: dir)
            if seal { try store.seal() }
            note = try store.checkpoint(signer: signer)
            try store.close()
        } else {
            let store = try Store(path: dir, options: .init(readOnly: true))
            guard let latest = try store.latestCheckpoint() else {
                throw InputError(message: "no checkpoint has been signed yet (use --key)")
            }
            note = latest
            try store.close()
        }
        if let out {
            try Data(note.utf8).write(to: URL(fileURLWithPath: out), options: .atomic)
        } else {
            print(note, terminator: "")
        }
    }
}

struct ProveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prove",
        abstract: "Print an inclusion proof (--index) or a consistency proof (--consistency).",
        discussion: """
        Proofs follow RFC 9162 and are checked against the records before they are printed. \
        JSON: {"index","tree_size","root","proof":[...]} or {"from","to","proof":[...]}, hashes in lowercase hex.
        """)

    @Argument(help: "The store directory.")
    var dir: String

    @Option(help: "Leaf index (record sequence number) to prove.")
    var index: UInt64?

    @Option(help: "Tree size for the inclusion proof (default: the whole log).")
    var treeSize: UInt64?

    @Option(help: "Old tree size for a consistency proof.")
    var consistency: UInt64?

    @Option(help: "New tree size for the consistency proof (default: the whole log).")
    var to: UInt64?

    @Flag(help: "Print JSON.")
    var json = false

    func validate() throws {
        guard (index == nil) != (consistency == nil) else { throw ValidationError("give exactly one of --index and --consistency") }
    }

    func run() throws {
        let store = try Store(path: dir, options: .init(readOnly: true))
        defer { try? store.close() }
        if let index {
            let proof = try store.inclusionProof(index: index, treeSize: treeSize)
            if json {
                print("{\"index\":\(proof.index),\"tree_size\":\(proof.treeSize),\"root\":\"\(proof.root.hex)\",\"proof\":[\(proof.hashes.map { "\"\($0.hex)\"" }.joined(separator: ","))]}")
            } else {
                print("inclusion of leaf \(proof.index) in tree size \(proof.treeSize), root \(proof.root.hex)")
                for hash in proof.hashes { print(hash.hex) }
            }
        } else if let consistency {
            let proof = try store.consistencyProof(from: consistency, to: to)
            if json {
                print("{\"from\":\(proof.from),\"to\":\(proof.to),\"proof\":[\(proof.hashes.map { "\"\($0.hex)\"" }.joined(separator: ","))]}")
            } else {
                print("consistency from size \(proof.from) (root \(proof.oldRoot.hex)) to size \(proof.to) (root \(proof.newRoot.hex))")
                for hash in proof.hashes { print(hash.hex) }
            }
        }
    }
}

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check the store's records against a checkpoint held elsewhere.",
        discussion: """
        Verifies the checkpoint's signature with the verifier key and its origin, then reads \
        every record the checkpoint covers: each frame's checksum, contiguous sequence numbers, \
        each leaf hash recomputed from the record, and the tree rebuilt to the checkpoint's root. \
        Also fails if the store's evidence shows records lost from its files. Exit 0: the records \
        are exactly the history the checkpoint signed; 1: the checkpoint or key is refused; 3: a \
        record was altered, removed, reordered or inserted (named by file, offset and sequence \
        number), the history was rewritten, or records were lost. --tiles-only checks a \
        consistency proof from the tiles instead (fast, but the records are not read).
        """)

    @Argument(help: "The store directory.")
    var dir: String

    @Option(help: "The signed checkpoint file.")
    var checkpoint: String

    @Option(help: "Verifier key (name+keyid+key), or a file holding it.")
    var verifierKey: String

    @Flag(help: "Check only a consistency proof from the tiles; the records are not read.")
    var tilesOnly = false

    func run() throws {
        let verifier = try loadVerifier(verifierKey)
        let note = try readText(checkpoint)
        // Records are read by sequence number only: no key index to build.
        var options = Store.Options(readOnly: true)
        options.keyIndex = false
        let store = try Store(path: dir, options: options)
        defer { try? store.close() }
        if tilesOnly {
            let verified = try store.verifyTiles(checkpoint: note, verifier: verifier)
            if let lost = store.recovery.lostRecords { throw SteleError.recordsLost(lost) }
            print("ok (tiles only): the tiles of the store (\(store.treeSize) records) extend the checkpoint of \(verified.origin) at size "
                + "\(verified.treeSize), root \(verified.root.hex), signed by \(verifier.name)")
            print("not checked: the records themselves were not read, so a record altered after its tiles were written passes; "
                + "run without --tiles-only to recompute every leaf")
            return
        }
        let result = try store.verify(checkpoint: note, verifier: verifier)
        let rate = result.seconds > 0 ? Int(Double(result.recordsChecked) / result.seconds) : 0
        print("ok: records 0..<\(result.recordsChecked) recomputed from the store's records give the root \(result.checkpoint.root.hex) "
            + "of the checkpoint of \(result.checkpoint.origin) signed by \(verifier.name) (\(String(format: "%.2f", result.seconds)) s, \(rate) records/s)")
        if result.redactionStubs > 0 {
            print("note: \(result.redactionStubs) of them are redaction stubs (payload purged, leaf hash kept); `stele fsck` checks each against its redaction record")
        }
        if result.recordsAfter > 0 {
            print("note: the \(result.recordsAfter) records after it are not covered by this checkpoint")
        }
    }
}

struct LeafCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "leaf",
        abstract: "Print a record's canonical entry bytes and leaf hash.",
        discussion: "The leaf hash is SHA-256(0x00 || canonical entry bytes), as docs/format.md defines. JSON: {\"index\",\"entry_hex\",\"leaf_hash\"}.")

    @Argument(help: "The store directory.")
    var dir: String

    @Option(help: "Leaf index (record sequence number).")
    var index: UInt64

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        let store = try Store(path: dir, options: .init(readOnly: true))
        defer { try? store.close() }
        let record = try store.record(at: index)
        let entry = Store.canonicalEntry(record)
        let leaf = try store.leafHash(at: index)
        let hex = entry.map { String(format: "%02x", $0) }.joined()
        if json {
            print("{\"index\":\(index),\"entry_hex\":\"\(hex)\",\"leaf_hash\":\"\(leaf.hex)\"}")
        } else {
            print("index      \(index)\nentry hex  \(hex)\nentry b64  \(Data(entry).base64EncodedString())\nleaf hash  \(leaf.hex)")
        }
    }
}
