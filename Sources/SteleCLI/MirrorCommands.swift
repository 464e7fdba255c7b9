import ArgumentParser
import Foundation
import Stele
import SteleMirror

/// Where a mirror target is given: a directory path, or `s3://BUCKET/PREFIX` with its endpoint
/// and credentials (from the environment or a file, never from the store's config).
struct TargetOptions: ParsableArguments {
    @Option(help: "S3 endpoint URL for s3:// targets (default: https://s3.REGION.amazonaws.com).")
    var endpoint: String?

    @Option(help: "S3 region (default: $AWS_REGION, else us-east-1).")
    var region: String?

    @Option(help: "Credentials file: an AWS-style file whose [default] profile has aws_access_key_id and aws_secret_access_key (default: $AWS_ACCESS_KEY_ID / $AWS_SECRET_ACCESS_KEY; session tokens are not supported).")
    var credentials: String?

    @Option(help: "Attempts per S3 request, the first included, for failures that say nothing about the request (no answer, timeouts, 5xx, throttling); waits grow from 0.2 s to at most 5 s.")
    var attempts = 5

    func target(_ text: String) throws -> any MirrorTarget {
        guard text.hasPrefix("s3://") else { return DirectoryTarget(root: text) }
        guard attempts >= 1 else { throw ValidationError("--attempts must be at least 1") }
        let rest = text.dropFirst("s3://".count)
        let bucket = String(rest.prefix { $0 != "/" })
        let prefix = String(rest.dropFirst(bucket.count).drop { $0 == "/" })
        guard !bucket.isEmpty else { throw ValidationError("s3://BUCKET/PREFIX needs a bucket") }
        let environment = ProcessInfo.processInfo.environment
        let region = region ?? environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"] ?? "us-east-1"
        var keyID = environment["AWS_ACCESS_KEY_ID"], secret = environment["AWS_SECRET_ACCESS_KEY"]
        if let credentials {
            // The [default] profile (or lines before any profile header) of an AWS-style file.
            var inDefault = true
            for line in try readText(credentials).split(separator: "\n") {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                if trimmed.hasPrefix("[") { inDefault = trimmed == "[default]"; continue }
                let parts = trimmed.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard inDefault, parts.count == 2 else { continue }
                if parts[0] == "aws_access_key_id" { keyID = parts[1] }
                if parts[0] == "aws_secret_access_key" { secret = parts[1] }
            }
        }
        guard let keyID, let secret, !keyID.isEmpty, !secret.isEmpty else {
            throw InputError(message: "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or give --credentials FILE")
        }
        guard let url = URL(string: endpoint ?? "https://s3.\(region).amazonaws.com"), url.host != nil else {
            throw ValidationError("--endpoint must be a URL such as http://127.0.0.1:9000")
        }
        // Retries (5xx, throttling, timeouts; bounded, with back-off) are said on stderr.
        let client = S3Client(endpoint: url, bucket: bucket,
                              signer: SigV4Signer(accessKeyID: keyID, secretAccessKey: secret, region: region),
                              retryPolicy: S3RetryPolicy(maxAttempts: attempts),
                              onNotice: { Console.error("stele: S3: \($0)") })
        return S3Target(client: client, prefix: prefix)
    }
}

struct MirrorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mirror",
        abstract: "Copy sealed history off-host: config, sealed segments, checkpoints.",
        discussion: """
        TARGET is a directory (files are written read-only, never replaced) or s3://BUCKET/PREFIX \
        (every object with Object Lock retention: the latest lock on its records, but at least \
        --retain-days). Idempotent and resumable: objects already there are verified by checksum, \
        not sent again. Safe beside a running writer (the store is opened read-only). The active \
        segment is not copied: the lag (records and seconds not yet off-host) is the recovery point.
        """)

    @Argument(help: "The store directory.") var dir: String
    @Option(help: "Target: a directory or s3://BUCKET/PREFIX.") var to: String
    @OptionGroup var targetOptions: TargetOptions
    @Flag(help: "Keep mirroring as segments seal; print the lag after each pass.") var follow = false
    @Option(help: "Seconds between passes with --follow.") var interval: Double = 1
    @Option(help: "With --follow, stop after this many passes (default: never).") var passes: Int?
    @Option(help: "Object lock mode when the records carry no compliance lock: compliance or governance.") var lockMode = "compliance"
    @Option(help: "Minimum retention of every object, in days (at most 36500).") var retainDays = 30
    @Flag(help: "Print each pass as a JSON object.") var json = false
    @Option(help: "With --follow, exit after this many failed passes in a row (a tampered copy stops at once).") var maxFailures = 10

    func validate() throws {
        guard ObjectRetention.Mode(rawValue: lockMode.uppercased()) != nil else { throw ValidationError("--lock-mode is compliance or governance") }
        guard maxFailures >= 1 else { throw ValidationError("--max-failures must be at least 1") }
        guard (1 ... 36_500).contains(retainDays) else { throw ValidationError("--retain-days must be 1-36500") }
        guard interval > 0 else { throw ValidationError("--interval must be positive") }
    }

    func run() throws {
        try refuseInsideStore(to, store: dir, what: "the mirror target")
        var options = Mirror.Options()
        options.defaultMode = ObjectRetention.Mode(rawValue: lockMode.uppercased()) ?? .compliance
        options.minimumRetention = .seconds(retainDays * 86_400)
        let mirror = Mirror(storePath: dir, target: try targetOptions.target(to), options: options)
        var pass = 0
        var pause = interval
        var failures = 0
        var lastError: (any Error)?
        while true {
            pass += 1
            do {
                let report = try mirror.runOnce()
                Console.line(json ? Self.json(report) : Self.text(report))
                pause = interval
                failures = 0
                lastError = nil
            } catch SteleError.mirror(let error) where !error.isTransient {
                // A copy that was tampered with, or an object that conflicts, is not retried: it
                // needs a person, and following on would only upload beside it.
                throw SteleError.mirror(error)
            } catch {
                guard follow else { throw error }
                failures += 1
                lastError = error
                if failures >= maxFailures {
                    Console.error("stele mirror: pass \(pass) failed: \(error); \(failures) in a row")
                    Console.error("stele mirror: giving up after \(failures) failed passes in a row")
                    throw error
                }
                // Back off: twice the pause after each failed pass in a row, up to a minute.
                pause = min(pause * 2, 60)
                Console.error("stele mirror: pass \(pass) failed: \(error); \(failures) in a row; next pass in \(pause) s")
            }
            guard follow, passes.map({ pass < $0 }) ?? true else {
                // A bounded follow reports its last pass's failure in its exit status.
                if let lastError { throw lastError }
                return
            }
            Thread.sleep(forTimeInterval: pause)
        }
    }

    static func text(_ r: Mirror.Report) -> String {
        "uploaded \(r.uploaded.count) objects (\(r.bytesUploaded) bytes), verified \(r.verified); off-host \(r.recordsOffHost) of "
            + "\(r.recordsInStore) records\(r.redactedLocally > 0 ? " (\(r.redactedLocally) segments purged locally since copied)" : ""), checkpoint \(r.checkpointOffHost.map(String.init) ?? "none"); lag \(r.lagRecords) records, "
            + String(format: "%.1f s", r.lagSeconds ?? 0)
    }

    static func json(_ r: Mirror.Report) -> String {
        "{\"uploaded\":\(r.uploaded.count),\"bytes_uploaded\":\(r.bytesUploaded),\"verified\":\(r.verified),"
            + "\"redacted_locally\":\(r.redactedLocally),"
            + "\"records_off_host\":\(r.recordsOffHost),\"records_in_store\":\(r.recordsInStore),"
            + "\"checkpoint_off_host\":\(r.checkpointOffHost.map(String.init) ?? "null"),\"lag_records\":\(r.lagRecords),"
            + "\"lag_seconds\":\(r.lagSeconds.map { String(format: "%.3f", $0) } ?? "0")}"
    }
}

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
    @Flag(help: "Also restore sealed segments beyond the newest checkpoint signed with the key (vouched for by the hash chain only).")
    var includeUnvouched = false

    @Flag(help: "Print the report as JSON instead of text.") var json = false

    func run() throws {
        try refuseInsideStore(to, store: nil, what: "the restored store")
        if !from.hasPrefix("s3://") { try refuseNested(to, from, "the restored store", "the copy") }
        let result = try Restore.run(from: try targetOptions.target(from), to: to, checkpoint: try readText(checkpoint),
                                     verifier: try loadVerifier(verifierKey), includeUnvouched: includeUnvouched)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let text = String(decoding: try encoder.encode(result), as: UTF8.self)
        print(json ? text : Self.text(result))
        if let report { try Data((text + "\n").utf8).write(to: URL(fileURLWithPath: report)) }
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

extension MirrorError {
    /// A failure that a later pass may not meet again (the target unreachable or refusing).
    var isTransient: Bool {
        switch self {
        case .transport, .target: true
        default: false
        }
    }
}

/// Refuses a mirror target or a restored store inside a store (or a store inside it): copies
/// must live beyond the store's reach, and a restore must not write into one.
func refuseInsideStore(_ path: String, store: String?, what: String) throws {
    guard !path.hasPrefix("s3://") else { return }
    if let store { try refuseNested(path, store, what, "the store") }
    var ancestor = URL(fileURLWithPath: path).standardizedFileURL.deletingLastPathComponent()
    while ancestor.path != "/" {
        if FileManager.default.fileExists(atPath: ancestor.appendingPathComponent(StoreConfig.fileName).path) {
            throw InputError(message: "\(path) is inside the store \(ancestor.path): \(what) must not be")
        }
        ancestor = ancestor.deletingLastPathComponent()
    }
}

/// Refuses `a` inside `b` or `b` inside `a` (after resolving symbolic links).
func refuseNested(_ a: String, _ b: String, _ aName: String, _ bName: String) throws {
    func resolved(_ path: String) -> String {
        // The deepest existing ancestor, resolved, and what follows it.
        var url = URL(fileURLWithPath: path).standardizedFileURL
        var rest: [String] = []
        while !FileManager.default.fileExists(atPath: url.path) && url.path != "/" {
            rest.insert(url.lastPathComponent, at: 0)
            url = url.deletingLastPathComponent()
        }
        return ([url.resolvingSymlinksInPath().path] + rest).joined(separator: "/").replacingOccurrences(of: "//", with: "/")
    }
    let (x, y) = (resolved(a) + "/", resolved(b) + "/")
    if x.hasPrefix(y) { throw InputError(message: "\(aName) (\(a)) is inside \(bName) (\(b))") }
    if y.hasPrefix(x) { throw InputError(message: "\(bName) (\(b)) is inside \(aName) (\(a))") }
}
