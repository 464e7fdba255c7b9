import ArgumentParser
import Foundation
import Stele
import SteleMirror

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

    @OptionGroup var directory: StoreDirectory
    @Option(help: "Target: a directory or s3://BUCKET/PREFIX.") var to: String
    @Option(help: "An encrypted store's keyring copy: a directory, or s3://BUCKET/PREFIX of another bucket or prefix without Object Lock (--keyring-credentials), so that a shred reaches it.")
    var keyringTo: String?
    @OptionGroup var targetOptions: TargetOptions
    @Flag(help: "Keep mirroring as segments seal; print the lag after each pass. A seal's tiles follow its records over the next passes, at most 64 a pass (the last pass of --passes sends the rest).") var follow = false
    @Flag(help: "Also ship the active segment's records up to the newest published checkpoint, as chunks that carry it (a standby installs them).")
    var chunks = false
    @Option(help: "Seconds between passes with --follow.") var interval: Double = 1
    @Option(help: "With --follow, stop after this many passes (default: never).") var passes: Int?
    @Option(help: "Object lock mode when the records carry no compliance lock: compliance or governance.") var lockMode = "compliance"
    @Option(help: "Minimum retention of every object, in days (at most 36500).") var retainDays = 30
    @Flag(help: "Print each pass as a JSON object.") var json = false
    @Option(help: "With --follow, exit after this many failed passes in a row (a tampered copy stops at once).") var maxFailures = 10
    @Option(help: "With --follow, seconds between passes that list the whole copy to find an object removed or overwritten; the passes between list only what is new (0: every pass).")
    var fullCheckEvery: Double = 300

    func validate() throws {
        guard ObjectRetention.Mode(rawValue: lockMode.uppercased()) != nil else { throw ValidationError("--lock-mode is compliance or governance") }
        guard maxFailures >= 1 else { throw ValidationError("--max-failures must be at least 1") }
        guard (1 ... 36_500).contains(retainDays) else { throw ValidationError("--retain-days must be 1-36500") }
        guard interval > 0 else { throw ValidationError("--interval must be positive") }
        guard fullCheckEvery >= 0, fullCheckEvery <= 366 * 86_400 else { throw ValidationError("--full-check-every must be 0-31622400 seconds") }
    }

    func run() throws {
        try refuseInsideStore(to, store: directory.path, what: "the mirror target")
        var options = Mirror.Options()
        options.defaultMode = ObjectRetention.Mode(rawValue: lockMode.uppercased()) ?? .compliance
        options.minimumRetention = .seconds(retainDays * 86_400)
        options.shipsActiveRecords = chunks
        // A follower sends a seal's tiles over the next passes, after each pass's records: a
        // one-off pass leaves a complete copy.
        if follow {
            options.tilesPerPass = Self.tilesPerFollowPass
            options.fullCheckInterval = fullCheckEvery > 0 ? .milliseconds(Int64(fullCheckEvery * 1000)) : nil
        }
        if let keyringTo {
            try refuseInsideStore(keyringTo, store: directory.path, what: "the keyring copy")
            options.keyringTarget = try targetOptions.keyringTarget(keyringTo)
        }
        let mirror = Mirror(storePath: directory.path, target: try targetOptions.target(to), options: options)
        var pass = 0
        var pause = interval
        var failures = 0
        var lastError: (any Error)?
        while true {
            pass += 1
            do {
                let started = ContinuousClock.now
                let report = try mirror.runOnce()
                let seconds = (ContinuousClock.now - started) / .seconds(1)
                Console.line(json ? try jsonLine(PassJSON(report, seconds: seconds)) : Self.text(report))
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
                // A bounded follow reports its last pass's failure in its exit status, and leaves
                // the copy's tiles complete.
                if let lastError { throw lastError }
                try mirror.sendWaitingTiles()
                return
            }
            Thread.sleep(forTimeInterval: pause)
        }
    }

    /// Tiles a follow pass sends at most (a seal completes about 4 per 1,000 records).
    static let tilesPerFollowPass = 64

    static func text(_ r: Mirror.Report) -> String {
        "uploaded \(r.uploaded.count) objects (\(r.bytesUploaded) bytes), verified \(r.verified); off-host \(r.recordsOffHost) of "
            + "\(r.recordsInStore) records\(r.redactedLocally > 0 ? " (\(r.redactedLocally) segments purged locally since copied)" : ""), checkpoint \(r.checkpointOffHost.map(String.init) ?? "none"); lag \(r.lagRecords) records, "
            + String(format: "%.1f s", r.lagSeconds ?? 0) + (r.keyringCopied ? "; keyring copy replaced" : "")
            + (r.tilesWaiting > 0 ? "; \(r.tilesWaiting) tiles waiting" : "")
    }
}

/// One pass as a JSON object: `checkpoint_off_host` is null before any checkpoint is off-host,
/// `lag_seconds` 0 when nothing lags.
private struct PassJSON: Encodable {
    let uploaded: Int
    let bytesUploaded: Int
    let verified: Int
    let redactedLocally: Int
    let recordsOffHost: UInt64
    let recordsInStore: UInt64
    let checkpointOffHost: NullWhenAbsent<UInt64>
    let lagRecords: UInt64
    let lagSeconds: Double
    let keyringCopied: Bool
    let tilesWaiting: Int
    let checkedWholeCopy: Bool
    let versionsListed: Int
    /// How long the pass took.
    let seconds: Double

    init(_ report: Mirror.Report, seconds: Double) {
        uploaded = report.uploaded.count
        bytesUploaded = report.bytesUploaded
        verified = report.verified
        redactedLocally = report.redactedLocally
        recordsOffHost = report.recordsOffHost
        recordsInStore = report.recordsInStore
        checkpointOffHost = NullWhenAbsent(report.checkpointOffHost)
        lagRecords = report.lagRecords
        lagSeconds = report.lagSeconds ?? 0
        keyringCopied = report.keyringCopied
        tilesWaiting = report.tilesWaiting
        checkedWholeCopy = report.checkedWholeCopy
        versionsListed = report.versionsListed
        self.seconds = seconds
    }
}
