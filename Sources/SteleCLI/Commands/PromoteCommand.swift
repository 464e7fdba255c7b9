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

    func run() throws {
        try refuseInsideStore(copy, store: directory.path, what: "the copy")
        let until = Int64(Date().timeIntervalSince1970 * 1e9) + Int64(retainDays) * 86_400 * 1_000_000_000
        let claim = try Promotion.run(storePath: directory.path, target: try targetOptions.target(copy),
                                      retention: ObjectRetention(mode: .compliance, retainUntil: until))
        Console.line("promoted \(directory.path): writer epoch \(claim.epoch) from record \(claim.firstSequence) (\(claim.objectName) in \(copy))")
    }
}
