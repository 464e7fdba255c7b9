import ArgumentParser
import Foundation
import Stele

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
        consistency proof from the tiles instead (fast, but the records are not read). With \
        --witness-key (repeatable), the checkpoint must also carry valid cosignatures of at \
        least --quorum of those witnesses (default all), or it is refused (exit 1).
        """)

    @OptionGroup var directory: StoreDirectory

    @Option(help: "The signed checkpoint file.")
    var checkpoint: String

    @Option(help: "Verifier key (name+keyid+key), or a file holding it.")
    var verifierKey: String

    @Flag(help: "Check only a consistency proof from the tiles; the records are not read.")
    var tilesOnly = false

    @Option(name: .customLong("witness-key"), help: "A witness's cosigner key, or a file holding it; repeatable: the checkpoint must carry their cosignatures.")
    var witnessKeys: [String] = []

    @Option(help: "How many of the --witness-key witnesses must have cosigned (default: all).")
    var quorum: Int?

    func run() throws {
        let verifier = try loadVerifier(verifierKey)
        let note = try readText(checkpoint)
        // A checkpoint without its witnesses' quorum is refused before anything is read.
        try requireCosignatures(note, keys: witnessKeys, quorum: quorum, logKey: verifier)
        // Records are read by sequence number only: no key index to build.
        try withStore(directory, .readOnlyWithoutKeyIndex) { store in
            if tilesOnly {
                try checkTiles(of: store, note: note, verifier: verifier)
            } else {
                try checkRecords(of: store, note: note, verifier: verifier)
            }
        }
    }

    private func checkTiles(of store: Store, note: String, verifier: NoteVerifier) throws {
        let verified = try store.verifyTiles(checkpoint: note, verifier: verifier)
        if let lost = store.recovery.lostRecords { throw SteleError.recordsLost(lost) }
        print("ok (tiles only): the tiles of the store (\(store.treeSize) records) extend the checkpoint of \(verified.origin) at size "
            + "\(verified.treeSize), root \(verified.root.hex), signed by \(verifier.name)")
        print("not checked: the records themselves were not read, so a record altered after its tiles were written passes; "
            + "run without --tiles-only to recompute every leaf")
    }

    private func checkRecords(of store: Store, note: String, verifier: NoteVerifier) throws {
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
