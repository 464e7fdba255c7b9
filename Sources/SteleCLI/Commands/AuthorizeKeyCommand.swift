import ArgumentParser
import Foundation
import Stele

struct AuthorizeKeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "authorize-key",
        abstract: "Sign a governance key change (run by the governance authority, off the store's host).",
        discussion: """
        Prints a signed note that lets `stele governance-key` replace the governance key with \
        --to (or retire it with --to none) before --valid-for has passed. --as-of is the store's \
        tree size you looked at (`stele stats`): it must include the last key change, so an old \
        note cannot be replayed.
        """)

    @Option(help: "The current governance private key file (from `stele keygen`).") var signer: String
    @Option(help: "The store's origin (see `stele stats`).") var origin: String
    @Option(help: "The new governance verifier key (inline or a file), or none.") var to: String
    @Option(help: "The store's tree size you looked at.") var asOf: UInt64
    @Option(help: "How long the authorization stays valid (90s, 15m, 12h, 30d).") var validFor: String = "1h"

    func run() throws {
        let key = try NoteSigner(parsing: try readText(signer))
        let newKey = to == "none" ? nil : try loadVerifier(to)
        guard let notAfter = RetentionText.after(Int64(Date().timeIntervalSince1970 * 1e9), try parseDuration(validFor)) else {
            throw ValidationError(RetentionText.tooLateHint(validFor))
        }
        print(try GovernanceAuthorization.signKeyChange(origin: origin, newKey: newKey, asOf: asOf, notAfter: notAfter, with: key),
              terminator: "")
    }
}
