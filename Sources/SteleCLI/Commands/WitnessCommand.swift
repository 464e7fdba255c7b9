import ArgumentParser
import Foundation
import Hummingbird
import Logging
import Stele
import SteleServe

struct WitnessCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "witness",
        abstract: "Run a transparency-log witness (c2sp.org/tlog-witness).",
        discussion: """
        Serves POST /add-checkpoint: cosigns a checkpoint of a known log (one whose verifier \
        key is given with --log; a log is known by the origin its key names) only when it carries \
        a valid signature by that key and is consistent with the last checkpoint this witness \
        cosigned for the log, as a consistency proof in the request shows. The latest cosigned \
        size and root of each log are kept in --state (replaced atomically before each answer; \
        one witness process per state directory; the directory must exist, since a witness \
        without its state would cosign any history once). Answers as the spec says: 200 with the \
        cosignature line, 400, 403 (no valid signature), 404 (unknown log), 409 with the latest \
        cosigned size (text/x.tlog.size), 422 (the proof does not verify). Prints \
        "listening on HOST:PORT" once it serves; stops on SIGTERM or SIGINT.
        """)

    @Option(help: "Address and port to listen on.")
    var listen = "127.0.0.1:8081"

    @Option(help: "The witness's cosigner key (stele keygen --witness).")
    var key: String

    @Option(help: "Directory of the witness's state; it must exist (mkdir it once for a new witness).")
    var state: String

    @Option(name: .customLong("log"), help: "A log's verifier key (name+keyid+key) or a file holding it; repeat for more logs.")
    var logs: [String] = []

    func run() throws {
        let (host, port) = try parseListen(listen)
        guard !logs.isEmpty else { throw ValidationError("give at least one --log verifier key") }
        let cosigner = try Cosigner(parsing: readText(key))
        let witness = try Witness(cosigner: cosigner, logs: logs.map(loadVerifier), stateDirectory: state)
        var logger = Logger(label: "stele.witness")
        logger.logLevel = .notice
        let router = Router()
        router.addWitnessRoutes(witness)
        try runHTTP(router: router, host: host, port: port, serverName: "stele-witness", logger: logger)
    }
}
