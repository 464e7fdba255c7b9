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
    /// Time between passes.
    public let interval: Duration
    private let logger: Logger

    /// - Parameters:
    ///   - mirror: the mirror to run; the service is then its only user.
    ///   - interval: time between passes.
    ///   - logger: where passes, retries and the error that ends the service are reported.
    public init(mirror: Mirror, interval: Duration = .seconds(1), logger: Logger = Logger(label: "stele.mirror")) {
        self.mirror = MirrorBox(mirror)
        self.interval = interval
        var logger = logger
        logger[metadataKey: "stele.store"] = .string(mirror.storePath)
        self.logger = logger
    }

    public func run() async throws {
        let (mirror, interval, logger) = (mirror, interval, logger)
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
