import ArgumentParser
import Foundation
import Stele
import SteleMirror

struct PromoteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "promote",
        abstract: "Make a store restored from a copy the writer of its log: claim the next writer epoch in the copy.",
        discussion: """
        DIR must hold every segment the copy holds (restored from it, nothing written since). \
        If a `stele standby --follow` holds DIR, it is asked to promote (it needs no reopen) and \
        this command prints its answer. \
        The claim (epochs/N in the copy, created only if no other store claimed N first) fences \
        the store it replaces: that store's mirror uploads nothing more and leaves a `fenced` file \
        that refuses its writer. DIR then holds epoch N (its `epoch` file): open it as the writer \
        and mirror it to the same copy. Exit 1 if another store claimed the epoch first, 3 if the \
        copy's claims were tampered with. See docs/operations.md, "Writer epochs and fencing".
        """)

    @OptionGroup var directory: StoreDirectory
    @Option(help: "The copy: a directory or s3://BUCKET/PREFIX.") var copy: String
    @OptionGroup var targetOptions: TargetOptions
    @Option(help: "Object Lock retention of the claim, in days (compliance mode; at most 36500).") var retainDays = 30

    func validate() throws {
        guard (1 ... 36_500).contains(retainDays) else { throw ValidationError("--retain-days must be 1-36500") }
    }

    @Option(help: "Seconds to wait for a running `stele standby --follow` of DIR to answer.") var wait: Double = 30
    @Flag(help: "A following standby also installs the segments of the copy that no signed checkpoint proves yet (checked by the hash chain, seal and checksums only): an operator's decision when the old writer died before uploading its last checkpoint.")
    var acceptUnproven = false

    func run() throws {
        try refuseInsideStore(copy, store: directory.path, what: "the copy")
        if LockFile.isHeld(fs: PosixFileSystem(), path: StoreLayout(root: directory.path).lock) {
            // A standby following the copy holds the store: it promotes in its own process.
            try PromotionRequest.write(.init(copy: copy, retainDays: retainDays, acceptingUnproven: acceptUnproven), directory: directory.path)
            guard let (code, message) = PromotionRequest.awaitAnswer(directory: directory.path, timeout: .milliseconds(Int(wait * 1000))) else {
                try? FileManager.default.removeItem(atPath: directory.path + "/" + PromotionRequest.requestName)
                Console.error("stele promote: \(directory.path) is held by another process, which did not answer in \(wait) s "
                    + "(not a `stele standby --follow`?); nothing claimed by this command")
                throw ExitCode(1)
            }
            guard code == 0 else {
                Console.error("stele promote: " + message)
                throw ExitCode(code)
            }
            Console.line(message)
            return
        }
        let until = Int64(Date().timeIntervalSince1970 * 1e9) + Int64(retainDays) * 86_400 * 1_000_000_000
        let claim = try Promotion.run(storePath: directory.path, target: try targetOptions.target(copy),
                                      retention: ObjectRetention(mode: .compliance, retainUntil: until))
        Console.line("promoted \(directory.path): writer epoch \(claim.epoch) from record \(claim.firstSequence) (\(claim.objectName) in \(copy))")
    }
}
