import ArgumentParser
import Foundation
import Stele

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
    @OptionGroup var namespace: NamespaceArgument
    @OptionGroup var key: KeyArgument
    @Option(help: "Only this version (sequence number).") var version: UInt64?
    @Option(help: "New retain-until date, ISO 8601 (a past date removes the locks).") var until: String
    @Option(help: "The store's tree size you looked at (`stele stats`): only locks set before it are shortened.") var asOf: UInt64
    @Option(help: "How long the authorization stays valid (90s, 15m, 12h, 30d).") var validFor: String = "1h"

    func run() throws {
        let authority = try NoteSigner(parsing: try readText(signer))
        guard let notAfter = RetentionText.after(Int64(Date().timeIntervalSince1970 * 1e9), try parseDuration(validFor)) else {
            throw ValidationError(RetentionText.tooLateHint(validFor))
        }
        print(try GovernanceAuthorization.sign(origin: origin, namespace: namespace.name, key: try key.bytes(), version: version,
                                               retainUntil: try parseDate(until), asOf: asOf, notAfter: notAfter, with: authority), terminator: "")
    }
}
