import ArgumentParser
import Foundation
import Stele

/// Parses `90s`, `15m`, `12h`, `30d`.
func parseDuration(_ text: String) throws -> Duration {
    guard let duration = RetentionText.duration(text) else { throw ValidationError(RetentionText.durationHint(text)) }
    return duration
}

/// An ISO 8601 date as ns since the epoch.
func parseDate(_ text: String) throws -> Int64 {
    guard let date = RetentionText.date(text) else { throw ValidationError(RetentionText.dateHint(text)) }
    return date
}

/// A retain-until date from `--until` or `--for` (from now).
func retainUntil(until: String?, for duration: String?) throws -> Int64 {
    switch (until, duration) {
    case (let until?, nil): return try parseDate(until)
    case (nil, let duration?):
        let now = Int64(Date().timeIntervalSince1970 * 1e9)
        guard let end = RetentionText.after(now, try parseDuration(duration)) else { throw ValidationError(RetentionText.tooLateHint(duration)) }
        return end
    default: throw ValidationError("give exactly one of --until and --for")
    }
}

struct LockCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lock", abstract: "Lock a version (--version) or every version of a key so far.",
        discussion: """
        Compliance locks can only ever be extended; governance locks cannot be shortened without \
        a governance authorization. The lock is a record in the log. Prints its sequence number.
        """)

    @Argument(help: "The store directory.") var dir: String
    @Argument(help: "Namespace.") var namespace: String
    @Argument(help: "Key (b64:BASE64 for bytes that are not printable UTF-8).") var key: String
    @Option(help: "governance or compliance.") var mode: String
    @Option(help: "Retain until this ISO 8601 date.") var until: String?
    @Option(name: .customLong("for"), help: "Retain for this long from now (90s, 15m, 12h, 30d).") var duration: String?
    @Option(help: "Lock only this version (sequence number).") var version: UInt64?
    @Option(help: "Governance authorization file (from `stele authorize`): shorten or remove governance locks to --until.")
    var authorization: String?

    func run() throws {
        guard let mode = RetentionMode(name: self.mode) else { throw ValidationError("--mode is governance or compliance") }
        let store = try Store(path: dir)
        if let authorization {
            guard mode == .governance, let until else { throw ValidationError("a bypass takes --mode governance and --until") }
            let receipt = try store.shortenGovernanceLock(namespace: namespace, key: try KeyText.parse(key), version: version,
                                                          retainUntil: try parseDate(until), authorization: try readText(authorization))
            try store.close()
            print(receipt.sequences.lowerBound)
            return
        }
        let lock = RetentionLock(mode: mode, retainUntil: try retainUntil(until: until, for: duration))
        let receipt = try store.lock(namespace: namespace, key: try KeyText.parse(key), version: version, lock: lock)
        try store.close()
        print(receipt.sequences.lowerBound)
    }
}

struct HoldCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hold", abstract: "Set or release a legal hold on every version of a key.",
        discussion: "A held version is never purged, whatever its dates. Both setting and releasing are logged with the reason.")

    @Argument(help: "The store directory.") var dir: String
    @Argument(help: "Namespace.") var namespace: String
    @Argument(help: "Key (b64:BASE64 for bytes that are not printable UTF-8).") var key: String
    @Flag(name: .customLong("on"), help: "Set the hold.") var on = false
    @Flag(name: .customLong("off"), help: "Release the hold.") var off = false
    @Option(help: "Why (required).") var reason: String

    func validate() throws {
        guard on != off else { throw ValidationError("give exactly one of --on and --off") }
    }

    func run() throws {
        let store = try Store(path: dir)
        let receipt = try store.setLegalHold(namespace: namespace, key: try KeyText.parse(key), on: on, reason: reason)
        try store.close()
        print(receipt.sequences.lowerBound)
    }
}

struct RetentionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retention", abstract: "Set a namespace's default retention for new versions.",
        discussion: "Only a stronger default is accepted (longer, or governance to compliance). Prints the policy record's sequence number.")

    @Argument(help: "The store directory.") var dir: String
    @Argument(help: "Namespace.") var namespace: String
    @Option(help: "governance or compliance.") var defaultMode: String
    @Option(help: "How long each new version is kept (90s, 15m, 12h, 30d).") var defaultFor: String

    func run() throws {
        guard let mode = RetentionMode(name: defaultMode) else { throw ValidationError("--default-mode is governance or compliance") }
        let store = try Store(path: dir)
        let receipt = try store.setDefaultRetention(namespace: namespace, mode: mode, duration: try parseDuration(defaultFor))
        try store.close()
        print(receipt.sequences.lowerBound)
    }
}

struct PurgeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "purge", abstract: "Reclaim space: purge payloads of superseded or deleted versions whose locks have all expired.",
        discussion: """
        Seals the active segment first, writes a redaction record, then rewrites each affected \
        sealed segment with redaction stubs that keep every leaf hash (every proof and checkpoint \
        still verifies). Versions under a lock, a legal hold or the store minimum are left alone \
        and counted. --dry-run only reports.
        """)

    @Argument(help: "The store directory.") var dir: String
    @Flag(help: "Report what would be purged; change nothing.") var dryRun = false
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        let store = try Store(path: dir)
        if !dryRun { try store.seal() }
        let report = try store.purge(dryRun: dryRun)
        try store.close()
        // A dry run counts what the real run purges after sealing the active segment first.
        let items = report.purged + (dryRun ? report.inActiveSegment : [])
        let payload = items.reduce(0) { $0 + $1.storedBytes }
        let stubs = 32 * items.count
        let (freed, added) = dryRun ? (max(0, payload - stubs), max(0, stubs - payload)) : (report.bytesReclaimed, report.bytesAdded)
        if json {
            print("{\"dry_run\":\(report.dryRun),\"purged\":\(items.count),\"payload_bytes\":\(payload),\"stub_bytes\":\(stubs),"
                + "\"bytes_reclaimed\":\(freed),\"bytes_added\":\(added),"
                + "\"still_protected\":\(report.stillProtected),\"in_active_segment\":\(report.inActiveSegment.count),"
                + "\"segments_rewritten\":\(report.segmentsRewritten),\"redaction_records\":\(report.redactionRecords)}")
        } else {
            let size = freed > 0 || added == 0 ? "\(freed) bytes of disk \(dryRun ? "would be " : "")reclaimed"
                : "the stubs \(dryRun ? "would take" : "took") \(added) bytes more than the payloads they replace"
            print("\(dryRun ? "would purge" : "purged") \(items.count) versions (\(payload) payload bytes, each replaced by a 32-byte stub); "
                + "\(report.stillProtected) still protected; "
                + (dryRun ? "\(report.inActiveSegment.count) of them in the active segment, which purge seals first; "
                          : "\(report.segmentsRewritten) segments rewritten, ") + size)
        }
    }
}

struct AuthorizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "authorize", abstract: "Sign a governance authorization (run by the governance authority, off the store's host).",
        discussion: """
        Prints a signed note that lets `stele lock --authorization` shorten or remove the \
        governance locks on one version (--version) or a whole key, down to --until, before \
        --valid-for has passed. The store logs the authorization with the change.
        """)

    @Option(help: "The governance private key file (from `stele keygen`).") var signer: String
    @Option(help: "The store's origin (see `stele stats`).") var origin: String
    @Argument(help: "Namespace.") var namespace: String
    @Argument(help: "Key (b64:BASE64 for bytes that are not printable UTF-8).") var key: String
    @Option(help: "Only this version (sequence number).") var version: UInt64?
    @Option(help: "New retain-until date, ISO 8601 (a past date removes the locks).") var until: String
    @Option(help: "The store's tree size you looked at (`stele stats`): only locks set before it are shortened.") var asOf: UInt64
    @Option(help: "How long the authorization stays valid (90s, 15m, 12h, 30d).") var validFor: String = "1h"

    func run() throws {
        let key = try NoteSigner(parsing: try readText(signer))
        guard let notAfter = RetentionText.after(Int64(Date().timeIntervalSince1970 * 1e9), try parseDuration(validFor)) else {
            throw ValidationError(RetentionText.tooLateHint(validFor))
        }
        print(try GovernanceAuthorization.sign(origin: origin, namespace: namespace, key: try KeyText.parse(self.key), version: version,
                                               retainUntil: try parseDate(until), asOf: asOf, notAfter: notAfter, with: key), terminator: "")
    }
}
