import ArgumentParser
import Foundation
import Stele
import SteleMirror

struct StandbyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "standby",
        abstract: "Build a warm standby from a copy and keep it current, serving only what signed checkpoints prove.",
        discussion: """
        If DIR does not exist, it is restored from the copy and proven against --checkpoint \
        (as `stele restore`), then fenced: it refuses writes until promoted. Each pass then \
        installs the sealed segments the copy gained, each checked (recorded SHA-256, seal, hash \
        chain, Merkle root) and proven by a checkpoint in the copy signed with --verifier-key \
        before the store takes it in; readers of DIR (get, history, scan, prove) never see \
        anything else. With --follow it keeps doing so, printing the lag after each pass, and \
        answers `stele promote DIR` by claiming the next writer epoch in the copy, without \
        reopening the store, then exits 0. A gap, an altered or removed object or a fork stops \
        it with exit 3; a copy it cannot reach is retried. See docs/operations.md, "Standby and failover".
        """)

    @Option(help: "The copy: a directory or s3://BUCKET/PREFIX.") var from: String
    @Option(help: "The standby store directory (created from the copy if it does not exist).") var to: String
    @Option(help: "A signed checkpoint file kept outside the store (needed to create the standby).") var checkpoint: String?
    @Option(help: "The key that signs the primary's checkpoints, inline or as a file.") var verifierKey: String
    @OptionGroup var targetOptions: TargetOptions
    @Flag(help: "Keep following the copy; answer `stele promote`.") var follow = false
    @Option(help: "Seconds between passes with --follow.") var interval: Double = 1
    @Option(help: "With --follow, stop after this many passes (default: never).") var passes: Int?
    @Option(help: "With --follow, exit after this many failed passes in a row (tampering stops at once).") var maxFailures = 10
    @Flag(help: "Print each pass as a JSON object.") var json = false
    @Option(help: "With --follow, seconds between passes that list the whole copy to find an installed segment removed or overwritten; the passes between list only what is new (0: every pass).")
    var fullCheckEvery: Double = 300

    func validate() throws {
        guard interval > 0 else { throw ValidationError("--interval must be positive") }
        guard maxFailures >= 1 else { throw ValidationError("--max-failures must be at least 1") }
        guard fullCheckEvery >= 0, fullCheckEvery <= 366 * 86_400 else { throw ValidationError("--full-check-every must be 0-31622400 seconds") }
    }

    func run() throws {
        try refuseInsideStore(to, store: nil, what: "the standby")
        if !from.hasPrefix("s3://") { try refuseNested(to, from, "the standby", "the copy") }
        let target = try targetOptions.target(from)
        let verifier = try loadVerifier(verifierKey)
        if !FileManager.default.fileExists(atPath: to) {
            guard let checkpoint else { throw ValidationError("\(to) does not exist: give --checkpoint to create the standby from the copy") }
            let restored = try Standby.create(from: target, to: to, checkpoint: try readText(checkpoint), verifier: verifier)
            Console.line("standby \(to): restored \(restored.treeSize) records from \(restored.source), proven up to \(restored.vouchedSize)")
        }
        let standby = try Standby(directory: to, target: target, verifier: verifier)
        defer { try? standby.close() }
        if follow, fullCheckEvery > 0 { standby.fullCheckInterval = .milliseconds(Int64(fullCheckEvery * 1000)) }
        var pass = 0
        var failures = 0
        var pause = interval
        while true {
            pass += 1
            do {
                let report = try standby.catchUp()
                Console.line(json ? try jsonLine(report) : Self.text(report, directory: to))
                failures = 0
                pause = interval
            } catch SteleError.mirror(let error) where !error.isTransient {
                throw SteleError.mirror(error)  // tampering needs a person: never followed past
            } catch {
                guard follow else { throw error }
                failures += 1
                if failures >= maxFailures {
                    Console.error("stele standby: giving up after \(failures) failed passes in a row: \(error)")
                    throw error
                }
                pause = min(pause * 2, 60)
                Console.error("stele standby: pass \(pass) failed: \(error); \(failures) in a row; next pass in \(pause) s")
            }
            guard follow, passes.map({ pass < $0 }) ?? true else { return }
            // Between passes, a promotion request is looked for every 50 ms.
            let deadline = ContinuousClock.now + .milliseconds(Int(pause * 1000))
            repeat {
                if let request = PromotionRequest.pending(in: to) {
                    if try promote(standby, request) { return }
                }
                Thread.sleep(forTimeInterval: 0.05)
            } while ContinuousClock.now < deadline
        }
    }

    /// Answers a promotion request; true when the standby was promoted (the command then ends).
    private func promote(_ standby: Standby, _ request: Result<PromotionRequest.Request, SteleError>) throws -> Bool {
        let wanted: PromotionRequest.Request
        switch request {
        case .failure(let error):
            try PromotionRequest.answer(exit: 2, "\(error)", directory: to)
            return false
        case .success(let found): wanted = found
        }
        guard wanted.copy == from else {
            try PromotionRequest.answer(exit: 1, "this standby follows \(from), not \(wanted.copy): nothing claimed", directory: to)
            return false
        }
        let until = Int64(Date().timeIntervalSince1970 * 1e9) + Int64(wanted.retainDays) * 86_400 * 1_000_000_000
        do {
            let started = ContinuousClock.now
            let claim = try standby.promote(retention: ObjectRetention(mode: .compliance, retainUntil: until), acceptingUnproven: wanted.acceptingUnproven)
            let took = ContinuousClock.now - started
            let message = "promoted \(to): writer epoch \(claim.epoch) from record \(claim.firstSequence) (\(claim.objectName) in \(from)); "
                + "accepting writes \(String(format: "%.3f", Double(took.components.attoseconds) / 1e18 + Double(took.components.seconds))) s after the request was read"
            try PromotionRequest.answer(exit: 0, message, directory: to)
            Console.line(message)
            return true
        } catch let error as SteleError {
            try PromotionRequest.answer(exit: error.exitCode, "\(error)", directory: to)
            if case .mirror(.tampered) = error { throw error }  // as a pass that finds it
            return false
        }
    }

    static func text(_ r: Standby.Report, directory: String) -> String {
        "standby \(directory): installed \(r.segmentsInstalled) segments (\(r.recordsInstalled) records); holds \(r.records) records, "
            + "proven by checkpoint \(r.checkpointSize); the copy holds \(r.recordsInCopy) (\(r.recordsWaiting) waiting for a checkpoint); "
            + "newest record " + (r.newestRecordAge.map { String(format: "%.1f s old", $0) } ?? "none")
            + (r.epoch.map { "; writer epoch \($0) held by \(r.epochHolder ?? "?")" } ?? "")
    }
}
