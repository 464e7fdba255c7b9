import Logging
import ServiceLifecycle
import Stele

/// A store's background work and shutdown as a swift-service-lifecycle `Service`: add it to the
/// server's `ServiceGroup` beside the HTTP server, and a SIGTERM (or any graceful shutdown)
/// closes the store only after the requests it acknowledged are durable.
///
/// While it runs it seals the active segment every ``sealInterval`` (if it holds any record), so
/// that records wait at most about that long before an off-host mirror, which copies sealed
/// segments, can take them. The group commit needs no service: the store's committer thread runs
/// from open to close. At graceful shutdown (or cancellation) it closes the store, which syncs
/// every record appended so far and releases every writer still waiting for its commit; order
/// the group so that the HTTP server stops taking requests first (a service group shuts its
/// services down in reverse order: put this one before the server).
///
/// ```swift
/// let store = try Store(path: "/var/lib/orders.stele")
/// let group = ServiceGroup(configuration: .init(
///     services: [StoreService(store: store, sealInterval: .seconds(5)), httpServer],
///     gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
/// try await group.run()
/// ```
public struct StoreService: Service {
    /// The store this service closes at shutdown.
    public let store: Store
    /// How often to seal the active segment; nil: never on a timer.
    public let sealInterval: Duration?
    /// How often to sign a checkpoint of the records so far (when there are new ones), and the key:
    /// with a mirror that ships the active segment (`Mirror.Options.shipsActiveRecords`), what
    /// bounds how far behind a standby can prove the log. Nil: only the seals' checkpoints. Inside
    /// the active segment each one replaces the one before in `checkpoints/history`, so a short
    /// interval adds no file per checkpoint.
    public let checkpoints: (interval: Duration, signer: NoteSigner)?
    private let logger: Logger

    /// - Parameters:
    ///   - store: an open, writable store; the service owns its close.
    ///   - sealInterval: seal this often while running (nil: only when segments fill).
    ///   - checkpoints: sign a checkpoint this often with this key while running, if records came.
    ///   - logger: where failed seals and checkpoints, and the shutdown, are reported.
    public init(store: Store, sealInterval: Duration? = nil, checkpoints: (interval: Duration, signer: NoteSigner)? = nil,
                logger: Logger = Logger(label: "stele.service")) {
        self.store = store
        self.sealInterval = sealInterval
        self.checkpoints = checkpoints
        var logger = logger
        logger[metadataKey: "stele.store"] = .string(store.path)
        self.logger = logger
    }

    /// Seals and signs checkpoints on their timers until graceful shutdown or cancellation, then
    /// closes the store.
    /// - Throws: what the final ``Store/close()`` throws (a failed final sync: the store says
    ///   which records it could not make durable).
    public func run() async throws {
        let (store, logger) = (store, logger)
        var timers: [(Duration, @Sendable () throws -> Void, String)] = []
        if let sealInterval {
            timers.append((sealInterval, { @Sendable in try store.seal() }, "timed seal failed"))
        }
        if let (interval, signer) = checkpoints {
            timers.append((interval, { @Sendable in
                // Only over new records: a checkpoint of the same size says nothing new.
                if let latest = try store.latestCheckpoint(),
                   let size = try? Checkpoint(parsing: SignedNote.open(latest, verifier: signer.verifier)).treeSize,
                   size >= store.recordCount { return }
                try store.checkpoint(signer: signer)
            }, "timed checkpoint failed"))
        }
        let running = timers
        await cancelWhenGracefulShutdown {
            guard !running.isEmpty else {
                try? await gracefulShutdown()
                return
            }
            await withTaskGroup(of: Void.self) { group in
                for (interval, work, failure) in running {
                    group.addTask {
                        while !Task.isCancelled {
                            do { try await Task.sleep(for: interval) } catch { return }
                            do {
                                try await offThePool { try work() }
                            } catch SteleError.fenced {
                                // A standby not promoted yet, or a writer replaced: whoever fenced it said so.
                                continue
                            } catch {
                                logger.error("\(failure)", metadata: ["stele.error": "\(error)"])
                            }
                        }
                    }
                }
            }
        }
        logger.debug("closing the store: every record appended so far is synced first")
        try await offThePool { try store.close() }
    }
}
