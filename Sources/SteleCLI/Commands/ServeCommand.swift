import ArgumentParser
import Foundation
import Hummingbird
import Logging
import Stele
import SteleServe

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the store's log read-only as a tiled transparency log (c2sp.org/tlog-tiles).",
        discussion: """
        Serves GET /checkpoint (the latest signed checkpoint, with any cosignatures), \
        /tile/<L>/<N>[.p/<W>] (Merkle tree hashes) and /tile/entries/<N>[.p/<W>] (the canonical \
        entries, each hashing to its leaf), and only what the published checkpoint covers. A \
        checkpoint is published once the store's tree reproduces its root (and, with \
        --verifier-key, once it carries the log's valid signature); the store is read beside its \
        writer, and new checkpoints appear within --poll seconds without a restart. Prints \
        "listening on HOST:PORT" once it serves (--listen 127.0.0.1:0 picks a free port); stops \
        on SIGTERM or SIGINT.
        """)

    @OptionGroup var directory: StoreDirectory

    @Option(help: "Address and port to listen on.")
    var listen = "127.0.0.1:8080"

    @Option(help: "Verifier key (name+keyid+key), or a file holding it: publish only checkpoints it signed.")
    var verifierKey: String?

    @Option(help: "Seconds between looks for a new checkpoint.")
    var poll: Double = 1

    func run() throws {
        let (host, port) = try parseListen(listen)
        guard poll > 0, poll <= 3600 else { throw ValidationError("--poll takes 0-3600 seconds") }
        let verifier = try verifierKey.map(loadVerifier)
        var logger = Logger(label: "stele.serve")
        logger.logLevel = .notice
        let log = try TileLog(directory: directory.path, verifier: verifier, logger: logger)
        let router = Router()
        router.addTileRoutes(log)
        let interval = Duration.milliseconds(Int64(poll * 1000))
        try runHTTP(router: router, host: host, port: port, serverName: "stele", logger: logger) {
            await log.follow(every: interval)
        }
    }
}

/// `HOST:PORT` of a `--listen` option.
func parseListen(_ listen: String) throws -> (host: String, port: Int) {
    guard let colon = listen.lastIndex(of: ":"), colon > listen.startIndex, let port = Int(listen[listen.index(after: colon)...]),
          (0 ... 65535).contains(port) else {
        throw ValidationError("--listen takes HOST:PORT, for example 127.0.0.1:8080")
    }
    return (String(listen[..<colon]), port)
}

/// Runs an HTTP server of `router` (and `beside`, cancelled when the server stops) until SIGTERM
/// or SIGINT. Prints "listening on HOST:PORT" once it serves. Blocks the calling thread, which is
/// not one of the cooperative pool (the commands are synchronous).
func runHTTP(router: Router<BasicRequestContext>, host: String, port: Int, serverName: String, logger: Logger,
             beside: (@Sendable () async -> Void)? = nil) throws {
    let app = Application(
        router: router,
        configuration: .init(address: .hostname(host, port: port), serverName: serverName),
        onServerRunning: { channel in
            // One line, written at once, for whoever started the server (tests wait for it).
            FileHandle.standardOutput.write(Data("listening on \(host):\(channel.localAddress?.port ?? port)\n".utf8))
        },
        logger: logger)
    let outcome = ServeOutcome()
    let done = DispatchSemaphore(value: 0)
    Task {
        await withTaskGroup(of: Void.self) { group in
            if let beside { group.addTask { await beside() } }
            group.addTask {
                do { try await app.runService() } catch { outcome.fail(error) }
            }
            await group.next()
            group.cancelAll()
        }
        done.signal()
    }
    done.wait()
    if let failure = outcome.failure { throw failure }
}

/// The server's failure, if it stopped for one.
private final class ServeOutcome: @unchecked Sendable {
    private let lock = DispatchSemaphore(value: 1)
    private var error: (any Error)?
    var failure: (any Error)? {
        lock.wait()
        defer { lock.signal() }
        return error
    }
    func fail(_ error: any Error) {
        lock.wait()
        self.error = error
        lock.signal()
    }
}
