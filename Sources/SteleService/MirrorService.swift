import Logging
import ServiceLifecycle
import Stele
import SteleMirror

/// `stele mirror --follow` as a swift-service-lifecycle `Service`: a mirror pass every
/// ``interval`` until graceful shutdown, each pass's lag in the log (debug) and in the metrics
/// (``Mirror/Options/metricsFactory``: `stele_mirror_lag_records`, `stele_mirror_lag_seconds`).
///
/// A pass that fails for a reason that may pass (the target unreachable, a throttled request)
/// is logged and tried again after a back-off of up to a minute; a copy that was tampered with,
/// or an object that conflicts with the local one, ends the service with that error (it needs a
/// person, and mirroring on would only upload beside it), which by default shuts the service
/// group down. At graceful shutdown the pass under way finishes first.
public struct MirrorService: Service {
    private let mirror: MirrorBox
    /// The store the mirror copies, open for writing in this process: fenced (every write
    /// refused, ``SteleError/fenced(epoch:holder:)``) as soon as a pass finds a newer writer
    /// epoch in the copy.
    private let store: Store?
    /// Time between passes.
    public let interval: Duration
    private let logger: Logger

    /// - Parameters:
    ///   - mirror: the mirror to run; the service is then its only user.
    ///   - interval: time between passes.
    ///   - store: the mirrored store, if this process writes it: fenced when the copy names a
    ///     newer writer epoch (docs/operations.md, "Writer epochs and fencing").
    ///   - logger: where passes, retries and the error that ends the service are reported.
    public init(mirror: Mirror, interval: Duration = .seconds(1), store: Store? = nil, logger: Logger = Logger(label: "stele.mirror")) {
        self.mirror = MirrorBox(mirror)
        self.store = store
        self.interval = interval
        var logger = logger
        logger[metadataKey: "stele.store"] = .string(mirror.storePath)
        self.logger = logger
    }

    public func run() async throws {
        let (mirror, interval, logger, store) = (mirror, interval, logger, store)
        try await cancelWhenGracefulShutdown {
            var pause = interval
            while !Task.isCancelled {
                do {
                    let report = try await offThePool { try mirror.mirror.runOnce() }
                    logger.debug("mirror pass", metadata: [
                        "stele.uploaded": "\(report.uploaded.count)", "stele.lag_records": "\(report.lagRecords)",
                        "stele.lag_seconds": "\(report.lagSeconds ?? 0)",
                    ])
                    pause = interval
                } catch SteleError.mirror(.fenced(let epoch, let holder)) {
                    // Another store extends the log now: this one must not write another record.
                    do { try store?.fence(epoch: epoch, holder: holder) } catch {
                        logger.error("the store could not record its fence (its writes are refused all the same)",
                                     metadata: ["stele.error": "\(error)"])
                    }
                    logger.critical("fenced: writer epoch \(epoch) (\(holder)) extends the log; this store writes nothing more")
                    throw SteleError.mirror(.fenced(epoch: epoch, holder: holder))
                } catch SteleError.mirror(let error) where !error.isTransient {
                    logger.critical("the off-host copy needs attention; mirroring stopped", metadata: ["stele.error": "\(error)"])
                    throw SteleError.mirror(error)
                } catch {
                    logger.warning("mirror pass failed; trying again", metadata: ["stele.error": "\(error)"])
                    pause = min(pause * 2, .seconds(60))
                }
                do { try await Task.sleep(for: pause) } catch { return }
            }
        }
    }
}

/// A ``Mirror`` (not `Sendable`: one pass at a time) handed to the one service task that runs it.
private final class MirrorBox: @unchecked Sendable {
    let mirror: Mirror
    init(_ mirror: Mirror) { self.mirror = mirror }
}
