// Failover for orders-server: a primary that signs a checkpoint at every seal and mirrors itself
// to a copy in-process, and a warm standby that follows that copy and becomes the writer on
// request, in its own process (no reopen: it is already current).
//
//   primary:  orders-server --store DIR --checkpoint-key LOG.key --mirror-to COPY [--seal-seconds 1 | --checkpoint-ms 250]
//             (--checkpoint-ms: a checkpoint that often, and the records between seals shipped as chunks)
//   standby:  orders-server --store DIR2 --standby-of COPY --verifier-key LOG.pub --checkpoint TRUSTED [--checkpoint-key LOG.key]
//   promote:  POST /admin/promote[?accept-unproven=yes] on the standby: 200 {"epoch": n, "from": first sequence} once it
//             takes writes; until then its POSTs answer 503 (fenced) and its GETs serve what the
//             copy proved. The old primary's mirror finds the new epoch and fences it (503).
//
// COPY is a directory here (`stele mirror` and `stele standby` also take s3://BUCKET/PREFIX).
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import Stele
import SteleMirror
import SteleService

/// The store a server runs, and the services that keep it: a primary (with its mirror, if asked)
/// or a standby (with its follower).
struct ServedStore {
    let store: Store
    let services: [any Service]
    let standby: StandbyService?

    static func open(_ arguments: ServerArguments, logger: Logger) throws -> ServedStore {
        if let copy = arguments.standbyOf {
            guard let verifierFile = arguments.verifierKey else { throw UsageError("--standby-of needs --verifier-key") }
            let verifier = try NoteVerifier(parsing: try String(contentsOfFile: verifierFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))
            let target = DirectoryTarget(root: copy)
            if !FileManager.default.fileExists(atPath: arguments.store) {
                guard let checkpoint = arguments.checkpoint else { throw UsageError("a new standby needs --checkpoint (a signed checkpoint kept outside the store)") }
                try Standby.create(from: target, to: arguments.store, checkpoint: try String(contentsOfFile: checkpoint, encoding: .utf8), verifier: verifier)
            }
            // With --checkpoint-key, the promoted store signs a checkpoint at every seal, as the primary did.
            let signer = try arguments.checkpointKey.map {
                try NoteSigner(parsing: try String(contentsOfFile: $0, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))
            }
            let standby = try Standby(directory: arguments.store, target: target, verifier: verifier, checkpointSigner: signer, logger: logger)
            // Passes list what is new; the whole copy every five minutes.
            standby.fullCheckInterval = .seconds(300)
            let follower = StandbyService(standby: standby,
                                          interval: .milliseconds(200), logger: logger)
            // The store closes last (services stop in reverse order): after the follower's pass.
            return ServedStore(store: follower.store, services: [StoreService(store: follower.store, sealInterval: .seconds(arguments.sealSeconds), logger: logger), follower],
                               standby: follower)
        }
        let signer = try arguments.checkpointKey.map {
            try NoteSigner(parsing: try String(contentsOfFile: $0, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        if (try? FileManager.default.contentsOfDirectory(atPath: arguments.store))?.isEmpty ?? true {
            // The log's origin is the name its checkpoints are signed under.
            try Store.create(at: arguments.store, origin: signer?.name)
        }
        var options = Store.Options(commitPolicy: .everyBatch)
        options.logger = logger
        options.checkpointSigner = signer
        let store = try Store(path: arguments.store, options: options)
        // With --checkpoint-ms, a checkpoint that often, and the mirror ships the records between
        // seals (chunks) that those checkpoints prove: the recovery point without a segment per second.
        let checkpoints = signer.flatMap { signer in arguments.checkpointMilliseconds.map { (Duration.milliseconds($0), signer) } }
        var services: [any Service] = [StoreService(store: store, sealInterval: .seconds(arguments.sealSeconds), checkpoints: checkpoints, logger: logger)]
        if let copy = arguments.mirrorTo {
            var mirrorOptions = Mirror.Options()
            mirrorOptions.minimumRetention = .seconds(86_400)
            mirrorOptions.shipsActiveRecords = checkpoints != nil
            // The seal's tiles trail the records, a few each pass, rather than hold up the next chunk.
            mirrorOptions.tilesPerPass = 64
            // Passes list what is new; the whole copy every five minutes.
            mirrorOptions.fullCheckInterval = .seconds(300)
            // The mirror reads this process's store: no open (and rehash of the active segment) a pass.
            services.append(MirrorService(mirror: Mirror(store: store, target: DirectoryTarget(root: copy), options: mirrorOptions),
                                          interval: .milliseconds(200), store: store, logger: logger))
        }
        return ServedStore(store: store, services: services, standby: nil)
    }
}

/// `POST /admin/promote`: makes a standby the writer. 409 on a server that is not a standby.
struct PromoteRoute: Sendable {
    let standby: StandbyService?

    func add(to router: Router<BasicRequestContext>) {
        router.post("admin/promote") { request, _ in try await promote(acceptingUnproven: request.uri.queryParameters.get("accept-unproven") == "yes") }
    }

    func promote(acceptingUnproven: Bool) async throws -> Response {
        guard let standby else { throw HTTPError(.conflict, message: "this server is not a standby") }
        do {
            let claim = try await standby.promote(acceptingUnproven: acceptingUnproven)
            return Response(status: .ok, headers: [.contentType: "application/json"],
                            body: .init(byteBuffer: ByteBuffer(string: #"{"epoch":\#(claim.epoch),"from":\#(claim.firstSequence)}"#)))
        } catch SteleError.mirror(.fenced(let epoch, let holder)) {
            throw HTTPError(.conflict, message: "another store claimed writer epoch \(epoch) first (\(holder))")
        } catch let error as SteleError {
            throw HTTPError(.serviceUnavailable, message: "not promoted: \(error)")
        }
    }
}
