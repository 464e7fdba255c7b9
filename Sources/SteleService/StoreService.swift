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
    private let logger: Logger

    /// - Parameters:
    ///   - store: an open, writable store; the service owns its close.
    ///   - sealInterval: seal this often while running (nil: only when segments fill).
    ///   - logger: where failed seals and the shutdown are reported.
    public init(store: Store, sealInterval: Duration? = nil, logger: Logger = Logger(label: "stele.service")) {
        self.store = store
        self.sealInterval = sealInterval
        var logger = logger
        logger[metadataKey: "stele.store"] = .string(store.path)
        self.logger = logger
    }

    /// Seals on the timer until graceful shutdown or cancellation, then closes the store.
    /// - Throws: what the final ``Store/close()`` throws (a failed final sync: the store says
    ///   which records it could not make durable).
    public func run() async throws {
        let (store, interval, logger) = (store, sealInterval, logger)
        await cancelWhenGracefulShutdown {
            guard let interval else {
                try? await gracefulShutdown()
                return
            }
            while !Task.isCancelled {
                do { try await Task.sleep(for: interval) } catch { return }
                do {
                    try await offThePool { try store.seal() }
                } catch SteleError.fenced {
                    // A standby not promoted yet, or a writer replaced: whoever fenced it said so.
                    continue
                } catch {
                    logger.error("timed seal failed", metadata: ["stele.error": "\(error)"])
                }
            }
        }
        logger.debug("closing the store: every record appended so far is synced first")
        try await offThePool { try store.close() }
    }
}
