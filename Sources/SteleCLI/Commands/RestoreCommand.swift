import ArgumentParser
import Foundation
import Stele
import SteleMirror

struct RestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Rebuild a store from a mirror and prove it against a trusted checkpoint.",
        discussion: """
        Downloads the config and every segment, checks each object's recorded SHA-256, the hash \
        chain and the Merkle roots, rebuilds tiles and index, and checks with fsck that the log \
        matches the checkpoint (and any later checkpoint in the copy signed with the same key). \
        Segments wholly beyond the newest such checkpoint are left out unless \
        --include-unvouched. Only then is NEWDIR created; a missing or altered \
        object is an error naming it (exit 3). Prints the restore report as JSON.
        """)

    @Option(help: "Target: a directory or s3://BUCKET/PREFIX.") var from: String
    @Option(help: "The new store directory (must not exist).") var to: String
    @Option(help: "A signed checkpoint file kept outside the store.") var checkpoint: String
    @Option(help: "The checkpoint's verifier key, inline or as a file.") var verifierKey: String
    @OptionGroup var targetOptions: TargetOptions
    @Option(help: "Also write the JSON report to this file.") var report: String?
    @Option(help: "An encrypted store's keyring copy (as `stele mirror --keyring-to` made it): a directory or s3://BUCKET/PREFIX.")
    var keyringFrom: String?
    @Option(help: "An encrypted store's master key file (default: $STELE_ENCRYPTION_KEY_FILE): the keyring copy must open with it.")
    var encryptionKey: String?
    @Flag(help: "Also restore sealed segments beyond the newest checkpoint signed with the key (vouched for by the hash chain only).")
    var includeUnvouched = false

    @Flag(help: "Print the report as JSON instead of text.") var json = false

    func run() throws {
        try refuseInsideStore(to, store: nil, what: "the restored store")
        if !from.hasPrefix("s3://") { try refuseNested(to, from, "the restored store", "the copy") }
        let keyFile = encryptionKey ?? ProcessInfo.processInfo.environment["STELE_ENCRYPTION_KEY_FILE"]
        let result = try Restore.run(from: try targetOptions.target(from), to: to, checkpoint: try readText(checkpoint),
                                     verifier: try loadVerifier(verifierKey), includeUnvouched: includeUnvouched,
                                     keyring: try keyringFrom.map(targetOptions.keyringTarget),
                                     encryptionKey: try keyFile.flatMap { $0.isEmpty ? nil : try loadEncryptionKey($0) })
        let text = try jsonLine(result)
        print(json ? text : Self.text(result))
        if let report { try replaceFile(report, text + "\n") }
    }

    /// The report for a person: what came back, what was proven, and everything left out,
    /// ignored or found altered.
    static func text(_ r: Restore.Report) -> String {
        var lines = ["restored \(r.treeSize) records (\(r.segments) segments, \(r.bytes) bytes) from \(r.source) into \(r.restoredTo) in "
            + String(format: "%.2f s", r.seconds),
                     "proven: the log matches the trusted checkpoint at size \(r.checkpointSize)"
            + (r.vouchedSize > r.checkpointSize ? ", and checkpoints signed with the same key up to size \(r.vouchedSize)" : "")
            + "; root \(r.rootHash)",
                     "policy (identity, governance key): from \(r.policyFrom)"]
        if let keyring = r.keyringFrom {
            lines.append("encrypted: keyring from \(keyring), opened with the master key"
                + (r.shreddedNamespaces.isEmpty ? "" : "; shredded namespaces (unreadable for ever): " + r.shreddedNamespaces.joined(separator: ", ")))
        }
        if r.treeSize > r.vouchedSize {
            lines.append("NOT PROVEN: records \(r.vouchedSize)..<\(r.treeSize) are vouched for by the hash chain only (--include-unvouched, or a segment that straddles the checkpoint)")
        }
        if let beyond = r.checkpointBeyond {
            lines.append("RECORDS LOST FROM THE COPY: a checkpoint signed with the key covers \(beyond) records, \(r.treeSize) came back; "
                + "the restored store keeps that checkpoint and refuses writes until `stele record-loss` records the loss")
        }
        if r.segmentsLeftOut > 0 {
            lines.append("LEFT OUT: \(r.segmentsLeftOut) segment(s) of the copy (\(r.recordsLeftOut) records) beyond every checkpoint signed with the key")
        }
        lines += r.altered.map { "altered: " + $0 } + r.ignored.map { "ignored: " + $0 }
        return lines.joined(separator: "\n")
    }
}
